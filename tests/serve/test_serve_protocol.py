"""serve/media_protocol.py over real sockets: media answered inside uvicorn's parser must
keep HTTP/1.1 intact (keep-alive, pipelining, HEAD, HTTP/1.0, Connection: close, a
client that does not read) and interleave correctly with requests uvicorn answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from servetools import VOD_ID

from asgi_server import uvicorn_server
from core.config import Settings
from hdfs_layout import StreamLayout
from serve import context, create_app
from serve.asgi import Origin

LAYOUT = StreamLayout(VOD_ID)
SEG = f"/streams/{VOD_ID}/out/360p/00000003.m4s"
SEG4 = f"/streams/{VOD_ID}/out/360p/00000004.m4s"


@pytest.fixture(scope="module")
def origin_url(vod_root: Path) -> Iterator[tuple[Origin, int]]:
    # as serve.asgi.create_origin builds it: no WSGI fast path behind the ASGI one
    app = create_app(Settings(root=vod_root.as_uri()),
                     {"EDGE_FILLER": False, "MEDIA_FAST_PATH": False})
    origin = Origin(app)
    calls = {"media": 0}
    asgi_media = origin._media

    async def counting_media(scope, send):  # noqa: ANN001, ANN202 - a spy on the ASGI path
        calls["media"] += 1
        return await asgi_media(scope, send)

    origin._media = counting_media  # type: ignore[method-assign]
    origin.calls = calls  # type: ignore[attr-defined]
    with uvicorn_server(origin) as url:
        yield origin, int(url.rsplit(":", 1)[1])


def _request(method: str, path: str, *headers: str, version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Reader:
    """Reads HTTP/1.1 responses off a socket, one at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(1 << 20)
        self.buf += chunk
        return bool(chunk)

    def response(self, head_request: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), f"connection closed mid-response: {self.buf[:200]!r}"
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        length = 0 if head_request else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            assert self._fill(), "connection closed mid-body"
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(status_line.split()[1]), headers, body

    def closed(self) -> bool:
        self.sock.settimeout(5)
        return not self.buf and not self._fill()


@contextmanager
def _put_back(vod_root: Path, number: int) -> Iterator[tuple[Path, str, bytes]]:
    """A 360p segment the test may delete or rewrite: (file, URL, bytes), restored after."""
    src = vod_root / LAYOUT.media_segment("360p", number)
    saved = src.read_bytes()
    try:
        yield src, f"/streams/{VOD_ID}/out/360p/{number:08d}.m4s", saved
    finally:
        src.write_bytes(saved)


def _connect(port: int) -> tuple[socket.socket, Reader]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    return sock, Reader(sock)


def test_plain_media_is_answered_inline_not_by_the_asgi_path(origin_url, vod_root):
    origin, port = origin_url
    before = origin.calls["media"]
    sock, reader = _connect(port)
    with sock:
        for _ in range(3):
            sock.sendall(_request("GET", SEG))
            status, headers, body = reader.response()
            assert status == 200 and body == (vod_root / LAYOUT.media_segment("360p", 3)
                                               ).read_bytes()
            assert headers["content-type"] == "video/mp4" and "date" in headers
    assert origin.inline_media and origin.calls["media"] == before


def test_pipelined_requests_of_both_paths_answer_in_order(origin_url, vod_root):
    _, port = origin_url
    seg = (vod_root / LAYOUT.media_segment("360p", 3)).read_bytes()
    seg4 = (vod_root / LAYOUT.media_segment("360p", 4)).read_bytes()
    sock, reader = _connect(port)
    with sock:
        sock.sendall(b"".join([
            _request("GET", SEG),
            _request("GET", "/healthz"),  # Flask, on the thread pool
            _request("HEAD", SEG4),
            _request("GET", SEG4, "Range: bytes=10-19"),
            _request("GET", f"/streams/{VOD_ID}/out/360p/99999999.m4s"),  # Flask's 404
            _request("GET", SEG, "If-Range: \"x\"", "Range: bytes=0-3"),  # Flask's full answer
            _request("GET", f"/streams/{VOD_ID}/manifest.mpd"),
            _request("GET", SEG4),
        ]))
        s1, _, b1 = reader.response()
        s2, _, b2 = reader.response()
        s3, h3, b3 = reader.response(head_request=True)
        s4, h4, b4 = reader.response()
        s5, h5, _ = reader.response()
        s6, _, b6 = reader.response()
        s7, h7, b7 = reader.response()
        s8, _, b8 = reader.response()
    assert (s1, b1) == (200, seg)
    assert s2 == 200 and b'"status":"ok"' in b2
    assert s3 == 200 and int(h3["content-length"]) == len(seg4) and b3 == b""
    assert s4 == 206 and b4 == seg4[10:20] and h4["content-range"] == f"bytes 10-19/{len(seg4)}"
    assert s5 == 404 and h5["content-type"] == "application/json"
    assert (s6, b6) == (200, seg)  # If-Range with another tag: the whole file
    assert s7 == 200 and h7["content-type"] == "application/dash+xml" and b"<MPD" in b7
    assert (s8, b8) == (200, seg4)


@pytest.mark.parametrize("request_bytes", [
    _request("GET", SEG, version="1.0"),
    _request("GET", SEG, "Connection: close"),
], ids=["http-1.0", "connection-close"])
def test_connection_ends_after_the_answer_when_asked(origin_url, vod_root, request_bytes):
    _, port = origin_url
    sock, reader = _connect(port)
    with sock:
        sock.sendall(request_bytes)
        status, _, body = reader.response()
        assert status == 200 and body == (vod_root / LAYOUT.media_segment("360p", 3)).read_bytes()
        assert reader.closed()


def test_a_client_that_reads_late_gets_every_byte_in_order(origin_url, vod_root):
    """40 pipelined requests (several MB) sent before reading anything: sendfile fills the
    socket, the rest queues on the transport, then uvicorn's flow control takes over."""
    _, port = origin_url
    files = {p: (vod_root / LAYOUT.media_segment("360p", n)).read_bytes()
             for p, n in ((SEG, 3), (SEG4, 4))}
    order = [SEG if i % 3 else SEG4 for i in range(40)]
    sock, reader = _connect(port)
    with sock:
        sock.sendall(b"".join(_request("GET", p) for p in order))
        time.sleep(1.0)  # let the server run into a full socket buffer
        for i, path in enumerate(order):
            status, _, body = reader.response()
            assert status == 200 and body == files[path], f"response {i} ({path})"


def test_a_failing_fast_path_falls_back_to_flask(origin_url, vod_root, monkeypatch, caplog):
    """An unexpected error in the fast path costs neither the request nor the connection:
    the Flask route (not patched here) answers it."""
    origin, port = origin_url

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in the fast path")

    monkeypatch.setattr("serve.fastpath.segment_body", broken)
    context.get(origin.flask_app).recent_segments.clear()  # the memo would skip the bug
    seg = (vod_root / LAYOUT.media_segment("360p", 3)).read_bytes()
    sock, reader = _connect(port)
    with sock:
        for _ in range(2):
            sock.sendall(_request("GET", SEG))
            status, _, body = reader.response()
            assert (status, body) == (200, seg)
    assert "a bug in the fast path" in caplog.text


def test_a_segment_deleted_after_its_stat_is_a_404_on_a_live_connection(origin_url, vod_root):
    """The one-second segment memo may name a file that is gone; the answer is then a
    clean 404 (Flask's), not headers without a body."""
    _, port = origin_url
    sock, reader = _connect(port)
    with _put_back(vod_root, 5) as (src, url, _), sock:
        sock.sendall(_request("GET", url))
        assert reader.response()[0] == 200  # now remembered with its stat
        src.unlink()
        sock.sendall(_request("GET", url) + _request("GET", SEG))
        status, headers, _ = reader.response()
        assert status == 404 and headers["content-type"] == "application/json"
        assert reader.response()[0] == 200


def test_a_segment_rewritten_in_place_is_seen_within_a_second(origin_url, vod_root):
    """Segments are remembered per URL for a second (fastpath.RECENT_SECONDS); a VOD
    transcoded again rewrites them, and viewers get the new bytes after that."""
    from serve.fastpath import RECENT_SECONDS

    _, port = origin_url
    sock, reader = _connect(port)
    with _put_back(vod_root, 7) as (src, url, saved), sock:
        sock.sendall(_request("GET", url))
        assert reader.response()[2] == saved
        src.write_bytes(saved[:1000])
        time.sleep(RECENT_SECONDS + 0.2)
        sock.sendall(_request("GET", url))
        status, _, body = reader.response()
        assert status == 200 and body == saved[:1000]


def test_bytes_from_memory_reach_a_late_reader_whole_and_in_order(origin_url):
    """Live segments come from the last-seconds cache: headers and bytes leave in one
    sendmsg, and what the socket cannot take queues on the transport, in order."""
    origin, port = origin_url
    ctx = context.get(origin.flask_app)
    url = f"/streams/{VOD_ID}/out/360p/00000008.m4s"
    big = bytes(range(256)) * 8192  # 2 MB, more than a socket buffer takes at once
    ctx.recent_segments.clear()
    assert ctx.cache.put(LAYOUT.media_segment("360p", 8), big)
    order = [url, SEG, url, url, f"/streams/{VOD_ID}/manifest.mpd"] * 4
    sock, reader = _connect(port)
    with sock:
        sock.sendall(b"".join(_request("GET", p) for p in order))
        time.sleep(1.0)
        for i, path in enumerate(order):
            status, headers, body = reader.response()
            assert status == 200, f"response {i} ({path})"
            if path == url:
                assert body == big, f"response {i}"
            elif path == SEG:
                assert headers["content-type"] == "video/mp4" and len(body) > 1000
            else:
                assert b"<MPD" in body


def test_repeated_segment_answers_are_counted_and_conditions_still_apply(origin_url, vod_root):
    """A segment's answer is sent again to the same target for a second without asking
    fastpath; every such request is counted, and requests with conditions are not
    answered from it."""
    from serve import metrics

    _, port = origin_url
    seg = (vod_root / LAYOUT.media_segment("360p", 3)).read_bytes()

    def segment_requests() -> float:
        metrics.tally.flush()
        return metrics.REQUESTS.labels("media.segment", "200")._value.get()

    before = segment_requests()
    sock, reader = _connect(port)
    with sock:
        sock.sendall(_request("GET", SEG) * 5)
        etag = ""
        for _ in range(5):
            status, headers, body = reader.response()
            assert (status, body) == (200, seg)
            etag = headers["etag"]
        sock.sendall(_request("GET", SEG, f"If-None-Match: {etag}")
                     + _request("GET", SEG, "Range: bytes=0-9")
                     + _request("GET", SEG + "?v=2"))
        assert reader.response()[0] == 304
        assert reader.response()[:3:2] == (206, seg[:10])
        assert reader.response()[:3:2] == (200, seg)
    assert segment_requests() - before == 6  # five replays or answers, and the ?v=2 one
