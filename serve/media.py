"""Media endpoints: MPD, HLS playlists, init and media segments, and the UTCTiming clock.

URLs mirror the storage layout under `streams/<id>/` (StreamLayout.base), so the
relative segment URLs the job wrote into the manifests resolve against the
manifest URL unchanged. A URL is never turned into a path by string handling:
each part is validated (stream id, rendition, segment number) and the path is
built by StreamLayout; anything else is a 404 before storage is touched.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from functools import lru_cache

from flask import Blueprint, Response, abort, current_app, request, url_for
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.wsgi import wrap_file

from hdfs_layout import LayoutError, StorageError, StreamLayout
from hdfs_layout.layout import AUDIO
from serve import context, metrics
from serve.cache import etag_of
from serve.errors import json_error
from serve.manifests import ManifestError, is_dynamic_mpd, is_live_playlist, redundant_master
from serve.manifests import rewrite_mpd as _rewrite_mpd

bp = Blueprint("media", __name__)

MPD_TYPE = "application/dash+xml"
HLS_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_CACHE = "public, max-age=31536000, immutable"  # a segment's bytes never change
VOD_MANIFEST_CACHE = "public, max-age=60"  # a re-run job may rewrite a VOD manifest
_SEGMENT_NAME = re.compile(r"^(\d{8,12})\.m4s$")
_INIT_NAME = "init.mp4"
_viewers = metrics.ViewerTracker()


def _layout(stream_id: str) -> StreamLayout:
    try:
        return StreamLayout(stream_id)
    except LayoutError:
        abort(404, "no such stream")


def _live_manifest_cache() -> str:
    # About half a segment: a player polling the live edge sees each new segment soon,
    # and a CDN in front still absorbs most of the polls.
    seconds = context.get().settings.segment_seconds
    return f"public, max-age={max(1, int(seconds / 2))}"


class _Body:
    """Bytes in memory, or a local file to hand to the server's sendfile."""

    def __init__(self, data: bytes | None, path: str | None, size: int, etag: str,
                 cached: bool) -> None:
        self.data, self.path, self.size, self.etag, self.cached = data, path, size, etag, cached

    def read(self) -> bytes:
        if self.data is None:
            with open(self.path or "", "rb") as f:
                return f.read()
        return self.data


def _load(path: str, stream_id: str, cache_max_age: float | None = None) -> _Body:
    """The bytes at storage path, from the cache when it holds them; 404 when missing."""
    ctx = context.get()
    if ctx.cache.enabled:
        entry = ctx.cache.get(path, stream_id, cache_max_age)
        metrics.CACHE.labels("hit" if entry else "miss").inc()
        if entry is not None:
            return _Body(entry.data, None, len(entry.data), entry.etag, True)
    local = ctx.storage.local_path(path)
    try:
        if local is not None:
            st = os.stat(local)
            # stat-based tag: no need to read (let alone hash) a file we may sendfile
            return _Body(None, local, st.st_size, f"{st.st_size:x}-{st.st_mtime_ns:x}", False)
        data = ctx.storage.read(path)
    except (OSError, StorageError):
        abort(404, "no such file in this stream")
    return _Body(data, None, len(data), etag_of(data), False)


def _respond(body: _Body, mimetype: str, cache_control: str) -> Response:
    if body.data is not None:
        resp = Response(body.data, content_type=mimetype)
    else:
        f = open(body.path or "", "rb")  # noqa: SIM115 - closed by the response (sendfile)
        resp = Response(wrap_file(request.environ, f), content_type=mimetype,
                        direct_passthrough=True)
    resp.content_length = body.size
    resp.set_etag(body.etag)
    resp.headers["Cache-Control"] = cache_control
    try:
        resp.make_conditional(request, accept_ranges=True, complete_length=body.size)
    except RequestedRangeNotSatisfiable:
        resp.close()
        err = json_error(416, "range_not_satisfiable", "requested range is outside the file")
        err.headers["Content-Range"] = f"bytes */{body.size}"
        return err
    return resp


@lru_cache(maxsize=256)
def _rewritten_mpd(raw: bytes, bases: tuple[str, ...], clock_url: str) -> tuple[bytes, bool]:
    return _rewrite_mpd(raw, list(bases), clock_url), is_dynamic_mpd(raw)


def _stream_bases(layout: StreamLayout) -> list[str]:
    return [f"{origin}/{layout.base}/" for origin in context.get().origins]


@bp.get("/streams/<stream_id>/manifest.mpd")
def mpd(stream_id: str) -> Response:
    layout = _layout(stream_id)
    # A cached live MPD is used only while younger than the filler's poll period.
    raw = _load(layout.manifest, stream_id, cache_max_age=1.0).read()
    try:
        data, dynamic = _rewritten_mpd(raw, tuple(_stream_bases(layout)),
                                       url_for("media.clock", _external=True))
    except ManifestError:
        abort(500, "stored manifest is malformed")
    cc = _live_manifest_cache() if dynamic else VOD_MANIFEST_CACHE
    return _respond(_Body(data, None, len(data), etag_of(data), False), MPD_TYPE, cc)


@bp.get("/streams/<stream_id>/<name>.m3u8")
def playlist(stream_id: str, name: str) -> Response:
    layout = _layout(stream_id)
    try:
        path = layout.master_playlist if name == "master" else layout.media_playlist(name)
    except LayoutError:
        abort(404, "no such playlist")
    raw = _load(path, stream_id, cache_max_age=1.0).read()
    if name == "master":
        data = redundant_master(raw, _stream_bases(layout))
        cc = _live_manifest_cache()  # small, and it may belong to a live stream
    else:
        data = raw
        cc = _live_manifest_cache() if is_live_playlist(raw) else VOD_MANIFEST_CACHE
    return _respond(_Body(data, None, len(data), etag_of(data), False), HLS_TYPE, cc)


@bp.get("/streams/<stream_id>/out/<rendition>/<name>")
def segment(stream_id: str, rendition: str, name: str) -> Response:
    started = time.perf_counter()
    layout = _layout(stream_id)
    try:
        if name == _INIT_NAME:
            path = layout.init_segment(rendition)
        else:
            m = _SEGMENT_NAME.match(name)
            if m is None:
                abort(404, "no such segment")
            number = int(m.group(1))
            # Only the canonical spelling: one URL per file, one cache key per URL.
            if StreamLayout.relative_segment(rendition, number) != f"out/{rendition}/{name}":
                abort(404, "no such segment")
            path = layout.media_segment(rendition, number)
    except LayoutError:
        abort(404, "no such segment")
    body = _load(path, stream_id)
    _viewers.touch(stream_id, f"{request.remote_addr}|{request.user_agent.string}")
    mimetype = "audio/mp4" if rendition == AUDIO else "video/mp4"
    resp = _respond(body, mimetype, SEGMENT_CACHE)
    metrics.SEGMENT_SECONDS.labels("cache" if body.cached else "storage").observe(
        time.perf_counter() - started)
    return resp


@bp.get("/clock")
def clock() -> Response:
    """UTCTiming (urn:mpeg:dash:utc:http-iso:2014): the server's time, ISO 8601, ms."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    resp = Response(now, mimetype="text/plain")
    resp.headers["Cache-Control"] = "no-store"
    return resp


# In the request target as sent (before the server decodes it): encoded separators, NUL,
# backslashes, empty and dot segments never name a media file; refuse them outright.
_BAD_TARGET = re.compile(r"%2f|%5c|%00|\\|\x00|//|(^|/)\.\.?(/|$)|(^|/)%2e", re.IGNORECASE)


@bp.before_app_request
def _reject_odd_targets() -> None:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    if _BAD_TARGET.search(raw.split("?", 1)[0]):
        abort(400, "malformed path")


@bp.before_app_request
def _ensure_filler() -> None:
    ctx = context.get()
    if ctx.filler is None and ctx.cache.enabled:
        context.start_filler(current_app._get_current_object())  # type: ignore[attr-defined]


@bp.after_request
def _cors(resp: Response) -> Response:
    # Players on other origins (a CMS page, a TV app) fetch manifests and segments.
    h = resp.headers
    h["Access-Control-Allow-Origin"] = "*"
    h["Access-Control-Expose-Headers"] = "Content-Length, Content-Range, ETag, Date"
    if request.method == "OPTIONS":
        h["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        h["Access-Control-Allow-Headers"] = "Range, If-None-Match, If-Range, Origin, Accept"
        h["Access-Control-Max-Age"] = "86400"
    return resp
