"""Who may publish, decided the same way for every ingest front: RTMP (serve's
on_publish callback) and SRT (ingest/srt_front.py, in its own process).

The database decides (store/keys.check_publish: the key exists, is not revoked, and its
stream has no other publisher) and the set of active keys is saved beside the front
(store/key_cache.py). While the database is down, a key of that last known set is let
on the air and any other is refused: an encoder reconnecting during an outage stays on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from store import key_cache
from store.keys import PublishDecision, check_publish

log = logging.getLogger("sparkcast.publish")


@dataclass(frozen=True)
class Admission:
    decision: PublishDecision
    database_error: str | None = None  # set: the database was down, the last known keys decided


def admit(session: Session, key: str, addr: str, keys_file: str) -> Admission:
    """Decide one publish of `key` from `addr`; commits the publishing mark."""
    try:
        decision = check_publish(session, key, addr)
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        known = key_cache.lookup(keys_file, key)
        if known is None:
            return Admission(PublishDecision(False, "not among the last known keys"),
                             type(exc).__name__)
        return Admission(PublishDecision(True, "among the last known keys", known.key_id,
                                         known.stream_id), type(exc).__name__)
    try:
        key_cache.refresh(session, keys_file)
    except (OSError, SQLAlchemyError) as exc:  # the decision stands; the saved set is stale
        log.warning("known keys not saved to %s: %s", keys_file, exc)
    return Admission(decision)
