"""Admin API tokens (created by `sparkcast admin create-token`), stored hashed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.keys import hash_secret, new_secret, revoke
from store.models import AdminToken
from store.sqltypes import utcnow

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
    return revoke(session, AdminToken, token_id, TokenNotFound, "admin token")


def verify_token(session: Session, token: str) -> AdminToken | None:
    """The live (unrevoked) token row for `token`, else None."""
    if not token or len(token) > MAX_TOKEN_LEN:
        return None
    row = session.scalars(
        select(AdminToken).where(AdminToken.token_hash == hash_secret(token))).first()
    return row if row is not None and row.revoked_at is None else None
