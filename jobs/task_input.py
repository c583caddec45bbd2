"""Where a map task's raw input comes from, and so where Spark runs the task.

On an `hdfs://` root, Spark's own Hadoop client reads each task's raw file
(`binaryFiles`, one single-file RDD per task, unioned: one partition per task,
in task order). Each partition carries the hosts of its file's HDFS blocks as
preferred locations, so the scheduler runs the task on a node holding a replica
(NODE_LOCAL) and the bytes never pass through WebHDFS. On any other root the
task fetches its input itself through the storage layer (a local file is used
in place, not copied).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from urllib.parse import urlparse

from py4j.protocol import Py4JJavaError

from hdfs_layout import Storage, StorageError
from jobs.transcode_map import AudioTask, VideoTask

Task = VideoTask | AudioTask


class TaskInputError(RuntimeError):
    """Spark handed a task a file other than its own raw input (should never happen)."""


def reads_through_spark(storage: Storage) -> bool:
    """True when Spark's Hadoop client reads the raw inputs (an hdfs:// root)."""
    return urlparse(storage.root_url).scheme == "hdfs"


def with_inputs(sc, tasks: Sequence[Task], storage: Storage):
    """An RDD of (task, raw bytes or None), one partition per task.

    None means "fetch it yourself" (roots Spark does not read for us).
    """
    tasks = list(tasks)
    if not tasks or not reads_through_spark(storage):
        return sc.parallelize([(t, None) for t in tasks], numSlices=max(1, len(tasks)))
    paths = [urlparse(storage.url(t.raw)).path for t in tasks]
    try:
        files = sc.union([sc.binaryFiles(storage.url(t.raw)) for t in tasks])
        files.getNumPartitions()  # lists the inputs now, so a failure names the root
    except Py4JJavaError as exc:
        raise StorageError(f"{storage.root_url}: {_java_cause(exc)}") from exc

    def attach(i: int, rows: Iterator[tuple[str, bytes]]) -> Iterator[tuple[Task, bytes]]:
        for url, data in rows:
            if urlparse(url).path != paths[i]:
                raise TaskInputError(f"task {i} expected {paths[i]}, Spark read {url}")
            yield tasks[i], data

    return files.mapPartitionsWithIndex(attach)


def _java_cause(exc: Py4JJavaError) -> str:
    """One line from a JVM failure: the exception's class and the first line of its message
    (a NameNode's RemoteException appends the server's stack), minus Hadoop's "For more
    details see" wiki pointer."""
    java = exc.java_exception
    message = (java.getMessage() or "").strip().split("\n", 1)[0]
    return f"{java.getClass().getSimpleName()}: {message.split('; For more details see')[0]}"
