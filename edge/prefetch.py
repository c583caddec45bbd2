"""The last-seconds cache at the edge: the newest segments of each live stream are fetched
through the front's own cache before a viewer asks for them.

Which streams: those whose manifest viewers asked for in the last `watch_seconds` (the
front's access log says so: `seen()`). Every `interval` seconds the prefetcher asks the
front for each such stream's MPD with the header `X-Sparkcast-Refresh: 1`, which the
front honours from loopback by fetching it from the origin and storing it in its cache:
viewers' copies are then at most `interval` old, and the origin sees two requests a
second per stream and edge, however many viewers poll. A live (dynamic) MPD's segments
ending in the newest `seconds` that were not fetched yet are then requested through the
front, which stores them on its way (proxy_cache). A VOD's MPD is left alone. Prefetches
carry the user agent `sparkcast-prefetch`, so the metrics tell them from viewers.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

from hdfs_layout import LayoutError, StreamLayout
from manifest.rewrite import ManifestError, edge_segments, is_dynamic_mpd

log = logging.getLogger(__name__)

USER_AGENT = "sparkcast-prefetch"
REFRESH = {"X-Sparkcast-Refresh": "1"}  # edge/templates/nginx-http.conf: from the origin
Fetch = Callable[[str, Mapping[str, str]], bytes]  # GET a URL's body; raises OSError


def http_get(url: str, headers: Mapping[str, str], timeout: float = 5.0) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


class Prefetcher:
    def __init__(self, base_url: str, seconds: float, fetch: Fetch = http_get,
                 interval: float = 0.5, watch_seconds: float = 60.0) -> None:
        self.base = base_url.rstrip("/")
        self.seconds, self.fetch = seconds, fetch
        self.interval, self.watch_seconds = interval, watch_seconds
        self.fetched = 0  # segments requested so far (a measure of the work done)
        self._watched: dict[str, float] = {}  # stream id -> last time a viewer polled it
        self._done: dict[str, set[str]] = {}  # stream id -> segment URLs already fetched
        self._live: set[str] = set()  # streams whose last MPD was dynamic
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prefetch", daemon=True)

    def seen(self, stream_id: str, at: float) -> None:
        """A viewer asked for this stream's manifest (from the access log)."""
        with self._lock:
            self._watched[stream_id] = max(at, self._watched.get(stream_id, 0.0))

    def start(self) -> Prefetcher:
        if self.seconds > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the prefetcher must outlive any one bad poll
                log.exception("prefetch poll failed")

    def poll_once(self, now: float | None = None) -> int:
        """One round; returns the number of segments fetched."""
        now = time.time() if now is None else now
        with self._lock:
            for sid in [s for s, t in self._watched.items() if now - t > self.watch_seconds]:
                del self._watched[sid]
                self._done.pop(sid, None)
                self._live.discard(sid)
            streams = sorted(self._watched)
        return sum(self.fill(sid) for sid in streams)

    def fill(self, stream_id: str) -> int:
        try:
            layout = StreamLayout(stream_id)
            base = f"{self.base}/{layout.base}/"
            # a VOD's MPD is not refreshed: its cached copy is good, and it costs the origin
            mpd = self.fetch(base + "manifest.mpd", REFRESH if stream_id in self._live else {})
            if not is_dynamic_mpd(mpd):
                self._live.discard(stream_id)
                return 0
            self._live.add(stream_id)
            renditions, edge = edge_segments(mpd, self.seconds)
        except (LayoutError, ManifestError, OSError) as exc:
            log.debug("prefetch of %s skipped: %s", stream_id, exc)
            return 0
        wanted = [f"out/{r}/init.mp4" for r in renditions] + [
            StreamLayout.relative_segment(s.rendition, s.number) for s in edge]
        done = self._done.setdefault(stream_id, set())
        fetched = 0
        for rel in wanted:
            if rel in done:
                continue
            try:
                self.fetch(base + rel, {})
            except (OSError, urllib.error.HTTPError) as exc:
                log.debug("prefetch of %s%s failed: %s", base, rel, exc)
                continue  # not there yet: the next round tries again
            done.add(rel)
            fetched += 1
        # forget what left the window (init segments stay: they are wanted every round)
        keep = set(wanted)
        done.intersection_update(keep)
        self.fetched += fetched
        return fetched
