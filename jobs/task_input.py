"""Where a task's input file comes from, and so where Spark runs the task.

For `hdfs://` files, Spark's own Hadoop client reads them: one RDD through
sparkcast's FileBlocksInputFormat (deploy/spark-io), one partition per task, in
task order. Each partition carries the hosts of its file's HDFS block (the
first, or its largest byte range's) as preferred locations, so the scheduler runs the
task on a node holding a replica (NODE_LOCAL), and the task receives the file
as blocks (`Blocks`, 8 MB each) that it streams to its local disk: no size
limit, one block in memory, and no WebHDFS. Given byte ranges, only those are
read (the rest of the local copy is a hole). Any other file is read by the task
itself (through the storage layer; a local file is used in place).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, TypeVar
from urllib.parse import urlparse

from py4j.protocol import Py4JJavaError

from hdfs_layout import Storage, StorageError

T = TypeVar("T")
# A file's bytes as Spark reads them: (offset, bytes) blocks, in order.
Blocks = Iterable[tuple[int, bytes]]
# Byte ranges of a file: (start, length) pairs.
Ranges = tuple[tuple[int, int], ...]
INPUT_FORMAT = "sparkcast.io.FileBlocksInputFormat"
BLOCK_BYTES = 8 << 20


class TaskInputError(RuntimeError):
    """Spark split a file or handed a task blocks out of order (should never happen)."""


class HasRaw(Protocol):
    @property
    def raw(self) -> str: ...


def reads_through_spark(storage: Storage) -> bool:
    """True when Spark's Hadoop client reads the raw inputs (an hdfs:// root)."""
    return urlparse(storage.root_url).scheme == "hdfs"


def save_blocks(blocks: Blocks, path: str, size: int | None = None) -> str:
    """Write a file's blocks at their offsets to a local path, one block in memory at a
    time, `size` bytes long if given (what was not read stays a hole); the path."""
    with open(path, "wb") as f:
        for offset, block in blocks:
            f.seek(offset)
            f.write(block)
        if size is not None:
            f.truncate(size)
    return path


def with_inputs(sc, tasks: Sequence[HasRaw], storage: Storage):
    """An RDD of (task, its raw input's Blocks or None), one partition per task.

    None means "fetch it yourself" (roots Spark does not read for us).
    """
    tasks = list(tasks)
    if not reads_through_spark(storage):
        return with_files(sc, tasks, [None] * len(tasks), storage.root_url)
    return with_files(sc, tasks, [storage.url(t.raw) for t in tasks], storage.root_url)


def with_files(sc, items: Sequence[T], urls: Sequence[str | None], where: str,
               ranges: Sequence[Ranges | None] | None = None, block_bytes: int = BLOCK_BYTES):
    """An RDD of (item, Blocks of its hdfs:// URL), one partition per item, in order; each
    partition prefers its file's hosts. `ranges[i]`: read only those byte ranges of item
    i's file. With no URLs at all (items that read their own input) the Blocks are None.
    Raises StorageError naming `where` (a root, an input) when Spark cannot list a file."""
    items, urls = list(items), list(urls)
    if not any(urls):
        return sc.parallelize([(t, None) for t in items], numSlices=max(1, len(items)))
    if not all(urls):
        raise ValueError("with_files: either every item has a URL or none has")
    wanted = list(ranges) if ranges is not None else [None] * len(items)
    files = "\n".join(
        f"{url}\t{','.join(f'{a}:{n}' for a, n in r or ())}"
        for url, r in zip(urls, wanted, strict=True))
    try:
        rdd = sc.newAPIHadoopRDD(INPUT_FORMAT, "org.apache.hadoop.io.LongWritable",
                                 "org.apache.hadoop.io.BytesWritable",
                                 conf={"sparkcast.io.files": files,
                                       "sparkcast.io.block.bytes": str(block_bytes)})
        partitions = rdd.getNumPartitions()  # lists the files now, so a failure names them
    except Py4JJavaError as exc:
        raise StorageError(f"{where}: {_java_cause(exc)}") from exc
    if partitions != len(items):
        raise TaskInputError(f"{where}: {partitions} splits for {len(items)} files")

    def attach(i: int, rows: Iterator[tuple[int, bytes]]) -> Iterator[tuple[T, Blocks]]:
        marker = next(rows, None)  # (-1, b""): every split's first record
        if marker is None or marker[0] != -1:
            raise TaskInputError(f"{urls[i]}: no marker record first")

        def blocks() -> Iterator[tuple[int, bytes]]:
            offset = 0
            for start, data in rows:
                if start < offset or (wanted[i] is None and start != offset):
                    raise TaskInputError(f"{urls[i]}: Spark read a block at byte {start}, "
                                         f"expected {offset}")
                offset = start + len(data)
                yield start, data

        yield items[i], blocks()

    return rdd.mapPartitionsWithIndex(attach)


def _java_cause(exc: Py4JJavaError) -> str:
    """One line from a JVM failure: the exception's class and the first line of its message
    (a NameNode's RemoteException appends the server's stack), minus Hadoop's "For more
    details see" wiki pointer."""
    java = exc.java_exception
    message = (java.getMessage() or "").strip().split("\n", 1)[0]
    return f"{java.getClass().getSimpleName()}: {message.split('; For more details see')[0]}"
