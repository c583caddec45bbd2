"""The last known good set of active stream keys, on local disk beside the RTMP front.

Kept so that publishing goes on through a database outage: while the database answers,
every publish decision and every key change rewrites the file (hashes of the keys that
are not revoked, with their key id and stream); while it does not, a key in the file may
publish and any other is refused. Revocations take effect as soon as the database is
back, because the database, when it answers, is always asked first. The file holds only
SHA-256 hashes (store/keys.py), never a key.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.keys import hash_secret
from store.models import StreamKey


@dataclass(frozen=True)
class KnownKey:
    key_id: int
    stream_id: str


def active_keys(session: Session) -> dict[str, KnownKey]:
    """Hash -> key of every key that is not revoked."""
    rows = session.execute(select(StreamKey.key_hash, StreamKey.id, StreamKey.stream_id)
                           .where(StreamKey.revoked_at.is_(None)))
    return {h: KnownKey(i, s) for h, i, s in rows}


def save(path: str, keys: dict[str, KnownKey]) -> None:
    """Write the set atomically (a reader never sees half a file), readable by us alone."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({h: [k.key_id, k.stream_id] for h, k in keys.items()}, f)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def refresh(session: Session, path: str) -> None:
    save(path, active_keys(session))


def lookup(path: str, key: str) -> KnownKey | None:
    """The key in the last known set, or None (not in it, or no readable set)."""
    try:
        data = json.loads(Path(path).read_text())
        key_id, stream_id = data[hash_secret(key)]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return KnownKey(int(key_id), str(stream_id))
