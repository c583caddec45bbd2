"""Live manifests rendered to files, for the front door's nginx to answer from disk.

A live manifest as served is made of the stored manifest, the settings (origins as
BaseURLs, the clock URL) and the stream's ad breaks: nothing of the request. So instead
of building it per request (the front door keeps no live manifest in its cache: a copy a
second old started viewers who joined a republished stream in its gap, docs/SERVING.md),
`sparkcast serve`'s own process renders each live stream's MPD and HLS playlists into
`out_dir/streams/<id>/` whenever what they are made of changes, and nginx answers polls
from those files as it answers segments (edge/front_conf.py).

How fresh: every `interval` (50 ms) each live stream's manifests are built through
serve/media.py (a `stat` per stored manifest and a lookup in its memo when nothing
changed) and a file is rewritten (atomically) when its bytes changed: a served copy is at
most that much older than the stored one. Which streams: every `rescan` seconds the
storage root's streams are listed and those whose stored MPD is dynamic are taken on. A
stream whose MPD turns static (it ended), goes missing or cannot be built has its files
removed, so its requests go on to the origin, which answers them (or says what is
wrong) as before. Only for a local root: polling HDFS at that rate would cost too much,
and there the front door keeps proxying live manifests.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

from werkzeug.exceptions import HTTPException

from hdfs_layout import LayoutError, StorageError, StreamLayout
from hdfs_layout.layout import streams_dir
from manifest.rewrite import ManifestError, is_dynamic_mpd
from serve.context import ServeContext
from serve.media import MediaBody, is_live_body, mpd_body, playlist_body

log = logging.getLogger(__name__)
_PLAYLIST_SUFFIX = ".m3u8"


class ManifestRenderer:
    def __init__(self, ctx: ServeContext, out_dir: Path, interval: float = 0.05,
                 rescan: float = 1.0) -> None:
        self.ctx, self.out_dir = ctx, Path(out_dir)
        self.interval, self.rescan = interval, rescan
        self.written = 0  # files (re)written so far
        self.live: dict[str, tuple[str, ...]] = {}  # stream id -> its playlists' names
        self._seen: dict[str, tuple[int, int]] = {}  # not live: the MPD's (mtime, size)
        self._etags: dict[tuple[str, str], str] = {}  # (stream, file) -> etag written
        self._last_scan = float("-inf")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="manifest-render",
                                        daemon=True)

    def start(self) -> ManifestRenderer:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - renders must outlive any one bad poll
                log.exception("rendering live manifests failed")

    def poll_once(self) -> int:
        """One round; returns the number of files written."""
        now = time.monotonic()
        if now - self._last_scan >= self.rescan:
            self._last_scan = now
            self._scan()
        return sum(self.render(sid) for sid in sorted(self.live))

    def _scan(self) -> None:
        for sid in self.ctx.storage.list(streams_dir()):
            try:
                layout = StreamLayout(sid)
            except LayoutError:
                continue
            if sid not in self.live:
                local = self.ctx.local_path(layout.manifest)
                try:
                    st = os.stat(local) if local else None
                    mark = (st.st_mtime_ns, st.st_size) if st else (0, 0)
                    if self._seen.get(sid) == mark:
                        continue  # a VOD (or a stream that ended) as it was: not live
                    self._seen[sid] = mark
                    if not is_dynamic_mpd(self.ctx.storage.read(layout.manifest)):
                        continue
                except (OSError, StorageError, ManifestError):
                    continue  # no manifest yet: look again next scan
                self._seen.pop(sid, None)
            # playlists appear with the first segments
            self.live[sid] = tuple(n for n in self.ctx.storage.list(layout.base)
                                   if n.endswith(_PLAYLIST_SUFFIX))

    def render(self, stream_id: str) -> int:
        """Bring one live stream's files up to date; returns how many were written."""
        try:
            mpd = mpd_body(self.ctx, stream_id, self.ctx.clock_url)
            if not is_live_body(mpd):
                self._drop(stream_id, "it ended")
                return 0
            written = self._write(stream_id, "manifest.mpd", mpd)
            for name in self.live.get(stream_id, ()):
                try:
                    body = playlist_body(self.ctx, stream_id, name[:-len(_PLAYLIST_SUFFIX)])
                except HTTPException:
                    self._remove(stream_id, name)  # the origin says what is wrong
                    continue
                written += self._write(stream_id, name, body)
        except HTTPException as exc:
            self._drop(stream_id, exc.description or exc.name)
            return 0
        except OSError as exc:
            self._drop(stream_id, str(exc))
            return 0
        self.written += written
        return written

    def _write(self, stream_id: str, name: str, body: MediaBody) -> int:
        if self._etags.get((stream_id, name)) == body.etag:
            return 0
        folder = self.out_dir / StreamLayout(stream_id).base
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(body.read())
        os.replace(tmp, folder / name)  # nginx opens the old file or the new, never half
        self._etags[(stream_id, name)] = body.etag
        return 1

    def _remove(self, stream_id: str, name: str) -> None:
        self._etags.pop((stream_id, name), None)
        (self.out_dir / StreamLayout(stream_id).base / name).unlink(missing_ok=True)

    def _drop(self, stream_id: str, why: str) -> None:
        """Stop rendering a stream: its requests go to the origin again."""
        log.info("live manifests of %s left to the origin: %s", stream_id, why)
        self.live.pop(stream_id, None)
        for key in [k for k in self._etags if k[0] == stream_id]:
            del self._etags[key]
        shutil.rmtree(self.out_dir / StreamLayout(stream_id).base, ignore_errors=True)
