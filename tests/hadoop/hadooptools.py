"""Helpers for the Hadoop tests: the cluster handle, submitting jobs, reading outputs."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from clusters.hadoop import HadoopInfo, HadoopUnavailable, MiniHadoop
from clusters.spark_standalone import SPARK_HOME
from media_tools import SourceSpec

REPO = Path(__file__).resolve().parents[2]
SUPERUSER = getpass.getuser()  # the NameNode's superuser: the OS user that started it
CLIP = SourceSpec("hadoop-clip", width=320, height=180, rate="30", seconds=12, gop_seconds=2)
STREAM = "clip"
LADDER = "180:300k,120:150k"
CHUNK_SECONDS = "4"
HADOOP_CONF = {
    "dfs.permissions.enabled": "true",  # for the permission tests; root stays superuser
    # Stopping the NodeManager otherwise waits 10 s for container-log deletions.
    "yarn.nodemanager.log.retain-seconds": "0",
}
# Executors of the test clusters: the least memory Spark accepts, C1 only.
SMALL_JVM = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k"


@dataclass
class Hadoop:
    info: HadoopInfo
    control: MiniHadoop | None  # None for a cluster this session did not start
    work: Path

    def client(self, user: str = SUPERUSER):
        from hdfs import InsecureClient

        return InsecureClient(self.info.webhdfs, user=user)

    def root(self, name: str, owner: str = SUPERUSER, mode: str = "755") -> str:
        """A fresh storage root /tests/<name> (hdfs:// URL), owned by owner."""
        client = self.client()
        path = f"/tests/{name}"
        client.delete(path, recursive=True)
        client.makedirs(path, permission=mode)
        client.set_owner(path, owner=owner)
        return f"{self.info.namenode_rpc}{path}"

    def path(self, root_url: str) -> str:
        """The HDFS path of an hdfs:// URL of this cluster."""
        return root_url[len(self.info.namenode_rpc):] or "/"

    def env(self, user: str = SUPERUSER, **extra: str) -> dict[str, str]:
        """Environment for sparkcast and spark-submit.sh against this cluster."""
        env = dict(os.environ)
        env.update(HADOOP_CONF_DIR=str(self.info.conf_dir), YARN_CONF_DIR=str(self.info.conf_dir),
                   HADOOP_USER_NAME=user, SPARKCAST_HDFS_USER=user,
                   SPARKCAST_WEBHDFS_URL=self.info.webhdfs, SPARK_LOCAL_IP="127.0.0.1",
                   PYSPARK_PYTHON=sys.executable,
                   SPARKCAST_CONFIG=str(self.work / "no-config.toml"),
                   SPARKCAST_DATABASE_URL=f"sqlite:///{self.work / 'store.db'}")
        env.pop("SPARKCAST_ROOT", None)
        env.update(extra)
        return env


def start_minihadoop(work: Path, **options) -> tuple[MiniHadoop, HadoopInfo]:
    """Start a MiniHadoop; fail (never skip) the requesting tests when it cannot start."""
    cluster = MiniHadoop(extra_conf=HADOOP_CONF, log_level="WARN", **options)
    try:
        return cluster, cluster.start(work / "conf", timeout=300)
    except HadoopUnavailable as exc:
        pytest.fail(f"the Hadoop test cluster (deploy/hadoop) could not start: {exc}",
                    pytrace=False)


# running jobs -------------------------------------------------------------------------------

def job_args(clip: Path, root: str, *extra: str) -> list[str]:
    """The job's own arguments (as for `sparkcast submit`)."""
    return [str(clip), "--stream-id", STREAM, "--root", root, "--ladder", LADDER,
            "--chunk-seconds", CHUNK_SECONDS, *extra]


def standalone_opts(master_url: str, event_log: Path | None = None) -> list[str]:
    opts = ["--master", master_url, "--executor-memory", "512m", "--executor-cores", "1",
            "--conf", f"spark.executor.extraJavaOptions={SMALL_JVM}"]
    return opts + _event_log_opts(event_log)


def yarn_opts(event_log: Path | None = None) -> list[str]:
    opts = ["--master", "yarn", "--deploy-mode", "client", "--num-executors", "2",
            "--executor-memory", "512m", "--executor-cores", "1",
            "--conf", f"spark.executor.extraJavaOptions={SMALL_JVM}",
            "--conf", "spark.yarn.am.memory=256m",
            # The NodeManager runs on this machine: use pyspark's jars in place rather than
            # uploading ~460 MB of them to HDFS for every submit.
            "--conf", f"spark.yarn.jars=local:{SPARK_HOME}/jars/*"]
    return opts + _event_log_opts(event_log)


def _event_log_opts(event_log: Path | None) -> list[str]:
    if event_log is None:
        return []
    event_log.mkdir(parents=True, exist_ok=True)
    return ["--conf", "spark.eventLog.enabled=true",
            "--conf", f"spark.eventLog.dir={event_log.as_uri()}",
            "--conf", "spark.eventLog.compress=false",
            "--conf", "spark.eventLog.rolling.enabled=false"]


def spark_submit(spark_opts: list[str], args: list[str], env: dict[str, str],
                 log: Path, timeout: float = 420) -> subprocess.CompletedProcess[str]:
    """./spark-submit.sh SPARK_OPTS transcode ARGS; its output is kept in log."""
    proc = subprocess.run([str(REPO / "spark-submit.sh"), *spark_opts, "transcode", *args],
                          env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    log.write_text(f"$ {' '.join(proc.args)}\n--- stdout\n{proc.stdout}\n"
                   f"--- stderr\n{proc.stderr}")
    return proc


def spark_events(event_log: Path) -> list[dict]:
    """Every event of the Spark event logs (JSON lines) under a directory."""
    return [json.loads(line) for f in sorted(p for p in event_log.rglob("*") if p.is_file())
            for line in f.read_text().splitlines() if line.strip()]


def app_id(event_log: Path) -> str:
    """The application id: local-..., app-... (standalone) or application_... (YARN)."""
    return next(e["App ID"] for e in spark_events(event_log)
                if e["Event"] == "SparkListenerApplicationStart")


def stage_tasks(event_log: Path) -> list[tuple[str, int, str]]:
    """(Spark job description, stage id, locality) of every finished task; the library
    job describes its jobs as "ingest <video>: ...", "transcode <video>: ...".

    A write through Spark (jobs/task_output.py) puts one cheap record first, which PySpark
    computes once more to check it is a pair ("take at SerDeUtil"): neither is a task of
    the job, so both are left out."""
    events = spark_events(event_log)
    stages = {e["Stage Info"]["Stage ID"]: e for e in events
              if e["Event"] == "SparkListenerStageSubmitted"}

    def head(e: dict) -> bool:
        name = stages.get(e["Stage ID"], {}).get("Stage Info", {}).get("Stage Name", "")
        return "SerDeUtil" in name or ("SparkHadoopWriter" in name
                                       and e["Task Info"]["Index"] == 0)

    return [((stages.get(e["Stage ID"], {}).get("Properties") or {})
             .get("spark.job.description", ""), e["Stage ID"], e["Task Info"]["Locality"])
            for e in events if e["Event"] == "SparkListenerTaskEnd" and not head(e)]


# comparing outputs --------------------------------------------------------------------------

def local_files(stream_dir: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every visible file under a local stream folder."""
    return {p.relative_to(stream_dir).as_posix(): p.read_bytes()
            for p in sorted(stream_dir.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.parts)}


def hdfs_files(hadoop: Hadoop, stream_path: str) -> dict[str, bytes]:
    """The same for a stream folder on HDFS (read over WebHDFS; hidden temp files skipped)."""
    client, out = hadoop.client(), {}
    for folder, _, files in client.walk(stream_path):
        if any(part.startswith(".") for part in folder.split("/")):
            continue
        for name in files:
            if not name.startswith("."):
                with client.read(f"{folder}/{name}") as r:
                    out[f"{folder}/{name}"[len(stream_path) + 1:]] = r.read()
    return out


def sha1s(files: dict[str, bytes], prefix: str = "") -> dict[str, str]:
    return {k: hashlib.sha1(v).hexdigest() for k, v in files.items() if k.startswith(prefix)}
