"""Live audience events over Server-Sent Events, and the per-process hub behind them.

    GET /api/streams/<id>/events      text/event-stream
        event: hello       {"now", "kinds"}                      once, on connect
        event: reactions   {"totals": {kind: n}, "delta": {kind: n}, "now"}   on change
        event: notices     {"now", "notices": [...]}             on connect and on change
        event: moderation  {"removed": [comment ids]}            hidden/deleted comments
    503 + Retry-After when this worker already holds `sse_clients_per_worker` feeds, or
    this client half of them.

One hub thread per serve process ticks once a second: it flushes the reaction counters
(serve.reactions) as one batch, then, for each stream somebody is watching here, reads
the totals (all workers' flushed counts), the notices and the removed comments with one
session, and wakes the feeds whose data changed. So the database sees a few queries per
watched stream per second per worker, whatever the number of viewers.

Why feeds are capped and short: under gunicorn's gthread worker every open SSE response
holds a worker thread, and video must keep its threads. A feed ends after FEED_SECONDS
(EventSource reconnects by itself, which also spreads feeds over workers); a player
refused with 503 polls GET .../reactions and .../notices instead (player/src/audience.js).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hdfs_layout import urls
from serve import audience
from serve.db import get_engine, get_session
from serve.errors import json_error
from serve.extensions import app_singleton
from serve.jsonapi import api_errors, client_key
from store import comments as comment_store
from store import notices, reactions
from store.models import Comment

log = logging.getLogger("sparkcast.events")

bp = api_errors(Blueprint("events", __name__, url_prefix=urls.STREAM_API))

TICK = 1.0
FEED_SECONDS = 60.0
PING_SECONDS = 15.0
RECENT_SECONDS = 120  # reaction seconds re-read every tick; older ones every OLD_REFRESH
OLD_REFRESH = 60.0
MODERATION_EVERY = 5  # ticks
_KEY = "sparkcast.events"


class Feed:
    """What one watched stream's viewers on this process get; guarded by `cond`."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.cond = threading.Condition()
        self.subscribers = 0
        self.seq = 0
        self.parts: dict[str, tuple[int, dict[str, Any]]] = {}  # event -> (seq, payload)
        self.db_totals: Counter[str] = Counter()
        self.old_totals: Counter[str] = Counter()
        self.old_cut: int | None = None
        self.old_at = 0.0
        self.sent_totals: Counter[str] | None = None
        self.ticks = 0

    def publish(self, event: str, payload: dict[str, Any]) -> None:
        with self.cond:
            self.seq += 1
            self.parts[event] = (self.seq, payload)
            self.cond.notify_all()

    def payload(self, event: str) -> dict[str, Any] | None:
        part = self.parts.get(event)
        return part[1] if part else None


class Hub:
    def __init__(self, engine: Engine, max_clients: int,
                 feed_seconds: float = FEED_SECONDS) -> None:
        self.engine = engine
        self.max_clients = max_clients
        self.feed_seconds = feed_seconds
        self.counter = reactions.ReactionCounter()
        self.feeds: dict[str, Feed] = {}
        self.clients = 0
        # Feeds per client address: one client holds at most half the slots (at least
        # one), so a script opening feeds cannot shut every viewer out of live events.
        self.by_client: Counter[str] = Counter()
        self.per_client = max(1, max_clients // 2)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.db_ok = True

    # --- lifecycle ---
    def start(self) -> Hub:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="audience-hub",
                                                    daemon=True)
                    self._thread.start()
                    atexit.register(self.flush)  # a stopping worker keeps its last second
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while True:
            next_at += TICK
            time.sleep(max(0.0, next_at - time.monotonic()))
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the hub must outlive any one bad tick
                log.exception("audience hub tick failed")

    # --- feeds ---
    def subscribe(self, stream_id: str, client: str = "") -> Feed | None:
        with self._lock:
            if self.clients >= self.max_clients or self.by_client[client] >= self.per_client:
                return None
            self.clients += 1
            self.by_client[client] += 1
            feed = self.feeds.setdefault(stream_id, Feed(stream_id))
            feed.subscribers += 1
        self.start()
        return feed

    def unsubscribe(self, feed: Feed, client: str = "") -> None:
        """Called exactly once per successful subscribe, with the same client."""
        with self._lock:
            self.clients -= 1
            self.by_client[client] -= 1
            if self.by_client[client] <= 0:
                del self.by_client[client]
            feed.subscribers -= 1
            if feed.subscribers <= 0:
                self.feeds.pop(feed.stream_id, None)

    # --- the tick ---
    def flush(self) -> bool:
        batch = self.counter.take()
        try:
            reactions.flush(self.engine, batch)
        except SQLAlchemyError as exc:
            self.counter.put_back(batch)
            if self.db_ok:
                log.warning("reactions kept in memory, database unavailable: %s",
                            type(exc).__name__)
            self.db_ok = False
            return False
        self.db_ok = True
        return True

    def tick(self) -> None:
        db_ok = self.flush()
        with self._lock:
            feeds = [f for f in self.feeds.values() if f.subscribers > 0]
        if not feeds:
            return
        with Session(self.engine) as session:
            for feed in feeds:
                self.update(session, feed, db_ok)

    def update(self, session: Session, feed: Feed, db_ok: bool = True) -> None:
        """Refresh one feed's reactions, notices and removals; publish what changed."""
        now = time.time()
        feed.ticks += 1
        if db_ok:
            try:
                self._read(session, feed, now)
            except SQLAlchemyError:
                session.rollback()
        totals = feed.db_totals + self.counter.pending(feed.stream_id)
        if feed.sent_totals is None or totals != feed.sent_totals:
            # (an empty Counter is falsy: compare with None, not `or`)
            delta = totals - feed.sent_totals if feed.sent_totals is not None else Counter()
            feed.sent_totals = totals
            feed.publish("reactions", {"totals": reactions.totals_json(totals),
                                       "delta": dict(delta), "now": now})

    def _read(self, session: Session, feed: Feed, now: float) -> None:
        sid = feed.stream_id
        second = int(now)
        if feed.old_cut is None or time.monotonic() - feed.old_at > OLD_REFRESH:
            cut = second - RECENT_SECONDS
            feed.old_totals = reactions.totals(session, sid, before_second=cut)
            feed.old_cut, feed.old_at = cut, time.monotonic()
        feed.db_totals = feed.old_totals + reactions.totals(session, sid,
                                                            since_second=feed.old_cut)
        items = [n.to_json() for n in notices.current(notices.notices_for(session, sid), now)]
        old = feed.payload("notices")
        if old is None or old["notices"] != items:
            feed.publish("notices", {"now": now, "notices": items})
        if feed.ticks % MODERATION_EVERY == 1:
            newest = session.scalar(select(func.max(Comment.id))
                                    .where(Comment.stream_id == sid)) or 0
            removed = comment_store.removed_ids(session, sid, newest)
            old = feed.payload("moderation")
            if (old is None and removed) or (old is not None and old["removed"] != removed):
                feed.publish("moderation", {"removed": removed})
        session.rollback()  # end the read transaction; the next tick must see new rows


def _make_hub(app: Flask) -> Hub:
    with app.app_context():
        engine = get_engine()
    return Hub(engine, app.config["SPARKCAST"].sse_clients_per_worker,
               app.config.get("SSE_FEED_SECONDS", FEED_SECONDS))


def get(app: Flask | None = None) -> Hub:
    return app_singleton(_KEY, _make_hub, app)


def _sse(event: str, payload: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _feed_stream(feed: Feed, seconds: float) -> Iterator[str]:
    """The events of one connection (its subscription ends in the response's close).
    A client that has gone is found by the next write, which fails (a ping at most
    PING_SECONDS after the last event)."""
    yield "retry: 2000\n\n"
    yield _sse("hello", {"now": time.time(), "kinds": list(reactions.KINDS)})
    seen: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    seq = -1
    last_write = time.monotonic()
    while time.monotonic() < deadline:
        with feed.cond:
            if feed.seq == seq:
                feed.cond.wait(max(0.0, min(PING_SECONDS, deadline - time.monotonic())))
            seq = feed.seq
            parts = dict(feed.parts)
        sent = False
        for event, (part_seq, payload) in parts.items():
            if seen.get(event, 0) < part_seq:
                if event == "reactions" and event not in seen:
                    payload = {**payload, "delta": {}}  # a joiner gets totals, not old floats
                seen[event] = part_seq
                sent = True
                last_write = time.monotonic()
                yield _sse(event, payload)
        if not sent and time.monotonic() - last_write >= PING_SECONDS:
            last_write = time.monotonic()
            yield ": ping\n\n"  # finds a gone client (the write fails) and keeps proxies


@bp.get("/events")
def stream(stream_id: str) -> Response:
    audience.ensure_stream(get_session(), stream_id)
    hub = get()
    client = client_key()
    feed = hub.subscribe(stream_id, client)
    if feed is None:
        resp = json_error(503, "feeds_full", "live events are busy here; poll "
                          "/reactions and /notices instead")
        resp.headers["Retry-After"] = "30"
        return resp
    if feed.subscribers == 1 and not feed.parts:
        # The first viewer must not wait a tick for the disclaimer.
        with contextlib.suppress(SQLAlchemyError):
            hub.update(get_session(), feed, hub.db_ok)
    resp = Response(_feed_stream(feed, hub.feed_seconds),
                    mimetype="text/event-stream")
    # The WSGI server closes every response, even one whose generator never started (a
    # client gone at once), where a `finally` in the generator would never run.
    resp.call_on_close(lambda: hub.unsubscribe(feed, client))
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Accel-Buffering"] = "no"  # a proxy must pass events on at once
    return resp
