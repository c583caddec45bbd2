"""Media endpoints: MPD, HLS playlists, init and media segments, and the UTCTiming clock.

URLs mirror the storage layout under `streams/<id>/` (StreamLayout.base), so the
relative segment URLs the job wrote into the manifests resolve against the
manifest URL unchanged. A URL is never turned into a path by string handling:
each part is validated (stream id, rendition, segment number) and the path is
built by StreamLayout; anything else is a 404 before storage is touched.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from flask import Blueprint, Response, abort, current_app, request
from werkzeug.exceptions import HTTPException, RequestedRangeNotSatisfiable
from werkzeug.wsgi import wrap_file

from hdfs_layout import LayoutError, StorageError, StorageUnavailable, StreamLayout, urls
from hdfs_layout.layout import AUDIO
from manifest import splice as ad_splice
from manifest.rewrite import ManifestError, is_dynamic_mpd, is_live_playlist, redundant_master
from manifest.rewrite import rewrite_mpd as _rewrite_mpd
from serve import context, metrics
from serve.cache import etag_of
from serve.errors import json_error
from serve.media_body import MediaBody
from store.ad_schedule import ScheduledBreak

bp = Blueprint("media", __name__)
log = logging.getLogger(__name__)

MPD_TYPE = "application/dash+xml"
HLS_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_CACHE = "public, max-age=31536000, immutable"  # a segment's bytes never change
VOD_MANIFEST_CACHE = "public, max-age=60"  # a re-run job may rewrite a VOD manifest
_SEGMENT_NAME = re.compile(r"^(\d{8,12})\.m4s\Z")
_SUFFIX_RANGE = re.compile(r"bytes=-(\d+)")
_INIT_NAME = "init.mp4"


def _layout(stream_id: str) -> StreamLayout:
    try:
        return StreamLayout(stream_id)
    except LayoutError:
        abort(404, "no such stream")


def _live_manifest_cache(ctx: context.ServeContext) -> str:
    # About half a segment: a player polling the live edge sees each new segment soon,
    # and a CDN in front still absorbs most of the polls.
    return f"public, max-age={max(1, int(ctx.settings.segment_seconds / 2))}"


def _load(ctx: context.ServeContext, path: str, stream_id: str, content_type: str,
          cache_control: str, cache_max_age: float | None = None) -> MediaBody:
    """The bytes at storage path, from the cache when it holds them; NotFound when missing."""
    if ctx.cache.enabled:
        entry = ctx.cache.get(path, stream_id, cache_max_age)
        metrics.count_cache(entry is not None)
        if entry is not None:
            return MediaBody(entry.data, None, len(entry.data), entry.etag, content_type,
                             cache_control, cached=True)
    local = ctx.local_path(path)
    try:
        if local is not None:
            st = os.stat(local)
            # stat-based tag: no need to read (let alone hash) a file we may sendfile
            return MediaBody(None, local, st.st_size, f"{st.st_size:x}-{st.st_mtime_ns:x}",
                             content_type, cache_control)
        data = ctx.storage.read(path)
    except StorageUnavailable:
        abort(503, "storage unavailable; try again")  # not 404: the file may well exist
    except (OSError, StorageError):
        abort(404, "no such file in this stream")
    return MediaBody(data, None, len(data), etag_of(data), content_type, cache_control)


def _bytes_body(data: bytes, content_type: str, cache_control: str) -> MediaBody:
    return MediaBody(data, None, len(data), etag_of(data), content_type, cache_control)


_derived: dict[tuple[object, ...], object] = {}
T = TypeVar("T")


def _memo(key: tuple[object, ...], build: Callable[[], T]) -> T:
    """What `build` derives from stored manifests (a manifest as served, a parsed ad),
    remembered per stored version (its tag in `key`): polled manifests are then answered
    without reading, parsing or hashing anything."""
    if key not in _derived:
        if len(_derived) > 1024:  # stale versions of live manifests pile up: start over
            _derived.clear()
        _derived[key] = build()
    return _derived[key]  # type: ignore[return-value]


def _stream_bases(ctx: context.ServeContext, layout: StreamLayout) -> tuple[str, ...]:
    return tuple(f"{origin}/{layout.base}/" for origin in ctx.origins)


# --- ad breaks (manifest/splice.py): the breaks that apply, and the ads' own manifests ---

def _ad_media(ctx: context.ServeContext, ad_stream: str, rendition: str | None
              ) -> tuple[ad_splice.AdMedia, tuple[str, ...]] | None:
    """The ad stream's manifests as AdMedia (with the one HLS playlist standing in for
    `rendition`), and their tags for the memo key; None when the ad cannot be read."""
    try:
        layout = StreamLayout(ad_stream)
        mpd = _load(ctx, layout.manifest, ad_stream, MPD_TYPE, "")

        def parse() -> ad_splice.AdMedia:
            # a re-transcoded ad rewrites its MPD too, so the MPD's tag names the version
            text = mpd.read()
            playlists: dict[str, str] = {}
            if rendition is not None:
                name = ad_splice.closest_rendition(rendition,
                                                   ad_splice.representation_ids(text))
                playlists[name] = _load(ctx, layout.media_playlist(name), ad_stream, HLS_TYPE,
                                        "").read().decode("utf-8")
            return ad_splice.AdMedia(ad_stream, ad_splice.ad_duration(text), text, playlists)

        return _memo(("ad", ad_stream, mpd.path, mpd.etag, rendition), parse), (mpd.etag,)
    except (HTTPException, LayoutError, ManifestError, OSError, UnicodeDecodeError) as exc:
        # an ad that cannot be read is left out: the content still plays
        log.warning("ad stream %s not spliced: %s", ad_stream, exc)
        return None


def _splices(ctx: context.ServeContext, stream_id: str, raw: MediaBody, rendition: str | None
             ) -> tuple[list[ad_splice.Splice], tuple[object, ...]]:
    """The breaks to splice into this manifest (VOD or live ones, as the stored manifest
    is), and a key naming them and the ads' manifest versions."""
    breaks: tuple[ScheduledBreak, ...] = ctx.ads.breaks(stream_id)
    if not breaks:
        return [], ()
    live = _memo(("live", raw.path, raw.etag), lambda: _is_live(raw.read()))
    out, key = [], []
    for b in breaks:
        if (b.position == "live") != live:
            continue
        media = _ad_media(ctx, b.ad_stream_id, rendition)
        if media is not None:
            out.append(ad_splice.Splice(b.break_id, b.at, media[0]))
            key.append((b, media[1]))
    return out, tuple(key)


def is_live_body(body: MediaBody) -> bool:
    """Whether a manifest built by mpd_body or playlist_body is a live one. Pure."""
    return body.cache_control != VOD_MANIFEST_CACHE


def _is_live(text: bytes) -> bool:
    try:
        return is_dynamic_mpd(text) if text.lstrip().startswith(b"<") else is_live_playlist(text)
    except ManifestError:
        abort(500, "stored manifest is malformed")


def _live_pdt_offset(ctx: context.ServeContext, layout: StreamLayout) -> float:
    """HLS program date minus DASH presentation time, for the same media (see LiveState)."""
    try:
        state = json.loads(ctx.storage.read(layout.live_state))
        return float(state["anchor"]) - float(state["availability_start"])
    except (OSError, StorageError, ValueError, KeyError, TypeError):
        return 0.0


def mpd_body(ctx: context.ServeContext, stream_id: str, clock_url: str) -> MediaBody:
    """The stream's MPD with its ad breaks spliced in and the configured origins as
    BaseURLs. Raises NotFound."""
    layout = _layout(stream_id)
    # A cached live MPD is used only while younger than the filler's poll period.
    raw = _load(ctx, layout.manifest, stream_id, MPD_TYPE, "", cache_max_age=1.0)
    bases = _stream_bases(ctx, layout)
    splices, ads_key = _splices(ctx, stream_id, raw, None)

    def build() -> MediaBody:
        text = raw.read()
        try:
            spliced = ad_splice.splice_mpd(text, splices) if splices else text
            data = _rewrite_mpd(spliced, list(bases), clock_url)
        except ManifestError:
            abort(500, "stored manifest is malformed")
        return _bytes_body(data, MPD_TYPE,
                           _live_manifest_cache(ctx) if _is_live(text) else VOD_MANIFEST_CACHE)

    return _memo(("mpd", raw.path, raw.etag, bases, clock_url, ads_key), build)


def playlist_body(ctx: context.ServeContext, stream_id: str, name: str) -> MediaBody:
    """An HLS playlist ("master" or a rendition); the master lists every origin."""
    layout = _layout(stream_id)
    try:
        path = layout.master_playlist if name == "master" else layout.media_playlist(name)
    except LayoutError:
        abort(404, "no such playlist")
    raw = _load(ctx, path, stream_id, HLS_TYPE, "", cache_max_age=1.0)
    bases = _stream_bases(ctx, layout)

    splices, ads_key = _splices(ctx, stream_id, raw, name) if name != "master" else ([], ())

    def build() -> MediaBody:
        text = raw.read()
        if name == "master":
            # small, and it may belong to a live stream
            return _bytes_body(redundant_master(text, list(bases)), HLS_TYPE,
                               _live_manifest_cache(ctx))
        live = is_live_playlist(text)
        if splices:
            try:
                offset = _live_pdt_offset(ctx, layout) if live else 0.0
                text = ad_splice.splice_playlist(text.decode("utf-8"), name, splices,
                                                 offset).encode("utf-8")
            except (ManifestError, UnicodeDecodeError, ValueError):
                abort(500, "stored playlist is malformed")
        return _bytes_body(text, HLS_TYPE,
                           _live_manifest_cache(ctx) if live else VOD_MANIFEST_CACHE)

    return _memo(("m3u8", raw.path, raw.etag, name, bases, ads_key), build)


@functools.lru_cache(maxsize=65536)
def _segment_path(stream_id: str, rendition: str, name: str) -> str | None:
    """The storage path a segment URL names, or None (pure: remembered per URL)."""
    try:
        layout = StreamLayout(stream_id)
        if name == _INIT_NAME:
            return layout.init_segment(rendition)
        m = _SEGMENT_NAME.match(name)
        if m is None:
            return None
        number = int(m.group(1))
        # Only the canonical spelling: one URL per file, one cache key per URL.
        if StreamLayout.relative_segment(rendition, number) != f"out/{rendition}/{name}":
            return None
        return layout.media_segment(rendition, number)
    except LayoutError:
        return None


def segment_body(ctx: context.ServeContext, stream_id: str, rendition: str,
                 name: str) -> MediaBody:
    """An init or media segment. Raises NotFound."""
    path = _segment_path(stream_id, rendition, name)
    if path is None:
        abort(404, "no such segment")
    mimetype = "audio/mp4" if rendition == AUDIO else "video/mp4"
    return _load(ctx, path, stream_id, mimetype, SEGMENT_CACHE)


def observe_segment(cached: bool, started: float) -> None:
    metrics.segment_time("cache" if cached else "storage", time.perf_counter() - started)


def _respond(body: MediaBody) -> Response:
    """The full HTTP semantics (werkzeug): conditional, any Range form, HEAD."""
    if body.data is not None:
        resp = Response(body.data, content_type=body.content_type)
    else:
        f = open(body.path or "", "rb")  # noqa: SIM115 - closed by the response (sendfile)
        resp = Response(wrap_file(request.environ, f), content_type=body.content_type,
                        direct_passthrough=True)
    resp.content_length = body.size
    resp.set_etag(body.etag)
    resp.headers["Cache-Control"] = body.cache_control
    suffix = _SUFFIX_RANGE.fullmatch(request.environ.get("HTTP_RANGE", ""))
    if suffix and int(suffix.group(1)) > body.size > 0:
        # RFC 9110 14.1.2: a suffix longer than the file means all of it; werkzeug says 416.
        request.environ["HTTP_RANGE"] = "bytes=0-"
    try:
        resp.make_conditional(request, accept_ranges=True, complete_length=body.size)
    except RequestedRangeNotSatisfiable:
        resp.close()
        return range_not_satisfiable(body.size)
    return resp


def range_not_satisfiable(size: int) -> Response:
    err = json_error(416, "range_not_satisfiable", "requested range is outside the file")
    err.headers["Content-Range"] = f"bytes */{size}"
    return err


def clock_text() -> str:
    """UTCTiming (urn:mpeg:dash:utc:http-iso:2014): the server's time, ISO 8601, ms."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _manifest_response(body: MediaBody) -> Response:
    resp = _respond(body)
    if body.cache_control != VOD_MANIFEST_CACHE:
        # serve's own nginx keeps no copy of a live manifest (edge/front_conf.py): a viewer
        # handed one a moment old as a stream comes back after a gap starts in the gap.
        # nginx never passes this header on.
        resp.headers["X-Accel-Expires"] = "0"
    return resp


@bp.get(urls.MANIFEST)
def mpd(stream_id: str) -> Response:
    return _manifest_response(mpd_body(context.get(), stream_id, context.get().clock_url))


@bp.get(urls.PLAYLIST)
def playlist(stream_id: str, name: str) -> Response:
    return _manifest_response(playlist_body(context.get(), stream_id, name))


@bp.get(urls.SEGMENT)
def segment(stream_id: str, rendition: str, name: str) -> Response:
    started = time.perf_counter()
    body = segment_body(context.get(), stream_id, rendition, name)
    resp = _respond(body)
    # viewers are counted by the front door, which sees every segment request
    # (edge/front_metrics.py)
    observe_segment(body.cached, started)
    return resp


@bp.get(urls.CLOCK)
def clock() -> Response:
    resp = Response(clock_text(), mimetype="text/plain")
    resp.headers["Cache-Control"] = "no-store"
    return resp


# In the request target as sent (before the server decodes it): encoded separators, NUL,
# backslashes, empty and dot segments never name a media file; refuse them outright.
BAD_TARGET = re.compile(r"%2f|%5c|%00|\\|\x00|//|(^|/)\.\.?(/|$)|(^|/)%2e", re.IGNORECASE)


@bp.before_app_request
def _reject_odd_targets() -> None:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    if BAD_TARGET.search(raw.split("?", 1)[0]):
        abort(400, "malformed path")


@bp.before_app_request
def _ensure_filler() -> None:
    ctx = context.get()
    if ctx.filler is None and ctx.cache.enabled:
        context.start_filler(current_app._get_current_object())  # type: ignore[attr-defined]


# Players on other origins (a CMS page, a TV app) fetch manifests and segments.
CORS_HEADERS = (("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Expose-Headers", "Content-Length, Content-Range, ETag, Date"))


@bp.after_request
def _cors(resp: Response) -> Response:
    h = resp.headers
    for key, value in CORS_HEADERS:
        h[key] = value
    if request.method == "OPTIONS":
        h["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        h["Access-Control-Allow-Headers"] = "Range, If-None-Match, If-Range, Origin, Accept"
        h["Access-Control-Max-Age"] = "86400"
    return resp
