"""The origin as an ASGI application: what `sparkcast serve` runs under gunicorn.

Why ASGI: under gunicorn's gthread worker the cost of a segment request is gunicorn's
Python HTTP handling and thread hand-offs, not the app (docs/BENCHMARKS.md). Under
uvicorn's worker (a C parser, httptools, on a uvloop event loop) the plain media
requests (segments, manifests, the clock) are answered on the loop by
`serve.fastpath.answer`, with no thread hand-off at all.

Everything else (the audience API, the player page, admin, errors, /metrics) is the
Flask app, run unchanged on a2wsgi's thread pool (`threads` per worker). Two things
the WSGI side needs from here:
  - the request target as sent (`RAW_URI`), which the traversal check reads;
  - `sparkcast.client_gone`, a threading.Event set when the client disconnects or the
    request ends: a WSGI app cannot otherwise notice a viewer who left an endless
    response (the SSE feed), because uvicorn drops writes to a closed connection
    silently instead of failing them as gunicorn does.

Storage: with a local root a segment is a stat and a read of a page-cached file, done
on the loop (as nginx does without aio); with HDFS every read is a network call, so
the media path then runs in the thread pool too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from tempfile import SpooledTemporaryFile
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask

from core.config import Settings
from hdfs_layout.layout import streams_dir
from serve import context, create_app
from serve.client_addr import Network, client_address
from serve.context import CLIENT_GONE
from serve.fastpath import (
    RECENT_SECONDS,
    MediaAnswer,
    MediaRequest,
    answer,
    is_candidate,
    read_file,
)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)

DEFAULT_THREADS = 8
REPLAYS_MAX = 4096


# A request body is read whole before Flask sees it (Origin._flask): in memory up to
# SPOOL_BYTES, on disk beyond; a pause longer than BODY_IDLE_SECONDS between two of its
# parts ends it (nginx's client_body_timeout); API bodies are far below API_BODY_BYTES.
SPOOL_BYTES = 1 << 20
BODY_IDLE_SECONDS = 10.0
API_BODY_BYTES = 1 << 20

class Origin:
    """ASGI app: the media fast path on the event loop, everything else to Flask."""

    def __init__(self, flask_app: Flask, threads: int = DEFAULT_THREADS) -> None:
        self.flask_app = flask_app  # gunicorn's post_worker_init hook starts its filler
        self._wsgi = WSGIMiddleware(self._with_extras, workers=threads)
        self._blocking: bool | None = None  # does storage block (HDFS)? known on first use
        # serve/media_protocol.py answers media inside uvicorn's parser when this is set,
        # and sends a segment's answer again to the same request target for a second
        self.inline_media = False
        self.replays: dict[bytes, tuple[float, MediaAnswer, bytes]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            if not (is_candidate(scope["method"], scope["path"])
                    and await self._media(scope, send)):
                await self._flask(scope, receive, send)
        else:  # websocket: not spoken here
            await self._wsgi(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Each worker fills its cache with the live edge from the moment it boots.
                context.start_filler(self.flask_app)
                self.inline_media = not self._storage_blocks()
                # What exists now (Flask, SQLAlchemy, lxml: ~110,000 objects) lives as long
                # as the worker. Out of the collector's view, a full collection no longer
                # walks it: it took 67 ms here, a stall for every open request.
                gc.collect()
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                ctx = context.get(self.flask_app)
                if ctx.filler is not None:
                    ctx.filler.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- media, on the loop ---

    async def _media(self, scope: Scope, send: Send) -> bool:
        """Answer a plain media request; False when Flask must answer it."""
        req = _media_request(scope, context.get(self.flask_app).trusted_proxies)
        try:
            if self._storage_blocks():
                loop = asyncio.get_running_loop()
                out = await loop.run_in_executor(self._wsgi.executor, answer, self.flask_app,
                                                 req)
            else:
                out = answer(self.flask_app, req)
            if out is None:
                return False
            body = self.body(out)
        except OSError as exc:  # a file gone since its stat: Flask's route says 404
            log.warning("media fast path: %s", exc)
            return False
        except Exception:  # noqa: BLE001 - Flask's routes answer it, with a JSON error if need be
            log.exception("media fast path failed for %s", scope["path"])
            return False
        await send({"type": "http.response.start", "status": out.status,
                    "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                for k, v in out.headers]})
        await send({"type": "http.response.body", "body": body})
        return True

    def remember(self, target: bytes, out: MediaAnswer, head: bytes) -> None:
        """Keep a segment's answer (and its encoded headers) for RECENT_SECONDS."""
        if len(self.replays) >= REPLAYS_MAX:  # old targets pile up: start over
            self.replays.clear()
        self.replays[target] = (time.monotonic() + RECENT_SECONDS, out, head)

    def _storage_blocks(self) -> bool:
        if self._blocking is None:
            storage = context.get(self.flask_app).storage
            self._blocking = storage.local_path(streams_dir()) is None
        return self._blocking

    @staticmethod
    def body(out: MediaAnswer) -> bytes:
        """The body bytes of a GET's answer (read from the local file when it names one)."""
        return out.data if out.path is None else read_file(out.path, out.size)

    # --- everything else: Flask on the thread pool ---

    async def _flask(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = threading.Event()
        scope = {**scope, CLIENT_GONE: gone}
        watcher = None
        if _has_body(scope):
            # The whole body is read here, on the loop, before a thread is taken: a client
            # sending it slowly, or announcing one it never sends, holds no Flask thread.
            settings = context.get(self.flask_app).settings
            body = await _read_body(scope, receive, max(settings.ad_upload_max_bytes,
                                                        API_BODY_BYTES), BODY_IDLE_SECONDS)
            if body is None:  # the client left before its body was complete
                return
            if isinstance(body, int):
                await _refuse(send, body)
                return
            watcher = asyncio.ensure_future(_watch_disconnect(receive, gone))
            receive = _replay(body)
        elif scope["method"] in ("GET", "HEAD"):
            # The WSGI side never reads a body here, so the real receive() is free to
            # tell us when the client leaves.
            watcher = asyncio.ensure_future(_watch_disconnect(receive, gone))
            receive = _no_body
        try:
            await self._wsgi(scope, receive, send)
        finally:
            gone.set()  # the response is over either way: let a streaming body stop
            if watcher is not None:
                watcher.cancel()

    def _with_extras(self, environ: dict[str, Any], start_response: Callable[..., Any]
                     ) -> Iterable[bytes]:
        scope = environ["asgi.scope"]
        raw = scope.get("raw_path")
        environ["RAW_URI"] = raw.decode("latin-1") if raw is not None else environ["PATH_INFO"]
        environ[CLIENT_GONE] = scope[CLIENT_GONE]
        return self.flask_app(environ, start_response)


def _media_request(scope: Scope, trusted: Sequence[Network]) -> MediaRequest:
    headers: dict[bytes, bytes] = dict(scope["headers"])
    raw = scope.get("raw_path")
    client = scope.get("client") or ("", 0)
    return MediaRequest(
        method=scope["method"],
        path=scope["path"],
        raw_path=raw.decode("latin-1") if raw is not None else scope["path"],
        client=f"{client_address(client[0], _header(headers, b'x-forwarded-for'), trusted)}"
               f"|{headers.get(b'user-agent', b'').decode('latin-1')}",
        if_none_match=_header(headers, b"if-none-match"),
        range=_header(headers, b"range"),
        if_range=b"if-range" in headers,
    )


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


def _has_body(scope: Scope) -> bool:
    return any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])


async def _read_body(scope: Scope, receive: Receive, limit: int, idle: float
                     ) -> SpooledTemporaryFile | int | None:
    """The request's whole body (in memory up to SPOOL_BYTES, then on disk); 408 when the
    client pauses longer than `idle` seconds, 413 past `limit` bytes, None when it left."""
    declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return 413
    spool = SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by _replay
    size = 0
    while True:
        try:
            message = await asyncio.wait_for(receive(), idle)
        except TimeoutError:
            spool.close()
            return 408
        if message["type"] == "http.disconnect":
            spool.close()
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            spool.close()
            return 413
        spool.write(chunk)
        if not message.get("more_body", False):
            spool.seek(0)
            return spool


def _replay(spool: SpooledTemporaryFile) -> Receive:
    """A receive() that hands the WSGI side the buffered body."""
    size = spool.seek(0, 2)
    spool.seek(0)

    async def receive() -> Message:
        chunk = spool.read(1 << 16)
        more = spool.tell() < size
        if not more:
            spool.close()
        return {"type": "http.request", "body": chunk, "more_body": more}

    return receive


async def _refuse(send: Send, status: int) -> None:
    words = {408: ("request_timeout", "the request body stalled; send it again"),
             413: ("payload_too_large", "request body too large")}[status]
    body = json.dumps({"error": {"code": words[0], "message": words[1]}}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _watch_disconnect(receive: Receive, gone: threading.Event) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()


def create_origin(settings: Settings | None = None, threads: int = DEFAULT_THREADS) -> Origin:
    """The app gunicorn loads (`serve.asgi:create_origin(threads=N)`)."""
    # MEDIA_FAST_PATH off: what reaches Flask here already missed the fast path.
    return Origin(create_app(settings, {"MEDIA_FAST_PATH": False}), threads)
