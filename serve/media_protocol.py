"""uvicorn's HTTP protocol, answering plain media requests as soon as they are parsed.

Why: for a small segment the cost of a request under uvicorn is mostly its ASGI
machinery (a request cycle, an asyncio task, the send() checks), not the answer;
measured in docs/BENCHMARKS.md. A GET or HEAD that `serve.fastpath.answer` can answer
from memory or a local file is answered here, inside the parser's callback, and
written to the transport in one piece. Everything else takes uvicorn's own path to
`serve.asgi.Origin` unchanged, including media requests when:
  - another request on the connection is still being answered (pipelining), or
    the client is not reading what we already wrote (flow control): uvicorn queues
    and paces those;
  - storage blocks (HDFS): the Origin answers them on its thread pool;
  - the request has a body, or asks for an upgrade.

This leans on uvicorn's HttpToolsProtocol internals (its parser callbacks and
per-connection fields), so the uvicorn version is pinned to a minor range in
pyproject.toml and tests/serve covers this path over real sockets.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import urllib.parse
from collections.abc import Iterable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from serve import context
from serve.client_addr import client_address
from serve.fastpath import MediaAnswer, MediaRequest, answer, is_candidate, replayed

log = logging.getLogger(__name__)


# What a request line and its headers may take: httptools has no limit of its own, and a
# client could otherwise make a worker hold megabytes per connection (gunicorn's own
# limits are about 8 kB a header field, 100 fields).
MAX_HEAD_BYTES = 64 * 1024
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
             b"content-length: 31\r\nconnection: close\r\n\r\nrequest headers are too large\r\n")


class MediaProtocol(HttpToolsProtocol):
    _answered = False  # the current request was answered inline
    _sock: socket.socket | None = None  # the connection's socket, for send and sendfile
    _in_head = True  # between requests or within one's request line and headers
    _head_bytes = 0  # bytes received since the current request's head began

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # uvloop hands out a stand-in that cannot send; a duplicate descriptor can
            self._sock = socket.socket(fileno=os.dup(sock.fileno()))
            self._sock.setblocking(False)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        self._head_bytes += len(data)
        super().data_received(data)  # a head ending within this chunk is fine
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.transport.write(TOO_LARGE)
            self.transport.close()

    def on_message_begin(self) -> None:
        self._answered = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        try:
            answered = self._answer_inline()
        except OSError as exc:  # a file gone since its stat: nothing was sent yet
            log.warning("inline media answer: %s", exc)
            self.config.app.replays.pop(self.url, None)
            answered = False
        except Exception:  # noqa: BLE001 - a bug here must cost one request, not the connection
            log.exception("inline media answer failed for %r; uvicorn's path answers it",
                          self.url)
            answered = False
        if not answered:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_head = True  # the next request on this connection
        if not self._answered:
            super().on_message_complete()

    def _answer_inline(self) -> bool:
        origin = self.config.app  # serve.asgi.Origin
        method = self.parser.get_method()
        if (method not in (b"GET", b"HEAD") or not getattr(origin, "inline_media", False)
                or self.pipeline or (self.cycle is not None and not self.cycle.response_complete)
                or self.flow.write_paused or self.parser.should_upgrade()):
            return False
        started = time.perf_counter()
        headers = dict(self.headers)
        if b"content-length" in headers or b"transfer-encoding" in headers:
            return False
        address = client_address(
            self.client[0] if self.client else None,
            headers.get(b"x-forwarded-for", b"").decode("latin-1") or None,
            context.get(origin.flask_app).trusted_proxies)
        client = f"{address}|{headers.get(b'user-agent', b'').decode('latin-1')}"
        # A plain GET of a segment answered within the last RECENT_SECONDS gets the same
        # answer without asking fastpath again (a quarter of a small segment's cost).
        plain = method == b"GET" and not (b"range" in headers or b"if-none-match" in headers
                                          or b"if-range" in headers)
        replay = origin.replays.get(self.url) if plain else None
        if replay is not None and replay[0] > time.monotonic():
            out, entity = replay[1], replay[2]
            replayed(out, client, started)
        else:
            out = self._ask(origin, method, headers, client)
            if out is None:
                return False
            entity = (_encoded(out.headers) if isinstance(out.headers, tuple)
                      else _encode(out.headers))
            if plain and out.segment_of is not None:
                origin.remember(self.url, out, entity)
        self._send(method, out, entity)
        return True

    def _ask(self, origin: Any, method: bytes, headers: dict[bytes, bytes], client: str
             ) -> MediaAnswer | None:
        try:
            raw_path = httptools.parse_url(self.url).path
        except httptools.HttpParserInvalidURLError:
            return None  # uvicorn's path answers 400
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = urllib.parse.unquote(path)
        if not is_candidate(method.decode("ascii"), path):
            return None
        return answer(origin.flask_app, MediaRequest(
            method=method.decode("ascii"),
            path=path,
            raw_path=raw_path.decode("latin-1"),
            client=client,
            if_none_match=_text(headers.get(b"if-none-match")),
            range=_text(headers.get(b"range")),
            if_range=b"if-range" in headers,
        ))

    def _send(self, method: bytes, out: MediaAnswer, entity: bytes) -> None:
        """Status line, date, the answer's headers (`entity`, encoded), then the body."""
        keep_alive = self.parser.get_http_version() == "1.1" and self.parser.should_keep_alive()
        parts = [STATUS_LINE[out.status]]
        for name, value in self.server_state.default_headers:  # date (and server, if on)
            parts += [name, b": ", value, b"\r\n"]
        parts.append(entity)
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        head = b"".join(parts)
        if method != b"GET":
            self.transport.write(head)
        elif out.path is None:
            _send_bytes(self.transport, self._sock, head, out.data)
        else:
            _send_file(self.transport, self._sock, head, out.path, out.size)
        self._answered = True
        if keep_alive:
            self.on_response_complete()  # counts it, arms the keep-alive timer
        else:
            self.server_state.total_requests += 1
            self.transport.close()


def _send_bytes(transport: asyncio.Transport, sock: socket.socket | None, head: bytes,
                data: bytes) -> None:
    """Headers and an in-memory body (a cached live segment, a manifest) in one sendmsg,
    without joining them; what the socket does not take is queued on the transport."""
    if sock is None or transport.get_write_buffer_size():
        transport.writelines((head, data))
        return
    try:
        sent = sock.sendmsg((head, data))
    except BlockingIOError:
        sent = 0
    except OSError:  # the client is gone: the transport finds out and closes
        return
    if sent < len(head):
        transport.writelines((head[sent:], data))
    elif sent < len(head) + len(data):
        transport.write(memoryview(data)[sent - len(head):])


def _send_file(transport: asyncio.Transport, sock: socket.socket | None, head: bytes,
               path: str, size: int) -> None:
    """Headers, then the file by sendfile(2), straight to the socket: no copy of the
    body through Python (the copies were most of a large segment's cost). MSG_MORE
    holds the headers back until the body follows, so they leave in the same packets.

    Only when nothing is queued on the transport, so the bytes stay in order; what the
    socket does not take at once is queued on the transport after them.
    """
    # Opened before anything is sent: a file gone since its stat raises here, and the
    # request is still answered whole by another path.
    fd = os.open(path, os.O_RDONLY)
    try:
        if sock is None or transport.get_write_buffer_size():
            transport.writelines((head, os.pread(fd, size, 0)))
            return
        try:
            sent = sock.send(head, socket.MSG_MORE)
        except BlockingIOError:
            sent = 0
        except OSError:  # the client is gone: the transport finds out and closes
            return
        if sent < len(head):
            transport.writelines((head[sent:], os.pread(fd, size, 0)))
            return
        out = sock.fileno()
        offset = 0
        while offset < size:
            try:
                n = os.sendfile(out, fd, offset, size - offset)
            except BlockingIOError:
                break
            except OSError:
                return
            if n == 0:  # the file is shorter than its stat said
                break
            offset += n
        if offset < size:
            transport.write(os.pread(fd, size - offset, offset))
    finally:
        os.close(fd)


def _encode(headers: Iterable[tuple[str, str]]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode("latin-1")


# fastpath's whole-file headers come as (remembered) tuples: remember their encoding too
_encoded = functools.lru_cache(maxsize=4096)(_encode)


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
