"""A WSGI fast path for the hottest requests: GET/HEAD of segments and manifests.

Flask's per-request machinery (request object, URL map, hooks, Response) costs more
than sending a 200 KB segment; under gunicorn the Flask route reached 0.25x
nginx's requests/s on one, this path about twice that (docs/BENCHMARKS.md). It
reuses the media blueprint's body functions (same StreamLayout paths, cache,
headers) and answers only the plain cases: a whole file, a 304, one simple byte
range. Anything else (errors, If-Range, multi-range, unsatisfiable ranges, odd
request targets) falls through to the Flask routes, which own the full HTTP
semantics and the JSON errors.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from serve import context, metrics
from serve.media import (
    BAD_TARGET,
    CORS_HEADERS,
    MediaBody,
    clock_url,
    mpd_body,
    observe_segment,
    playlist_body,
    segment_body,
)

_SEGMENT = re.compile(r"^/streams/([^/]+)/out/([^/]+)/([^/]+)$")
_MANIFEST = re.compile(r"^/streams/([^/]+)/([^/]+)\.(mpd|m3u8)$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

StartResponse = Callable[..., Any]


class MediaFastPath:
    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app, self.next = app, wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        raw = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or path).split("?", 1)[0]
        if (not path.startswith("/streams/") or environ["REQUEST_METHOD"] not in ("GET", "HEAD")
                or "HTTP_IF_RANGE" in environ or BAD_TARGET.search(raw)):
            return self.next(environ, start_response)
        started = time.perf_counter()
        ctx = context.get(self.app)
        try:
            if m := _SEGMENT.match(path):
                body, endpoint = segment_body(ctx, *m.groups()), "media.segment"
            elif m := _MANIFEST.match(path):
                stream_id, name, ext = m.groups()
                if ext == "mpd" and name == "manifest":
                    body, endpoint = mpd_body(ctx, stream_id, clock_url(_host_url(environ))), \
                        "media.mpd"
                elif ext == "m3u8":
                    body, endpoint = playlist_body(ctx, stream_id, name), "media.playlist"
                else:
                    return self.next(environ, start_response)
            else:
                return self.next(environ, start_response)
        except HTTPException:
            return self.next(environ, start_response)
        answer = _answer(body, environ)
        if answer is None:
            return self.next(environ, start_response)
        status, headers, chunks, sent = answer
        start_response(status, headers)
        metrics.count_request(endpoint, status[:3], endpoint.split(".")[1], sent)
        if endpoint == "media.segment":
            client = f"{environ.get('REMOTE_ADDR')}|{environ.get('HTTP_USER_AGENT', '')}"
            observe_segment(m.group(1), client, body, started)
        return chunks


def _host_url(environ: dict[str, Any]) -> str:
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    return f"{environ.get('wsgi.url_scheme', 'http')}://{host}{environ.get('SCRIPT_NAME', '')}/"


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or f'"{etag}"' in tags


def _answer(body: MediaBody, environ: dict[str, Any]
            ) -> tuple[str, list[tuple[str, str]], Iterable[bytes], int] | None:
    """(status, headers, body iterable, bytes sent), or None to let Flask answer."""
    headers = [("Content-Type", body.content_type), ("ETag", f'"{body.etag}"'),
               ("Cache-Control", body.cache_control), ("Accept-Ranges", "bytes"),
               *CORS_HEADERS]
    head = environ["REQUEST_METHOD"] == "HEAD"
    inm = environ.get("HTTP_IF_NONE_MATCH")
    if inm and _matches(inm, body.etag):
        return "304 NOT MODIFIED", headers, [], 0
    rng = environ.get("HTTP_RANGE")
    if rng:
        span = _span(rng.strip(), body.size)
        if span is None:
            return None
        start, end = span
        length = end - start + 1
        headers += [("Content-Range", f"bytes {start}-{end}/{body.size}"),
                    ("Content-Length", str(length))]
        if head:
            return "206 PARTIAL CONTENT", headers, [], 0
        if body.data is not None:
            part = body.data[start:end + 1]
        else:
            with open(body.path or "", "rb") as f:  # ranges are rare: read the slice
                f.seek(start)
                part = f.read(length)
        return "206 PARTIAL CONTENT", headers, [part], length
    headers.append(("Content-Length", str(body.size)))
    if head:
        return "200 OK", headers, [], 0
    if body.data is not None:
        return "200 OK", headers, [body.data], body.size
    f = open(body.path or "", "rb")  # noqa: SIM115 - the server closes it (sendfile)
    wrapper = environ.get("wsgi.file_wrapper")
    return "200 OK", headers, (wrapper(f) if wrapper else _read_all(f)), body.size


def _read_all(f: Any) -> list[bytes]:
    with f:
        return [f.read()]


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
