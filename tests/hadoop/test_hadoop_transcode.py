"""One input, three Spark deployments, the same bytes.

(a) local[2] + a local root (the `reference` fixture, in process)
(b) Spark standalone (1 master, 2 workers) + MiniDFS, through ./spark-submit.sh
(c) YARN (MiniYARNCluster, client mode) + MiniDFS, through ./spark-submit.sh

Every file under out/ must be byte-identical to (a)'s, the manifests identical, the
catalog a Parquet table on HDFS that Spark reads back, and the map tasks must have read
their chunks through Spark's Hadoop client where HDFS keeps them (NODE_LOCAL).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hadooptools import (
    STREAM,
    Hadoop,
    app_id,
    hdfs_files,
    job_args,
    sha1s,
    spark_submit,
    stage_tasks,
    standalone_opts,
    yarn_opts,
)

pytestmark = pytest.mark.heavy
MANIFESTS = ("manifest.mpd", "master.m3u8", "180p.m3u8", "120p.m3u8", "audio.m3u8")


@dataclass(frozen=True)
class Run:
    root: str                 # hdfs:// storage root
    files: dict[str, bytes]   # the stream's files, relative to streams/<id>/
    events: Path              # Spark event log directory
    log: Path                 # ./spark-submit.sh output


def _submit(hadoop: Hadoop, name: str, spark_opts, clip: Path, work: Path) -> Run:
    root = hadoop.root(name)
    events = work / "events"
    proc = spark_submit(spark_opts(events), job_args(clip, root), hadoop.env(),
                        work / "submit.log")
    if proc.returncode != 0:
        pytest.fail(f"./spark-submit.sh on {name} failed ({proc.returncode}); "
                    f"see {work / 'submit.log'}:\n{proc.stderr[-3000:]}")
    return Run(root, hdfs_files(hadoop, f"{hadoop.path(root)}/streams/{STREAM}"), events,
               work / "submit.log")


@pytest.fixture(scope="module")
def standalone_run(hadoop: Hadoop, spark_standalone, clip: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _submit(hadoop, "standalone",
                   lambda ev: standalone_opts(spark_standalone.master_url, ev), clip,
                   tmp_path_factory.mktemp("standalone-run"))


@pytest.fixture(scope="module")
def yarn_run(hadoop: Hadoop, clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _submit(hadoop, "yarn", yarn_opts, clip, tmp_path_factory.mktemp("yarn-run"))


@pytest.fixture(params=["standalone", "yarn"])
def run(request: pytest.FixtureRequest) -> Run:
    return request.getfixturevalue(f"{request.param}_run")


def test_the_job_ran_on_the_cluster_it_was_submitted_to(standalone_run: Run,
                                                          yarn_run: Run) -> None:
    assert app_id(standalone_run.events).startswith("app-")  # not local-...
    assert app_id(yarn_run.events).startswith("application_")


def test_segments_are_byte_identical_to_local(run: Run, reference: dict[str, bytes]) -> None:
    expected, got = sha1s(reference, "out/"), sha1s(run.files, "out/")
    assert len(expected) == 3 + 3 * 6, sorted(expected)  # init + 6 segments, 2 rungs + audio
    assert got == expected


def test_manifests_are_identical_to_local(run: Run, reference: dict[str, bytes]) -> None:
    for name in MANIFESTS:
        assert run.files[name] == reference[name], name


def test_catalog_on_hdfs_is_parquet_that_spark_reads(run: Run, reference: dict[str, bytes],
                                                     spark) -> None:
    catalog = spark.read.parquet(f"{run.root}/streams/{STREAM}/catalog")
    rows = {(r.rendition, r.number, r.bytes, r.chunk_seq) for r in catalog.collect()}
    segments = [p for p in reference if p.endswith(".m4s")]
    assert catalog.count() == len(segments) == 18
    assert {(p.split("/")[1], int(p.split("/")[2][:-4]), len(reference[p]))
            for p in segments} == {(r, n, b) for r, n, b, _ in rows}


@pytest.mark.parametrize("name", ["standalone", "yarn"])
def test_map_tasks_ran_where_hdfs_keeps_their_chunks(name: str,
                                                     request: pytest.FixtureRequest) -> None:
    """The map tasks (3 chunks + the audio) read their inputs with Spark's Hadoop
    client, so every task had its chunk's DataNodes as preferred hosts. (Tasks without
    preferred hosts are reported as PROCESS_LOCAL.)

    On YARN the match is RACK_LOCAL: MiniYARNCluster's NodeManager names itself by the
    reverse lookup of 127.0.0.1 ("localhost") while the DataNodes are "127.0.0.1", so the
    hosts agree only at rack level. On a real cluster both are the machine's name.
    """
    run: Run = request.getfixturevalue(f"{name}_run")
    map_tasks = [loc for desc, _, loc in stage_tasks(run.events)
                 if desc.startswith("transcode")]
    assert len(map_tasks) >= 4, map_tasks
    want = {"NODE_LOCAL"} if name == "standalone" else {"NODE_LOCAL", "RACK_LOCAL"}
    assert set(map_tasks) <= want, map_tasks
