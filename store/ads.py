"""Ad creatives and breaks as data: the queries the admin API and the impression beacon
need (what manifests splice is read by store/ad_schedule.py)."""

from __future__ import annotations

import hashlib

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import AdBreak, AdCreative, AdImpression

IMPRESSION_EVENTS = {"start": AdBreak.impressions_started,
                     "complete": AdBreak.impressions_completed}


def media_stream_user(session: Session, media_stream_id: str, other_than: int
                      ) -> AdCreative | None:
    """Another creative already transcoded to `media_stream_id`, if any."""
    return session.scalars(select(AdCreative).where(
        AdCreative.media_stream_id == media_stream_id, AdCreative.id != other_than)).first()


def delete_creative(session: Session, row: AdCreative) -> None:
    """Delete a creative and every break that plays it."""
    for brk in session.scalars(select(AdBreak).where(AdBreak.creative_id == row.id)):
        session.delete(brk)
    session.delete(row)


COUNTED, REPEATED, NO_BREAK = "counted", "repeated", "no break"


def count_impression(session: Session, stream_id: str, break_id: int, event: str,
                     viewer: str) -> str:
    """Count one `event` ("start" | "complete") of a break of `stream_id` by `viewer`
    (an opaque id, stored hashed) once: COUNTED the first time, REPEATED after, NO_BREAK
    when the stream has no such break."""
    brk = session.scalar(select(AdBreak.id).where(AdBreak.id == break_id,
                                                  AdBreak.stream_id == stream_id))
    if brk is None:
        return NO_BREAK
    row = AdImpression(break_id=break_id, event=event,
                       viewer=hashlib.sha1(viewer.encode()).hexdigest())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return REPEATED
    column = IMPRESSION_EVENTS[event]
    session.execute(update(AdBreak).where(AdBreak.id == break_id)
                    .values({column.key: column + 1}))
    return COUNTED
