"""Admin API for stream keys (token-guarded, see serve.admin_auth).

    GET    /api/admin/keys[?stream_id=ID]   list keys (never the keys themselves)
    POST   /api/admin/keys  {"stream_id", "label"?}   201, the key shown once
    DELETE /api/admin/keys/<key_id>          revoke (idempotent)
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hdfs_layout import LayoutError, urls
from serve import context
from serve.admin_auth import require_admin
from serve.db import get_session
from serve.errors import json_error
from serve.jsonapi import id_rule
from store import key_cache
from store.keys import KeyNotFound, create_key, list_keys, revoke_key
from store.models import StreamKey

log = logging.getLogger("sparkcast.rtmp")
bp = require_admin(Blueprint("admin_keys", __name__, url_prefix=urls.ADMIN_API + "/keys"))

MAX_BODY = 4096


def key_json(row: StreamKey) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {"id": row.id, "stream_id": row.stream_id, "label": row.label,
            "created_at": iso(row.created_at), "revoked_at": iso(row.revoked_at),
            "last_used_at": iso(row.last_used_at), "publishing": row.publishing_since is not None}


class BadRequest(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("body", "expected a JSON object")
    return data


def _string_field(data: dict[str, Any], name: str, required: bool, limit: int) -> str:
    value = data.get(name, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise BadRequest(name, f"field {name!r} must be a{' non-empty' if required else ''} "
                               "string")
    if len(value) > limit:
        raise BadRequest(name, f"field {name!r} is longer than {limit} characters")
    return value


@bp.errorhandler(BadRequest)
def _bad_request(exc: BadRequest) -> Response:
    return json_error(400, f"invalid_{exc.field}", str(exc))


@bp.errorhandler(SQLAlchemyError)
def _db_down(_exc: SQLAlchemyError) -> Response:
    resp = json_error(503, "database_unavailable", "the database is unavailable; retry later")
    resp.headers["Retry-After"] = "5"
    return resp


@bp.get("")
def list_() -> Response:
    stream_id = request.args.get("stream_id")
    return jsonify({"keys": [key_json(r) for r in list_keys(get_session(), stream_id)]})


@bp.post("")
def create() -> Response | tuple[Response, int]:
    if (request.content_length or 0) > MAX_BODY:
        return json_error(413, "payload_too_large", f"body over {MAX_BODY} bytes")
    data = _json_body()
    stream_id = _string_field(data, "stream_id", True, 64)
    label = _string_field(data, "label", False, 200)
    session = get_session()
    try:
        row, key = create_key(session, stream_id, label)
    except LayoutError as exc:
        raise BadRequest("stream_id", str(exc)) from exc
    session.commit()
    _save_known_keys(session)
    return jsonify({**key_json(row), "key": key}), 201


@bp.delete("/" + id_rule("key_id"))  # bounded: a huge id must not reach the driver
def revoke(key_id: int) -> Response:
    session = get_session()
    try:
        row = revoke_key(session, key_id)
    except KeyNotFound as exc:
        return json_error(404, "not_found", str(exc))
    session.commit()
    _save_known_keys(session)
    return jsonify(key_json(row))


def _save_known_keys(session: Session) -> None:
    """A new key publishes, a revoked one does not, through a later database outage."""
    path = context.get().settings.publish_keys_file
    try:
        key_cache.refresh(session, path)
    except OSError as exc:
        log.warning("known keys not saved to %s: %s", path, exc)
