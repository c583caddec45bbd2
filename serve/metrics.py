"""Prometheus metrics of the origin (one set per process; see /metrics in serve/health.py).

Under gunicorn with several workers `sparkcast serve` sets PROMETHEUS_MULTIPROC_DIR,
and /metrics aggregates every worker's files; gauges then sum live workers.
"""

from __future__ import annotations

import threading
import time

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("sparkcast_http_requests_total", "HTTP requests answered",
                   ["endpoint", "status"])
BYTES = Counter("sparkcast_http_response_bytes_total", "Response body bytes sent", ["kind"])
CACHE = Counter("sparkcast_cache_requests_total", "Segment cache lookups", ["result"])
CACHE_HIT, CACHE_MISS = CACHE.labels("hit"), CACHE.labels("miss")
CACHE_BYTES = Gauge("sparkcast_cache_bytes", "Bytes held by the segment cache",
                    multiprocess_mode="livesum")
SEGMENT_SECONDS = Histogram("sparkcast_segment_seconds",
                            "Time to answer a segment request (storage or cache)",
                            ["source"],
                            buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1))
VIEWERS = Gauge("sparkcast_active_viewers", "Distinct clients that fetched a segment of the "
                "stream in the last 30 s (estimate)", ["stream"], multiprocess_mode="livesum")


_children: dict[tuple[str, str], tuple[Counter, Counter]] = {}


def count_request(endpoint: str, status: str, kind: str, sent: int) -> None:
    """REQUESTS and BYTES for one response; labelled children are looked up once."""
    pair = _children.get((endpoint, status))
    if pair is None:
        pair = _children[(endpoint, status)] = (REQUESTS.labels(endpoint, status),
                                                BYTES.labels(kind))
    pair[0].inc()
    if sent:
        pair[1].inc(sent)


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
