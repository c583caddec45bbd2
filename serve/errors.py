"""One error shape for every endpoint: JSON `{"error": {"code", "message"}}`, never cached."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

bp = Blueprint("errors", __name__)


def json_error(status: int, code: str, message: str) -> Response:
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    # An error (a segment not yet written, a dead stream) must not stick in a CDN or browser.
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _code(exc: HTTPException) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")


@bp.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    default = type(exc).description
    message = exc.description if exc.description != default else (exc.name or "error").lower()
    resp = json_error(exc.code or 500, _code(exc), message)
    for key, value in exc.get_headers():
        if key.lower() in ("allow", "retry-after", "content-range"):
            resp.headers[key] = value
    return resp
