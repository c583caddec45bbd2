"""The origin tried as an attacker would (issue 15): every answer, from Flask alone and
through the nginx front door `sparkcast serve` runs, is a clean 4xx, never a 500 or a
file served under a name that is not its own."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lxml import etree
from servetools import VOD_ID, live_copy

from core.config import Settings
from serve import create_app

SEG = f"/streams/{VOD_ID}/out/360p/00000003.m4s"
NS = "{urn:mpeg:dash:schema:mpd:2011}"
HUGE = "9" * 30


@pytest.mark.parametrize("header", [
    f"bytes={HUGE}-", f"bytes={HUGE}-{HUGE}9", "bytes=18446744073709551615-18446744073709551616",
])
def test_a_range_starting_past_any_file_is_416(client, header: str, caplog) -> None:
    n = len(client.get(SEG).data)
    with caplog.at_level(logging.WARNING):
        r = client.get(SEG, headers={"Range": header})
    assert r.status_code == 416, (header, r.status_code)
    assert r.headers["Content-Range"] == f"bytes */{n}"
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]  # no traceback


@pytest.mark.parametrize("header", [f"bytes=0-{HUGE}", f"bytes=-{HUGE}"])
def test_a_range_ending_past_the_file_is_the_whole_file(client, header: str) -> None:
    whole = client.get(SEG).data
    r = client.get(SEG, headers={"Range": header})
    assert r.status_code == 206 and r.data == whole, (header, r.status_code)
    assert r.headers["Content-Range"] == f"bytes 0-{len(whole) - 1}/{len(whole)}"


@pytest.mark.parametrize("header", ["bytes=5-1", "bytes=--5", "bytes=a-b", "bytes 0-1",
                                    "items=0-1", "bytes=0-1,2-3"])
def test_a_malformed_range_is_ignored_or_refused(client, header: str) -> None:
    r = client.get(SEG, headers={"Range": header})
    assert r.status_code in (200, 416), (header, r.status_code)


@pytest.mark.parametrize("path", [
    f"/streams/{VOD_ID}/out/360p/00000003.m4s%0A",
    f"/streams/{VOD_ID}/out/360p%0A/00000003.m4s",
    f"/streams/{VOD_ID}%0A/out/360p/00000003.m4s",
    f"/streams/{VOD_ID}%0A/manifest.mpd",
    f"/streams/{VOD_ID}/360p.m3u8%0A",
])
def test_names_are_matched_whole(client, path: str) -> None:
    """A trailing newline is not the name it follows."""
    assert client.get(path).status_code == 404, path


@pytest.fixture
def live_root(vod_root: Path, tmp_path: Path) -> Path:
    return live_copy(vod_root, tmp_path, "live2")


def _clock(client, host: str) -> str:
    r = client.get("/streams/live2/manifest.mpd", headers={"Host": host})
    assert r.status_code == 200
    timing = etree.fromstring(r.data).find(f"{NS}UTCTiming")
    return timing.get("value")


@pytest.mark.parametrize("settings, expected", [
    ({}, "http://127.0.0.1:8080/clock"),
    ({"host": "0.0.0.0"}, "/clock"),
    ({"origins": "https://o1.example/,https://o2.example"}, "https://o1.example/clock"),
    ({"clock_url": "https://time.example/clock", "origins": "https://o1.example"},
     "https://time.example/clock"),
])
def test_the_live_clock_url_comes_from_settings_not_the_host_header(
        live_root: Path, settings: dict, expected: str) -> None:
    app = create_app(Settings(root=live_root.as_uri(), **settings),
                     {"TESTING": True, "EDGE_FILLER": False})
    client = app.test_client()
    assert _clock(client, "evil.example") == expected
    assert _clock(client, "127.0.0.1:8080") == expected


def _send_head(url: str, header_bytes: int, finish: bool) -> bytes:
    """Send a GET whose one header is `header_bytes` long (finished or not); the answer."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as s:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            sent, block = 0, b"a" * (1 << 20)
            while sent < header_bytes:
                s.sendall(block)
                sent += len(block)
            if finish:
                s.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the origin gave up on us: what it said is still in the socket
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return answer


def _tree_rss(pid: int) -> int:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])


def test_huge_request_headers_are_refused_early_and_cost_no_memory(server_factory) -> None:
    """Through `sparkcast serve`: a 16 MB header, and 4 connections sending 32 MB of
    headers that never end, are each refused early (nginx: 400, "Request Header Or Cookie
    Too Large"); neither nginx nor the origin grows by what they sent, and serve goes on."""
    import requests

    server = server_factory()
    before = _tree_rss(server.proc.pid)
    assert _send_head(server.url, 16 << 20, finish=True).startswith(b"HTTP/1.1 400")
    for _ in range(4):
        assert _send_head(server.url, 32 << 20, finish=False).startswith(b"HTTP/1.1 400")
    grown = _tree_rss(server.proc.pid) - before
    assert grown < 40 << 20, f"serve grew by {grown >> 20} MB"
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
    ok = requests.get(f"{server.url}/healthz", headers={"X-Fine": "b" * 16_000}, timeout=5)
    assert ok.status_code == 200  # a large but sane header still passes


def test_headers_sent_slowly_are_cut_off_and_hold_nothing(server_factory) -> None:
    """Through `sparkcast serve`: 30 connections trickle a request head one byte a second
    (slowloris). /healthz answers at once meanwhile, and nginx closes each within its
    client_header_timeout (10 s) however it keeps trickling."""
    import socket
    import threading
    import time

    import requests

    server = server_factory("--workers", "1", "--threads", "2")
    closed_after: list[float] = []

    def trickle() -> None:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                while time.monotonic() - started < 25:
                    s.sendall(b"X")
                    time.sleep(1)
            except OSError:
                pass  # reset: the server gave up on us
            closed_after.append(time.monotonic() - started)

    threads = [threading.Thread(target=trickle) for _ in range(30)]
    for t in threads:
        t.start()
    time.sleep(2)
    t0 = time.monotonic()
    assert requests.get(f"{server.url}/healthz", timeout=3).status_code == 200
    assert time.monotonic() - t0 < 1
    for t in threads:
        t.join(40)
    assert len(closed_after) == 30 and max(closed_after) < 15, closed_after
