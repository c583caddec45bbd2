"""Admin API for streams (token-guarded, see serve.admin_auth).

    GET   /api/admin/streams              {"streams": [...]}
    POST  /api/admin/streams {"id", "title"?}   201; 409 when the id exists
    GET   /api/admin/streams/<id>         one stream, with its comment and notice counts
    PATCH /api/admin/streams/<id> {"title"}
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import func, select

from hdfs_layout import LayoutError, urls, validate_stream_id
from serve.admin_auth import require_admin
from serve.db import get_session
from serve.errors import json_error
from serve.jsonapi import BadRequest, api_errors, iso, read_json, string_field
from store.models import Comment, Notice, Stream

bp = api_errors(require_admin(Blueprint("admin_streams", __name__,
                                        url_prefix=urls.ADMIN_API + "/streams")))

MAX_BODY = 4096
MAX_TITLE = 200


def stream_json(row: Stream) -> dict[str, Any]:
    return {"id": row.id, "title": row.title, "state": row.state,
            "created_at": iso(row.created_at), "live_since": iso(row.live_since),
            "last_publish_end": iso(row.last_publish_end)}


@bp.get("")
def list_() -> Response:
    rows = get_session().scalars(select(Stream).order_by(Stream.created_at, Stream.id))
    return jsonify({"streams": [stream_json(r) for r in rows]})


@bp.post("")
def create() -> tuple[Response, int] | Response:
    data = read_json(MAX_BODY)
    stream_id = string_field(data, "id", required=True, max_len=64)
    try:
        validate_stream_id(stream_id)
    except LayoutError as exc:
        raise BadRequest("id", str(exc)) from None
    title = string_field(data, "title", required=False, max_len=MAX_TITLE)
    session = get_session()
    if session.get(Stream, stream_id) is not None:
        return json_error(409, "conflict", f"stream {stream_id!r} already exists")
    row = Stream(id=stream_id, title=title)
    session.add(row)
    session.commit()
    return jsonify(stream_json(row)), 201


@bp.get("/<stream_id>")
def show(stream_id: str) -> Response:
    session = get_session()
    row = session.get(Stream, stream_id)
    if row is None:
        return json_error(404, "not_found", "no such stream")
    n_comments = session.scalar(select(func.count()).select_from(Comment)
                                .where(Comment.stream_id == stream_id))
    n_notices = session.scalar(select(func.count()).select_from(Notice)
                               .where(Notice.stream_id == stream_id))
    return jsonify({**stream_json(row), "comments": n_comments, "notices": n_notices})


@bp.patch("/<stream_id>")
def edit(stream_id: str) -> Response:
    data = read_json(MAX_BODY)
    title = string_field(data, "title", required=True, max_len=MAX_TITLE)
    session = get_session()
    row = session.get(Stream, stream_id)
    if row is None:
        return json_error(404, "not_found", "no such stream")
    row.title = title
    session.commit()
    return jsonify(stream_json(row))
