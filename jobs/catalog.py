"""The segment catalog: one Parquet row per produced segment. Pure (bytes out)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, fields

import pyarrow as pa
import pyarrow.parquet as pq

from core.segments import Segment

SCHEMA = pa.schema([
    ("stream_id", pa.string()),
    ("rendition", pa.string()),
    ("number", pa.int64()),
    ("start", pa.int64()),
    ("duration", pa.int64()),
    ("timescale", pa.int64()),
    ("start_seconds", pa.float64()),
    ("duration_seconds", pa.float64()),
    ("bytes", pa.int64()),
    ("chunk_seq", pa.int64()),
    ("period", pa.int64()),
    ("init_sha1", pa.string()),
    ("codec", pa.string()),
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("psnr", pa.float64()),
])


def catalog_table(segments: Sequence[Segment]) -> pa.Table:
    rows = [asdict(s) | {"start_seconds": s.start_seconds,
                         "duration_seconds": s.duration_seconds} for s in segments]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def catalog_bytes(segments: Sequence[Segment]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(catalog_table(segments), buf, compression="zstd")
    return buf.getvalue()


def read_catalog(data: bytes) -> list[Segment]:
    # An Arrow buffer, one thread: read from a Python file object with Arrow's thread pool,
    # a short-lived CLI process may abort at exit (apache/arrow#34314, #50482).
    table = pq.read_table(pa.BufferReader(data), use_threads=False)
    names = {f.name for f in fields(Segment)}
    return [Segment(**{k: v for k, v in row.items() if k in names}) for row in table.to_pylist()]
