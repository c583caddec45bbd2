"""Notices for players: GET /api/streams/<id>/notices -> {"now": unix, "notices": [...]}
holding the notices active now or later (values and queries: store/notices.py); the same
list is pushed over SSE (serve.events)."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify

from hdfs_layout import urls
from serve import audience
from serve.db import get_session
from serve.jsonapi import api_errors
from store.notices import current, notices_for

bp = api_errors(Blueprint("notices", __name__, url_prefix=urls.STREAM_API))


@bp.get("/notices")
def list_current(stream_id: str) -> Response:
    session = get_session()
    audience.ensure_stream(session, stream_id)
    now = time.time()
    items = current(notices_for(session, stream_id), now)
    resp = jsonify({"now": now, "notices": [n.to_json() for n in items]})
    resp.headers["Cache-Control"] = "no-store"
    return resp
