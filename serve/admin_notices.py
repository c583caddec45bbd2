"""Admin API for notices (token-guarded, see serve.admin_auth; values in serve.notices).

    GET    /api/admin/notices[?stream_id=S]   every notice, withdrawn ones too
    POST   /api/admin/notices {"stream_id", "kind": "disclaimer"|"flash", "text",
                               "start"? (Unix s, default now), "duration"? (s)}   201
    PATCH  /api/admin/notices/<id> {"text"?, "start"?, "duration"?}
    DELETE /api/admin/notices/<id>            withdraw (kept, no longer shown or listed
                                              in manifests)

Players get a change within about a second over SSE (serve.events).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from hdfs_layout import urls
from serve import audience
from serve.admin_auth import require_admin
from serve.db import get_session
from serve.errors import json_error
from serve.jsonapi import BadRequest, api_errors, id_rule, number_field, read_json, string_field
from store import notices

bp = api_errors(require_admin(Blueprint("admin_notices", __name__,
                                        url_prefix=urls.ADMIN_API + "/notices")))

MAX_BODY = 8192
MIN_START, MAX_START = 0.0, 32503680000.0  # 1970 .. 3000


def _fields(data: dict[str, Any], partial: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not partial or "text" in data:
        out["text"] = string_field(data, "text", required=True, max_len=notices.MAX_TEXT)
    for name, lo, hi in (("start", MIN_START, MAX_START),
                         ("duration", 0.1, notices.MAX_DURATION)):
        if name in data:
            out[name] = number_field(data, name, required=False, minimum=lo, maximum=hi)
    if partial and "start" in out and out["start"] is None:
        raise BadRequest("start", "field 'start' must be a number")
    return out


@bp.get("")
def list_() -> Response:
    rows = notices.list_rows(get_session(), request.args.get("stream_id"))
    return jsonify({"notices": [notices.admin_json(r) for r in rows]})


@bp.post("")
def create() -> tuple[Response, int] | Response:
    data = read_json(MAX_BODY)
    stream_id = string_field(data, "stream_id", required=True, max_len=64)
    kind = data.get("kind")
    if kind not in notices.KINDS:
        raise BadRequest("kind", f"field 'kind' must be one of {', '.join(notices.KINDS)}")
    fields = _fields(data, partial=False)
    session = get_session()
    audience.ensure_stream(session, stream_id)
    row = notices.create(session, stream_id, kind, fields["text"], fields.get("start"),
                         fields.get("duration"))
    session.commit()
    return jsonify(notices.admin_json(row)), 201


@bp.patch("/" + id_rule("notice_id"))
def edit(notice_id: int) -> Response:
    changes = _fields(read_json(MAX_BODY), partial=True)
    session = get_session()
    try:
        row = notices.update(session, notice_id, changes)
    except notices.NoticeNotFound as exc:
        return json_error(404, "not_found", str(exc))
    session.commit()
    return jsonify(notices.admin_json(row))


@bp.delete("/" + id_rule("notice_id"))
def withdraw(notice_id: int) -> Response:
    session = get_session()
    try:
        row = notices.withdraw(session, notice_id)
    except notices.NoticeNotFound as exc:
        return json_error(404, "not_found", str(exc))
    session.commit()
    return jsonify(notices.admin_json(row))
