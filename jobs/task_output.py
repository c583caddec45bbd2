"""Where a task's output files go, and how its result reaches the driver.

A task is a generator: it yields `OutFile`s (a root-relative path and its bytes)
as it makes them and returns its result. `run_tasks` runs one over every
element of an RDD:

- on an `hdfs://` root Spark writes the files through its own Hadoop client
  (`saveAsNewAPIHadoopFile` with sparkcast's NamedFileOutputFormat,
  deploy/spark-io), each atomically and in the order yielded, so a task can
  write a "done" record after its segments; the executors need no WebHDFS, and
  the cluster's own HDFS security applies. Each task's result comes back
  through an accumulator, which Spark applies once per successful task;
- on any other root (a local or shared directory) the task writes them itself
  through the storage layer.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from py4j.protocol import Py4JJavaError
from pyspark.accumulators import AccumulatorParam

from hdfs_layout import Storage, StorageError
from hdfs_layout.storage import resolve

R = TypeVar("R")
T = TypeVar("T")

OUTPUT_FORMAT = "sparkcast.io.NamedFileOutputFormat"
_IO_ERROR = re.compile(r"sparkcast-io: ([^\n]+)")
_ROOT = Path(__file__).resolve().parents[1]
JAR = _ROOT / "build" / "sparkcast-spark-io.jar"
_BUILD = _ROOT / "deploy" / "spark-io" / "build.sh"


@dataclass(frozen=True)
class OutFile:
    path: str  # relative to the storage root
    data: bytes


# What a task is: yields its files, returns its result.
TaskRun = Generator[OutFile, None, R]


def writes_through_spark(root_url: str) -> bool:
    """True when Spark's Hadoop client writes the tasks' files (an hdfs:// root)."""
    return urlparse(root_url).scheme == "hdfs"


def write_each(storage: Storage, run: TaskRun[R]) -> R:
    """Write a task's files through the storage layer as it yields them; its result."""
    while True:
        try:
            out = next(run)
        except StopIteration as stop:
            return stop.value
        storage.write(out.path, out.data)


def spark_io_jar() -> str:
    """The jar holding NamedFileOutputFormat, built first if missing or stale."""
    try:
        subprocess.run([str(_BUILD)], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise StorageError(f"cannot build {JAR} ({_BUILD}): {detail.strip()}") from exc
    return str(JAR)


class _Results(AccumulatorParam):
    """Collects (position, result) pairs from the tasks."""

    def zero(self, value: list) -> list:
        return []

    def addInPlace(self, value1: list, value2: list) -> list:  # noqa: N802 - pyspark's name
        value1.extend(value2)
        return value1


def run_tasks(rdd, fn: Callable[[T], TaskRun[R]], root_url: str,
              open_storage: Callable[[], Storage], through_spark: bool | None = None
              ) -> list[R]:
    """fn over every element of rdd, its files written (see the module doc; `through_spark`
    overrides the choice the root's scheme makes); the results in the elements' order.
    Raises Py4JJavaError when Spark gives up on a task."""
    if not (writes_through_spark(root_url) if through_spark is None else through_spark):
        def direct(items: Iterator[T]) -> Iterator[R]:
            storage = open_storage()
            for item in items:
                yield write_each(storage, fn(item))

        try:
            return rdd.mapPartitions(direct).collect()
        except Py4JJavaError as exc:
            _raise_io_failure(exc)
            raise

    results = rdd.context.accumulator([], _Results())
    root = root_url.rstrip("/")

    def through_spark(index: int, items: Iterator[T]) -> Iterator[tuple[str, bytes]]:
        done: list[tuple[tuple[int, int], Any]] = []
        for position, item in enumerate(items):
            run = fn(item)
            while True:
                try:
                    out = next(run)
                except StopIteration as stop:
                    done.append(((index, position), stop.value))
                    break
                yield f"{root}/{resolve(out.path)}", out.data
        results.add(done)

    # PySpark computes the first partition twice (once to check it holds pairs): make it
    # one cheap record, which the OutputFormat skips, rather than a task's whole work.
    head = rdd.context.parallelize([("", b"")], 1)
    try:
        head.union(rdd.mapPartitionsWithIndex(through_spark)).saveAsNewAPIHadoopFile(
            root, OUTPUT_FORMAT, keyClass="org.apache.hadoop.io.Text",
            valueClass="org.apache.hadoop.io.BytesWritable")
    except Py4JJavaError as exc:
        _raise_io_failure(exc)
        if "ClassNotFoundException" in str(exc.java_exception):
            raise StorageError(
                f"Spark cannot load {OUTPUT_FORMAT}: put {JAR} on its class path "
                "(./spark-submit.sh does; with plain spark-submit add --jars "
                f"{JAR})") from exc
        raise
    return [result for _, result in sorted(results.value, key=lambda pair: pair[0])]


def jar_conf(extra: str | None) -> str:
    """spark.jars with the spark-io jar added to `extra` (a comma-separated list)."""
    jar = spark_io_jar()
    listed = [j for j in (extra or "").split(",") if j]
    return ",".join(listed + ([jar] if jar not in listed else []))


def _raise_io_failure(exc: Py4JJavaError) -> None:
    """A StorageError naming the file when Spark gave up on a task because the Hadoop client
    could not read or write it (deploy/spark-io marks those messages); else nothing."""
    found = _IO_ERROR.search(str(exc))
    if found:
        raise StorageError(found.group(1).strip()) from exc
