"""A real Hadoop test cluster: HDFS (NameNode + 2 DataNodes, replication 2,
WebHDFS) and YARN (ResourceManager + 1 NodeManager) in one small JVM on
127.0.0.1, launched by deploy/hadoop/run.sh (Hadoop's MiniDFSCluster and
MiniYARNCluster from Maven Central's hadoop-client-minicluster).

    cluster = MiniHadoop()
    info = cluster.start(tmp_path / "conf")     # waits for READY
    client = hdfs.InsecureClient(info.webhdfs, user="root")
    env = {**os.environ, **cluster.env()}       # HADOOP_CONF_DIR for spark-submit --master yarn
    cluster.stop_datanode(0)                    # DataNode 0 gone; NameNode told at once
    cluster.start_datanode(0)                   # back on its old ports
    cluster.stop()

or `with MiniHadoop() as c: info = c.start(conf_dir)`.

Needs Java 17 and Maven (the first start builds the launcher: run
`deploy/hadoop/build.sh` beforehand, e.g. in CI, to keep that out of a test's
time). Anything that cannot start raises HadoopUnavailable (a RuntimeError)
with the tail of the cluster's log.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RUN_SH = REPO / "deploy" / "hadoop" / "run.sh"
BUILD_SH = REPO / "deploy" / "hadoop" / "build.sh"


class HadoopUnavailable(RuntimeError):
    """The test Hadoop cluster could not be built or started, or did not answer."""


@dataclass(frozen=True)
class HadoopInfo:
    namenode_rpc: str                 # hdfs://127.0.0.1:PORT (fs.defaultFS)
    webhdfs: str                      # http://127.0.0.1:PORT (hdfs.InsecureClient)
    resourcemanager: str | None       # 127.0.0.1:PORT, None without YARN
    resourcemanager_web: str | None   # http://127.0.0.1:PORT
    datanodes: list[dict[str, Any]]   # [{index, xfer, http, ipc, alive}]
    conf_dir: Path                    # HADOOP_CONF_DIR
    work_dir: Path
    hadoop_version: str
    pid: int
    startup_ms: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HadoopInfo:
        return cls(
            namenode_rpc=d["namenode_rpc"], webhdfs=d["webhdfs"],
            resourcemanager=d.get("resourcemanager"),
            resourcemanager_web=d.get("resourcemanager_web"),
            datanodes=list(d.get("datanodes", [])), conf_dir=Path(d["conf_dir"]),
            work_dir=Path(d["work_dir"]), hadoop_version=d.get("hadoop_version", ""),
            pid=int(d.get("pid", 0)), startup_ms=int(d.get("startup_ms", 0)), raw=d)


class MiniHadoop:
    """One launcher process; start() -> HadoopInfo, stop_datanode(i), stop()."""

    def __init__(self, *, datanodes: int = 2, replication: int = 2, nodemanagers: int = 1,
                 extra_conf: dict[str, str] | None = None, log_path: Path | None = None,
                 work_dir: Path | None = None, heap: str | None = None,
                 log_level: str = "INFO", java_opts: str = "",
                 nn_port: int | None = None, webhdfs_port: int | None = None,
                 rm_port: int | None = None, rm_web_port: int | None = None):
        self.datanodes = datanodes
        self.replication = replication
        self.nodemanagers = nodemanagers
        self.extra_conf = dict(extra_conf or {})
        self.log_path = Path(log_path) if log_path else None
        self.work_dir = Path(work_dir) if work_dir else None
        self.heap = heap
        self.log_level = log_level
        self.java_opts = java_opts
        self.ports = {"--nn-port": nn_port, "--webhdfs-port": webhdfs_port,
                      "--rm-port": rm_port, "--rm-web-port": rm_web_port}
        self.info: HadoopInfo | None = None
        self.startup_seconds: float | None = None
        self.proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._log = None

    # --- lifecycle ---

    @staticmethod
    def build(timeout: float = 900) -> None:
        """Build the launcher if needed (what run.sh does on first start)."""
        r = subprocess.run([str(BUILD_SH), "--if-needed"], capture_output=True, text=True,
                           timeout=timeout, check=False)
        if r.returncode != 0:
            raise HadoopUnavailable(f"deploy/hadoop/build.sh failed ({r.returncode}):\n"
                                    f"{_tail(r.stdout + r.stderr)}")

    def start(self, conf_dir: str | os.PathLike[str], timeout: float = 300) -> HadoopInfo:
        """Start the cluster; writes the site files and cluster.json into conf_dir."""
        if self.proc is not None:
            raise RuntimeError("MiniHadoop already started")
        for tool in ("java", "mvn"):
            if not shutil.which(tool) and not (tool == "mvn" and _built()):
                raise HadoopUnavailable(f"{tool} not found on PATH (Java 17 and Maven needed)")
        conf = Path(conf_dir).resolve()
        conf.mkdir(parents=True, exist_ok=True)
        # The log stays out of conf_dir: spark-submit ships HADOOP_CONF_DIR's files.
        self.log_path = self.log_path or conf.parent / f"{conf.name}-minihadoop.log"
        args = [str(RUN_SH), str(conf), "--datanodes", str(self.datanodes),
                "--replication", str(self.replication),
                "--nodemanagers", str(self.nodemanagers)]
        for opt, port in self.ports.items():
            if port:
                args += [opt, str(port)]
        for k, v in self.extra_conf.items():
            args += ["--conf", f"{k}={v}"]
        env = dict(os.environ)
        env["MINIHADOOP_LOG_LEVEL"] = self.log_level
        if self.heap:
            env["MINIHADOOP_HEAP"] = self.heap
        if self.java_opts:
            env["MINIHADOOP_JAVA_OPTS"] = self.java_opts
        if self.work_dir:
            env["MINIHADOOP_WORK_DIR"] = str(self.work_dir)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop())
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            text=True, bufsize=1, start_new_session=True, env=env)
        threading.Thread(target=self._read_stdout, name="minihadoop-stdout",
                         daemon=True).start()
        try:
            self._wait_for(lambda line: line == "READY", timeout,
                           what="start (READY)", fail_prefixes=("FAILED",))
            self.info = HadoopInfo.from_json(json.loads((conf / "cluster.json").read_text()))
        except BaseException:
            self._kill()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self.info

    def stop(self, timeout: float = 60) -> None:
        """Shut the cluster down (idempotent)."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                with contextlib.suppress(OSError, ValueError):  # BrokenPipeError is an OSError
                    proc.stdin.write("shutdown\n")  # type: ignore[union-attr]
                    proc.stdin.flush()  # type: ignore[union-attr]
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout)
        finally:
            self._kill()

    def __enter__(self) -> MiniHadoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- faults ---

    def stop_datanode(self, i: int, *, mark_dead: bool = True, timeout: float = 60) -> None:
        """Shut DataNode i down. With mark_dead the NameNode is told at once (so
        WebHDFS no longer redirects to it); without, it notices by itself: stale
        (avoided) after ~3 s, dead after ~20 s."""
        self._command(f"stop-datanode {int(i)}", timeout)
        if mark_dead:
            self._command(f"mark-dead {int(i)}", timeout)

    def start_datanode(self, i: int, timeout: float = 120) -> None:
        """Restart a stopped DataNode on its old ports; returns once registered."""
        self._command(f"start-datanode {int(i)}", timeout)

    def status(self, timeout: float = 30) -> dict[str, Any]:
        """Same content as cluster.json (datanodes[i]["alive"] is current)."""
        return json.loads(self._command("status", timeout)[len("OK "):])

    def yarn_apps(self, timeout: float = 30) -> list[dict[str, Any]]:
        """YARN applications: [{id, name, type, user, queue, state, final_status,
        diagnostics, start_time, finish_time}] (read from the ResourceManager
        itself; its REST API mis-serialises app lists with the shaded jars)."""
        return json.loads(self._command("apps", timeout)[len("OK "):])

    # --- helpers ---

    def datanode_index(self, address: str) -> int:
        """Index of the DataNode with this address (its http URL, or host:port of
        its http, transfer or IPC port), e.g. the host of a WebHDFS redirect."""
        port = address.rstrip("/").split("/webhdfs")[0].rsplit(":", 1)[-1].split("/")[0]
        for d in (self.info.datanodes if self.info else []):
            if any(str(d[k]).rstrip("/").endswith(f":{port}") for k in ("http", "xfer", "ipc")):
                return int(d["index"])
        raise KeyError(f"no DataNode at {address}")

    def env(self) -> dict[str, str]:
        """Environment for Hadoop/Spark clients of this cluster."""
        if self.info is None:
            raise RuntimeError("MiniHadoop not started")
        return {"HADOOP_CONF_DIR": str(self.info.conf_dir),
                "YARN_CONF_DIR": str(self.info.conf_dir),
                "HADOOP_USER_NAME": os.environ.get("HADOOP_USER_NAME", "root")}

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        return _tail(self.log_path.read_text(errors="replace"), lines)

    def _command(self, cmd: str, timeout: float) -> str:
        with self._lock:
            if self.proc is None or self.proc.poll() is not None:
                raise HadoopUnavailable(f"MiniHadoop is not running (command {cmd!r})\n"
                                        f"{self.log_tail()}")
            self.proc.stdin.write(cmd + "\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
            line = self._wait_for(lambda s: s.startswith(("OK", "ERR")), timeout, what=cmd)
            if line.startswith("ERR"):
                raise RuntimeError(f"MiniHadoop {cmd!r}: {line[4:]}")
            return line

    def _read_stdout(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _wait_for(self, want, timeout: float, *, what: str,
                  fail_prefixes: tuple[str, ...] = ()) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HadoopUnavailable(f"MiniHadoop: no answer to {what} in {timeout:.0f} s; "
                                        f"log {self.log_path}:\n{self.log_tail()}")
            try:
                line = self._lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait(10) if self.proc else None
                raise HadoopUnavailable(f"MiniHadoop exited (code {code}) during {what}; "
                                        f"log {self.log_path}:\n{self.log_tail()}")
            if fail_prefixes and line.startswith(fail_prefixes):
                raise HadoopUnavailable(f"MiniHadoop failed to start: {line}\n"
                                        f"log {self.log_path}:\n{self.log_tail()}")
            if want(line):
                return line

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                try:
                    os.killpg(proc.pid, sig)  # the JVM and any YARN containers it left
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._log:
            self._log.close()
            self._log = None


def _built() -> bool:
    return (RUN_SH.parent / "target" / "classpath.txt").exists()


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])
