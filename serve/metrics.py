"""Prometheus metrics of the origin (one set per process; see /metrics in serve/health.py).

Under gunicorn with several workers `sparkcast serve` sets PROMETHEUS_MULTIPROC_DIR,
and /metrics aggregates every worker's files; gauges then sum live workers.
"""

from __future__ import annotations

import atexit
import bisect
import logging
import os
import threading
import time

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

REQUESTS = Counter("sparkcast_http_requests_total", "HTTP requests answered",
                   ["endpoint", "status"])
BYTES = Counter("sparkcast_http_response_bytes_total", "Response body bytes sent", ["kind"])
CACHE = Counter("sparkcast_cache_requests_total", "Segment cache lookups", ["result"])
PUBLISH_DB_DOWN = Counter("sparkcast_publish_database_down_total",
                          "Publishes decided from the last known keys (database down)",
                          ["result"])
CACHE_HIT, CACHE_MISS = CACHE.labels("hit"), CACHE.labels("miss")
CACHE_BYTES = Gauge("sparkcast_cache_bytes", "Bytes held by the segment cache",
                    multiprocess_mode="livesum")
SEGMENT_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0)
SEGMENT_SECONDS = Histogram("sparkcast_segment_seconds",
                            "Time to answer a segment request (storage or cache)",
                            ["source"], buckets=SEGMENT_BUCKETS)
VIEWERS = Gauge("sparkcast_active_viewers", "Distinct clients that fetched a segment of the "
                "stream in the last 30 s (estimate)", ["stream"], multiprocess_mode="livesum")


class _Tally:
    """Counts gathered in this process and added to the metrics above once a second.

    Why: under several workers every inc() or observe() of a prometheus metric is a
    write into a shared mmap file, and a small segment's request made five of them:
    about a fifth of its cost under load (measured, docs/BENCHMARKS.md). Here a request
    only bumps plain integers under a lock; `flush()` (a daemon thread each second, and
    /metrics before it answers) adds them in one write per label. So another worker's
    last second may be missing from a scrape, never lost.
    """

    def __init__(self, period: float = 1.0) -> None:
        self.period = period
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._bytes: dict[str, int] = {}
        self._cache = [0, 0]  # hits, misses
        self._times: dict[str, list[float]] = {}  # source -> bucket counts..., sum
        self._thread: threading.Thread | None = None
        # a forked worker inherits the counts and the flag but not the thread
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._requests, self._bytes, self._cache, self._times = {}, {}, [0, 0], {}
        self._thread = None

    def request(self, endpoint: str, status: str, kind: str, sent: int) -> None:
        with self._lock:
            key = (endpoint, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            if sent:
                self._bytes[kind] = self._bytes.get(kind, 0) + sent
        self._ensure_thread()

    def cache(self, hit: bool) -> None:
        with self._lock:
            self._cache[0 if hit else 1] += 1

    def segment_time(self, source: str, seconds: float) -> None:
        with self._lock:
            counts = self._times.get(source)
            if counts is None:
                counts = self._times[source] = [0.0] * (len(SEGMENT_BUCKETS) + 2)
            counts[bisect.bisect_left(SEGMENT_BUCKETS, seconds)] += 1
            counts[-1] += seconds

    def flush(self) -> None:
        with self._lock:
            requests, self._requests = self._requests, {}
            sent, self._bytes = self._bytes, {}
            (hits, misses), self._cache = self._cache, [0, 0]
            times, self._times = self._times, {}
        for (endpoint, status), n in requests.items():
            REQUESTS.labels(endpoint, status).inc(n)
        for kind, n in sent.items():
            BYTES.labels(kind).inc(n)
        if hits:
            CACHE_HIT.inc(hits)
        if misses:
            CACHE_MISS.inc(misses)
        for source, counts in times.items():
            _observe_many(SEGMENT_SECONDS.labels(source), counts)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="metrics-flush",
                                                    daemon=True)
                    self._thread.start()
                    atexit.register(self.flush)  # a stopping worker keeps its last second

    def _run(self) -> None:
        while True:
            time.sleep(self.period)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - metrics must never stop for one bad flush
                log.exception("metrics flush failed")


def _observe_many(histogram: Histogram, counts: list[float]) -> None:
    """Add per-bucket counts (and their sum, last) to a labelled histogram at once.

    prometheus_client has no public call for this; its Histogram keeps one value per
    bucket in `_buckets` and the sum in `_sum` (tests/serve checks this against
    observe()).
    """
    for value, n in zip(histogram._buckets, counts[:-1], strict=True):  # noqa: SLF001
        if n:
            value.inc(n)
    histogram._sum.inc(counts[-1])  # noqa: SLF001


tally = _Tally()


def count_request(endpoint: str, status: str, kind: str, sent: int) -> None:
    """REQUESTS and BYTES for one response."""
    tally.request(endpoint, status, kind, sent)


class ViewerTracker:
    """Estimates viewers per stream: distinct (address, user agent) seen in a window."""

    def __init__(self, window: float = 30.0) -> None:
        self.window = window
        self._seen: dict[str, dict[int, float]] = {}
        self._published: dict[str, float] = {}
        self._lock = threading.Lock()

    def touch(self, stream_id: str, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._seen.setdefault(stream_id, {})[hash(client)] = now
            # Publishing walks the stream's clients: at most once a second per stream.
            if now - self._published.get(stream_id, 0.0) >= 1.0:
                self._published[stream_id] = now
                VIEWERS.labels(stream_id).set(self._count(stream_id, now))

    def count(self, stream_id: str, now: float | None = None) -> int:
        with self._lock:
            return self._count(stream_id, time.monotonic() if now is None else now)

    def _count(self, stream_id: str, now: float) -> int:
        seen = self._seen.get(stream_id, {})
        for key in [k for k, t in seen.items() if now - t > self.window]:
            del seen[key]
        return len(seen)
