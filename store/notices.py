"""Notices: disclaimers (shown when a viewer starts watching) and timed news flashes: the
values and the queries (the players' HTTP view is serve/notices.py).

Contract for the manifest writers (jobs/: DASH EventStream, HLS EXT-X-DATERANGE)
------------------------------------------------------------------------------------
    from store.notices import Notice, notices_for
    with session_scope(engine) as session:
        items = notices_for(session, stream_id)      # list[Notice], no I/O beyond the query

`notices_for` returns every notice of the stream that has not been withdrawn, past and
future, ordered by (start, id). Each `Notice` is a frozen value:

    id        int    stable and unique across streams: use it as the DASH Event@id /
                     the DATERANGE ID ("notice-<id>"), so rewriting a manifest repeats it
    kind      str    "disclaimer" | "flash" (KINDS)
    text      str    exactly as the admin wrote it: escape it for XML (lxml does) and
                     quote it for an HLS attribute (X-SPARKCAST-TEXT="...", with '"' and
                     newlines replaced, as the HLS attribute grammar forbids them)
    start     float  wall clock, Unix seconds (UTC): a flash's start; a disclaimer's
                     start, or its creation time when it was given none. Convert to media
                     time with the stream's availabilityStartTime / PROGRAM-DATE-TIME.
    duration  float | None   seconds; None = until withdrawn (disclaimers only)

A notice withdrawn later disappears from the list: a rewritten manifest drops it. Editing a
notice keeps its id. The call raises SQLAlchemyError when the database is down; a manifest
writer should then keep the notices it wrote last rather than fail.

HTTP (players): GET /api/streams/<id>/notices -> {"now": unix, "notices": [...]} holding the
notices active now or later; the same list is pushed over SSE (serve.events).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import listing
from store.models import Notice as NoticeRow
from store.sqltypes import from_unix, utcnow

KINDS = ("disclaimer", "flash")
MAX_TEXT = 500
DEFAULT_FLASH_SECONDS = 10.0
MAX_DURATION = 7 * 86400.0


@dataclass(frozen=True)
class Notice:
    id: int
    kind: str
    text: str
    start: float
    duration: float | None

    @property
    def end(self) -> float | None:
        return None if self.duration is None else self.start + self.duration

    def active_at(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class NoticeNotFound(LookupError):
    """No notice with that id."""


def to_value(row: NoticeRow) -> Notice:
    start = row.starts_at or row.created_at
    return Notice(id=row.id, kind=row.kind, text=row.text, start=start.timestamp(),
                  duration=row.duration_s)


def notices_for(session: Session, stream_id: str) -> list[Notice]:
    """Every notice of `stream_id` not withdrawn, ordered by (start, id). See module doc."""
    rows = session.scalars(select(NoticeRow).where(NoticeRow.stream_id == stream_id,
                                                   NoticeRow.withdrawn_at.is_(None)))
    return sorted((to_value(r) for r in rows), key=lambda n: (n.start, n.id))


def current(notices: list[Notice], now: float) -> list[Notice]:
    """The notices active at `now` or starting later (what a player needs). Pure."""
    return [n for n in notices if n.end is None or n.end > now]


# --- admin operations (serve.admin_notices); the caller commits --------------------------

def create(session: Session, stream_id: str, kind: str, text: str, start: float | None,
           duration: float | None) -> NoticeRow:
    """A new notice; a flash without duration lasts DEFAULT_FLASH_SECONDS. Raises ValueError
    for an unknown kind."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if kind == "flash" and duration is None:
        duration = DEFAULT_FLASH_SECONDS
    now = utcnow()
    row = NoticeRow(stream_id=stream_id, kind=kind, text=text, duration_s=duration,
                    starts_at=from_unix(start) if start is not None else now, created_at=now)
    session.add(row)
    session.flush()
    return row


def update(session: Session, notice_id: int, changes: dict[str, Any]) -> NoticeRow:
    """Apply `changes` (text, start, duration) to a notice. Raises NoticeNotFound."""
    row = get_row(session, notice_id)
    if "text" in changes:
        row.text = changes["text"]
    if "start" in changes:
        row.starts_at = from_unix(changes["start"])
    if "duration" in changes:
        row.duration_s = changes["duration"]
    return row


def withdraw(session: Session, notice_id: int) -> NoticeRow:
    row = get_row(session, notice_id)
    if row.withdrawn_at is None:
        row.withdrawn_at = utcnow()
    return row


def get_row(session: Session, notice_id: int) -> NoticeRow:
    row = session.get(NoticeRow, notice_id)
    if row is None:
        raise NoticeNotFound(f"notice {notice_id} does not exist")
    return row


def list_rows(session: Session, stream_id: str | None) -> list[NoticeRow]:
    return listing.list_rows(session, NoticeRow, stream_id=stream_id)


def admin_json(row: NoticeRow) -> dict[str, Any]:
    return {**to_value(row).to_json(), "stream_id": row.stream_id,
            "created_at": row.created_at.isoformat(),
            "withdrawn_at": row.withdrawn_at.isoformat() if row.withdrawn_at else None}
