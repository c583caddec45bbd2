"""Per-process state the audience blueprints share: rate limiters, known streams, blocks.

Kept in `app.extensions` and built on first use (after gunicorn's fork). Nothing here is
needed for video; everything here tolerates a database that is down.

    get()                       the app's Audience
    ensure_stream(session, id)  the stream row exists (created for a stream present in
                                storage, e.g. a VOD from `sparkcast submit`); raises NoSuchStream
"""

from __future__ import annotations

import threading
import time

from flask import Flask
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hdfs_layout import LayoutError, StreamLayout
from serve import context
from serve.comment_writer import CommentWriter
from serve.extensions import app_singleton
from serve.ratelimit import RateLimiter
from store.db import ENGINE_KEY
from store.models import Stream, ViewerBlock

_KEY = "sparkcast.audience"
BLOCKS_TTL = 5.0  # seconds a worker may miss a block made through another worker
MAX_KNOWN = 10_000


class NoSuchStream(LookupError):
    """Neither the database nor storage knows the stream."""


class Audience:
    def __init__(self, app: Flask) -> None:
        s = app.config["SPARKCAST"]
        self.comment_limiter = RateLimiter(s.comments_per_minute, 60.0,
                                           burst=max(1, min(5, int(s.comments_per_minute))))
        self.reaction_limiter = RateLimiter(s.reactions_per_second, 1.0,
                                            burst=max(1, int(s.reactions_per_second)))
        self.beacon_limiter = RateLimiter(s.ad_beacons_per_minute, 60.0,
                                          burst=max(1, int(s.ad_beacons_per_minute)))
        # Streams whose row exists: checked once per process, not per comment.
        self.known: set[str] = set()
        self.engine: Engine = app.extensions[ENGINE_KEY]
        self.comment_writer = CommentWriter(self.engine)
        self._blocks: tuple[float, frozenset[tuple[str, str | None]]] = (-1e9, frozenset())
        self._lock = threading.Lock()

    def forget_stream(self, stream_id: str) -> None:
        self.known.discard(stream_id)

    def is_blocked(self, viewer_id: str, stream_id: str) -> bool:
        """Whether `viewer_id` may not comment on `stream_id` (blocks cached BLOCKS_TTL s).
        Raises SQLAlchemyError when the cache is stale and the database is down."""
        at, blocks = self._blocks
        if time.monotonic() - at > BLOCKS_TTL:
            with self.engine.connect() as conn:
                rows = conn.execute(select(ViewerBlock.viewer_id, ViewerBlock.stream_id))
                blocks = frozenset((v, s) for v, s in rows)
            self._blocks = (time.monotonic(), blocks)
        return (viewer_id, stream_id) in blocks or (viewer_id, None) in blocks

    def blocks_changed(self) -> None:
        self._blocks = (-1e9, frozenset())


def get(app: Flask | None = None) -> Audience:
    return app_singleton(_KEY, Audience, app)


def ensure_stream(session: Session, stream_id: str) -> None:
    """Make sure `stream_id` has a row. A stream present in storage (a VOD transcoded by
    `sparkcast submit` has no key, so no row yet) gets one.

    Raises NoSuchStream, or SQLAlchemyError when the database is down.
    """
    aud = get()
    if stream_id in aud.known:
        return
    try:
        layout = StreamLayout(stream_id)
    except LayoutError:
        raise NoSuchStream(stream_id) from None
    if session.get(Stream, stream_id) is None:
        storage = context.get().storage
        if not (storage.exists(layout.manifest) or storage.exists(layout.master_playlist)):
            raise NoSuchStream(stream_id)
        session.add(Stream(id=stream_id))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()  # another request created it first
    if len(aud.known) < MAX_KNOWN:
        aud.known.add(stream_id)
