"""Losing a machine: a Spark worker killed mid-job, a DataNode stopped while serving."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hadooptools import (
    REPO,
    STREAM,
    Hadoop,
    hdfs_files,
    job_args,
    sha1s,
    standalone_opts,
    start_minihadoop,
)

from clusters.hadoop import MiniHadoop
from clusters.spark_standalone import SparkStandalone

pytestmark = pytest.mark.heavy


def test_killing_a_worker_mid_job_still_gives_identical_output(
        hadoop: Hadoop, spark_standalone: SparkStandalone, clip: Path,
        reference: dict[str, bytes], tmp_path: Path) -> None:
    """SIGKILL the first worker seen running ffmpeg (so a task is in flight): its tasks
    and shuffle output are lost with its executor, Spark runs them again on the other
    worker, and the rewritten segments are the same bytes."""
    root = hadoop.root("killed-worker")
    log = tmp_path / "submit.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(REPO / "spark-submit.sh"), *standalone_opts(spark_standalone.master_url),
             "transcode", *job_args(clip, root)],
            env=hadoop.env(), stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
            start_new_session=True)
    killed = None
    try:
        deadline = time.monotonic() + 300
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            killed = spark_standalone.worker_running("ffmpeg")
            if killed is None:
                time.sleep(0.05)
        assert killed is not None, f"no worker ever ran ffmpeg; see {log}"
        spark_standalone.kill_worker(killed)
        assert proc.wait(300) == 0, f"the job failed after losing worker {killed}; see {log}"
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        if killed is not None:
            spark_standalone.start_worker(killed)  # whole again for later tests
    files = hdfs_files(hadoop, f"{hadoop.path(root)}/streams/{STREAM}")
    assert sha1s(files, "out/") == sha1s(reference, "out/")
    assert files["manifest.mpd"] == reference["manifest.mpd"]


@pytest.fixture
def cluster_control(hadoop: Hadoop, tmp_path: Path) -> Iterator[tuple[Hadoop, MiniHadoop]]:
    """The session cluster and its controls; a private one when the session's was not
    started by this run (SPARKCAST_TEST_HADOOP_CONF)."""
    if hadoop.control is not None:
        yield hadoop, hadoop.control
        return
    control, info = start_minihadoop(tmp_path, nodemanagers=0)
    try:
        yield Hadoop(info, control, tmp_path), control
    finally:
        control.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(hadoop: Hadoop, root: str, log: Path) -> Iterator[str]:
    """`sparkcast serve` (gunicorn) over an hdfs:// root; yields its base URL."""
    port = _free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["sparkcast", "serve", "--root", root, "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--threads", "4"],
            env=hadoop.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"sparkcast serve exited ({proc.returncode}); see {log}"
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"sparkcast serve did not come up; see {log}"
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_every_segment_is_served_while_a_datanode_is_down(
        cluster_control: tuple[Hadoop, MiniHadoop], reference: dict[str, bytes],
        tmp_path: Path) -> None:
    """Replication 2: with DataNode 0 stopped (not announced: the NameNode notices by
    itself, and at first still sends readers to it), serve answers every segment of a VOD
    on HDFS with 200 and the same bytes."""
    hadoop, control = cluster_control
    root = hadoop.root("serve-vod")
    client = hadoop.client()
    stream = f"{hadoop.path(root)}/streams/{STREAM}"
    for rel, data in reference.items():
        client.write(f"{stream}/{rel}", data=data, overwrite=True)
    media = sorted(p for p in reference if p.startswith("out/"))
    assert {client.status(f"{stream}/{p}")["replication"] for p in media} == {2}
    with serving(hadoop, root, tmp_path / "serve.log") as url:
        assert requests.get(f"{url}/streams/{STREAM}/manifest.mpd", timeout=10).ok
        control.stop_datanode(0, mark_dead=False)
        try:
            for attempt in ("at once", "once the DataNode is stale"):
                for rel in media:
                    r = requests.get(f"{url}/streams/{STREAM}/{rel}", timeout=30)
                    assert r.status_code == 200, (attempt, rel, r.status_code, r.text[:200])
                    assert r.content == reference[rel], (attempt, rel)
                time.sleep(4)  # dfs.namenode.stale.datanode.interval is 3 s in the mini cluster
        finally:
            control.start_datanode(0)
