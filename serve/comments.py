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

Writes go through the process's `CommentWriter` (serve/comment_writer.py: concurrent
comments share one transaction), and a well-formed POST to a known stream is answered by
`CommentFastPath`, a WSGI layer in front of Flask, as reactions and segments are.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.http import dump_cookie, parse_cookie

from hdfs_layout import urls
from serve import audience
from serve.comment_writer import NewComment, StoredComment
from serve.db import get_session
from serve.errors import json_error
from serve.fast_post import KnownStreamPost, PostContext
from serve.jsonapi import (
    DB_DOWN,
    DB_RETRY_AFTER,
    BadRequest,
    api_errors,
    client_key,
    int_arg,
    iso,
    read_json,
    string_field,
    too_many,
)
from store.comments import MAX_PAGE, PAGE, page
from store.models import Comment

bp = api_errors(Blueprint("comments", __name__, url_prefix=urls.STREAM_API))

MAX_AUTHOR = 40
MAX_TEXT = 500
MAX_BODY = 4096
VIEWER_COOKIE = "sparkcast_viewer"
_REF = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
BLOCKED = "you cannot comment on this stream"


def public_json(row: Comment | StoredComment) -> dict[str, Any]:
    return {"id": row.id, "stream_id": row.stream_id, "author": row.author, "text": row.text,
            "created_at": iso(row.created_at)}


def admin_json(row: Comment) -> dict[str, Any]:
    return {**public_json(row), "status": row.status, "viewer_id": row.viewer_id}


# --- the write path (shared by the view and the fast path) ------------------------------

def parse_new(data: object) -> tuple[str, str, str | None]:
    """(author, text, client_ref) of a POSTed comment. Raises BadRequest naming the field."""
    if not isinstance(data, dict):
        raise BadRequest("body", "body must be a JSON object")
    author = string_field(data, "author", required=True, max_len=MAX_AUTHOR, strip=True)
    text = string_field(data, "text", required=True, max_len=MAX_TEXT)
    if not text.strip():
        raise BadRequest("text", "field 'text' must not be blank")
    client_ref = string_field(data, "client_ref", required=False, max_len=64) or None
    if client_ref is not None and not _REF.match(client_ref):
        raise BadRequest("client_ref", "field 'client_ref' must be 1-64 of A-Z a-z 0-9 _ -")
    return author, text, client_ref


def viewer_id(cookie: str | None) -> tuple[str, bool]:
    """(viewer id, whether it is new and the cookie must be set) from the cookie's value."""
    if cookie and _REF.match(cookie) and len(cookie) >= 16:
        return cookie, False
    return "v_" + secrets.token_urlsafe(16), True


def viewer_cookie(value: str) -> str:
    return dump_cookie(VIEWER_COOKIE, value, max_age=365 * 86400, httponly=True,
                       samesite="Lax")


def created_status(stored: StoredComment) -> int:
    return 201 if stored.created else 200  # 200: a retry of a comment already stored


# --- views -------------------------------------------------------------------------------

@bp.post("/comments")
def post(stream_id: str) -> Response | tuple[Response, int]:
    aud = audience.get()
    audience.ensure_stream(get_session(), stream_id)
    wait = aud.comment_limiter.take(client_key())
    if wait:
        return too_many(wait, "comments")
    author, text, client_ref = parse_new(read_json(MAX_BODY))
    viewer, new_viewer = viewer_id(request.cookies.get(VIEWER_COOKIE))
    if aud.is_blocked(viewer, stream_id):
        return json_error(403, "viewer_blocked", BLOCKED)
    try:
        stored = aud.comment_writer.add(NewComment(stream_id, author, text, viewer, client_ref))
    except IntegrityError:  # the stream was deleted meanwhile (foreign key)
        aud.forget_stream(stream_id)
        return json_error(404, "not_found", "no such stream")
    resp = jsonify(public_json(stored))
    resp.status_code = created_status(stored)
    resp.headers["Cache-Control"] = "no-store"
    if new_viewer:
        resp.headers["Set-Cookie"] = viewer_cookie(viewer)
    return resp


@bp.get("/comments")
def list_(stream_id: str) -> Response:
    since = int_arg("since", None, 0, 2**62)
    before = int_arg("before", None, 1, 2**62)
    limit = int_arg("limit", PAGE, 1, MAX_PAGE) or PAGE
    if since is not None and before is not None:
        raise BadRequest("since", "use either 'since' or 'before', not both")
    session = get_session()
    audience.ensure_stream(session, stream_id)
    result = page(session, stream_id, since=since, before=before, limit=limit)
    resp = jsonify({"comments": [public_json(r) for r in result.comments],
                    "before": result.before, "since": result.since})
    resp.headers["Cache-Control"] = "no-store"
    return resp


# --- WSGI fast path ------------------------------------------------------------------------

class CommentFastPath(KnownStreamPost):
    """A well-formed comment to a known stream, without Flask's dispatch. Answers 201/200,
    and the 403, 429 and 503 that need no validation message; every other error is the
    view's."""

    resource, max_body, endpoint = "comments", MAX_BODY, "comments.post"

    def answer(self, ctx: PostContext, body: Any) -> Iterable[bytes] | None:
        try:
            author, text, client_ref = parse_new(body)
        except BadRequest:
            return None  # the view names the field
        aud = ctx.audience
        wait = aud.comment_limiter.take(ctx.client)
        if wait:
            return self.too_many(ctx, wait)
        viewer, new_viewer = viewer_id(parse_cookie(ctx.environ).get(VIEWER_COOKIE))
        try:
            if aud.is_blocked(viewer, ctx.stream_id):
                return self.error(ctx, 403, "viewer_blocked", BLOCKED)
            stored = aud.comment_writer.add(
                NewComment(ctx.stream_id, author, text, viewer, client_ref))
        except IntegrityError:
            aud.forget_stream(ctx.stream_id)
            return self.error(ctx, 404, "not_found", "no such stream")
        except SQLAlchemyError:
            return self.error(ctx, 503, "database_unavailable", DB_DOWN,
                              [("Retry-After", str(DB_RETRY_AFTER))])
        extra = [("Set-Cookie", viewer_cookie(viewer))] if new_viewer else []
        return self.json(ctx, created_status(stored), public_json(stored), extra)


@bp.record_once
def _install_fast_path(state: Any) -> None:
    if state.app.config.get("COMMENTS_FAST_PATH", True):
        state.app.wsgi_app = CommentFastPath(state.app, state.app.wsgi_app)
