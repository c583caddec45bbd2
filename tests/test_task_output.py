"""Task outputs (jobs/task_output.py) on a real local[2] Spark: the direct path, and the
Hadoop OutputFormat that writes named files for tasks on HDFS roots (deploy/spark-io),
driven here on file:// URLs (the HDFS runs are in tests/hadoop/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hdfs_layout import open_storage
from jobs.task_output import OUTPUT_FORMAT, OutFile, TaskRun, run_tasks, write_each

TEXT, BYTES = "org.apache.hadoop.io.Text", "org.apache.hadoop.io.BytesWritable"


def _task(n: int) -> TaskRun[int]:
    yield OutFile(f"out/{n}/data.bin", bytes([n]) * (1000 * n + 1))
    yield OutFile(f"out/{n}/done.json", b'{"n": %d}' % n)
    return n * n


def test_write_each_writes_in_order_and_returns_the_result(tmp_path: Path) -> None:
    storage = open_storage(tmp_path.as_uri())
    assert write_each(storage, _task(3)) == 9
    assert storage.read("out/3/data.bin") == bytes([3]) * 3001
    assert storage.read("out/3/done.json") == b'{"n": 3}'


def test_run_tasks_on_a_local_root_returns_results_in_order(spark, tmp_path: Path) -> None:
    root = tmp_path.as_uri()

    def task(n: int) -> TaskRun[int]:  # by value: Spark's workers cannot import this module
        yield OutFile(f"out/{n}/data.bin", bytes([n]) * (1000 * n + 1))
        return n * n

    rdd = spark.sparkContext.parallelize(range(7), 3)
    results = run_tasks(rdd, task, root, lambda: open_storage(root))
    assert results == [n * n for n in range(7)]
    for n in range(7):
        assert (tmp_path / f"out/{n}/data.bin").stat().st_size == 1000 * n + 1


def test_through_spark_every_task_runs_once_and_writes_in_order(spark, tmp_path: Path
                                                                ) -> None:
    sc = spark.sparkContext
    root = tmp_path.as_uri()
    runs = tmp_path / "runs.log"  # local[2]: the tasks run on this machine

    def task(n: int) -> TaskRun[int]:
        with runs.open("a") as log:
            log.write(f"{n}\n")
        yield OutFile(f"out/{n}/data.bin", bytes([n]) * (1000 * n + 1))
        yield OutFile(f"out/{n}/done.json", b"%d" % n)
        return n * n

    results = run_tasks(sc.parallelize(range(5), 5), task, root, lambda: open_storage(root),
                        through_spark=True)
    assert results == [n * n for n in range(5)]
    # PySpark's extra look at the first partition (is it pairs?) ran no task again
    assert sorted(runs.read_text().split()) == ["0", "1", "2", "3", "4"]
    for n in range(5):
        data, done = tmp_path / f"out/{n}/data.bin", tmp_path / f"out/{n}/done.json"
        assert data.read_bytes() == bytes([n]) * (1000 * n + 1)
        assert done.read_bytes() == b"%d" % n
        assert done.stat().st_mtime_ns >= data.stat().st_mtime_ns  # the done record last


def test_the_output_format_writes_named_files_atomically_and_replaces(spark, tmp_path: Path
                                                                      ) -> None:
    sc = spark.sparkContext
    target = tmp_path / "seg" / "00000001.m4s"
    target.parent.mkdir()
    target.write_bytes(b"old bytes")
    records = [(target.as_uri(), b"new " * 5000), ((tmp_path / "a/b/c.json").as_uri(), b"{}")]
    sc.parallelize(records, 2).saveAsNewAPIHadoopFile(
        tmp_path.as_uri(), OUTPUT_FORMAT, keyClass=TEXT, valueClass=BYTES)
    assert target.read_bytes() == b"new " * 5000
    assert (tmp_path / "a/b/c.json").read_bytes() == b"{}"  # folders made as needed
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert not (tmp_path / "_SUCCESS").exists() and not (tmp_path / "_temporary").exists()


def test_the_output_format_refuses_a_key_that_is_not_a_url(spark, tmp_path: Path) -> None:
    from py4j.protocol import Py4JJavaError

    rdd = spark.sparkContext.parallelize([("streams/x/out/1.m4s", b"x")], 1)
    with pytest.raises(Py4JJavaError, match="output key is not a full URL: streams/x/out"):
        rdd.saveAsNewAPIHadoopFile(tmp_path.as_uri(), OUTPUT_FORMAT, keyClass=TEXT,
                                   valueClass=BYTES)


def test_with_files_streams_a_file_in_blocks_in_order(spark, tmp_path: Path) -> None:
    """Spark's Hadoop client hands a task its file block by block (no 2 GB limit, one block
    in memory): here a 2.5 MB file in 1 MB blocks, an empty file, and the big file again."""
    from jobs.task_input import save_blocks, with_files

    data = bytes(range(256)) * 10_000  # 2,560,000 bytes
    (tmp_path / "big.bin").write_bytes(data)
    (tmp_path / "empty.bin").write_bytes(b"")
    urls = [(tmp_path / "big.bin").as_uri(), (tmp_path / "empty.bin").as_uri(),
            (tmp_path / "big.bin").as_uri()]
    rdd = with_files(spark.sparkContext, ["a", "b", "c"], urls, "test", block_bytes=1 << 20)
    out = str(tmp_path / "copy-{}.bin")

    def look(pair):
        item, blocks = pair
        if blocks is None:
            return item, None, None
        blocks = list(blocks)
        return item, [(o, len(b)) for o, b in blocks], save_blocks(iter(blocks),
                                                                   out.format(item))

    got = rdd.map(look).collect()
    whole = [(0, 1 << 20), (1 << 20, 1 << 20), (2 << 20, 2_560_000 - (2 << 20))]
    assert got == [("a", whole, out.format("a")), ("b", [], out.format("b")),
                   ("c", whole, out.format("c"))]
    assert Path(out.format("a")).read_bytes() == data
    assert Path(out.format("b")).read_bytes() == b""
    assert with_files(spark.sparkContext, ["x"], [None], "test").collect() == [("x", None)]
    with pytest.raises(ValueError):
        with_files(spark.sparkContext, ["x", "y"], [urls[0], None], "test")


def test_with_files_names_a_missing_input(spark, tmp_path: Path) -> None:
    from hdfs_layout import StorageError
    from jobs.task_input import with_files

    with pytest.raises(StorageError, match=r"^the-input: .*does not exist"):
        with_files(spark.sparkContext, ["a"], [(tmp_path / "nope.mp4").as_uri()], "the-input")


def test_with_files_reads_only_the_ranges_asked_for(spark, tmp_path: Path) -> None:
    from jobs.task_input import save_blocks, with_files

    data = bytes(range(256)) * 10_000
    (tmp_path / "big.bin").write_bytes(data)
    ranges = ((0, 100), (1_000_000, 1_500_000), (2_559_990, 50))  # the last one is cut short
    rdd = with_files(spark.sparkContext, ["a"], [(tmp_path / "big.bin").as_uri()], "test",
                     ranges=[ranges], block_bytes=1 << 20)
    out = str(tmp_path / "copy.bin")

    def look(pair):
        _, blocks = pair
        blocks = list(blocks)
        save_blocks(iter(blocks), out, size=len(data))
        return [(o, len(b)) for o, b in blocks]

    assert rdd.map(look).collect() == [[(0, 100), (1_000_000, 1 << 20),
                                         (1_000_000 + (1 << 20), 1_500_000 - (1 << 20)),
                                         (2_559_990, 10)]]
    copy = Path(out).read_bytes()
    assert len(copy) == len(data)
    for start, length in ranges:
        assert copy[start:start + length] == data[start:start + length]
    assert copy[100:1_000_000] == bytes(999_900)  # never read: a hole
