"""The whole live system on one machine, as child processes: what `sparkcast demo` runs
and what the live tests drive.

    serve (gunicorn)  <- on_publish callbacks, viewers
    nginx-rtmp        <- publishers; runs `sparkcast live-ingest` per accepted publish
    live job (Spark)  -> segments and manifests in storage, which serve streams

Every process gets the same settings through SPARKCAST_* variables. `stop()`
(or leaving the `with` block) ends them all, publishers first.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from contextlib import suppress
from fractions import Fraction
from pathlib import Path

import psutil

from core.config import Settings, settings_env
from core.processes import stop_process
from core.records import ChunkRecord
from core.timecode import strip_filter
from hdfs_layout import Storage, StorageError, StreamLayout
from ingest.rtmp import RtmpServer, free_port, sparkcast_executable
from jobs.live import READY
from manifest.mpd import NS, parse_mpd, period_id
from store.db import ensure_schema, make_engine, session_scope
from store.keys import create_key

# Everything a stopped stack started is gone this long after stop() began.
STOP_TIMEOUT_S = 8.0
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
SINE = "sine=frequency=440:sample_rate=48000:beep_factor=4"


class StackError(RuntimeError):
    """A part of the live system did not start; the message says which and why."""


def publisher_args(url: str, seconds: float | None = None, size: str = "1280x720",
                   rate: int | str = 30, gop_seconds: float = 2.0,
                   timecode: bool = False, epoch_ms: int | None = None,
                   container: str = "flv") -> list[str]:
    """ffmpeg publishing a synthetic show over RTMP in real time: test pattern with the
    wall clock burnt in as text, and a tone. With `timecode` also as a machine-readable
    strip (core/timecode.py: the clock at `epoch_ms`, default now, plus each frame's time;
    it costs each publisher a filter graph, so the many-publisher tests go without). `rate`
    may be a fraction ("30000/1001"); `container` is "mpegts" for an srt:// URL. Pure but
    for reading the clock."""
    text = ""
    if FONT.exists():
        text = (f"drawtext=fontfile={FONT}:text='%{{localtime\\:%T}}':x=20:y=20:"
                "fontsize=h/12:fontcolor=white:box=1:boxcolor=black@0.6")
    source = f"testsrc2=size={size}:rate={rate}"
    args = ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-re"]
    if timecode:
        width, height = (int(v) for v in size.split("x"))
        start = int(time.time() * 1000) if epoch_ms is None else epoch_ms
        graph = f"[0:v]{text or 'null'}[v];" + strip_filter(start, width, height, str(rate))
        args += ["-f", "lavfi", "-i", source, "-f", "lavfi", "-i", SINE,
                 "-filter_complex", graph, "-map", "[vt]", "-map", "1:a"]
    else:
        args += ["-f", "lavfi", "-i", f"{source},{text}" if text else source,
                 "-f", "lavfi", "-i", SINE]
    if seconds:
        args += ["-t", f"{seconds:g}"]
    return args + ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                   "-g", str(round(gop_seconds * Fraction(rate))), "-pix_fmt", "yuv420p",
                   "-c:a", "aac", "-b:a", "128k", "-f", container, url]


class LiveStack:
    _live_log_offset = 0

    def __init__(self, settings: Settings, run_dir: Path, master: str = "local[2]",
                 live_job: list[str] | None = None, live_ready: str = READY):
        """`live_job`: the command that runs the live job, if not `sparkcast live --master
        MASTER` (e.g. `./spark-submit.sh --master yarn ... live`); `live_ready`: what its
        output says once it runs (a driver in YARN cluster mode logs elsewhere, and
        spark-submit reports only the application's state)."""
        self.settings = settings.model_copy(update={"port": settings.port or free_port()})
        self.run_dir = Path(run_dir)
        self.live_job = live_job or [sparkcast_executable(), "live", "--master", master]
        self.live_ready = live_ready
        self.env = {**os.environ, **settings_env(self.settings),
                    "SPARK_LOCAL_IP": "127.0.0.1"}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.rtmp: RtmpServer | None = None
        self.publishers: list[subprocess.Popen[bytes]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.run_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        # Own session: a Ctrl-C in the terminal reaches the demo, which stops each part in
        # order, rather than killing Spark's JVM under the live job mid-batch.
        proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 8) -> str:
        path = self.run_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.strip().splitlines()[-lines:])

    # parts ------------------------------------------------------------------------------------

    def start_serve(self, workers: int = 1, timeout: float = 60) -> None:
        self._spawn("serve", [sparkcast_executable(), "serve", "--workers", str(workers),
                              "--port", str(self.settings.port), "--host", "127.0.0.1"])
        self._wait_http(f"{self.base_url}/healthz", "serve", timeout)

    def start_rtmp(self) -> None:
        self.rtmp = RtmpServer(self.settings, self.run_dir / "rtmp", self.base_url,
                               host="127.0.0.1", port=self.settings.rtmp_port or 0)
        self.rtmp.start()

    def start_live_job(self, timeout: float = 240) -> None:
        """Start the live job and wait until its streaming query runs (Spark's start-up
        takes seconds on an idle machine, a minute on a busy one)."""
        self.spawn_live_job()
        self.wait_live_job(timeout)

    def spawn_live_job(self) -> None:
        log = self.run_dir / "live.log"
        self._live_log_offset = log.stat().st_size if log.exists() else 0
        self._spawn("live", self.live_job)

    def wait_live_job(self, timeout: float = 240) -> None:
        log, offset, proc = self.run_dir / "live.log", self._live_log_offset, self.procs["live"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"the live job exited with {proc.returncode}: "
                                 f"{self.log_tail('live')}")
            with open(log, "rb") as f:
                f.seek(offset)
                if self.live_ready.encode() in f.read():
                    return
            time.sleep(0.5)
        raise StackError(f"the live job did not start within {timeout:.0f} s: "
                         f"{self.log_tail('live')}")

    def start(self) -> LiveStack:
        try:
            # Spark's start-up is the longest: it runs while serve and the front start.
            self.spawn_live_job()
            self.start_serve()
            self.start_rtmp()
            self.wait_live_job()
        except BaseException:
            self.stop()
            raise
        return self

    def kill_live_job(self) -> None:
        """kill -9 the live job's driver (and its JVM), as a crash would."""
        proc = self.procs.pop("live")
        # Its own session (see _spawn): the group is the driver, its JVM and its workers.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def _wait_http(self, url: str, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs.get(name)
            if proc and proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}: {self.log_tail(name)}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise StackError(f"{name} did not answer {url} within {timeout:.0f} s: "
                         f"{self.log_tail(name)}")

    # publishing ---------------------------------------------------------------------------------

    def create_key(self, stream_id: str) -> str:
        engine = make_engine(self.settings.database_url)
        try:
            ensure_schema(engine)
            with session_scope(engine) as session:
                return create_key(session, stream_id, "sparkcast stack")[1]
        finally:
            engine.dispose()

    def publish(self, key: str, seconds: float | None = None, **kw: object
                ) -> subprocess.Popen[bytes]:
        assert self.rtmp is not None, "start_rtmp() first"
        proc = subprocess.Popen(publisher_args(f"{self.rtmp.publish_url}/{key}", seconds, **kw),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        self.publishers.append(proc)
        return proc

    # stopping -----------------------------------------------------------------------------------

    def processes(self) -> list[psutil.Process]:
        """Every process this stack started, with all their descendants, as of now."""
        roots = [*self.procs.values(), *self.publishers]
        if self.rtmp and self.rtmp.proc:
            roots.append(self.rtmp.proc)
        found = []
        for root in roots:
            with suppress(psutil.NoSuchProcess):
                proc = psutil.Process(root.pid)
                found += [proc, *proc.children(recursive=True)]
        return found

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop every part in order (publishers, the front and its chunkers, the live job,
        serve); whatever of theirs still runs after `timeout` s is killed, wherever it
        went (a chunker orphaned by its front, Spark's JVM, an encoder)."""
        deadline = time.monotonic() + timeout
        started = self.processes()
        for proc in self.publishers:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.publishers:
            stop_process(proc, _left(deadline), sig=None)
        if self.rtmp:
            self.rtmp.stop(_left(deadline))  # TERMs the chunkers: they close their chunks
            self.rtmp = None
        for name in ("live", "serve"):
            proc = self.procs.pop(name, None)
            if proc:
                stop_process(proc, _left(deadline))
        _, alive = psutil.wait_procs(started, timeout=_left(deadline))
        for proc in alive:
            with suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)

    def __enter__(self) -> LiveStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def next_chunk(storage: Storage, stream_id: str) -> int:
    """The seq the stream's next publish starts at."""
    return len([n for n in storage.list(StreamLayout(stream_id).index_dir)
                if n.endswith(".json")])


def lists_chunk(storage: Storage, stream_id: str, seq: int) -> bool:
    """The stream's live MPD lists chunk `seq`'s period, i.e. its first segments: a viewer
    who opens the player now watches this publish (an earlier publish's manifest may
    still be there, dynamic, listing only what it had)."""
    layout = StreamLayout(stream_id)
    try:
        record = ChunkRecord.from_json(storage.read(layout.index_record(seq)))
        mpd = parse_mpd(storage.read(layout.manifest))
    except (StorageError, FileNotFoundError, ValueError):
        return False
    return mpd.get("type") == "dynamic" and any(
        period.get("id") == period_id(record.period) for period in mpd.iterfind(f"{{{NS}}}Period"))


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None
