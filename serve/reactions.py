"""Reactions: a fixed set, counted in memory per second and flushed to SQL in batches.

    POST /api/streams/<id>/reactions  {"kind": "like"}  202 (counted; stored within ~1 s)
    GET  /api/streams/<id>/reactions  {"totals": {kind: n}} (what the SSE feed pushes)

A reaction never costs a database write of its own: `ReactionCounter.add` bumps an
in-memory (stream, kind, second) counter, and the process's hub (serve.events) flushes all
of them once a second as one batch of upserts. While the database is down the counts
wait in memory (bounded) and are flushed when it is back.

Reactions are the most frequent request of a live show, so a POST for a stream this
process already knows is answered by `ReactionFastPath`, a WSGI layer in front of Flask
(as serve/fastpath.py does for segments); anything unusual falls through to the view.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from serve import audience
from serve.db import get_session
from serve.errors import json_error
from serve.fast_post import KnownStreamPost, PostContext
from serve.jsonapi import BadRequest, api_errors, client_key, read_json, too_many
from serve.models import ReactionCount

bp = api_errors(Blueprint("reactions", __name__, url_prefix="/api/streams/<stream_id>"))

KINDS = ("like", "love", "laugh", "wow", "sad", "clap")
MAX_BODY = 256
MAX_PENDING_KEYS = 200_000  # (stream, kind, second) counters kept while the database is down

Key = tuple[str, str, int]


class ReactionCounter:
    """Thread-safe per-second counters of one process, taken out in batches."""

    def __init__(self) -> None:
        self._pending: Counter[Key] = Counter()
        self._lock = threading.Lock()
        self.dropped = 0  # counts lost because the database stayed down too long

    def add(self, stream_id: str, kind: str, now: float | None = None) -> None:
        second = int(now if now is not None else time.time())
        with self._lock:
            self._pending[(stream_id, kind, second)] += 1

    def take(self) -> Counter[Key]:
        with self._lock:
            batch, self._pending = self._pending, Counter()
        return batch

    def put_back(self, batch: Counter[Key]) -> None:
        """Return a batch that could not be flushed (kept up to MAX_PENDING_KEYS keys)."""
        with self._lock:
            self._pending.update(batch)
            while len(self._pending) > MAX_PENDING_KEYS:  # oldest seconds go first
                oldest = min(self._pending, key=lambda k: k[2])
                self.dropped += self._pending.pop(oldest)

    def pending(self, stream_id: str) -> Counter[str]:
        with self._lock:
            out: Counter[str] = Counter()
            for (sid, kind, _s), n in self._pending.items():
                if sid == stream_id:
                    out[kind] += n
            return out


def flush(engine: Engine, batch: Counter[Key]) -> None:
    """Add `batch` to reaction_counts in one transaction (upserts). Raises SQLAlchemyError."""
    if not batch:
        return
    rows = [{"stream_id": s, "kind": k, "second": sec, "count": n}
            for (s, k, sec), n in sorted(batch.items())]
    table = ReactionCount.__table__
    if engine.dialect.name == "sqlite":
        ins = sqlite_insert(table)
        stmt: Any = ins.on_conflict_do_update(
            index_elements=["stream_id", "kind", "second"],
            set_={"count": table.c.count + ins.excluded.count})
    else:
        mins = mysql_insert(table)
        stmt = mins.on_duplicate_key_update(count=table.c.count + mins.inserted.count)
    with engine.begin() as conn:
        conn.execute(stmt, rows)


def totals(session: Session, stream_id: str, since_second: int | None = None,
           before_second: int | None = None) -> Counter[str]:
    """Stored counts per kind of a stream, optionally within [since, before) seconds."""
    query = (select(ReactionCount.kind, func.sum(ReactionCount.count))
             .where(ReactionCount.stream_id == stream_id).group_by(ReactionCount.kind))
    if since_second is not None:
        query = query.where(ReactionCount.second >= since_second)
    if before_second is not None:
        query = query.where(ReactionCount.second < before_second)
    return Counter({kind: int(n or 0) for kind, n in session.execute(query)})


def totals_json(counts: Counter[str]) -> dict[str, int]:
    return {kind: int(counts.get(kind, 0)) for kind in KINDS}


@bp.post("/reactions")
def post(stream_id: str) -> Response | tuple[Response, int]:
    aud = audience.get()
    if stream_id not in aud.known:
        try:
            audience.ensure_stream(get_session(), stream_id)
        except audience.NoSuchStream:
            return json_error(404, "not_found", "no such stream")
    wait = aud.reaction_limiter.take(client_key())
    if wait:
        return too_many(wait, "reactions")
    kind = read_json(MAX_BODY).get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise BadRequest("kind", f"field 'kind' must be one of {', '.join(KINDS)}")
    from serve import events  # events imports this module

    hub = events.get()
    hub.counter.add(stream_id, kind)
    hub.start()
    return jsonify({"accepted": kind}), 202


@bp.get("/reactions")
def get_totals(stream_id: str) -> Response:
    session = get_session()
    try:
        audience.ensure_stream(session, stream_id)
    except audience.NoSuchStream:
        return json_error(404, "not_found", "no such stream")
    from serve import events

    counts = totals(session, stream_id) + events.get().counter.pending(stream_id)
    resp = jsonify({"totals": totals_json(counts)})
    resp.headers["Cache-Control"] = "no-store"
    return resp


# --- WSGI fast path ------------------------------------------------------------------------

class ReactionFastPath(KnownStreamPost):
    """A well-formed reaction to a known stream, without Flask's dispatch (about a third
    of the CPU per reaction)."""

    resource, max_body, endpoint = "reactions", MAX_BODY, "reactions.post"

    def answer(self, ctx: PostContext, body: Any) -> Iterable[bytes] | None:
        kind = body.get("kind") if isinstance(body, dict) else None
        if kind not in KINDS:
            return None  # the view answers 400 naming the field
        wait = ctx.audience.reaction_limiter.take(ctx.client)
        if wait:
            return self.too_many(ctx, wait)
        from serve import events

        hub = events.get(self.app)
        hub.counter.add(ctx.stream_id, kind)
        hub.start()
        return self.json(ctx, 202, {"accepted": kind})


@bp.record_once
def _install_fast_path(state: Any) -> None:
    if state.app.config.get("REACTIONS_FAST_PATH", True):
        state.app.wsgi_app = ReactionFastPath(state.app, state.app.wsgi_app)
