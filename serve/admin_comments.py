"""Admin API for comment moderation (token-guarded, see serve.admin_auth).

    GET    /api/admin/comments?stream_id=S[&status=hidden][&before=ID][&limit=N]
           newest first page in ascending id order, every status, with viewer ids
    PATCH  /api/admin/comments/<id> {"status": "visible"|"hidden"|"deleted"}
    DELETE /api/admin/comments/<id>          same as status "deleted" (the row is kept)
    GET    /api/admin/blocks[?viewer_id=V]
    POST   /api/admin/blocks {"viewer_id", "stream_id"? (absent/null: every stream),
                              "reason"?}    201
    DELETE /api/admin/blocks/<id>

Players already showing a comment take it down within ~5 s (the SSE `moderation` event);
a block applies on every worker within serve.audience.BLOCKS_TTL seconds.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from hdfs_layout import urls
from serve import audience, comments
from serve.admin_auth import require_admin
from serve.db import get_session
from serve.errors import json_error
from serve.jsonapi import (
    BadRequest,
    api_errors,
    id_rule,
    int_arg,
    iso,
    read_json,
    string_field,
)
from store import comments as comment_store
from store.listing import list_rows
from store.models import Stream, ViewerBlock

bp = api_errors(require_admin(Blueprint("admin_comments", __name__, url_prefix=urls.ADMIN_API)))

MAX_BODY = 4096


def block_json(row: ViewerBlock) -> dict[str, Any]:
    return {"id": row.id, "viewer_id": row.viewer_id, "stream_id": row.stream_id,
            "reason": row.reason, "created_at": iso(row.created_at)}


@bp.get("/comments")
def list_() -> Response:
    stream_id = request.args.get("stream_id")
    if not stream_id:
        raise BadRequest("stream_id", "query parameter 'stream_id' is required")
    status = request.args.get("status")
    if status is not None and status not in comment_store.STATUSES:
        raise BadRequest("status", f"status must be one of {', '.join(comment_store.STATUSES)}")
    before = int_arg("before", None, 1, 2**62)
    limit = int_arg("limit", comment_store.PAGE, 1, comment_store.MAX_PAGE) or comment_store.PAGE
    result = comment_store.page(get_session(), stream_id, before=before, limit=limit,
                           statuses=(status,) if status else comment_store.STATUSES)
    return jsonify({"comments": [comments.admin_json(r) for r in result.comments],
                    "before": result.before})


def _set(comment_id: int, status: str) -> Response:
    session = get_session()
    try:
        row = comment_store.set_status(session, comment_id, status)
    except comment_store.CommentNotFound as exc:
        return json_error(404, "not_found", str(exc))
    session.commit()
    return jsonify(comments.admin_json(row))


@bp.patch("/comments/" + id_rule("comment_id"))
def moderate(comment_id: int) -> Response:
    status = read_json(MAX_BODY).get("status")
    if status not in comment_store.STATUSES:
        raise BadRequest("status", f"field 'status' must be one of "
                                   f"{', '.join(comment_store.STATUSES)}")
    return _set(comment_id, status)


@bp.delete("/comments/" + id_rule("comment_id"))
def delete(comment_id: int) -> Response:
    return _set(comment_id, "deleted")


@bp.get("/blocks")
def list_blocks() -> Response:
    rows = list_rows(get_session(), ViewerBlock,
                     viewer_id=request.args.get("viewer_id") or None)
    return jsonify({"blocks": [block_json(r) for r in rows]})


@bp.post("/blocks")
def block() -> tuple[Response, int] | Response:
    data = read_json(MAX_BODY)
    viewer_id = string_field(data, "viewer_id", required=True, max_len=64)
    stream_id = string_field(data, "stream_id", required=False, max_len=64) or None
    reason = string_field(data, "reason", required=False, max_len=200)
    session = get_session()
    if stream_id is not None and session.get(Stream, stream_id) is None:
        return json_error(404, "not_found", "no such stream")
    row = comment_store.block_viewer(session, viewer_id, stream_id, reason)
    session.commit()
    audience.get().blocks_changed()
    return jsonify(block_json(row)), 201


@bp.delete("/blocks/" + id_rule("block_id"))
def unblock(block_id: int) -> Response:
    session = get_session()
    row = session.get(ViewerBlock, block_id)
    if row is None:
        return json_error(404, "not_found", f"block {block_id} does not exist")
    out = block_json(row)
    session.delete(row)
    session.commit()
    audience.get().blocks_changed()
    return jsonify(out)
