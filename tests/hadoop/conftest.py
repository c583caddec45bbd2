"""Real clusters for the Hadoop tests, each started once per session:

- `hadoop`: HDFS (NameNode, 2 DataNodes, replication 2, WebHDFS, permissions on) and YARN
  (ResourceManager, 1 NodeManager) in one JVM (deploy/hadoop, tests/clusters/hadoop.py).
  SPARKCAST_TEST_HADOOP_CONF=DIR reuses a cluster started by `deploy/hadoop/run.sh DIR
  --conf dfs.permissions.enabled=true` (e.g. by .ci/run, or left running while iterating);
  tests that stop a DataNode then start a private one, as they need its controls.
- `spark_standalone`: a Spark standalone master and 2 workers (1 core, 512 MB each).

A cluster that cannot start fails every test that needs it, with the reason; none skips.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hadooptools import (
    CHUNK_SECONDS,
    CLIP,
    LADDER,
    STREAM,
    Hadoop,
    local_files,
    start_minihadoop,
)

from clusters.hadoop import HadoopInfo
from clusters.spark_standalone import SparkStandalone, SparkUnavailable


@pytest.fixture(scope="session")
def hadoop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hadoop]:
    work = tmp_path_factory.mktemp("hadoop")
    reuse = os.environ.get("SPARKCAST_TEST_HADOOP_CONF")
    if reuse:
        info_file = Path(reuse) / "cluster.json"
        if not info_file.exists():
            pytest.fail(f"SPARKCAST_TEST_HADOOP_CONF={reuse}: no cluster.json there (is "
                        "deploy/hadoop/run.sh running with that CONF_DIR?)", pytrace=False)
        yield Hadoop(HadoopInfo.from_json(json.loads(info_file.read_text())), None, work)
        return
    cluster, info = start_minihadoop(work)
    try:
        yield Hadoop(info, cluster, work)
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def spark_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkStandalone]:
    cluster = SparkStandalone(tmp_path_factory.mktemp("spark-standalone"))
    try:
        cluster.start()
    except SparkUnavailable as exc:
        cluster.stop()
        pytest.fail(f"the Spark standalone test cluster could not start: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def clip(make_media) -> Path:
    return make_media(CLIP)


@pytest.fixture(scope="session")
def reference(spark, clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """(a) The clip transcoded on local[2] into a local root: relative path -> bytes."""
    from core.config import load_settings
    from hdfs_layout import open_storage
    from ingest.chunker import ingest_file
    from jobs.transcode import run_job
    from sparkcast.pipeline import job_options, storage_config

    root = tmp_path_factory.mktemp("reference-root")
    settings = load_settings(root=root.as_uri(), ladder=LADDER,
                             chunk_seconds=float(CHUNK_SECONDS))
    storage = open_storage(settings.root)
    ingest_file(str(clip), STREAM, storage, settings.chunk_seconds, settings.segment_seconds)
    run_job(spark, storage, storage_config(settings), STREAM, job_options(settings))
    return local_files(root / "streams" / STREAM)
