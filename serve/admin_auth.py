"""The guard every admin blueprint installs (tokens themselves: store/tokens.py):

    bp = Blueprint("admin_x", __name__, url_prefix="/api/admin/x")
    require_admin(bp)

The guard runs as the blueprint's first before_request, so a request without a valid
`Authorization: Bearer <token>` is answered 401/403 before any view reads its body.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, request
from sqlalchemy.exc import SQLAlchemyError

from serve.db import get_session
from serve.errors import json_error
from store.tokens import verify_token


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None. Pure."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def _check_admin() -> Response | None:
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        resp = json_error(401, "unauthorized", "admin token required: "
                          "Authorization: Bearer <token> (sparkcast admin create-token)")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="sparkcast-admin"'
        return resp
    try:
        row = verify_token(get_session(), token)
    except SQLAlchemyError:
        resp = json_error(503, "database_unavailable", "cannot check the admin token now")
        resp.headers["Retry-After"] = "5"
        return resp
    if row is None:
        return json_error(403, "forbidden", "invalid or revoked admin token")
    g.admin_token_id = row.id
    return None


def require_admin(bp: Blueprint) -> Blueprint:
    """Guard every route of `bp` with the admin token check; returns `bp`."""
    bp.before_request_funcs.setdefault(None, []).insert(0, _check_admin)
    return bp
