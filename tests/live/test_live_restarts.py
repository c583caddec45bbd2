"""Live stops and restarts the way a broadcaster meets them (issue 12), on the real live
system: nginx-rtmp, the live chunker, the Spark live job, serve.

- `sparkcast demo` started and stopped five times on one storage root, with TERM, with
  Ctrl-C (SIGINT to its whole process group, as a terminal sends it) and with two
  signals at once: every run goes live, everything it started is gone within 10 s of
  the stop, in any process group, and no stream lock is left held;
- a chunker killed with SIGKILL mid-publish, and one whose RTMP front died without
  signalling it: the next publish of the stream goes live within 15 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from hdfs_layout import open_storage
from ingest.rtmp import free_port, sparkcast_executable
from ingest.stream_lock import lock_holders, lock_path
from sparkcast.stack import LiveStack, lists_chunk, next_chunk
from stack_tools import running_stack

pytestmark = pytest.mark.heavy

GO_LIVE_S = 15.0  # from the publish to its first segments listed in the live MPD
GONE_S = 10.0  # from a stop to the last process of the stack gone


def _wait_listed(storage, stream_id: str, seq: int, timeout: float, what: str,
                 stack: LiveStack | None = None) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if lists_chunk(storage, stream_id, seq):
            return time.monotonic() - started
        time.sleep(0.2)
    tail = f"\nlive job log:\n{stack.log_tail('live', 20)}" if stack else ""
    raise AssertionError(f"{what}: chunk {seq} of {stream_id} not listed within "
                         f"{timeout:.0f} s{tail}")


def _alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return out


def _chunker_of(stack: LiveStack, stream_id: str) -> psutil.Process:
    for p in stack.processes():
        try:
            cmd = p.cmdline()
        except psutil.NoSuchProcess:
            continue
        if "live-ingest" in cmd and stream_id in cmd:
            return p
    raise AssertionError(f"no chunker of {stream_id} among the stack's processes")


# --- the demo, five times -----------------------------------------------------------------

# How each run is stopped: (signal, to the whole process group?) sent at once.
STOPS = [
    [(signal.SIGINT, True)],  # Ctrl-C in a terminal
    [(signal.SIGTERM, False)],  # a service manager's stop
    [(signal.SIGINT, True), (signal.SIGTERM, False)],  # Ctrl-C and a kill at once
    [(signal.SIGINT, True), (signal.SIGINT, True)],  # Ctrl-C pressed twice
    [(signal.SIGTERM, False), (signal.SIGTERM, False)],
]


def _demo_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SPARKCAST_ROOT=(tmp / "root").as_uri(),
               SPARKCAST_DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite'}",
               SPARKCAST_CONFIG=str(tmp / "none.toml"), XDG_DATA_HOME=str(tmp / "data"),
               SPARKCAST_CHUNK_SECONDS="2", SPARKCAST_LADDER="240:300k,180:200k",
               SPARKCAST_PORT=str(free_port()), SPARKCAST_RTMP_PORT=str(free_port()),
               SPARK_LOCAL_IP="127.0.0.1")
    return env


def _run_demo_once(env: dict[str, str], log: Path, stops: list[tuple[int, bool]]
                   ) -> tuple[float, float, float]:
    """Start the demo, wait for its player URL, stop it; (start to URL, publish to URL,
    stop to last process gone) in seconds."""
    started = time.monotonic()
    with open(log, "w") as out:
        # Its own session, as a shell gives a foreground job its own process group.
        demo = subprocess.Popen([sparkcast_executable(), "demo", "--size", "320x240"],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    publishing = shown = None
    try:
        while time.monotonic() - started < 180:
            text = log.read_text()
            if publishing is None and "publishing a test stream" in text:
                publishing = time.monotonic()
            if "player  http" in text:
                shown = time.monotonic()
                break
            assert demo.poll() is None, f"the demo exited: {text[-2000:]}"
            time.sleep(0.2)
        assert shown is not None and publishing is not None, (
            f"the demo did not print its player URL: {log.read_text()[-2000:]}")
        procs = [psutil.Process(demo.pid), *psutil.Process(demo.pid).children(recursive=True)]
        names = {p.name() for p in procs}
        assert {"nginx", "java", "ffmpeg"} <= names, names
        stopped = time.monotonic()
        for sig, group in stops:
            if group:
                os.killpg(demo.pid, sig)
            else:
                demo.send_signal(sig)
        while _alive(procs) and time.monotonic() - stopped < 30:
            time.sleep(0.1)
        gone = time.monotonic() - stopped
        assert not _alive(procs), f"still running 30 s after the stop: {_alive(procs)}"
        return shown - started, shown - publishing, gone
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


def test_the_demo_started_and_stopped_five_times(tmp_path):
    env = _demo_env(tmp_path)
    results = []
    for i, stops in enumerate(STOPS):
        log = tmp_path / f"demo-{i}.log"
        results.append(_run_demo_once(env, log, stops))
        assert lock_holders(lock_path("demo")) == [], f"run {i}: the stream lock is held"
    print("\ndemo runs (start->URL, publish->URL, stop->all gone) s:",
          [tuple(round(x, 1) for x in r) for r in results])
    for i, (_, live, gone) in enumerate(results):
        assert live <= GO_LIVE_S, f"run {i} went live {live:.1f} s after its publish"
        assert gone <= GONE_S, f"run {i}: processes outlived the stop by {gone:.1f} s"


# --- chunkers that die ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("restarts"), live_end_timeout=20) as s:
        yield s


def _publish_until_listed(stack: LiveStack, stream_id: str, key: str
                          ) -> tuple[subprocess.Popen[bytes], float]:
    storage = open_storage(stack.settings.root)
    seq = next_chunk(storage, stream_id)
    pub = stack.publish(key, size="320x240", rate=15)
    took = _wait_listed(storage, stream_id, seq, 90, "publish", stack)
    return pub, took


def test_a_chunker_killed_mid_publish_does_not_block_the_next_publish(stack):
    key = stack.create_key("killed")
    first, _ = _publish_until_listed(stack, "killed", key)
    chunker = _chunker_of(stack, "killed")
    chunker.kill()  # SIGKILL: no last chunk, no cleanup; the kernel drops its flock
    first.kill()
    first.wait()
    chunker.wait(timeout=10)
    second, took = _publish_until_listed(stack, "killed", key)
    second.kill()
    second.wait()
    assert took <= GO_LIVE_S, f"the next publish went live {took:.1f} s after it began"


def test_a_chunker_whose_front_died_silently_does_not_block_the_next_publish(stack):
    key = stack.create_key("orphan")
    first, _ = _publish_until_listed(stack, "orphan", key)
    chunker = _chunker_of(stack, "orphan")
    assert stack.rtmp is not None and stack.rtmp.proc is not None
    nginx = psutil.Process(stack.rtmp.proc.pid)
    for p in [nginx, *nginx.children()]:  # master and worker; the chunker is not told
        p.kill()
    stack.rtmp.proc.wait()
    stack.rtmp = None
    first.wait(timeout=10)  # its connection is gone
    chunker.wait(timeout=GO_LIVE_S)  # it noticed on its own and closed the publish
    stack.start_rtmp()  # the front comes back (a new port: the old one may linger)
    second, took = _publish_until_listed(stack, "orphan", key)
    second.kill()
    second.wait()
    assert took <= GO_LIVE_S, f"the next publish went live {took:.1f} s after it began"


def test_a_chunker_killed_mid_publish_is_restarted_and_loses_no_frame(stack, tmp_path):
    """nginx restarts a chunker that died while its publish goes on (`respawn`); the new
    one reads the publish's recording from its first byte, finds its GOPs among the
    anchors the dead one left (ingest/pipelines.py) and continues the same period."""
    from hdfs_layout import StreamLayout
    from live_tools import (
        NS,
        check_tfdt_continuous_per_period,
        ended,
        joined_rendition,
        mpd_of,
        wait_for,
    )
    from media_tools import count_frames

    key = stack.create_key("respawn")
    storage = open_storage(stack.settings.root)
    index = StreamLayout("respawn").index_dir
    pub = stack.publish(key, 30, size="320x240", rate=15)
    wait_for(lambda: len(storage.list(index)) >= 4, 60, "four chunks", stack)
    first = _chunker_of(stack, "respawn")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    def restarted() -> bool:
        try:
            return _chunker_of(stack, "respawn").pid != first.pid
        except AssertionError:
            return False

    wait_for(restarted, 30, "nginx to restart the chunker", stack)
    assert pub.wait(timeout=60) == 0
    wait_for(lambda: ended(stack, "respawn"), 120, "the stream to end", stack)
    mpd = mpd_of(stack, "respawn")
    assert len(mpd.findall("d:Period", NS)) == 1
    check_tfdt_continuous_per_period(stack, "respawn")
    for rendition in ("240p", "180p"):
        assert count_frames(joined_rendition(stack, "respawn", rendition, tmp_path)) == 450
