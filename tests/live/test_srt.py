"""SRT ingest (ingest/srt_front.py) with real ffmpeg callers, the live stack and Chromium:
a valid key plays, a bad one is rejected in the handshake, and 2% packet loss on the way
costs no frame."""

from __future__ import annotations

import random
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hdfs_layout import StreamLayout
from ingest.rtmp import free_port
from ingest.srt_front import publish_key
from live_tools import (
    ended,
    joined_rendition,
    mpd_of,
    plays_in_chromium,
    storage_of,
    wait_for,
)
from media_tools import count_frames
from sparkcast.stack import LiveStack, publisher_args
from stack_tools import running_stack

RATE, SIZE, SECONDS = 15, "320x240", 20


def test_the_stream_key_is_read_from_either_streamid_form() -> None:
    assert publish_key("sk_abc-DEF_1") == "sk_abc-DEF_1"
    assert publish_key("#!::r=sk_abc,m=publish") == "sk_abc"
    assert publish_key("#!::m=publish,r=sk_abc") == "sk_abc"
    assert publish_key("#!::r=sk_abc") == "sk_abc"  # publish is the default mode
    for refused in ("#!::r=sk_abc,m=request", "#!::r=,m=publish", "#!::sk_abc", "",
                    "sk abc", "sk_abc\n", "x" * 200, "#!::u=alice,m=publish"):
        assert publish_key(refused) is None, refused


class LossyRelay:
    """UDP between an SRT caller and the front, dropping `loss` of the datagrams each way
    (seeded): the lossy contribution link of a test."""

    def __init__(self, target_port: int, loss: float, seed: int = 7) -> None:
        self.port = free_port()
        self.target = ("127.0.0.1", target_port)
        self.loss, self.rng = loss, random.Random(seed)
        self.dropped = self.passed = 0
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", self.port))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.caller: tuple[str, int] | None = None
        self._stop = threading.Event()
        for fn in (self._up, self._down):
            threading.Thread(target=fn, daemon=True).start()

    def _forward(self, data: bytes, sock: socket.socket, to: tuple[str, int]) -> None:
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        self.passed += 1
        sock.sendto(data, to)

    def _up(self) -> None:
        self.front.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, self.caller = self.front.recvfrom(65536)
            except TimeoutError:
                continue
            self._forward(data, self.back, self.target)

    def _down(self) -> None:
        self.back.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, _ = self.back.recvfrom(65536)
            except TimeoutError:
                continue
            if self.caller is not None:
                self._forward(data, self.front, self.caller)

    def close(self) -> None:
        self._stop.set()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveStack, int]]:
    tmp = tmp_path_factory.mktemp("srt")
    with running_stack(tmp, live_end_timeout=6) as s:
        port = free_port()
        log = open(tmp / "srt.log", "wb")  # noqa: SIM115 - kept for the run
        front = subprocess.Popen(["sparkcast", "srt", "run", "--port", str(port), "--run-dir",
                                  str(tmp / "srt")], env=s.env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while b"SRT front: publish to" not in (tmp / "srt.log").read_bytes():
            assert front.poll() is None and time.monotonic() < deadline, \
                (tmp / "srt.log").read_text()
            time.sleep(0.2)
        try:
            yield s, port
        finally:
            front.terminate()
            front.wait(60)
            log.close()


def _publish(port: int, streamid: str, seconds: float = SECONDS) -> subprocess.Popen[str]:
    url = f"srt://127.0.0.1:{port}?streamid={streamid}&latency=500000"
    args = publisher_args(url, seconds, size=SIZE, rate=RATE, container="mpegts")
    args[args.index("error")] = "warning"  # the rejection's words
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _every_frame(stack: LiveStack, stream_id: str, tmp_path: Path) -> None:
    wait_for(lambda: ended(stack, stream_id), 120, f"{stream_id} to end", stack)
    for rendition in ("240p", "180p"):
        assert count_frames(joined_rendition(stack, stream_id, rendition, tmp_path)) \
            == SECONDS * RATE, rendition


@pytest.mark.browser
def test_an_srt_publish_plays_in_chromium(stack, browser, tmp_path: Path) -> None:
    s, port = stack
    key = s.create_key("srtshow")
    pub = _publish(port, f"#!::r={key},m=publish")
    wait_for(lambda: mpd_of(s, "srtshow"), 60, "the first live MPD", s)
    plays_in_chromium(browser, f"{s.base_url}/watch/srtshow?engine=dash", live=True)
    _, err = pub.communicate(timeout=60)
    assert pub.returncode == 0, err[-2000:]
    _every_frame(s, "srtshow", tmp_path)


@pytest.mark.heavy
def test_a_bad_key_is_rejected_in_the_handshake(stack) -> None:
    s, port = stack
    good = s.create_key("srtguarded")
    for streamid in ("sk_not_a_key", f"#!::r={good},m=request"):
        pub = _publish(port, streamid, seconds=5)
        _, err = pub.communicate(timeout=30)
        assert pub.returncode != 0 and "reject" in err.lower(), (streamid, err[-1000:])
    assert not storage_of(s).exists(StreamLayout("srtguarded").source_record)


@pytest.mark.heavy
def test_two_percent_loss_on_the_link_loses_no_frame(stack, tmp_path: Path) -> None:
    s, port = stack
    relay = LossyRelay(port, 0.02)
    try:
        pub = _publish(relay.port, s.create_key("srtlossy"))
        _, err = pub.communicate(timeout=90)
    finally:
        relay.close()
    assert pub.returncode == 0, err[-2000:]
    assert relay.dropped >= 0.01 * (relay.dropped + relay.passed), \
        (relay.dropped, relay.passed)
    print(f"\nlossy link: {relay.dropped} of {relay.dropped + relay.passed} datagrams dropped")
    _every_frame(s, "srtlossy", tmp_path)


@pytest.mark.heavy
def test_a_chunker_that_cannot_start_lets_the_caller_go_and_keeps_nothing(stack, tmp_path,
                                                                          caplog) -> None:
    """A broken live_ingest_command: the caller is disconnected at once (its ffmpeg
    fails), the error names the command, and no recording is left behind."""
    from ingest.srt_front import SrtFront

    s, _ = stack
    broken = s.settings.model_copy(update={"live_ingest_command": "/no/such/chunker {url}"})
    with caplog.at_level("ERROR", logger="sparkcast.srt"), \
            SrtFront(broken, tmp_path / "srt", "127.0.0.1", 0) as front:
        pub = _publish(front.port, s.create_key("srtbroken"), seconds=10)
        _, err = pub.communicate(timeout=60)
    assert pub.returncode != 0, err[-1000:]
    assert "cannot run /no/such/chunker" in caplog.text
    assert list((tmp_path / "srt" / "recordings").iterdir()) == []
