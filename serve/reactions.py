"""Reactions: a fixed set, counted in memory per second and flushed to SQL in batches.

    POST /api/streams/<id>/reactions  {"kind": "like"}  202 (counted; stored within ~1 s)
    GET  /api/streams/<id>/reactions  {"totals": {kind: n}} (what the SSE feed pushes)

A reaction never costs a database write of its own: `ReactionCounter.add` bumps an
in-memory (stream, kind, second) counter, and the process's hub (serve.events) flushes all
of them once a second as one batch of upserts. While the database is down the counts
wait in memory (bounded) and are flushed when it is back.

Reactions are the most frequent request of a live show, so a POST for a stream this
process already knows is answered by `ReactionFastPath`, a WSGI layer in front of Flask
(as serve/comments.py does for comments); anything unusual falls through to the view.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Response, jsonify

from hdfs_layout import urls
from serve import audience, events
from serve.db import get_session
from serve.fast_post import KnownStreamPost, PostContext
from serve.jsonapi import BadRequest, api_errors, client_key, read_json, too_many
from store.reactions import KINDS, totals, totals_json

bp = api_errors(Blueprint("reactions", __name__, url_prefix=urls.STREAM_API))

MAX_BODY = 256


@bp.post("/reactions")
def post(stream_id: str) -> Response | tuple[Response, int]:
    aud = audience.get()
    if stream_id not in aud.known:
        audience.ensure_stream(get_session(), stream_id)
    wait = aud.reaction_limiter.take(client_key())
    if wait:
        return too_many(wait, "reactions")
    kind = read_json(MAX_BODY).get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise BadRequest("kind", f"field 'kind' must be one of {', '.join(KINDS)}")

    hub = events.get()
    hub.counter.add(stream_id, kind)
    hub.start()
    return jsonify({"accepted": kind}), 202


@bp.get("/reactions")
def get_totals(stream_id: str) -> Response:
    session = get_session()
    audience.ensure_stream(session, stream_id)

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

        hub = events.get(self.app)
        hub.counter.add(ctx.stream_id, kind)
        hub.start()
        return self.json(ctx, 202, {"accepted": kind})


@bp.record_once
def _install_fast_path(state: Any) -> None:
    if state.app.config.get("REACTIONS_FAST_PATH", True):
        state.app.wsgi_app = ReactionFastPath(state.app, state.app.wsgi_app)
