"""Group commit of comments (serve/comment_writer.py) on SQLite and MariaDB: concurrent
comments share a transaction, each gets its own id, and one bad row never fails the rest."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from audience_ids import STREAM
from sqlalchemy import Engine, event, select
from sqlalchemy.exc import IntegrityError

from serve.comment_writer import CommentWriter, NewComment
from store.db import session_scope
from store.models import Comment, Stream


@pytest.fixture
def stream(engine: Engine) -> str:
    with session_scope(engine) as s:
        s.add(Stream(id=STREAM))
    return STREAM


def hold_first_insert(engine: Engine) -> tuple[threading.Event, threading.Event]:
    """Stall the writer in its first INSERT until `release` is set, so that everything
    submitted meanwhile queues up into one batch. Returns (entered, release)."""
    entered, release = threading.Event(), threading.Event()

    @event.listens_for(engine, "before_cursor_execute")
    def _hold(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if statement.startswith("INSERT INTO comments") and not entered.is_set():
            entered.set()
            release.wait(30)

    return entered, release


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def comment(text: str, ref: str | None = None, stream_id: str = STREAM) -> NewComment:
    return NewComment(stream_id, "ann", text, "v_viewer_0123456789", ref)


def stored_texts(engine: Engine) -> dict[int, str]:
    with session_scope(engine) as s:
        return {i: t for i, t in s.execute(select(Comment.id, Comment.text))}


def test_comments_queued_meanwhile_are_one_transaction(engine: Engine, stream: str) -> None:
    writer = CommentWriter(engine)
    entered, release = hold_first_insert(engine)
    with ThreadPoolExecutor(24) as pool:
        first = pool.submit(writer.add, comment("first"))
        assert entered.wait(30)  # the writer took "first" and is held in its INSERT
        rest = [pool.submit(writer.add, comment(f"c{i}")) for i in range(20)]
        wait_for(lambda: writer._queue.qsize() == 20)
        release.set()
        results = [first.result(30), *(f.result(30) for f in rest)]
    assert (writer.batches, writer.rows) == (2, 21)
    assert all(r.created for r in results)
    assert len({r.id for r in results}) == 21
    stored = stored_texts(engine)
    assert all(stored[r.id] == r.text for r in results)  # each answer names its own row


def test_a_bad_row_does_not_fail_its_batch(engine: Engine, stream: str) -> None:
    writer = CommentWriter(engine)
    original = writer.add(comment("original", ref="ref-1"))
    entered, release = hold_first_insert(engine)
    with ThreadPoolExecutor(8) as pool:
        blocker = pool.submit(writer.add, comment("blocker"))
        assert entered.wait(30)
        futures = [pool.submit(writer.add, c) for c in (
            comment("a"), comment("retry", ref="ref-1"), comment("x", stream_id="gone"),
            comment("b", ref="ref-2"))]
        wait_for(lambda: writer._queue.qsize() == 4)
        release.set()
        assert blocker.result(30).created
        a, retry, gone, b = futures
        assert a.result(30).created and b.result(30).created
        assert retry.result(30) == original.__class__(**{**original.__dict__, "created": False})
        with pytest.raises(IntegrityError):
            gone.result(30)
    assert sorted(stored_texts(engine).values()) == ["a", "b", "blocker", "original"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the dead one is MySQL
def test_database_down_fails_every_waiter_and_stores_nothing(stream: str,
                                                            engine: Engine) -> None:
    from store.db import make_engine

    dead = make_engine("mysql+mysqldb://nobody:x@127.0.0.1:1/none")
    writer = CommentWriter(dead)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(writer.add, comment(f"c{i}")) for i in range(4)]
        for f in futures:
            with pytest.raises(Exception) as info:
                f.result(30)
            assert "OperationalError" in type(info.value).__name__
    assert stored_texts(engine) == {}
