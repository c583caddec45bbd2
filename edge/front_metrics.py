"""Prometheus metrics of an nginx front (the front door or an edge), from its access log
and its stub_status, counted by the process that runs the front.

Under `sparkcast serve` that process writes into the same PROMETHEUS_MULTIPROC_DIR as
the origin's workers, so the origin's /metrics shows these beside its own.

    sparkcast_front_requests_total{kind,tier,status}    every request nginx answered
    sparkcast_front_response_bytes_total{kind,tier}      body bytes sent
    sparkcast_active_viewers{stream}                     distinct clients fetching segments
    sparkcast_front_connections{state}                   stub_status: reading, writing, waiting

kind: segment, manifest, other, and edge/prefetch.py's own requests: prefetch (a
segment fetched ahead) and refresh (a live manifest fetched anew for the cache).
tier: disk (a local root's segment, no origin involved), cache (the front's cache),
revalidated (its cache, after a 304 from an origin), stale (its cache while every origin
failed), origin. A segment "hit" is disk or cache; an origin request is origin or
revalidated.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from edge.access_log import AccessRecord, LogTail, parse_line
from edge.prefetch import USER_AGENT

log = logging.getLogger(__name__)
PREFETCHER = "|" + USER_AGENT  # the client field of the prefetcher's requests

REQUESTS = Counter("sparkcast_front_requests_total", "Requests nginx answered",
                   ["kind", "tier", "status"])
BYTES = Counter("sparkcast_front_response_bytes_total", "Body bytes nginx sent",
                ["kind", "tier"])
VIEWERS = Gauge("sparkcast_active_viewers", "Distinct clients that fetched a segment of the "
                "stream in the last 30 s (estimate)", ["stream"], multiprocess_mode="livesum")
CONNECTIONS = Gauge("sparkcast_front_connections", "nginx connections by state",
                    ["state"], multiprocess_mode="livesum")


class ViewerTracker:
    """Estimates viewers per stream: distinct (address, user agent) seen in a window."""

    def __init__(self, window: float = 30.0) -> None:
        self.window = window
        self._seen: dict[str, dict[str, float]] = {}

    def touch(self, stream_id: str, client: str, now: float) -> None:
        self._seen.setdefault(stream_id, {})[client] = now

    def counts(self, now: float) -> dict[str, int]:
        """Viewers per stream seen in the window (a stream with none left is 0 once)."""
        out = {}
        for stream_id, seen in list(self._seen.items()):
            for client in [c for c, t in seen.items() if now - t > self.window]:
                del seen[client]
            out[stream_id] = len(seen)
            if not seen:
                del self._seen[stream_id]
        return out


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class FrontMetrics:
    """Reads the front's log (and stub_status) every `period` seconds on a thread."""

    def __init__(self, log_tail: LogTail, status: Callable[[], dict[str, int]],
                 period: float = 1.0,
                 on_manifest: Callable[[str, float], None] | None = None) -> None:
        self.tail, self.status, self.period = log_tail, status, period
        self.on_manifest = on_manifest  # a viewer polled this stream (edge/prefetch.py)
        self.viewers = ViewerTracker()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="front-metrics", daemon=True)

    def start(self) -> FrontMetrics:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.poll()  # the last lines nginx flushed

    def count(self, records: list[AccessRecord]) -> None:
        """Add records to the metrics: one write per label set, however many records (each
        write goes to a shared file under several processes)."""
        requests: dict[tuple[str, str, str], int] = {}
        sent: dict[tuple[str, str], int] = {}
        for record in records:
            kind = record.kind
            if record.client.endswith(PREFETCHER):
                kind = "refresh" if kind == "manifest" else "prefetch"
            key = (kind, record.tier, status_class(record.status))
            requests[key] = requests.get(key, 0) + 1
            if record.sent:
                sent[key[:2]] = sent.get(key[:2], 0) + record.sent
            if kind == "segment" and record.stream_id and record.status < 400:
                self.viewers.touch(record.stream_id, record.client, record.at)
            elif kind == "manifest" and record.stream_id and self.on_manifest is not None:
                self.on_manifest(record.stream_id, record.at)
        for labels, n in requests.items():
            REQUESTS.labels(*labels).inc(n)
        for labels, n in sent.items():
            BYTES.labels(*labels).inc(n)

    def poll(self) -> int:
        """Count what was logged since the last poll; returns the number of requests."""
        records = [r for r in map(parse_line, self.tail.read()) if r is not None]
        self.count(records)
        for stream_id, n in self.viewers.counts(time.time()).items():
            VIEWERS.labels(stream_id).set(n)
        try:
            status = self.status()
            for state in ("reading", "writing", "waiting"):
                CONNECTIONS.labels(state).set(status[state])
        except (OSError, ValueError):
            pass  # nginx is stopping or restarting: the next poll sets them
        return len(records)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - metrics must never stop for one bad poll
                log.exception("front metrics poll failed")
