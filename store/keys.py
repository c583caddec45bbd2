"""Stream keys: create, list, revoke, and the publish check the RTMP callbacks run.

Small functions over a Session (the caller owns the transaction). A key is shown once, at
creation; the database keeps only its SHA-256 (see store.models).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from hdfs_layout import validate_stream_id
from store.listing import by_id
from store.models import AdminToken, Stream, StreamKey
from store.sqltypes import utcnow

KEY_PREFIX = "sk_"  # recognisable in a leak scan; URL-safe, as RTMP stream names must be
MAX_KEY_LEN = 128  # refuse absurd names before hashing


class KeyNotFound(LookupError):
    """No stream key with that id."""


def new_secret(prefix: str) -> str:
    """A random secret: `prefix` + 32 URL-safe base64 characters (192 bits)."""
    return prefix + secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def fingerprint(secret: str) -> str:
    """A short, non-reversible tag for logging a refused key without revealing it."""
    return hash_secret(secret)[:10]


def get_or_create_stream(session: Session, stream_id: str) -> Stream:
    """The stream row for `stream_id`, created if missing. Raises LayoutError for an id the
    storage layout would not accept."""
    validate_stream_id(stream_id)
    stream = session.get(Stream, stream_id)
    if stream is None:
        stream = Stream(id=stream_id)
        session.add(stream)
        session.flush()
    return stream


def create_key(session: Session, stream_id: str, label: str = "") -> tuple[StreamKey, str]:
    """A new key for `stream_id` (the stream is created if needed): (row, the key itself)."""
    get_or_create_stream(session, stream_id)
    key = new_secret(KEY_PREFIX)
    row = StreamKey(stream_id=stream_id, key_hash=hash_secret(key), label=label[:200],
                    created_at=utcnow())
    session.add(row)
    session.flush()
    return row, key


def list_keys(session: Session, stream_id: str | None = None,
              include_revoked: bool = True) -> list[StreamKey]:
    query = by_id(StreamKey, stream_id=stream_id)
    if not include_revoked:
        query = query.where(StreamKey.revoked_at.is_(None))
    return list(session.scalars(query))


Revocable = TypeVar("Revocable", StreamKey, AdminToken)


def revoke(session: Session, model: type[Revocable], row_id: int,
           missing: type[LookupError], what: str) -> Revocable:
    """Mark row `row_id` of `model` revoked (idempotent: the first time is kept). Raises
    `missing` naming `what` when there is no such row."""
    row = session.get(model, row_id)
    if row is None:
        raise missing(f"{what} {row_id} does not exist")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def revoke_key(session: Session, key_id: int) -> StreamKey:
    """Revoke key `key_id` (idempotent: the first revocation time is kept).

    A publisher already live on the key is not cut off; it is refused at its next connect.
    Raises KeyNotFound.
    """
    return revoke(session, StreamKey, key_id, KeyNotFound, "stream key")


@dataclass(frozen=True)
class PublishDecision:
    allowed: bool
    reason: str  # "ok", "unknown key", "revoked key", "stream busy"
    key_id: int | None = None
    stream_id: str | None = None


def lookup_key(session: Session, key: str) -> StreamKey | None:
    if not key or len(key) > MAX_KEY_LEN:
        return None
    return session.scalars(select(StreamKey).where(StreamKey.key_hash == hash_secret(key))).first()


def check_publish(session: Session, key: str, addr: str,
                  now: datetime | None = None) -> PublishDecision:
    """May `key` publish now? On yes, marks the key publishing and its stream live.

    Refused: an unknown or revoked key, or a stream another key is publishing to right now
    (two publishers would interleave chunks of one stream).
    """
    row = lookup_key(session, key)
    if row is None:
        return PublishDecision(False, "unknown key")
    if row.revoked_at is not None:
        return PublishDecision(False, "revoked key", row.id, row.stream_id)
    busy = session.scalars(select(StreamKey.id).where(
        StreamKey.stream_id == row.stream_id, StreamKey.id != row.id,
        StreamKey.publishing_since.is_not(None))).first()
    if busy is not None:
        return PublishDecision(False, "stream busy", row.id, row.stream_id)
    now = now or utcnow()
    row.last_used_at = now
    row.last_addr = addr[:64]
    row.publishing_since = now
    stream = row.stream
    if stream.state != "live":
        stream.state = "live"
        stream.live_since = now
    return PublishDecision(True, "ok", row.id, row.stream_id)


def publish_done(session: Session, key: str, now: datetime | None = None) -> StreamKey | None:
    """The publisher on `key` went away: clear its publishing mark. The stream stays "live"
    (a reconnect within the live timeout continues it); the live job decides when it ends.
    Returns the key row, or None for an unknown key."""
    row = lookup_key(session, key)
    if row is None:
        return None
    row.publishing_since = None
    row.stream.last_publish_end = now or utcnow()
    return row


def clear_publishing(session: Session) -> int:
    """Forget every publishing mark (the RTMP front (re)starts with no publisher; nginx sends
    no on_publish_done for publishers live at its shutdown). Returns how many were set."""
    rows = list(session.scalars(select(StreamKey).where(StreamKey.publishing_since.is_not(None))))
    for row in rows:
        row.publishing_since = None
    return len(rows)


def mark_stream_ended(session: Session, stream_id: str, now: datetime | None = None) -> bool:
    """Record that a live stream ended for good (the live job calls this once no publisher
    came back within settings.live_end_timeout). Returns False for an unknown stream."""
    stream = session.get(Stream, stream_id)
    if stream is None:
        return False
    stream.state = "ended"
    stream.last_publish_end = stream.last_publish_end or now or utcnow()
    return True
