"""The library job's ingest tasks, run on the executors: probe a video, plan its chunks,
cut them (a long video in several range tasks), copy its audio.

A task gets its input's bytes from Spark's Hadoop client (an `hdfs://` input,
read where its blocks are: jobs/task_input.py) or reads a local input in
place, and yields the files it makes (jobs/task_output.py writes them). A bad
input (corrupt, truncated, empty, no video) is not an exception: the task
returns a `Failure` naming the file and what ffmpeg said, and the job goes on
with the other videos. Anything else (storage down, a lost executor) raises, so
Spark retries the task; on its last attempt it becomes a Failure too.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TypeVar

from core.chunking import ChunkPlan, plan_chunks
from core.errors import one_line
from core.grid import Grid, plan_grid
from core.media.byte_ranges import Ranges, cut_ranges, top_level_boxes
from core.media.cutting import (
    audio_args,
    chunk_record,
    cut_chunk,
    raw_extension,
    source_record,
)
from core.media.ffmpeg_run import MediaError, run
from core.media.probe import MediaInfo, probe
from core.records import ChunkRecord, SourceRecord
from hdfs_layout import StreamLayout
from jobs.library_inputs import VideoInput
from jobs.task_input import Blocks, save_blocks
from jobs.task_output import OutFile, TaskRun
from jobs.transcode_map import StorageConfig

T = TypeVar("T")


@dataclass(frozen=True)
class Failure:
    """A video that cannot be completed: `error` names the file and the cause in one line."""

    stream_id: str
    error: str
    stage: str  # ingest | transcode | reduce


@dataclass(frozen=True)
class IngestTask:
    video: VideoInput
    storage: StorageConfig
    chunk_seconds: float
    segment_seconds: float
    range_chunks: int  # chunks one task cuts; the rest go to range tasks
    max_attempts: int = 1

    @property
    def url(self) -> str:
        return self.video.url


@dataclass(frozen=True)
class CutTask:
    """A range of one video's chunks, cut by its own task (long videos)."""

    video: VideoInput
    storage: StorageConfig
    info: MediaInfo
    grid: Grid
    plans: tuple[ChunkPlan, ...]
    max_attempts: int = 1
    ranges: Ranges | None = None  # the input's bytes it needs, when not all of them

    @property
    def url(self) -> str:
        return self.video.url


@dataclass(frozen=True)
class Ingested:
    """What an ingest task learned and cut; `pending` are the cut tasks still to run."""

    source: SourceRecord
    chunks: tuple[ChunkRecord, ...]
    pending: tuple[CutTask, ...]
    seconds: float


@dataclass(frozen=True)
class Cut:
    stream_id: str
    chunks: tuple[ChunkRecord, ...]
    seconds: float


def guarded(stream_id: str, source: str, stage: str, attempt: int, max_attempts: int,
            run: TaskRun[T]) -> TaskRun[T | Failure]:
    """run's files and result, with a bad input (MediaError, which names the file) or a
    failure on the last attempt (named after `source`, the video's input) as a Failure; any
    other failure is raised so Spark runs the task again."""
    try:
        return (yield from run)
    except MediaError as exc:
        return Failure(stream_id, one_line(exc), stage)
    except Exception as exc:  # noqa: BLE001 - Spark retries; the last attempt reports it
        if attempt + 1 < max_attempts:
            raise
        return Failure(stream_id, f"{source}: {one_line(exc)}", stage)


def _local_input(video: VideoInput, data: Blocks | None, workdir: str) -> str:
    """A local file holding the input: the blocks Spark read, or the local file itself."""
    if data is not None:
        return save_blocks(data, os.path.join(workdir, "input" + os.path.splitext(video.url)[1]),
                           size=video.bytes)
    path = video.local_path
    if path is None:
        raise MediaError(video.url, "not a local file and Spark did not read it")
    if not os.path.isfile(path):
        raise MediaError(video.url, "no such file")
    return path


def _probe(video: VideoInput, local: str) -> MediaInfo:
    if os.path.getsize(local) == 0:
        raise MediaError(video.url, "file is empty (0 bytes)")
    try:
        info = probe(local)
    except MediaError as exc:
        raise MediaError(video.url, exc.detail) from exc
    return info


def _cut(video: VideoInput, info: MediaInfo, grid: Grid, plans: tuple[ChunkPlan, ...],
         local: str, workdir: str, records: list[ChunkRecord]) -> Iterator[OutFile]:
    """Cut the plans' chunks of a local input: yields each raw chunk and its record,
    appends the records to `records`."""
    layout = StreamLayout(video.stream_id)
    ext = raw_extension(info.video.codec)
    at_local = MediaInfo(local, info.format_name, info.duration, info.video, info.audio)
    for plan in plans:
        try:
            chunk_file, skip, _ = cut_chunk(at_local, plan, workdir, ext)
        except MediaError as exc:
            raise MediaError(video.url, exc.detail) from exc
        raw_path = layout.raw_chunk(plan.seq, ext)
        yield OutFile(raw_path, _read(chunk_file))
        record = chunk_record(video.stream_id, plan, grid, raw_path, skip,
                              os.path.getsize(chunk_file))
        yield OutFile(layout.index_record(plan.seq), record.to_json().encode())
        os.unlink(chunk_file)
        records.append(record)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def ingest_video(task: IngestTask, data: Blocks | None, attempt: int = 0
                 ) -> TaskRun[Ingested | Failure]:
    """Probe, plan and cut the first range of one video, and copy its audio. The driver has
    removed the video's earlier raw chunks and records."""
    def work() -> TaskRun[Ingested]:
        started = time.monotonic()
        video = task.video
        layout = StreamLayout(video.stream_id)
        with tempfile.TemporaryDirectory(prefix="sparkcast-ingest-") as workdir:
            local = _local_input(video, data, workdir)
            info = _probe(video, local)
            grid = plan_grid(Fraction(info.video.frame_rate), task.segment_seconds,
                             task.chunk_seconds)
            plans = tuple(plan_chunks(info.video.frame_times, info.video.keyframes,
                                      1 / float(info.video.frame_rate), grid))
            audio_path = None
            if info.audio is not None:
                local_audio = os.path.join(workdir, "audio.mka")
                run(audio_args(local, local_audio), source=video.url)
                audio_path = layout.raw_audio("mka")
                yield OutFile(audio_path, _read(local_audio))
            chunks: list[ChunkRecord] = []
            yield from _cut(video, info, grid, plans[:task.range_chunks], local, workdir,
                            chunks)
            # Range tasks of an input Spark reads need only their frames' bytes (an MP4's);
            # the frames' positions stay here.
            boxes = top_level_boxes(local) if data is not None else None
            bare = replace(info, video=replace(info.video, frame_spans=()))
            pending = tuple(
                CutTask(video, task.storage, bare, grid, plans[i:i + task.range_chunks],
                        task.max_attempts,
                        cut_ranges(info, plans[i:i + task.range_chunks], boxes, video.bytes))
                for i in range(task.range_chunks, len(plans), task.range_chunks))
            source = source_record(video.stream_id, info, grid, audio_path,
                                   sum(p.segments for p in plans))
            source = replace(source, input=video.url, input_bytes=video.bytes,
                             input_mtime=video.mtime)
        return Ingested(source, tuple(chunks), pending, time.monotonic() - started)

    return (yield from guarded(task.video.stream_id, task.url, "ingest", attempt,
                               task.max_attempts, work()))


def cut_range(task: CutTask, data: Blocks | None, attempt: int = 0) -> TaskRun[Cut | Failure]:
    def work() -> TaskRun[Cut]:
        started = time.monotonic()
        chunks: list[ChunkRecord] = []
        with tempfile.TemporaryDirectory(prefix="sparkcast-cut-") as workdir:
            local = _local_input(task.video, data, workdir)
            yield from _cut(task.video, task.info, task.grid, task.plans, local, workdir,
                            chunks)
        return Cut(task.video.stream_id, tuple(chunks), time.monotonic() - started)

    return (yield from guarded(task.video.stream_id, task.url, "ingest", attempt,
                               task.max_attempts, work()))
