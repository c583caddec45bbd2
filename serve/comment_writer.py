"""Group commit for comment writes: many requests, one transaction, each still acknowledged
only once its row is committed.

One transaction per comment costs a round trip, a commit and the ORM's unit of work per
comment; under load that was most of a worker's time (docs/BENCHMARKS.md). Here request
threads hand their comment to the process's writer thread and wait; the writer inserts
whatever queued up meanwhile as one multi-row INSERT ... RETURNING and commits once. No
one waits for a batch to fill: an idle writer takes a lone comment at once, so a quiet
stream pays nothing and a busy one pays one commit per batch.

    writer = CommentWriter(engine)
    stored = writer.add(NewComment(...))   # blocks until committed; raises SQLAlchemyError

A batch that breaks a constraint (a retried `client_ref`, a stream deleted meanwhile) is
written again row by row, so one bad comment never fails its neighbours.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from store.models import Comment
from store.sqltypes import utcnow

log = logging.getLogger(__name__)

MAX_BATCH = 128  # rows per INSERT: bounded statement size, and a bounded failure blast
MAX_QUEUE = 2000  # comments waiting for the writer; past that, answer 503 at once
WAIT_SECONDS = 30.0  # a request gives up on a hung database after this long

_TABLE = Comment.__table__
_RETURNING = (_TABLE.c.id,)


class WriterBusy(SQLAlchemyError):
    """The writer is too far behind (or the database hangs): retry later (503)."""


@dataclass(frozen=True)
class NewComment:
    stream_id: str
    author: str
    text: str
    viewer_id: str
    client_ref: str | None


@dataclass(frozen=True)
class StoredComment:
    id: int
    stream_id: str
    author: str
    text: str
    created_at: datetime
    created: bool  # False: `client_ref` repeated a comment already stored (a retry)


class CommentWriter:
    """The per-process writer thread and its queue (started on first use, after a fork)."""

    def __init__(self, engine: Engine, max_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[NewComment, Future[StoredComment]]] = queue.Queue()
        self._pid = 0
        self._lock = threading.Lock()
        self.batches = 0  # committed batches and rows, for tests and benchmarks
        self.rows = 0

    def add(self, comment: NewComment, timeout: float = WAIT_SECONDS) -> StoredComment:
        """Store `comment` and return it once committed. Raises IntegrityError (the stream
        is gone), WriterBusy, or the database's SQLAlchemyError (nothing was stored)."""
        if self._queue.qsize() >= MAX_QUEUE:
            raise WriterBusy("comment writer queue is full")
        self._start()
        done: Future[StoredComment] = Future()
        self._queue.put((comment, done))
        try:
            return done.result(timeout)
        except TimeoutError:
            # It may still be committed later; a client retrying with its client_ref then
            # gets that comment back (200), never a double.
            raise WriterBusy(f"comment not committed within {timeout:g} s") from None

    def _start(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (gunicorn forks)
                threading.Thread(target=self._run, name="comment-writer", daemon=True).start()
                self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception as exc:  # never let the thread die: every waiter gets the error
                log.exception("comment writer failed on a batch of %d", len(batch))
                for _c, done in batch:
                    if not done.done():
                        done.set_exception(exc)

    def _write(self, batch: list[tuple[NewComment, Future[StoredComment]]]) -> None:
        now = utcnow()
        rows = [_row(c, now) for c, _ in batch]
        try:
            with self.engine.begin() as conn:
                ids = conn.execute(insert(_TABLE).returning(*_RETURNING,
                                                            sort_by_parameter_order=True),
                                   rows).scalars().all()
        except IntegrityError:
            for item in batch:
                self._write_one(*item, now)
            return
        except SQLAlchemyError as exc:
            for _c, done in batch:
                done.set_exception(exc)
            return
        self.batches += 1
        self.rows += len(batch)
        for (c, done), new_id in zip(batch, ids, strict=True):
            done.set_result(_stored(c, new_id, now, created=True))

    def _write_one(self, c: NewComment, done: Future[StoredComment], now: datetime) -> None:
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(insert(_TABLE).returning(*_RETURNING), _row(c, now)
                                      ).scalar_one()
            done.set_result(_stored(c, new_id, now, created=True))
            return
        except IntegrityError as exc:
            existing = self._existing(c) if c.client_ref is not None else None
            if existing is None:
                done.set_exception(exc)  # the stream's row is gone (foreign key)
            else:
                done.set_result(existing)
        except SQLAlchemyError as exc:
            done.set_exception(exc)

    def _existing(self, c: NewComment) -> StoredComment | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_TABLE.c.id, _TABLE.c.stream_id, _TABLE.c.author,
                                      _TABLE.c.text, _TABLE.c.created_at).where(
                _TABLE.c.stream_id == c.stream_id, _TABLE.c.client_ref == c.client_ref)).first()
        if row is None:
            return None
        return StoredComment(row.id, row.stream_id, row.author, row.text, row.created_at,
                             created=False)


def _row(c: NewComment, now: datetime) -> dict[str, object]:
    return {"stream_id": c.stream_id, "author": c.author, "text": c.text,
            "viewer_id": c.viewer_id, "client_ref": c.client_ref, "status": "visible",
            "created_at": now}


def _stored(c: NewComment, new_id: int, now: datetime, *, created: bool) -> StoredComment:
    return StoredComment(new_id, c.stream_id, c.author, c.text, now, created)
