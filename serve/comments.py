"""Comments: plain HTTP, stored in SQL, never lost once acknowledged.

    POST /api/streams/<id>/comments  {"author", "text", "client_ref"?}
         201 the comment (id and time assigned here) once it is committed; 200 with the
         same comment when `client_ref` repeats a comment already stored (a retry);
         403 viewer blocked, 404 unknown stream, 413, 429 + Retry-After,
         503 + Retry-After when the database is down (nothing was stored: retry)
    GET  /api/streams/<id>/comments?since=ID | ?before=ID  [&limit=N]
         visible comments in ascending id order: `since` for polling (newer than ID),
         `before` to page back; without either, the newest page

Text is stored exactly as written; every renderer must escape it (the player uses
textContent). A viewer is identified by the `sparkcast_viewer` cookie this module sets
(random, HttpOnly): moderation blocks that id, and the public API never shows it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serve import audience
from serve.db import get_session
from serve.errors import json_error
from serve.jsonapi import (
    BadRequest,
    api_errors,
    client_key,
    int_arg,
    iso,
    read_json,
    string_field,
    too_many,
)
from serve.models import Comment, ViewerBlock
from serve.sqltypes import utcnow

bp = api_errors(Blueprint("comments", __name__, url_prefix="/api/streams/<stream_id>"))

MAX_AUTHOR = 40
MAX_TEXT = 500
MAX_BODY = 4096
PAGE = 50
MAX_PAGE = 200
STATUSES = ("visible", "hidden", "deleted")
VIEWER_COOKIE = "sparkcast_viewer"
_REF = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CommentNotFound(LookupError):
    """No comment with that id."""


@dataclass(frozen=True)
class Page:
    comments: list[Comment]
    before: int | None  # pass as ?before= for the next older page; None at the start
    since: int  # pass as ?since= to poll for newer comments


# --- queries (the caller owns the transaction) -------------------------------------------

def add_comment(session: Session, stream_id: str, author: str, text: str, viewer_id: str,
                client_ref: str | None) -> tuple[Comment, bool]:
    """Store a comment and commit: (row, True), or (the stored row, False) when
    `client_ref` was already used on this stream. Raises SQLAlchemyError."""
    row = Comment(stream_id=stream_id, author=author, text=text, viewer_id=viewer_id,
                  client_ref=client_ref, status="visible", created_at=utcnow())
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if client_ref is None:
            raise
        existing = session.scalars(select(Comment).where(
            Comment.stream_id == stream_id, Comment.client_ref == client_ref)).first()
        if existing is None:
            raise
        return existing, False
    return row, True


def page(session: Session, stream_id: str, *, since: int | None = None,
         before: int | None = None, limit: int = PAGE,
         statuses: tuple[str, ...] = ("visible",)) -> Page:
    """A page of comments in ascending id order (see the module doc)."""
    query = select(Comment).where(Comment.stream_id == stream_id, Comment.status.in_(statuses))
    if since is not None:
        rows = list(session.scalars(query.where(Comment.id > since)
                                    .order_by(Comment.id).limit(limit)))
        return Page(rows, None, rows[-1].id if rows else since)
    if before is not None:
        query = query.where(Comment.id < before)
    rows = list(session.scalars(query.order_by(Comment.id.desc()).limit(limit)))[::-1]
    newest = rows[-1].id if rows else (before - 1 if before else 0)
    return Page(rows, rows[0].id if len(rows) == limit else None, newest)


def set_status(session: Session, comment_id: int, status: str) -> Comment:
    """Hide, delete or restore a comment. Raises CommentNotFound, ValueError."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    row = session.get(Comment, comment_id)
    if row is None:
        raise CommentNotFound(f"comment {comment_id} does not exist")
    row.status = status
    return row


def removed_ids(session: Session, stream_id: str, newest: int, window: int = 2000) -> list[int]:
    """Ids of hidden/deleted comments among the last `window` ids of a stream, for players
    to take down what they already show (a bounded index range, not a table scan)."""
    return list(session.scalars(
        select(Comment.id).where(Comment.stream_id == stream_id, Comment.id > newest - window,
                                 Comment.status != "visible").order_by(Comment.id)))


def block_viewer(session: Session, viewer_id: str, stream_id: str | None,
                 reason: str = "") -> ViewerBlock:
    row = ViewerBlock(viewer_id=viewer_id, stream_id=stream_id, reason=reason[:200],
                      created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def public_json(row: Comment) -> dict[str, Any]:
    return {"id": row.id, "stream_id": row.stream_id, "author": row.author, "text": row.text,
            "created_at": iso(row.created_at)}


def admin_json(row: Comment) -> dict[str, Any]:
    return {**public_json(row), "status": row.status, "viewer_id": row.viewer_id}


# --- views -------------------------------------------------------------------------------

def _viewer_id() -> tuple[str, bool]:
    """(viewer id, whether it is new and the cookie must be set)."""
    current = request.cookies.get(VIEWER_COOKIE, "")
    if _REF.match(current) and len(current) >= 16:
        return current, False
    return "v_" + secrets.token_urlsafe(16), True


@bp.post("/comments")
def post(stream_id: str) -> Response | tuple[Response, int]:
    session = get_session()
    try:
        audience.ensure_stream(session, stream_id)
    except audience.NoSuchStream:
        return json_error(404, "not_found", "no such stream")
    wait = audience.get().comment_limiter.take(client_key())
    if wait:
        return too_many(wait, "comments")
    data = read_json(MAX_BODY)
    author = string_field(data, "author", required=True, max_len=MAX_AUTHOR, strip=True)
    text = string_field(data, "text", required=True, max_len=MAX_TEXT)
    if not text.strip():
        raise BadRequest("text", "field 'text' must not be blank")
    client_ref = string_field(data, "client_ref", required=False, max_len=64) or None
    if client_ref is not None and not _REF.match(client_ref):
        raise BadRequest("client_ref", "field 'client_ref' must be 1-64 of A-Z a-z 0-9 _ -")
    viewer_id, new_viewer = _viewer_id()
    if audience.get().is_blocked(session, viewer_id, stream_id):
        return json_error(403, "viewer_blocked", "you cannot comment on this stream")
    try:
        row, created = add_comment(session, stream_id, author, text, viewer_id, client_ref)
    except IntegrityError:  # the stream was deleted meanwhile (foreign key)
        session.rollback()
        audience.get().forget_stream(stream_id)
        return json_error(404, "not_found", "no such stream")
    resp = jsonify(public_json(row))
    resp.status_code = 201 if created else 200
    resp.headers["Cache-Control"] = "no-store"
    if new_viewer:
        resp.set_cookie(VIEWER_COOKIE, viewer_id, max_age=365 * 86400, httponly=True,
                        samesite="Lax")
    return resp


@bp.get("/comments")
def list_(stream_id: str) -> Response:
    since = int_arg("since", None, 0, 2**62)
    before = int_arg("before", None, 1, 2**62)
    limit = int_arg("limit", PAGE, 1, MAX_PAGE) or PAGE
    if since is not None and before is not None:
        raise BadRequest("since", "use either 'since' or 'before', not both")
    session = get_session()
    try:
        audience.ensure_stream(session, stream_id)
    except audience.NoSuchStream:
        return json_error(404, "not_found", "no such stream")
    result = page(session, stream_id, since=since, before=before, limit=limit)
    resp = jsonify({"comments": [public_json(r) for r in result.comments],
                    "before": result.before, "since": result.since})
    resp.headers["Cache-Control"] = "no-store"
    return resp
