"""Admin tokens (created by `sparkcast admin create-token`, stored hashed) and the guard
every admin blueprint installs:

    bp = Blueprint("admin_x", __name__, url_prefix="/api/admin/x")
    require_admin(bp)

The guard runs as the blueprint's first before_request, so a request without a valid
`Authorization: Bearer <token>` is answered 401/403 before any view reads its body.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from serve.db import get_session
from serve.errors import json_error
from serve.keys import hash_secret, new_secret
from serve.models import AdminToken
from serve.sqltypes import utcnow

TOKEN_PREFIX = "sca_"
MAX_TOKEN_LEN = 128


class TokenNotFound(LookupError):
    """No admin token with that id."""


def create_token(session: Session, label: str = "") -> tuple[AdminToken, str]:
    """A new admin token: (row, the token itself, shown once)."""
    token = new_secret(TOKEN_PREFIX)
    row = AdminToken(token_hash=hash_secret(token), label=label[:200], created_at=utcnow())
    session.add(row)
    session.flush()
    return row, token


def list_tokens(session: Session) -> list[AdminToken]:
    return list(session.scalars(select(AdminToken).order_by(AdminToken.id)))


def revoke_token(session: Session, token_id: int) -> AdminToken:
    """Revoke admin token `token_id` (idempotent). Raises TokenNotFound."""
    row = session.get(AdminToken, token_id)
    if row is None:
        raise TokenNotFound(f"admin token {token_id} does not exist")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def verify_token(session: Session, token: str) -> AdminToken | None:
    """The live (unrevoked) token row for `token`, else None."""
    if not token or len(token) > MAX_TOKEN_LEN:
        return None
    row = session.scalars(
        select(AdminToken).where(AdminToken.token_hash == hash_secret(token))).first()
    return row if row is not None and row.revoked_at is None else None


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
