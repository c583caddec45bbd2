"""The ad breaks that apply to a stream's manifests, read from the database.

Manifests are polled (live: every ~2 s per viewer), so the answer is kept for a second
per stream; and the video must not depend on the database. Once a stream has an answer,
a manifest request never waits for the database: a stale answer is returned at once and
refreshed by a background thread (a hung database cannot hold up manifests). When the
database is down the last answer stands (or none), and the manifests go out unspliced
rather than not at all.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from store.models import AdBreak, AdCreative

log = logging.getLogger(__name__)

TTL_SECONDS = 1.0
RETRY_DOWN_SECONDS = 5.0  # a database that is down is asked again no more often than this


@dataclass(frozen=True)
class ScheduledBreak:
    break_id: int
    position: str  # preroll | midroll | live
    at: float  # preroll/midroll: content seconds; live: Unix time
    ad_stream_id: str  # the creative's transcoded stream


def scheduled_breaks(session: Session, stream_id: str) -> tuple[ScheduledBreak, ...]:
    """Breaks of `stream_id` not cancelled whose creative is transcoded ("ready")."""
    rows = session.execute(
        select(AdBreak, AdCreative.media_stream_id)
        .join(AdCreative, AdCreative.id == AdBreak.creative_id)
        .where(AdBreak.stream_id == stream_id, AdBreak.cancelled_at.is_(None),
               AdCreative.state == "ready", AdCreative.media_stream_id.is_not(None))
        .order_by(AdBreak.id))
    out = []
    for brk, media in rows:
        at = (brk.starts_at.timestamp() if brk.starts_at is not None else 0.0) \
            if brk.position == "live" else (brk.offset_s or 0.0)
        out.append(ScheduledBreak(brk.id, brk.position, at, media))
    return tuple(out)


class AdSchedule:
    """scheduled_breaks per stream, remembered for TTL_SECONDS; thread-safe."""

    def __init__(self, engine: Engine | None, ttl: float = TTL_SECONDS) -> None:
        self.engine, self.ttl = engine, ttl
        self._known: dict[str, tuple[float, tuple[ScheduledBreak, ...]]] = {}
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._refreshing: set[str] = set()

    def breaks(self, stream_id: str) -> tuple[ScheduledBreak, ...]:
        if self.engine is None:
            return ()
        now = time.monotonic()
        with self._lock:
            hit = self._known.get(stream_id)
            stale = hit is None or now - hit[0] >= self.ttl
            refresh = stale and hit is not None and stream_id not in self._refreshing
            if refresh:
                self._refreshing.add(stream_id)
        if hit is None:
            return self._fetch(stream_id)  # a stream's first request: wait for the answer
        if refresh:
            threading.Thread(target=self._fetch, args=(stream_id,), daemon=True,
                             name=f"ad-schedule-{stream_id}").start()
        return hit[1]

    def _fetch(self, stream_id: str) -> tuple[ScheduledBreak, ...]:
        started = time.monotonic()
        try:
            with Session(self.engine) as session:
                value = scheduled_breaks(session, stream_id)
        except SQLAlchemyError as exc:
            if self._down_since is None:
                log.warning("ad breaks unavailable (%s); manifests keep the last known ones",
                            type(exc).__name__)
            self._down_since = started
            with self._lock:
                hit = self._known.get(stream_id)
            value = hit[1] if hit is not None else ()
            started += RETRY_DOWN_SECONDS - self.ttl
        else:
            self._down_since = None
        with self._lock:
            if len(self._known) > 4096:
                self._known.clear()
            self._known[stream_id] = (started, value)
            self._refreshing.discard(stream_id)
        return value
