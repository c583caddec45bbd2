"""The fast path for the hottest requests: GET/HEAD of segments, manifests and the clock.

Flask's per-request machinery (request object, URL map, hooks, Response) costs more
than sending a 200 KB segment. This module answers the plain cases without it: a whole
file, a 304, one simple byte range. Anything else (errors, If-Range, multi-range,
unsatisfiable ranges, odd request targets) returns None and falls through to the
Flask routes, which own the full HTTP semantics and the JSON errors.

`answer()` is protocol-neutral (a `MediaRequest` in, a `MediaAnswer` out). Two
front ends use it: `serve/asgi.py` on the event loop (what `sparkcast serve` runs),
and `MediaFastPath` here, a WSGI middleware for the gthread worker and the dev server.
Both reuse the media blueprint's body functions (same StreamLayout paths, cache,
headers), so every path answers a URL alike.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from serve import context, metrics
from serve.client_addr import client_address
from serve.media import (
    BAD_TARGET,
    CORS_HEADERS,
    MediaBody,
    clock_text,
    mpd_body,
    observe_segment,
    playlist_body,
    segment_body,
)

log = logging.getLogger(__name__)

_SEGMENT = re.compile(r"^/streams/([^/]+)/out/([^/]+)/([^/]+)\Z")
_MANIFEST = re.compile(r"^/streams/([^/]+)/([^/]+)\.(mpd|m3u8)\Z")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)\Z")

StartResponse = Callable[..., Any]
Headers = Sequence[tuple[str, str]]


# Not frozen: one of each is made per request, and a frozen dataclass's __init__ costs
# five times as much (2.7 against 0.5 us here).
@dataclass(slots=True)
class MediaRequest:
    method: str
    path: str  # decoded
    raw_path: str  # as sent, without the query
    client: str  # "address|user agent" (viewer estimate)
    if_none_match: str | None = None
    range: str | None = None
    if_range: bool = False


@dataclass(slots=True)
class MediaAnswer:
    """What to send. The body is `data`, or else the whole local file at `path`."""

    status: int
    headers: Headers
    data: bytes = b""
    path: str | None = None
    size: int = 0  # body bytes (0 for HEAD and 304)
    # A segment's whole-file 200: the same answer may be sent again to the same URL for
    # RECENT_SECONDS (see replayed()); its stream, and whether the bytes are cached.
    segment_of: str | None = None
    cached: bool = False


def is_candidate(method: str, path: str) -> bool:
    """Cheap pre-check: could the fast path answer this at all?"""
    return method in ("GET", "HEAD") and (path.startswith("/streams/") or path == "/clock")


def answer(app: Flask, req: MediaRequest) -> MediaAnswer | None:
    """The answer to a plain media request, or None to let Flask answer it."""
    if req.if_range or _odd_target(req.raw_path):
        return None
    if req.path == "/clock":
        return _clock(req.method)
    started = time.perf_counter()
    ctx = context.get(app)
    try:
        if m := _SEGMENT.match(req.path):
            body, endpoint = _recent_segment(ctx, req.path, m), "media.segment"
        elif m := _MANIFEST.match(req.path):
            stream_id, name, ext = m.groups()
            if ext == "mpd" and name == "manifest":
                body, endpoint = mpd_body(ctx, stream_id, ctx.clock_url), "media.mpd"
            elif ext == "m3u8":
                body, endpoint = playlist_body(ctx, stream_id, name), "media.playlist"
            else:
                return None
        else:
            return None
    except HTTPException:
        return None
    out = _conditional(body, req)
    if out is None:
        return None
    metrics.count_request(endpoint, str(out.status), endpoint.split(".")[1], out.size)
    if endpoint == "media.segment":
        observe_segment(m.group(1), req.client, body.cached, started)
        if out.status == 200:
            out.segment_of, out.cached = m.group(1), body.cached
    return out


def replayed(out: MediaAnswer, client: str, started: float) -> None:
    """Count a segment answer sent again within RECENT_SECONDS (the caller checked that
    the request is a plain GET of the same URL) as answer() counts one it makes."""
    metrics.tally.cache(out.cached)
    metrics.count_request("media.segment", "200", "segment", out.size)
    observe_segment(out.segment_of or "", client, out.cached, started)


def _odd_target(raw_path: str) -> bool:
    # BAD_TARGET needs one of these characters; most targets have none, and the regex
    # search cost more than the rest of the checks together
    return ("%" in raw_path or "\\" in raw_path or "\x00" in raw_path or "//" in raw_path
            or "/." in raw_path or raw_path.startswith(".")) and bool(BAD_TARGET.search(raw_path))


RECENT_SECONDS = 1.0
_RECENT_MAX = 4096


def _recent_segment(ctx: context.ServeContext, path: str, m: re.Match[str]) -> MediaBody:
    """segment_body(), remembered per URL for a second: a segment's bytes never change,
    and the viewers of a live stream all ask for its newest segment within about that.
    A file rewritten in place (a VOD transcoded again) is seen within the second."""
    now = time.monotonic()
    hit = ctx.recent_segments.get(path)
    if hit is not None and hit[0] > now:
        metrics.tally.cache(hit[1].cached)  # answered as the lookup it stands for
        return hit[1]
    body = segment_body(ctx, *m.groups())  # raises NotFound: misses are not remembered
    if len(ctx.recent_segments) >= _RECENT_MAX:
        ctx.recent_segments.clear()
    ctx.recent_segments[path] = (now + RECENT_SECONDS, body)
    return body


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def _clock(method: str) -> MediaAnswer:
    now = clock_text()
    data = now.encode("ascii") if method == "GET" else b""
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(now))),
               ("Cache-Control", "no-store"), *CORS_HEADERS]
    metrics.count_request("media.clock", "200", "clock", len(data))
    return MediaAnswer(200, headers, data, size=len(data))


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or f'"{etag}"' in tags


@functools.lru_cache(maxsize=4096)
def whole_file_headers(content_type: str, etag: str, cache_control: str, size: int
                       ) -> tuple[tuple[str, str], ...]:
    """The headers of a 200 (remembered: the same few files are asked for over and over;
    a tuple, so the server can remember its encoding too)."""
    return (*_entity_headers(content_type, etag, cache_control), ("Content-Length", str(size)))


def _entity_headers(content_type: str, etag: str, cache_control: str) -> list[tuple[str, str]]:
    return [("Content-Type", content_type), ("ETag", f'"{etag}"'),
            ("Cache-Control", cache_control), ("Accept-Ranges", "bytes"), *CORS_HEADERS]


def _conditional(body: MediaBody, req: MediaRequest) -> MediaAnswer | None:
    head = req.method == "HEAD"
    if req.if_none_match and _matches(req.if_none_match, body.etag):
        return MediaAnswer(304, _entity_headers(body.content_type, body.etag,
                                                body.cache_control))
    if req.range:
        span = _span(req.range.strip(), body.size)
        if span is None:
            return None
        start, end = span
        length = end - start + 1
        headers = [*_entity_headers(body.content_type, body.etag, body.cache_control),
                   ("Content-Range", f"bytes {start}-{end}/{body.size}"),
                   ("Content-Length", str(length))]
        if head:
            return MediaAnswer(206, headers)
        if body.data is not None:
            part = body.data[start:end + 1]
        else:
            with open(body.path or "", "rb") as f:  # ranges are rare: read the slice
                f.seek(start)
                part = f.read(length)
        return MediaAnswer(206, headers, part, size=length)
    headers = whole_file_headers(body.content_type, body.etag, body.cache_control, body.size)
    if head:
        return MediaAnswer(200, headers)
    if body.data is not None:
        return MediaAnswer(200, headers, body.data, size=body.size)
    return MediaAnswer(200, headers, path=body.path, size=body.size)


def _span(header: str, size: int) -> tuple[int, int] | None:
    """One satisfiable range as (first, last) byte; None for anything else."""
    m = _RANGE.match(header)
    if m is None or size == 0:
        return None
    first, last = m.groups()
    if not first:
        if not last or int(last) == 0:
            return None
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return None
    return start, end


class MediaFastPath:
    """The fast path as WSGI middleware (gthread worker, dev server, Flask's test client)."""

    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app, self.next = app, wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        if not is_candidate(method, path):
            return self.next(environ, start_response)
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or path
        client = client_address(environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"),
                                context.get(self.app).trusted_proxies)
        try:
            out = answer(self.app, MediaRequest(
                method, path, raw.split("?", 1)[0],
                f"{client}|{environ.get('HTTP_USER_AGENT', '')}",
                environ.get("HTTP_IF_NONE_MATCH"), environ.get("HTTP_RANGE"),
                "HTTP_IF_RANGE" in environ))
        except Exception:  # noqa: BLE001 - the Flask route answers, with a JSON error if need be
            log.exception("media fast path failed for %s", path)
            out = None
        if out is None:
            return self.next(environ, start_response)
        start_response(status_line(out.status), out.headers)
        if out.path is None:
            return [out.data] if out.data else []
        f = open(out.path, "rb")  # noqa: SIM115 - the server closes it (sendfile)
        wrapper = environ.get("wsgi.file_wrapper")
        return wrapper(f) if wrapper else _read_all(f)


def _read_all(f: Any) -> list[bytes]:
    with f:
        return [f.read()]


def read_file(path: str, size: int) -> bytes:
    """The first `size` bytes of a local file (a stat'ed segment)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)
