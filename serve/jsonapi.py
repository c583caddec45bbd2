"""Request/response helpers shared by the JSON API blueprints (audience and admin).

    read_json(max_bytes)   the body as a JSON object: 415 unless sent as application/json
                           (no cross-site form posts), 413 over the limit (checked before
                           reading), 400 naming the position of a parse error or too deep
                           a nesting
    string_field(...)      a validated string member, 400 `invalid_<field>` otherwise
    BadRequest(field, msg) raise from a view; answered 400 {"error": {code, message, field}}
    api_errors(bp)         installs the 400 and database-down (503 + Retry-After) handlers
    client_key()           who a rate limit counts against (the peer address)

Errors keep the one shape of serve.errors, `{"error": {"code", "message"}}`; a 400 also
names the offending member in `error.field` so a form can point at it.
"""

from __future__ import annotations

import contextlib
import json
import math
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from serve import context
from serve.audience import NoSuchStream
from serve.client_addr import client_address
from serve.db import get_session
from serve.errors import json_error

MAX_ID = 2**53 - 1  # ids a JavaScript client can hold exactly; larger ones 404 in routing
DB_RETRY_AFTER = 5  # seconds; a restarted MariaDB answers again within a few seconds
DB_DOWN = "the database is unavailable; retry later"


class BadRequest(ValueError):
    """A client error in one named member of the request (or `body` for the whole body)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotJson(ValueError):
    """A body sent as anything but application/json: a cross-site form can post text/plain
    or a form encoding without a preflight, never application/json."""

    def __init__(self, content_type: str | None) -> None:
        super().__init__(f"send the body as application/json, not {content_type or 'no type'}")


class PayloadTooLarge(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes")


def bad_request(exc: BadRequest) -> Response:
    resp = jsonify({"error": {"code": f"invalid_{exc.field}", "message": str(exc),
                              "field": exc.field}})
    resp.status_code = 400
    resp.headers["Cache-Control"] = "no-store"
    return resp


def db_unavailable(_exc: Exception | None = None) -> Response:
    """503 with Retry-After: the database is down; video and everything else carry on."""
    with contextlib.suppress(SQLAlchemyError):
        get_session().rollback()  # a half-done transaction must not leak into the next use
    resp = json_error(503, "database_unavailable", DB_DOWN)
    resp.headers["Retry-After"] = str(DB_RETRY_AFTER)
    return resp


def too_many(wait: float, what: str) -> Response:
    resp = json_error(429, "rate_limited", f"too many {what}; retry later")
    resp.headers["Retry-After"] = retry_after(wait)
    return resp


def api_errors(bp: Blueprint) -> Blueprint:
    """Install the JSON API error handlers on `bp`; returns `bp`."""
    bp.register_error_handler(BadRequest, bad_request)
    bp.register_error_handler(SQLAlchemyError, db_unavailable)
    bp.register_error_handler(
        PayloadTooLarge, lambda exc: json_error(413, "payload_too_large", str(exc)))
    bp.register_error_handler(
        NotJson, lambda exc: json_error(415, "unsupported_media_type", str(exc)))
    # A view calls audience.ensure_stream and lets an unknown stream end the request.
    bp.register_error_handler(NoSuchStream, lambda _exc: json_error(404, "not_found",
                                                                    "no such stream"))
    return bp


def read_json(max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object.

    Raises NotJson (415) unless it is sent as application/json, PayloadTooLarge (413) when
    the declared or actual length exceeds `max_bytes` (a chunked body is read at most that
    far), BadRequest("body") for anything that is not a JSON object (nested too deeply too).
    """
    if not is_json_type(request.content_type):
        raise NotJson(request.content_type)
    if (request.content_length or 0) > max_bytes:
        raise PayloadTooLarge(max_bytes)
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(max_bytes)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest("body", f"body is not UTF-8 (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise BadRequest("body", f"body is not valid JSON: {exc.msg} at line {exc.lineno} "
                                 f"column {exc.colno}") from exc
    except RecursionError as exc:
        raise BadRequest("body", "body is nested too deeply") from exc
    if not isinstance(data, dict):
        raise BadRequest("body", "body must be a JSON object")
    return data


def is_json_type(content_type: str | None) -> bool:
    """Is a Content-Type header application/json (parameters such as charset allowed)? Pure."""
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


def string_field(data: dict[str, Any], name: str, *, required: bool, max_len: int,
                 default: str = "", strip: bool = False) -> str:
    """Member `name` of `data` as a string of at most `max_len` characters.

    `required` also refuses an empty (after `strip`) value. Raises BadRequest(name).
    """
    value = data.get(name)
    if value is None and not required:
        return default
    if not isinstance(value, str):
        raise BadRequest(name, f"field {name!r} must be a string")
    if strip:
        value = value.strip()
    if required and not value:
        raise BadRequest(name, f"field {name!r} must not be empty")
    if len(value) > max_len:
        raise BadRequest(name, f"field {name!r} is longer than {max_len} characters")
    if "\x00" in value:  # MariaDB and many tools mishandle NUL; no human text holds one
        raise BadRequest(name, f"field {name!r} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800") cannot be stored anywhere
        raise BadRequest(name, f"field {name!r} is not valid Unicode text") from None
    return value


def number_field(data: dict[str, Any], name: str, *, required: bool, minimum: float,
                 maximum: float) -> float | None:
    """Member `name` as a finite number in [minimum, maximum]. Raises BadRequest(name)."""
    value = data.get(name)
    if value is None:
        if required:
            raise BadRequest(name, f"field {name!r} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(name, f"field {name!r} must be a number")
    if not minimum <= value <= maximum:
        raise BadRequest(name, f"field {name!r} must be between {minimum:g} and {maximum:g}")
    return float(value)


def int_arg(name: str, default: int | None, minimum: int, maximum: int) -> int | None:
    """Query parameter `name` as an int in [minimum, maximum]. Raises BadRequest(name)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(name, f"query parameter {name!r} must be an integer") from None
    if not minimum <= value <= maximum:
        raise BadRequest(name, f"query parameter {name!r} must be between {minimum} and "
                               f"{maximum}")
    return value


def id_rule(name: str) -> str:
    """A URL rule part for an integer id (bounded, so no huge id reaches a SQL driver)."""
    return f"<int(max={MAX_ID}):{name}>"


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def unix(value: datetime) -> float:
    return value.timestamp()


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def client_key() -> str:
    """The address a rate limit counts against: the peer, or what a trusted proxy says
    (serve/client_addr.py)."""
    return client_address(request.remote_addr, request.headers.get("X-Forwarded-For"),
                          context.get().trusted_proxies)
