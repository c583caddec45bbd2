"""Two ingest pipelines: one encoder publishes each stream to two RTMP fronts at once
(primary and backup URLs), each front with its own chunker (pipeline "a" and "b"); the
chunkers agree on every chunk by content and the first copy of each wins
(ingest/pipelines.py). Killing a front, or a chunker, mid-publish loses no frame and
adds no discontinuity.

The encoder is one ffmpeg writing MPEG-TS to two loopback UDP ports; each output leg is
an ffmpeg relaying one port to one front, restarted when it fails, the way an encoder's
outputs reconnect on their own.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest

from core.records import ChunkRecord
from core.segments import segment_from_json
from hdfs_layout import StreamLayout
from ingest.rtmp import RtmpServer, free_port
from live_tools import (
    NS,
    check_tfdt_continuous_per_period,
    ended,
    joined_rendition,
    mpd_of,
    read_all_catalog,
    storage_of,
    video_segments,
    wait_for,
)
from media_tools import count_frames
from sparkcast.stack import publisher_args
from stack_tools import running_stack

pytestmark = pytest.mark.heavy
RATE = 15
SIZE = "320x240"
SECONDS = 60


class Leg:
    """One encoder output: relays a UDP port to a front, reconnecting when it fails."""

    def __init__(self, port: int, url: str, log: Path):
        self.port, self.url, self.log = port, url, log
        self.stopped = threading.Event()
        self.connects = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Leg:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stopped.is_set():
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    ["ffmpeg", "-hide_banner", "-loglevel", "error",
                     # the encoder stopping ends the leg after 3 s without data
                     "-i", f"udp://127.0.0.1:{self.port}?fifo_size=100000&"
                     f"overrun_nonfatal=1&buffer_size=4194304&timeout=3000000",
                     "-c", "copy", "-f", "flv", self.url],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
                self.connects += 1
                code = self.proc.wait()
            if code == 0 or self.stopped.wait(1.0):
                return  # the encoder finished: this output's publish ended cleanly

    def stop(self) -> None:
        self.stopped.set()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
        self.thread.join(timeout=15)


@contextmanager
def dual_publish(key: str, fronts: list[RtmpServer], seconds: float, log_dir: Path):
    ports = [free_port() for _ in fronts]
    legs = [Leg(port, f"{front.publish_url}/{key}", log_dir / f"leg-{i}.log").start()
            for i, (port, front) in enumerate(zip(ports, fronts, strict=True))]
    time.sleep(1.0)  # the legs listen before the encoder sends
    outputs = "|".join(f"[f=mpegts]udp://127.0.0.1:{p}?pkt_size=1316" for p in ports)
    args = publisher_args(outputs, seconds, size=SIZE, rate=RATE, container="tee")
    encoder = subprocess.Popen(args[:-1] + ["-map", "0:v", "-map", "1:a", args[-1]],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        yield encoder, legs
    finally:
        if encoder.poll() is None:
            encoder.kill()
        encoder.wait()
        for leg in legs:
            leg.stop()


def kill_front(front: RtmpServer) -> None:
    """SIGKILL nginx's master and worker, as a crash would (its chunker lives on)."""
    assert front.proc is not None
    master = psutil.Process(front.proc.pid)
    workers = [p for p in master.children() if "nginx" in p.name()]
    for p in [master, *workers]:
        with suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    front.proc.wait()


def chunker_of(front: RtmpServer) -> psutil.Process | None:
    assert front.proc is not None
    for p in psutil.Process(front.proc.pid).children(recursive=True):
        with suppress(psutil.NoSuchProcess):
            if "live-ingest" in " ".join(p.cmdline()):
                return p
    return None


@pytest.fixture(scope="module")
def dual(tmp_path_factory):
    """One live stack (its front is pipeline a) and front b, for every test of the module
    (each publishes its own stream); a test that restarts a front puts it in the list."""
    tmp = tmp_path_factory.mktemp("dual")
    with running_stack(tmp, ingest_pipeline="a", live_end_timeout=8.0) as stack:
        assert stack.rtmp is not None
        b_settings = stack.settings.model_copy(update={"ingest_pipeline": "b", "rtmp_port": 0})
        front_b = RtmpServer(b_settings, tmp / "run" / "rtmp-b", stack.base_url,
                             host="127.0.0.1").start()
        fronts = [stack.rtmp, front_b]
        try:
            yield stack, fronts
        finally:
            stack.rtmp = fronts[0]  # stopped by the stack
            fronts[1].stop()


def restart(front: RtmpServer) -> RtmpServer:
    again = RtmpServer(front.settings, front.run_dir, front.callback_base, host=front.host,
                       port=front.port, stat_port=front.stat_port)
    return again.start()


def segments_listed_per_front(stack, stream: str) -> dict[str, int]:
    """How many chunks each pipeline's copy won (index records name their raw file)."""
    st, layout = storage_of(stack), StreamLayout(stream)
    won = {"a": 0, "b": 0}
    for name in st.list(layout.index_dir):
        raw = st.read_text(f"{layout.index_dir}/{name}")
        for p in won:
            if f".{p}.ts" in raw:
                won[p] += 1
    return won


def check_one_unbroken_stream(stack, stream: str, tmp_path: Path) -> None:
    wait_for(lambda: ended(stack, stream), 120, f"{stream} to end", stack)
    mpd = mpd_of(stack, stream)
    assert len(mpd.findall("d:Period", NS)) == 1, "a discontinuity (new period) appeared"
    listed = video_segments(mpd)
    assert len({t for _, t, _ in listed}) == len(listed), "a segment listed twice"
    check_tfdt_continuous_per_period(stack, stream)
    for rendition in ("240p", "180p"):
        f = joined_rendition(stack, stream, rendition, tmp_path)
        assert count_frames(f) == SECONDS * RATE, rendition
    st, layout = storage_of(stack), StreamLayout(stream)
    seqs = [int(n.split(".")[0]) for n in st.list(layout.index_dir)]
    assert seqs == list(range(len(seqs)))
    # Audio: every segment once, each within one AAC frame of its video segment's start,
    # and all of the minute there.
    audio = sorted((segment_from_json(st.read(f"{layout.audio_index_dir}/{n}"))
                    for n in st.list(layout.audio_index_dir)), key=lambda s: s.number)
    assert [s.number for s in audio] == list(range(len(audio)))
    for k, seg in enumerate(audio):
        assert 0 <= seg.start - k * 96000 < 1024, k
    total = sum(s.duration for s in audio) / 48000
    assert abs(total - SECONDS) < 0.2, total
    catalog = read_all_catalog(stack, stream)
    assert len(catalog) == len({(s.rendition, s.number) for s in catalog})


def chunks(stack, stream: str) -> int:
    return len(storage_of(stack).list(StreamLayout(stream).index_dir))


def wait_chunks(stack, stream: str, n: int, what: str) -> None:
    wait_for(lambda: chunks(stack, stream) >= n, 60, what, stack)


def test_each_front_killed_in_turn_loses_no_frame(dual, tmp_path):
    stack, fronts = dual
    key = stack.create_key("dual")
    with dual_publish(key, fronts, SECONDS, tmp_path) as (encoder, legs):
        wait_chunks(stack, "dual", 4, "four chunks")
        kill_front(fronts[0])
        time.sleep(6)
        fronts[0] = restart(fronts[0])
        wait_chunks(stack, "dual", chunks(stack, "dual") + 5, "chunks after front a's return")
        kill_front(fronts[1])
        time.sleep(6)
        fronts[1] = restart(fronts[1])
        assert encoder.wait(timeout=SECONDS + 30) == 0, encoder.stderr.read()[-2000:]
        assert all(leg.connects >= 2 for leg in legs), [leg.connects for leg in legs]
    check_one_unbroken_stream(stack, "dual", tmp_path)
    won = segments_listed_per_front(stack, "dual")
    assert won["a"] > 0 and won["b"] > 0, won  # each carried the stream for a while
    # The losers' copies are gone.
    assert len(storage_of(stack).list(StreamLayout("dual").raw_dir)) == chunks(stack, "dual")


def test_each_chunker_killed_in_turn_loses_no_frame(dual, tmp_path):
    stack, fronts = dual
    key = stack.create_key("dualc")
    with dual_publish(key, fronts, SECONDS, tmp_path) as (encoder, _):
        wait_chunks(stack, "dualc", 4, "four chunks")
        first = chunker_of(fronts[0])
        assert first is not None
        first.send_signal(signal.SIGKILL)

        def restarted() -> bool:
            now = chunker_of(fronts[0])
            return now is not None and now.pid != first.pid

        # nginx starts another (respawn): it reads the publish's recording from the start
        wait_for(restarted, 30, "the front to restart its chunker", stack)
        wait_chunks(stack, "dualc", chunks(stack, "dualc") + 5, "chunks after the restart")
        second = chunker_of(fronts[1])
        assert second is not None
        second.send_signal(signal.SIGKILL)
        assert encoder.wait(timeout=SECONDS + 30) == 0, encoder.stderr.read()[-2000:]
    check_one_unbroken_stream(stack, "dualc", tmp_path)


def test_a_publisher_with_one_url_moves_to_the_other_front_as_a_new_period(dual, tmp_path):
    """No second output: the publisher's front dies and it reconnects to the other front.
    The stream goes on in a new period, with the gap the publisher had, and every frame
    that reached a front is kept."""
    stack, fronts = dual
    key = stack.create_key("moved")
    first = subprocess.Popen(publisher_args(f"{fronts[0].publish_url}/{key}", None,
                                            size=SIZE, rate=RATE),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_chunks(stack, "moved", 4, "four chunks")
        kill_front(fronts[0])
        first.wait(timeout=20)  # its connection is gone
    finally:
        if first.poll() is None:
            first.kill()
        fronts[0] = restart(fronts[0])  # for the module's next test
    second = subprocess.Popen(publisher_args(f"{fronts[1].publish_url}/{key}", 20,
                                             size=SIZE, rate=RATE),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    assert second.wait(timeout=60) == 0, second.stderr.read()[-2000:]
    wait_for(lambda: ended(stack, "moved"), 120, "the stream to end", stack)
    mpd = mpd_of(stack, "moved")
    assert len(mpd.findall("d:Period", NS)) == 2
    check_tfdt_continuous_per_period(stack, "moved")
    st, layout = storage_of(stack), StreamLayout("moved")
    records = [ChunkRecord.from_json(st.read(f"{layout.index_dir}/{n}"))
               for n in st.list(layout.index_dir)]
    # The dead front's chunker closed its publish: nothing went on past its end.
    assert [r.last for r in records if r.period == 0][-1]
    assert [r.seq for r in records] == list(range(len(records)))
    # The second publish is all there (its front never failed): 20 s of frames.
    frames = count_frames(joined_rendition(stack, "moved", "240p", tmp_path))
    assert frames >= 20 * RATE + 4 * 2 * RATE, frames
