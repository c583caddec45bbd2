"""The job table: one Parquet row per video of a batch job. Pure (values and bytes).

Written by the driver to `jobs/job_id=<id>/videos.parquet` (hdfs_layout), a
Hive-style partition, so `spark.read.parquet(<root>/jobs)` reads every job with
`job_id` as a column; schedulers read a job's outcome from it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import pyarrow as pa
import pyarrow.parquet as pq

COMPLETE, FAILED, SKIPPED = "complete", "failed", "skipped"


@dataclass(frozen=True)
class VideoRow:
    stream_id: str
    input: str
    status: str  # complete | failed | skipped (complete and valid from an earlier job)
    error: str | None
    duration: float  # media seconds
    frames: int
    renditions: int
    segments: int
    bytes: int
    task_seconds: float  # executor seconds spent on the video (ingest + transcode)
    wall_seconds: float  # from the job's start to the video's outputs being written
    started: float  # unix time
    finished: float


SCHEMA = pa.schema([
    ("stream_id", pa.string()), ("input", pa.string()), ("status", pa.string()),
    ("error", pa.string()), ("duration", pa.float64()), ("frames", pa.int64()),
    ("renditions", pa.int64()), ("segments", pa.int64()), ("bytes", pa.int64()),
    ("task_seconds", pa.float64()), ("wall_seconds", pa.float64()),
    ("started", pa.timestamp("ms", tz="UTC")), ("finished", pa.timestamp("ms", tz="UTC")),
])


def table_bytes(rows: Sequence[VideoRow]) -> bytes:
    data = [asdict(r) | {"started": int(r.started * 1000), "finished": int(r.finished * 1000)}
            for r in rows]
    table = pa.Table.from_pylist(data, schema=SCHEMA)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def read_rows(data: bytes) -> list[VideoRow]:
    names = {f.name for f in fields(VideoRow)}
    rows = []
    for r in pq.read_table(pa.BufferReader(data), use_threads=False).to_pylist():
        values = {k: v for k, v in r.items() if k in names}
        values["started"] = r["started"].timestamp()
        values["finished"] = r["finished"].timestamp()
        rows.append(VideoRow(**values))
    return rows


def counts(rows: Sequence[VideoRow]) -> dict[str, int]:
    out = {COMPLETE: 0, FAILED: 0, SKIPPED: 0}
    for r in rows:
        out[r.status] = out.get(r.status, 0) + 1
    return out
