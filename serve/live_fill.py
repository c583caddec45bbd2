"""Fills the segment cache with the live edge before any viewer asks for it.

How a new segment is "announced": by polling, not by a push. Every serving
process runs one EdgeFiller thread that
  - every `rescan` seconds lists `streams/` and reads the MPD of each stream it
    has not classified yet (dynamic = live; static = VOD, never looked at again);
  - every `interval` seconds re-reads each live stream's MPD (the live job's
    reduce rewrites it after each micro-batch, and lists a segment only once the
    segment exists in full) and loads into the cache the init segments and every
    segment of the newest `cache_seconds` that the cache does not hold yet, then
    the stream's HLS playlists and the MPD itself.
Why polling: a push (`POST /internal/announce`) reaches one gunicorn worker of
one instance, while every worker of every instance keeps its own cache; a poll
needs no contract with the live job beyond the manifest it already writes, and
survives restarts of either side. Cost: one small read per live stream per
interval and per worker.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from hdfs_layout import LayoutError, Storage, StorageError, StreamLayout
from hdfs_layout.layout import streams_dir
from manifest.rewrite import ManifestError, edge_segments, is_dynamic_mpd
from serve.cache import SegmentCache

log = logging.getLogger(__name__)


class EdgeFiller:
    def __init__(self, storage: Storage, cache: SegmentCache, interval: float = 0.5,
                 rescan: float = 2.0) -> None:
        self.storage, self.cache = storage, cache
        self.interval, self.rescan = interval, rescan
        self.live: set[str] = set()
        self._static: set[str] = set()
        self._loaded: dict[str, set[str]] = {}  # per live stream: edge keys already loaded
        self._last_scan = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> EdgeFiller:
        if self._thread is None and self.cache.enabled:
            self._thread = threading.Thread(target=self._run, name="edge-filler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the filler must outlive any one bad poll
                log.exception("edge filler poll failed")

    def poll_once(self) -> int:
        """One poll; returns the number of segments loaded into the cache."""
        now = time.monotonic()
        if now - self._last_scan >= self.rescan:
            self._last_scan = now
            self._scan()
        return sum(self.fill(sid) for sid in sorted(self.live))

    def _scan(self) -> None:
        for sid in self.storage.list(streams_dir()):
            if sid in self.live or sid in self._static:
                continue
            try:
                raw = self.storage.read(StreamLayout(sid).manifest)
                (self.live if is_dynamic_mpd(raw) else self._static).add(sid)
            except (LayoutError, StorageError, ManifestError):
                continue  # no manifest yet (or not a stream): look again next scan

    def fill(self, stream_id: str) -> int:
        """Refresh one live stream's manifest in the cache and load its newest segments;
        returns the number of (init or media) segments loaded."""
        layout = StreamLayout(stream_id)
        try:
            raw = self.storage.read(layout.manifest)
            if not is_dynamic_mpd(raw):  # the stream ended: its MPD turned static
                self.live.discard(stream_id)
                self._loaded.pop(stream_id, None)
                self._static.add(stream_id)
                return 0
            renditions, edge = edge_segments(raw, self.cache.max_age)
        except (StorageError, ManifestError) as exc:
            log.warning("live stream %s: %s", stream_id, exc)
            return 0
        loaded = 0
        for rendition in renditions:
            key = layout.init_segment(rendition)
            entry = self.cache.peek(key)
            # Re-put the init segment before age eviction would drop it.
            if entry is None or self.cache.now() - entry.added > self.cache.max_age / 2:
                loaded += self._load(key, lambda d, r=rendition: self.cache.announce_init(
                    stream_id, r, d))
        # Each edge segment is loaded once: one that aged out of the cache while still
        # inside the manifest's window is not worth reading again.
        done = self._loaded.get(stream_id, set())
        keep: set[str] = set()
        for seg in edge:
            key = layout.media_segment(seg.rendition, seg.number)
            keep.add(key)
            if key not in done and self.cache.peek(key) is None:
                got = self._load(key, lambda d, s=seg: self.cache.announce(
                    stream_id, s.rendition, s.number, d))
                loaded += got
                if not got:
                    keep.discard(key)  # not there yet or too big: try again next poll
        self._loaded[stream_id] = keep
        # HLS playlists over the same segments, then the MPD: manifests last, so a player
        # never learns of a segment from a cached manifest before the segment itself is in
        # the cache.
        for path in (layout.master_playlist, *map(layout.media_playlist, renditions)):
            with contextlib.suppress(StorageError):  # a stream may be DASH only
                self.cache.put(path, self.storage.read(path))
        # Re-put every poll even when unchanged: its age then says "checked this recently".
        self.cache.put(layout.manifest, raw)
        return loaded

    def _load(self, path: str, announce) -> int:
        try:
            return int(announce(self.storage.read(path)))
        except StorageError as exc:
            log.warning("edge segment %s: %s", path, exc)
            return 0
