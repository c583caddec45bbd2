"""Ingest one local video file on this machine: probe it, cut it into raw chunks, copy its
audio, and write them with their records to storage (`sparkcast ingest`).

Where chunks end is core/chunking.py's rule (at source keyframes near the chunk
marks, else on the marks); the cutting is core/media/cutting.py's. The library
job (jobs/library.py) does the same on the executors, for many inputs at once.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from fractions import Fraction

from core.chunking import plan_chunks
from core.grid import plan_grid
from core.media.cutting import (
    audio_args,
    chunk_record,
    cut_chunk,
    raw_extension,
    source_record,
)
from core.media.ffmpeg_run import MediaError, run
from core.media.probe import probe
from core.records import ChunkRecord, SourceRecord
from hdfs_layout import Storage, StreamLayout

Progress = Callable[[int, int], None]


def ingest_file(src: str, stream_id: str, storage: Storage, chunk_seconds: float = 10.0,
                segment_seconds: float = 2.0, progress: Progress | None = None
                ) -> tuple[SourceRecord, list[ChunkRecord]]:
    """Probe src, replace any earlier stream of that id, write chunks, records and raw audio.

    Raises MediaError naming src when it is not a readable video; nothing is written then.
    """
    if not os.path.isfile(src):
        raise MediaError(src, "no such file")
    if os.path.getsize(src) == 0:
        raise MediaError(src, "file is empty (0 bytes)")
    info = probe(src)
    grid = plan_grid(Fraction(info.video.frame_rate), segment_seconds, chunk_seconds)
    layout = StreamLayout(stream_id)
    ext = raw_extension(info.video.codec)
    plans = plan_chunks(info.video.frame_times, info.video.keyframes,
                        1 / float(info.video.frame_rate), grid)
    with tempfile.TemporaryDirectory(prefix="sparkcast-ingest-") as workdir:
        # Cut everything locally first: a source that fails halfway leaves an earlier
        # stream of the same id untouched.
        cut = []
        for plan in plans:
            local, skip, _ = cut_chunk(info, plan, workdir, ext)
            cut.append((plan, local, skip))
            if progress:
                progress(plan.seq + 1, len(plans))
        local_audio = None
        if info.audio is not None:
            local_audio = os.path.join(workdir, "audio.mka")
            run(audio_args(src, local_audio), source=src)
        storage.delete(layout.base, recursive=True)
        audio_path = layout.raw_audio("mka") if local_audio else None
        if local_audio and audio_path:
            storage.put_file(local_audio, audio_path)
        records = []
        for plan, local, skip in cut:
            raw_path = layout.raw_chunk(plan.seq, ext)
            storage.put_file(local, raw_path)
            record = chunk_record(stream_id, plan, grid, raw_path, skip,
                                  os.path.getsize(local))
            storage.write_text(layout.index_record(plan.seq), record.to_json())
            records.append(record)
    source = source_record(stream_id, info, grid, audio_path,
                           sum(p.segments for p in plans))
    storage.write_text(layout.source_record, source.to_json())
    return source, records
