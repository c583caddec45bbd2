"""The last-seconds cache: the newest media bytes of live streams, kept in RAM.

Entries are keyed by their storage path (from `StreamLayout`), so a cache hit
and a storage read can never disagree about which file a URL names. The cache
is bounded twice: an entry older than `max_age` seconds is gone (the live edge
moves on; older segments come from storage), and the total size never exceeds
`max_bytes` (oldest evicted first). It is filled ahead of viewers by
`announce()` (see `serve/live_fill.py`), never on a miss: a miss means "read
storage", which keeps a burst of VOD requests from flushing the live edge.

One instance per serving process; every method is safe under concurrent calls.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from hdfs_layout.layout import StreamLayout


def etag_of(data: bytes) -> str:
    """A strong entity tag for bytes (unquoted; werkzeug quotes it on the wire)."""
    return hashlib.blake2b(data, digest_size=12).hexdigest()


@dataclass(frozen=True)
class Entry:
    data: bytes
    etag: str
    added: float  # clock() when stored


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    entries: int = 0
    bytes: int = 0
    peak_bytes: int = 0
    by_stream: dict[str, int] = field(default_factory=dict)  # hits per stream


class SegmentCache:
    """Bounded (age, bytes), thread-safe map of storage path -> Entry."""

    def __init__(self, max_age: float, max_bytes: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_age < 0 or max_bytes < 0:
            raise ValueError("max_age and max_bytes must not be negative")
        self.max_age = max_age
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Entry] = OrderedDict()  # oldest first
        self._bytes = 0
        self._stats = CacheStats()

    @property
    def enabled(self) -> bool:
        return self.max_age > 0 and self.max_bytes > 0

    def put(self, key: str, data: bytes) -> bool:
        """Store data under key (replacing it); False when it can never fit."""
        if not self.enabled or len(data) > self.max_bytes:
            return False
        entry = Entry(bytes(data), etag_of(data), self._clock())
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.data)
            self._entries[key] = entry
            self._bytes += len(entry.data)
            self._evict(entry.added)
            self._stats.peak_bytes = max(self._stats.peak_bytes, self._bytes)
        return True

    def now(self) -> float:
        return self._clock()

    def get(self, key: str, stream_id: str | None = None,
            max_age: float | None = None) -> Entry | None:
        """The fresh entry for key, counting a hit or a miss.

        max_age (<= the cache's) narrows freshness for one lookup: a live manifest is
        only worth serving from RAM while it is younger than the filler's poll.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry.added > self.max_age:
                self._drop(key)
                entry = None
            elif entry is not None and max_age is not None and now - entry.added > max_age:
                entry = None
            if entry is None:
                self._stats.misses += 1
            else:
                self._stats.hits += 1
                if stream_id:
                    self._stats.by_stream[stream_id] = self._stats.by_stream.get(stream_id, 0) + 1
            return entry

    def peek(self, key: str) -> Entry | None:
        """Like get() but counts nothing and ignores age (for the filler)."""
        with self._lock:
            return self._entries.get(key)

    def announce(self, stream_id: str, rendition: str, number: int, data: bytes) -> bool:
        """A new live media segment exists: keep its bytes for the viewers to come."""
        return self.put(StreamLayout(stream_id).media_segment(rendition, number), data)

    def announce_init(self, stream_id: str, rendition: str, data: bytes) -> bool:
        return self.put(StreamLayout(stream_id).init_segment(rendition), data)

    def stats(self) -> CacheStats:
        with self._lock:
            self._evict(self._clock())
            s = self._stats
            return CacheStats(s.hits, s.misses, s.evictions, len(self._entries), self._bytes,
                              s.peak_bytes, dict(s.by_stream))

    def _evict(self, now: float) -> None:
        # Insertion order is age order (put() re-inserts at the end), so both bounds
        # only ever remove from the front.
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if now - entry.added <= self.max_age and self._bytes <= self.max_bytes:
                break
            self._drop(key)
            self._stats.evictions += 1

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= len(entry.data)
