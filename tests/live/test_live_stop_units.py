"""Stopping and timekeeping of the live path, without a cluster (issue 12): stop signals
that never deadlock, a stream lock a stuck chunker cannot hold forever, frame rates
read alike for files and live, a Period closed before a reconnect gap, and the demo's
chunk length taken from the settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import pytest
from lxml import etree

from core.config import DEMO_CHUNK_SECONDS, Settings, demo_settings
from core.media.probe import frame_rate, snap_rate
from core.segments import Segment
from ingest.stream_lock import StreamLock, lock_holders
from manifest.mpd import NS, build_mpd
from manifest.presentation import Period, Presentation, Track

REPO = Path(__file__).resolve().parents[2]

# A child that installs the stop handler and then waits on the Event in a tight loop,
# the way the live commands do, while the parent sends it a storm of TERMs and INTs.
STORM_CHILD = textwrap.dedent("""
    import sys, threading, time
    sys.path.insert(0, {repo!r})
    {install}
    print("ready", flush=True)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        stop.wait(0.0005)
    print("done", stop.is_set(), flush=True)
""")
NEW_HANDLER = ("from sparkcast.stop_signal import stop_on_signals\n"
               "stop = stop_on_signals()")


def _storm(install: str, seconds: float = 2.5) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", STORM_CHILD.format(repo=str(REPO),
                                                                        install=install)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    end = time.monotonic() + seconds
    while time.monotonic() < end and child.poll() is None:
        for sig in (signal.SIGTERM, signal.SIGINT):  # two signals at once, again and again
            try:
                os.kill(child.pid, sig)
            except ProcessLookupError:
                break
    return child


def test_a_storm_of_stop_signals_never_deadlocks_the_handler():
    child = _storm(NEW_HANDLER)
    try:
        out, _ = child.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        pytest.fail("the process hung inside its stop-signal handler")
    assert child.returncode == 0 and out.strip() == "done True", out


# A signal that arrives while the interrupted code holds the Event's lock: the exact
# moment of the chunker's hang (a second signal landing inside the first handler's
# Event.set()), made certain by holding that lock ourselves. `_cond` is threading's own
# attribute: the only handle on the lock an Event.set() takes.
HELD_CHILD = textwrap.dedent("""
    import os, signal, sys, threading, time
    sys.path.insert(0, {repo!r})
    {install}
    event = getattr(stop, "event", stop)
    with event._cond:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # the handler runs here, on this thread
    print("survived", event.wait(5), flush=True)
""")
OLD_HANDLER = textwrap.dedent("""
    import signal, threading
    stop = threading.Event()
    def handler(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, handler)
""")


@pytest.mark.parametrize(("install", "hangs"), [
    (NEW_HANDLER.replace("stop = stop_on_signals()",
                         "from sparkcast.stop_signal import StopRequest\nstop = StopRequest()"),
     False),
    (OLD_HANDLER, True),  # what the live commands used to install
])
def test_a_signal_inside_a_held_event_lock(install, hangs):
    child = subprocess.Popen([sys.executable, "-c", HELD_CHILD.format(repo=str(REPO),
                                                                       install=install)],
                             stdout=subprocess.PIPE, text=True)
    try:
        out, _ = child.communicate(timeout=8)
        hung = False
    except subprocess.TimeoutExpired:
        hung = True
    finally:
        child.kill()
        child.wait()
    assert hung == hangs, out
    if not hangs:
        assert out.strip() == "survived True"


HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from ingest.stream_lock import StreamLock
    lock = StreamLock("stuck", directory={dir!r})
    lock.acquire()
    print("held", flush=True)
    time.sleep(600)  # stuck: alive, holding the lock, no beats
""")


def test_a_stuck_holder_is_killed_and_its_lock_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c",
                               HOLDER.format(repo=str(REPO), dir=str(tmp_path))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = StreamLock("stuck", stale_after=1.5, directory=tmp_path)
        assert lock_holders(lock.path) == [holder.pid]
        started = time.monotonic()
        with lock:
            took = time.monotonic() - started
            assert lock_holders(lock.path) == [os.getpid()]
        assert holder.wait(timeout=5) == -signal.SIGKILL
        assert 1.5 <= took < 5, took
        assert lock_holders(lock.path) == []
    finally:
        holder.kill()
        holder.wait()


def test_a_holder_that_beats_keeps_its_lock(tmp_path):
    holder = StreamLock("busy", stale_after=1.0, directory=tmp_path)
    holder.acquire()
    waiter_code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from ingest.stream_lock import StreamLock
        with StreamLock("busy", stale_after=1.0, directory={str(tmp_path)!r}):
            print("got it", flush=True)
    """)
    waiter = subprocess.Popen([sys.executable, "-c", waiter_code], stdout=subprocess.PIPE,
                              text=True)
    try:
        for _ in range(30):  # 3 s of progress, three times the stale limit
            holder.beat()
            time.sleep(0.1)
            assert waiter.poll() is None, "the waiter took a lock whose holder made progress"
        holder.release()
        out, _ = waiter.communicate(timeout=10)
        assert out.strip() == "got it"
    finally:
        holder.release()
        waiter.kill()
        waiter.wait()


def test_lock_holders_reads_proc_locks_for_this_file_only(tmp_path):
    path = tmp_path / "x.lock"
    path.write_text("")
    st = path.stat()
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    text = (f"1: FLOCK  ADVISORY  WRITE 4242 {ident} 0 EOF\n"
            f"1: -> FLOCK  ADVISORY  WRITE 4243 {ident} 0 EOF\n"
            f"2: FLOCK  ADVISORY  WRITE 77 {ident}9 0 EOF\n"
            f"3: POSIX  ADVISORY  WRITE 88 {ident} 0 EOF\n")
    assert lock_holders(path, text) == [4242]


# ffprobe's entries for nginx-rtmp recordings of ffmpeg publishes (FLV: millisecond
# timestamps), measured on this machine, and for containers with odd base rates.
@pytest.mark.parametrize(("r", "avg", "time_base", "expected"), [
    ("24/1", "293/12", "1/1000", "24"),
    ("25/1", "25/1", "1/1000", "25"),
    ("30000/1001", "1000/33", "1/1000", "30000/1001"),
    ("30/1", "1000/33", "1/1000", "30"),
    ("50/1", "50/1", "1/1000", "50"),
    ("60/1", "125/2", "1/1000", "60"),
    ("15/1", "15/1", "1/1000", "15"),  # not a broadcast rate, but exact: kept
    ("90000/1", "1000/33", "1/1000", "30"),  # implausible base rate: measured, snapped
    ("90000/1", "30000/1001", "1/90000", "30000/1001"),
    ("0/0", "0/0", "1/1000", None),
])
def test_frame_rate_is_the_declared_rate_snapped_to_a_standard(r, avg, time_base, expected):
    rate = frame_rate({"r_frame_rate": r, "avg_frame_rate": avg, "time_base": time_base})
    assert rate == (Fraction(expected) if expected else None)


def test_snap_rate_leaves_rates_far_from_any_standard():
    assert snap_rate(Fraction(1000, 33), 0.02) == 30
    assert snap_rate(Fraction(1000, 33), 0.001) == Fraction(1000, 33)
    assert snap_rate(Fraction(12), 0.05) == 12


def _track(kind: str, timescale: int, starts: list[int], d: int) -> Track:
    segs = tuple(Segment(stream_id="s", rendition="240p" if kind == "video" else "audio",
                         number=i, start=t, duration=d, timescale=timescale, bytes=1000,
                         chunk_seq=i, period=0, init_sha1="0", codec="avc1.64001e")
                 for i, t in enumerate(starts))
    return Track(id=segs[0].rendition, kind=kind, codec="avc1.64001e", timescale=timescale,
                 segments=segs, width=320, height=240, frame_rate="30",
                 presentation_time_offset=starts[0])


def test_a_period_before_a_reconnect_gap_ends_where_its_media_ends():
    # p0: 3 x 2 s from 0; the publisher came back 10 s later: p1 starts at 16 s.
    p0 = Period("0", 0.0, (_track("video", 30000, [0, 60000, 120000], 60000),))
    p1 = Period("1", 16.0, (_track("video", 30000, [480000, 540000], 60000),))
    p2 = Period("2", 20.0, (_track("video", 30000, [600000], 60000),))
    mpd = etree.fromstring(build_mpd(Presentation("s", (p0, p1, p2))).encode())
    periods = mpd.findall(f"{{{NS}}}Period")
    assert [(p.get("start"), p.get("duration")) for p in periods] == [
        ("PT0.000S", "PT6.000S"),  # closed: a gap follows
        ("PT16.000S", None),  # contiguous with p2: runs up to it
        ("PT20.000S", None),  # the last one is never closed
    ]


def test_the_demo_takes_its_chunk_length_from_the_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARKCAST_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("SPARKCAST_CHUNK_SECONDS", raising=False)
    assert demo_settings(Settings()).chunk_seconds == DEMO_CHUNK_SECONDS
    monkeypatch.setenv("SPARKCAST_CHUNK_SECONDS", "2")
    assert demo_settings(Settings()).chunk_seconds == 2
    assert demo_settings(Settings(chunk_seconds=6)).chunk_seconds == 6
