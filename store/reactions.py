"""Reactions as data: the fixed set of kinds, per-second counters kept in memory, and the
batched upserts and totals in SQL (the HTTP view and its fast path: serve/reactions.py)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import ReactionCount

KINDS = ("like", "love", "laugh", "wow", "sad", "clap")
MAX_PENDING_KEYS = 200_000  # (stream, kind, second) counters kept while the database is down

Key = tuple[str, str, int]


class ReactionCounter:
    """Thread-safe per-second counters of one process, taken out in batches."""

    def __init__(self) -> None:
        self._pending: Counter[Key] = Counter()
        self._lock = threading.Lock()
        self.dropped = 0  # counts lost because the database stayed down too long

    def add(self, stream_id: str, kind: str, now: float | None = None) -> None:
        second = int(now if now is not None else time.time())
        with self._lock:
            self._pending[(stream_id, kind, second)] += 1

    def take(self) -> Counter[Key]:
        with self._lock:
            batch, self._pending = self._pending, Counter()
        return batch

    def put_back(self, batch: Counter[Key]) -> None:
        """Return a batch that could not be flushed (kept up to MAX_PENDING_KEYS keys)."""
        with self._lock:
            self._pending.update(batch)
            while len(self._pending) > MAX_PENDING_KEYS:  # oldest seconds go first
                oldest = min(self._pending, key=lambda k: k[2])
                self.dropped += self._pending.pop(oldest)

    def pending(self, stream_id: str) -> Counter[str]:
        with self._lock:
            out: Counter[str] = Counter()
            for (sid, kind, _s), n in self._pending.items():
                if sid == stream_id:
                    out[kind] += n
            return out


def flush(engine: Engine, batch: Counter[Key]) -> None:
    """Add `batch` to reaction_counts in one transaction (upserts). Raises SQLAlchemyError."""
    if not batch:
        return
    rows = [{"stream_id": s, "kind": k, "second": sec, "count": n}
            for (s, k, sec), n in sorted(batch.items())]
    table = ReactionCount.__table__
    if engine.dialect.name == "sqlite":
        ins = sqlite_insert(table)
        stmt: Any = ins.on_conflict_do_update(
            index_elements=["stream_id", "kind", "second"],
            set_={"count": table.c.count + ins.excluded.count})
    else:
        mins = mysql_insert(table)
        stmt = mins.on_duplicate_key_update(count=table.c.count + mins.inserted.count)
    with engine.begin() as conn:
        conn.execute(stmt, rows)


def totals(session: Session, stream_id: str, since_second: int | None = None,
           before_second: int | None = None) -> Counter[str]:
    """Stored counts per kind of a stream, optionally within [since, before) seconds."""
    query = (select(ReactionCount.kind, func.sum(ReactionCount.count))
             .where(ReactionCount.stream_id == stream_id).group_by(ReactionCount.kind))
    if since_second is not None:
        query = query.where(ReactionCount.second >= since_second)
    if before_second is not None:
        query = query.where(ReactionCount.second < before_second)
    return Counter({kind: int(n or 0) for kind, n in session.execute(query)})


def totals_json(counts: Counter[str]) -> dict[str, int]:
    return {kind: int(counts.get(kind, 0)) for kind in KINDS}
