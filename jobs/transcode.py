"""Batch transcode job: raw chunks of one stream -> CMAF segments, DASH + HLS, catalog.

    extract    read the stream's source record and chunk-index records from storage
    transform  map: one task per chunk (all rungs from one decode) or per chunk x rung,
               plus one task for the stream's audio; reduce: segments -> manifests
    load       write catalog, playlists, then the MPD (last, so it never lists a
               segment that is not there)

Submit it to a cluster with ./spark-submit.sh (see its --help), e.g.
    ./spark-submit.sh --master local[2] transcode INPUT --stream-id ID
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.codecs import AudioCodec, VideoCodec
from core.ladder import Rendition
from core.records import ChunkRecord, RecordError, SourceRecord
from core.segments import Segment
from hdfs_layout import Storage, StreamLayout
from jobs.reduce import StreamOutputs, build_outputs
from jobs.task_input import Blocks, with_inputs
from jobs.task_output import TaskRun, run_tasks
from jobs.transcode_map import (
    AudioTask,
    StorageConfig,
    Task,
    VideoTask,
    transcode_audio,
    transcode_video,
)


class JobError(RuntimeError):
    """The job cannot run or a task failed; the message names the stream and cause."""


@dataclass(frozen=True)
class JobOptions:
    renditions_from: Callable[[SourceRecord], tuple[Rendition, ...]]
    video: VideoCodec
    audio: AudioCodec
    segment_seconds: float
    task_grouping: str = "chunk"  # or "rendition"


@dataclass(frozen=True)
class JobSummary:
    stream_id: str
    duration: float
    renditions: tuple[Rendition, ...]
    segments: int
    bytes: int
    wall_seconds: float
    outputs: tuple[str, ...]

    @property
    def speed(self) -> float:
        """Media seconds transcoded per wall second (x real time)."""
        return self.duration / self.wall_seconds if self.wall_seconds else 0.0


# extract ------------------------------------------------------------------------------------

def extract(storage: Storage, stream_id: str) -> tuple[SourceRecord, list[ChunkRecord]]:
    layout = StreamLayout(stream_id)
    if not storage.exists(layout.source_record):
        raise JobError(f"stream {stream_id!r} has no ingested source at "
                       f"{storage.url(layout.source_record)} (run `sparkcast ingest` first)")
    try:
        source = SourceRecord.from_json(storage.read(layout.source_record),
                                        storage.url(layout.source_record))
        chunks = [ChunkRecord.from_json(storage.read(f"{layout.index_dir}/{name}"),
                                        storage.url(f"{layout.index_dir}/{name}"))
                  for name in storage.list(layout.index_dir) if name.endswith(".json")]
    except RecordError as exc:
        raise JobError(str(exc)) from exc
    if not chunks:
        raise JobError(f"stream {stream_id!r} has no chunks under {storage.url(layout.index_dir)}")
    return source, sorted(chunks, key=lambda c: c.seq)


# transform ----------------------------------------------------------------------------------

def plan_tasks(source: SourceRecord, chunks: list[ChunkRecord], renditions: tuple[Rendition, ...],
               options: JobOptions, storage: StorageConfig) -> list[Task]:
    """The map step's work list (audio first: it is one long task). Pure."""
    tasks: list[Task] = []
    if source.audio:
        tasks.append(AudioTask(storage, source.stream_id, source.audio, source.audio_offset,
                               source.duration, options.segment_seconds, options.audio))
    groups = ([renditions] if options.task_grouping == "chunk"
              else [(r,) for r in renditions])
    tasks += [VideoTask(storage, chunk, source.grid, group, options.video)
              for chunk in chunks for group in groups]
    return tasks


def run_task(task: Task, data: Blocks | None = None) -> TaskRun[list[Segment]]:
    """One map task; `data` is its raw input when Spark read it (see jobs.task_input)."""
    if isinstance(task, AudioTask):
        return transcode_audio(task, data)
    return transcode_video(task, data)


def run_task_with_input(task_and_input: tuple[Task, Blocks | None]) -> TaskRun[list[Segment]]:
    """run_task over an element of jobs.task_input.with_inputs's RDD."""
    return run_task(*task_and_input)


def task_units(task: Task) -> int:
    """Progress units of a task: the renditions of one chunk it produces (audio counts 0)."""
    return 0 if isinstance(task, AudioTask) else len(task.renditions)


def transform(spark, storage: Storage, storage_config: StorageConfig, source: SourceRecord,
              tasks: list[Task], audio: AudioCodec,
              progress: Callable[[int, int], None] | None = None) -> StreamOutputs:
    """Run the map tasks on Spark, then reduce the stream's segments to its outputs."""
    sc = spark.sparkContext
    done = sc.accumulator(0)
    total = sum(task_units(t) for t in tasks)

    def map_task(task_and_input: tuple[Task, Blocks | None]) -> TaskRun[list[Segment]]:
        task, data = task_and_input
        segments = yield from run_task(task, data)
        done.add(task_units(task))
        return segments

    stop = threading.Event()
    watcher = None
    if progress:
        def watch() -> None:
            while not stop.wait(0.5):
                progress(min(done.value, total), total)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    try:
        results = run_tasks(with_inputs(sc, tasks, storage), map_task, storage.root_url,
                            storage_config.open)
    finally:
        stop.set()
        if watcher:
            watcher.join()
    if progress:
        progress(total, total)
    return build_outputs(source, [s for segments in results for s in segments], audio)


# load ---------------------------------------------------------------------------------------

def clear_outputs(storage: Storage, stream_id: str) -> None:
    """Remove an earlier run's outputs, manifests first, so none outlives a failed run."""
    layout = StreamLayout(stream_id)
    for name in storage.list(layout.base):
        if name.endswith((".mpd", ".m3u8")):
            storage.delete(f"{layout.base}/{name}")
    storage.delete(layout.catalog_dir, recursive=True)
    storage.delete(layout.out_dir, recursive=True)


def load(storage: Storage, outputs: StreamOutputs) -> None:
    for path, data in outputs.files:
        storage.write(path, data)


def run_job(spark, storage: Storage, storage_config: StorageConfig, stream_id: str,
            options: JobOptions, progress: Callable[[int, int], None] | None = None
            ) -> JobSummary:
    """extract -> transform -> load for one stream. Raises JobError."""
    started = time.monotonic()
    source, chunks = extract(storage, stream_id)
    renditions = options.renditions_from(source)
    tasks = plan_tasks(source, chunks, renditions, options, storage_config)
    clear_outputs(storage, stream_id)
    outputs = transform(spark, storage, storage_config, source, tasks, options.audio,
                        progress)
    load(storage, outputs)
    return JobSummary(stream_id, source.duration, renditions, outputs.segments,
                      outputs.segment_bytes,
                      time.monotonic() - started, tuple(outputs.paths()))
