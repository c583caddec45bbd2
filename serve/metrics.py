"""Prometheus metrics of the origin (one set per process; see /metrics in serve/health.py).

`sparkcast serve` sets PROMETHEUS_MULTIPROC_DIR for its gunicorn workers and for itself
(it counts what nginx answered from its access log: edge/access_log.py), and /metrics
sums every process's files; gauges then sum live processes.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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


def count_request(endpoint: str, status: str, kind: str, sent: int) -> None:
    """REQUESTS and BYTES for one response."""
    REQUESTS.labels(endpoint, status).inc()
    if sent:
        BYTES.labels(kind).inc(sent)


def count_cache(hit: bool) -> None:
    (CACHE_HIT if hit else CACHE_MISS).inc()


def segment_time(source: str, seconds: float) -> None:
    SEGMENT_SECONDS.labels(source).observe(seconds)
