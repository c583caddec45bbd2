"""Comments as data: pages of a stream's comments, moderation, viewer blocks. The caller
owns the transaction (the HTTP views and the group-commit writer: serve/comments.py,
serve/comment_writer.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Comment, ViewerBlock
from store.sqltypes import utcnow

PAGE = 50
MAX_PAGE = 200
STATUSES = ("visible", "hidden", "deleted")


class CommentNotFound(LookupError):
    """No comment with that id."""


@dataclass(frozen=True)
class Page:
    comments: list[Comment]
    before: int | None  # pass as ?before= for the next older page; None at the start
    since: int  # pass as ?since= to poll for newer comments


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
