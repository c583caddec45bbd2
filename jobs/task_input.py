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
from typing import TypeVar
from urllib.parse import urlparse

from py4j.protocol import Py4JJavaError

from hdfs_layout import Storage, StorageError
from jobs.transcode_map import AudioTask, VideoTask

Task = VideoTask | AudioTask
T = TypeVar("T")


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
    if not reads_through_spark(storage):
        return with_files(sc, tasks, [None] * len(tasks), storage.root_url)
    return with_files(sc, tasks, [storage.url(t.raw) for t in tasks], storage.root_url)


def with_files(sc, items: Sequence[T], urls: Sequence[str | None], where: str):
    """An RDD of (item, bytes of its hdfs:// URL, or None where its URL is None), one
    partition per item, in order; a partition Spark reads prefers its blocks' hosts.
    Raises StorageError naming `where` (a root, an input) when Spark cannot list a file."""
    items = list(items)
    if not any(urls):
        return sc.parallelize([(t, None) for t in items], numSlices=max(1, len(items)))
    paths = [urlparse(u).path if u else None for u in urls]
    try:
        parts = [sc.binaryFiles(u) if u else sc.parallelize([None], 1) for u in urls]
        files = sc.union(parts)
        files.getNumPartitions()  # lists the inputs now, so a failure names the root
    except Py4JJavaError as exc:
        raise StorageError(f"{where}: {_java_cause(exc)}") from exc

    def attach(i: int, rows: Iterator[tuple[str, bytes] | None]
               ) -> Iterator[tuple[T, bytes | None]]:
        empty = True
        for row in rows:
            empty = False
            if row is None:
                yield items[i], None
                continue
            url, data = row
            if urlparse(url).path != paths[i]:
                raise TaskInputError(f"task {i} expected {paths[i]}, Spark read {url}")
            yield items[i], data
        if empty:  # Hadoop's input format gives a zero-length file no record at all
            yield items[i], b""

    return files.mapPartitionsWithIndex(attach)


def _java_cause(exc: Py4JJavaError) -> str:
    """One line from a JVM failure: the exception's class and the first line of its message
    (a NameNode's RemoteException appends the server's stack), minus Hadoop's "For more
    details see" wiki pointer."""
    java = exc.java_exception
    message = (java.getMessage() or "").strip().split("\n", 1)[0]
    return f"{java.getClass().getSimpleName()}: {message.split('; For more details see')[0]}"
