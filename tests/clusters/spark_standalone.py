"""A real Spark standalone cluster for the tests: 1 master and N workers on 127.0.0.1,
started from the pyspark package's own `spark-class` (pyspark from PyPI has no sbin/).

    cluster = SparkStandalone(tmp_path)
    url = cluster.start()                     # spark://127.0.0.1:PORT, all workers ALIVE
    cluster.kill_worker(0)                    # SIGKILL: the worker and its executors
    cluster.start_worker(0)                   # a fresh worker in its place
    cluster.stop()

Least memory: daemons get a 128 MB heap (SPARK_DAEMON_MEMORY), each worker offers
1 core and 512 MB, which is one executor of the smallest size Spark accepts (it
refuses executors under 450 MB). Anything that cannot start raises
SparkUnavailable with the tail of the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
SPARK_CLASS = SPARK_HOME / "bin" / "spark-class"
DAEMON_JAVA_OPTS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k"
_MASTER_URL = re.compile(r"Starting Spark master at (spark://\S+)")
_MASTER_UI = re.compile(r"MasterWebUI.* started at http://[^:]+:(\d+)")


class SparkUnavailable(RuntimeError):
    """The standalone cluster could not start, or a worker did not register."""


def process_tree() -> dict[int, int]:
    """pid -> parent pid of every process (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(pid: int, parents: dict[int, int] | None = None) -> set[int]:
    parents = parents if parents is not None else process_tree()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def command_name(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return ""


class SparkStandalone:
    """One master and `workers` workers, each in its own process group."""

    def __init__(self, work_dir: Path, workers: int = 2, cores: int = 1, memory: str = "512m"):
        self.work_dir = Path(work_dir)
        self.workers, self.cores, self.memory = workers, cores, memory
        self.master_url: str | None = None
        self.ui_url: str | None = None
        self.master: subprocess.Popen[bytes] | None = None
        self.worker_procs: list[subprocess.Popen[bytes] | None] = [None] * workers
        self._logs: list = []

    # --- lifecycle ---

    def start(self, timeout: float = 120) -> str:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = self.work_dir / "master.log"
        self.master = self._spawn(["org.apache.spark.deploy.master.Master", "--host",
                                   "127.0.0.1", "--port", "0", "--webui-port", "0"], log)
        deadline = time.monotonic() + timeout
        while not (self.master_url and self.ui_url):
            text = log.read_text(errors="replace") if log.exists() else ""
            if m := _MASTER_URL.search(text):
                self.master_url = m.group(1)
            if m := _MASTER_UI.search(text):
                self.ui_url = f"http://127.0.0.1:{m.group(1)}"
            self._check(self.master, log, deadline, "master")
            time.sleep(0.2)
        for i in range(self.workers):
            self.start_worker(i, wait=False)
        self.wait_for_workers(timeout=max(1.0, deadline - time.monotonic()))
        return self.master_url

    def start_worker(self, i: int, wait: bool = True, timeout: float = 60) -> None:
        assert self.master_url, "start() first"
        work = self.work_dir / f"worker{i}"
        work.mkdir(exist_ok=True)
        self.worker_procs[i] = self._spawn(
            ["org.apache.spark.deploy.worker.Worker", self.master_url, "--host", "127.0.0.1",
             "--port", "0", "--webui-port", "0", "--cores", str(self.cores),
             "--memory", self.memory, "--work-dir", str(work)],
            self.work_dir / f"worker{i}.log")
        if wait:
            self.wait_for_workers(timeout)

    def stop(self) -> None:
        procs = [*self.worker_procs, self.master]
        for proc in procs:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            if proc is not None:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
        self.worker_procs = [None] * self.workers
        self.master = None
        for f in self._logs:
            f.close()
        self._logs.clear()

    # --- faults ---

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker i with its executors (a lost node), and every process below it."""
        proc = self.worker_procs[i]
        assert proc is not None, f"worker {i} is not running"
        tree = descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in tree:  # PySpark's daemon makes its own process group
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)
        self.worker_procs[i] = None

    def worker_running(self, command: str) -> int | None:
        """Index of a worker with a `command` process (e.g. ffmpeg) below it, else None."""
        parents = process_tree()
        for i, proc in enumerate(self.worker_procs):
            if proc is not None and any(command_name(p) == command
                                        for p in descendants(proc.pid, parents)):
                return i
        return None

    # --- state ---

    def status(self) -> dict:
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=10) as r:
            return json.load(r)

    def alive_count(self) -> int:
        return sum(w["state"] == "ALIVE" for w in self.status()["workers"])

    def wait_for_workers(self, timeout: float = 60) -> None:
        """Until the master counts exactly the running workers as ALIVE (a killed one is
        dropped when its connection closes)."""
        deadline = time.monotonic() + timeout
        want = sum(p is not None for p in self.worker_procs)
        while True:
            with contextlib.suppress(OSError, ValueError):
                if self.alive_count() == want:
                    return
            for i, proc in enumerate(self.worker_procs):
                if proc is not None:
                    self._check(proc, self.work_dir / f"worker{i}.log", deadline, f"worker {i}")
            if time.monotonic() > deadline:
                raise SparkUnavailable(f"{want} Spark workers did not register in {timeout:.0f} s;"
                                       f" master log:\n{self._tail(self.work_dir / 'master.log')}")
            time.sleep(0.3)

    # --- helpers ---

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        env = dict(os.environ, SPARK_HOME=str(SPARK_HOME), SPARK_LOCAL_IP="127.0.0.1",
                   SPARK_DAEMON_MEMORY="128m", SPARK_DAEMON_JAVA_OPTS=DAEMON_JAVA_OPTS)
        out = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(out)
        return subprocess.Popen([str(SPARK_CLASS), *args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                cwd=self.work_dir)

    def _check(self, proc, log: Path, deadline: float, what: str) -> None:
        if proc.poll() is not None:
            raise SparkUnavailable(f"Spark {what} exited ({proc.returncode}):\n{self._tail(log)}")
        if time.monotonic() > deadline:
            raise SparkUnavailable(f"Spark {what} did not start in time:\n{self._tail(log)}")

    @staticmethod
    def _tail(log: Path, lines: int = 40) -> str:
        if not log.exists():
            return "(no log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
