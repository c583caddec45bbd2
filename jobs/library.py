"""The library job: many videos, one Spark application (`sparkcast submit`, spark-submit.sh).

    extract    skip videos whose outputs are complete and valid (their completion record
               and catalog match the input and options); ingest tasks on the executors
               probe, plan and cut the rest (a long video in several range tasks)
    transform  map: one task per chunk (all rungs) plus one audio task per video, started
               first, for every video at once (round-robin, so a long video does not
               hold short ones back); reduce: per video, segments -> manifests
    load       the driver writes each complete video's catalog and playlists, its MPD,
               then its completion record; then the job table

A bad input fails only its own video: its tasks return a Failure (jobs/library_tasks.py)
and the job goes on. The driver plans and writes manifests; executors do the media work.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyspark import AccumulatorParam, TaskContext

from core.ladder import Rendition
from core.records import ChunkRecord, SourceRecord
from core.segments import Segment
from hdfs_layout import Storage, StorageError, StreamLayout
from hdfs_layout.layout import job_table_file
from jobs.catalog import read_catalog
from jobs.job_table import COMPLETE, FAILED, SKIPPED, VideoRow, table_bytes
from jobs.library_inputs import VideoInput
from jobs.library_tasks import (
    Cut,
    CutTask,
    Failure,
    Ingested,
    IngestTask,
    cut_range,
    guarded,
    ingest_video,
)
from jobs.reduce import ReduceError, StreamOutputs, build_outputs
from jobs.task_input import Task, with_files, with_inputs
from jobs.transcode import JobOptions, clear_outputs, plan_tasks, run_task, task_units
from jobs.transcode_map import AudioTask, StorageConfig

CANCELLED = "cancelled"


@dataclass(frozen=True)
class LibraryOptions:
    job: JobOptions
    chunk_seconds: float
    segment_seconds: float
    fingerprint: str  # the options that shape the outputs, hashed (a changed ladder redoes)
    range_chunks: int = 6  # chunks one ingest task cuts; a longer video gets range tasks
    fail_fast: bool = False


@dataclass
class VideoOutcome:
    video: VideoInput
    status: str = ""
    error: str | None = None
    source: SourceRecord | None = None
    chunks: list[ChunkRecord] = field(default_factory=list)
    task_seconds: float = 0.0
    segments: int = 0
    bytes: int = 0
    renditions: int = 0
    ladder: tuple[Rendition, ...] = ()
    finished: float = 0.0


@dataclass(frozen=True)
class LibraryReport:
    job_id: str
    rows: tuple[VideoRow, ...]
    phases: dict[str, float]  # seconds: resume check, ingest, transcode (map + reduce), load
    wall_seconds: float
    ladders: dict[str, tuple[Rendition, ...]]  # the renditions of each transcoded video

    @property
    def failed(self) -> list[VideoRow]:
        return [r for r in self.rows if r.status in (FAILED, CANCELLED)]


# (videos done, videos total, chunk x rendition units done, units total)
Progress = Callable[[int, int, int, int], None]


class CountsParam(AccumulatorParam):
    """Accumulates {key: count} dicts (chunks done per video)."""

    def zero(self, value: dict) -> dict:
        return {}

    def addInPlace(self, a: dict, b: dict) -> dict:  # noqa: N802 - Spark's name
        for k, v in b.items():
            a[k] = a.get(k, 0) + v
        return a


def _attempt() -> int:
    ctx = TaskContext.get()
    return ctx.attemptNumber() if ctx else 0


def task_attempts(sc) -> int:
    """How many times Spark runs a failing task: local[N] once, local[N,F] F times,
    a cluster spark.task.maxFailures (default 4)."""
    master = sc.master
    if master.startswith("local"):
        inside = master[master.find("[") + 1:master.find("]")] if "[" in master else ""
        return int(inside.split(",")[1]) if "," in inside else 1
    return int(sc.getConf().get("spark.task.maxFailures", "4"))


# resume -------------------------------------------------------------------------------------

def completion_json(outcome: VideoOutcome, options: LibraryOptions, job_id: str) -> str:
    v = outcome.video
    return json.dumps({
        "job_id": job_id, "input": v.url, "input_bytes": v.bytes, "input_mtime": v.mtime,
        "options": options.fingerprint, "segments": outcome.segments, "bytes": outcome.bytes,
        "renditions": outcome.renditions,
        "frames": outcome.source.frames if outcome.source else 0,
        "duration": outcome.source.duration if outcome.source else 0.0,
    }, sort_keys=True)


def completed_record(storage: Storage, video: VideoInput, options: LibraryOptions
                     ) -> dict | None:
    """The video's completion record when its outputs are complete and valid for this
    input and these options (checked against the catalog and a listing), else None."""
    layout = StreamLayout(video.stream_id)
    try:
        if not storage.exists(layout.completion_record):
            return None
        record = json.loads(storage.read(layout.completion_record))
        if (record.get("input"), record.get("input_bytes"), record.get("options")) != (
                video.url, video.bytes, options.fingerprint) or \
                abs(record.get("input_mtime", -1) - video.mtime) > 1e-3:
            return None
        if not storage.exists(layout.manifest) or not storage.exists(layout.master_playlist):
            return None
        segments = read_catalog(storage.read(layout.catalog_file))
    except (StorageError, ValueError, OSError):
        return None
    if len(segments) != record.get("segments"):
        return None
    by_track: dict[str, set[str]] = defaultdict(set)
    for s in segments:
        by_track[s.rendition].add(f"{s.number:08d}.m4s")
    for track, names in by_track.items():
        present = set(storage.list(layout.rendition_dir(track)))
        if "init.mp4" not in present or not names <= present:
            return None
    return record


# the stages -----------------------------------------------------------------------------------

def _input_url(video: VideoInput) -> str | None:
    """The URL Spark reads for a task (hdfs://), or None: the task reads a local file."""
    return video.url if video.is_hdfs else None


def _ingest(sc, storage: Storage, outcomes: dict[str, VideoOutcome], options: LibraryOptions,
            storage_config: StorageConfig, attempts: int) -> None:
    tasks = [IngestTask(o.video, storage_config, options.chunk_seconds,
                        options.segment_seconds, options.range_chunks, attempts)
             for o in sorted(outcomes.values(), key=lambda o: -o.video.bytes)]
    if not tasks:
        return
    sc.setJobDescription(f"ingest {len(tasks)} videos: probe, plan, cut")
    rdd = with_files(sc, tasks, [_input_url(t.video) for t in tasks], "the inputs")
    results = rdd.map(lambda p: ingest_video(p[0], p[1], _attempt())).collect()
    pending: list[CutTask] = []
    for result in results:
        if isinstance(result, Failure):
            _fail(outcomes[result.stream_id], result.error)
            continue
        assert isinstance(result, Ingested)
        o = outcomes[result.source.stream_id]
        o.source, o.chunks, o.task_seconds = result.source, list(result.chunks), result.seconds
        pending += result.pending
    if pending:
        sc.setJobDescription(f"cut {len(pending)} chunk ranges of long videos")
        rdd = with_files(sc, pending, [_input_url(t.video) for t in pending], "the inputs")
        for cut in rdd.map(lambda p: cut_range(p[0], p[1], _attempt())).collect():
            o = outcomes[cut.stream_id]
            if isinstance(cut, Failure):
                _fail(o, cut.error)
            elif o.status != FAILED:
                assert isinstance(cut, Cut)
                o.chunks += cut.chunks
                o.task_seconds += cut.seconds
    for o in outcomes.values():
        o.chunks.sort(key=lambda c: c.seq)


def _fail(outcome: VideoOutcome, error: str) -> None:
    if outcome.status != FAILED:
        outcome.status, outcome.error = FAILED, error


def interleave(per_video: Sequence[Sequence[Task]]) -> list[Task]:
    """Tasks of every video, round-robin (a long video's chunks and short videos' chunks
    alternate), each video's audio first. Pure."""
    audio = [t for tasks in per_video for t in tasks if isinstance(t, AudioTask)]
    video = [[t for t in tasks if not isinstance(t, AudioTask)] for tasks in per_video]
    out: list[Task] = sorted(audio, key=lambda t: -t.duration)
    for i in range(max((len(v) for v in video), default=0)):
        out += [v[i] for v in video if i < len(v)]
    return out


@dataclass(frozen=True)
class _TaskSeconds:
    seconds: float


def _reduce(source: SourceRecord, items, audio) -> StreamOutputs | Failure:
    segments: list[Segment] = []
    seconds = 0.0
    failure = None
    for item in items:
        if isinstance(item, Failure):
            failure = failure or item
        elif isinstance(item, _TaskSeconds):
            seconds += item.seconds
        else:
            segments.append(item)
    if failure:
        return failure
    try:
        return build_outputs(source, segments, audio)
    except ReduceError as exc:
        return Failure(source.stream_id, f"{source.input}: {exc}", "reduce")


def _transcode(sc, storage: Storage, outcomes: dict[str, VideoOutcome], options: LibraryOptions,
               storage_config: StorageConfig, attempts: int, job_id: str,
               progress: Progress | None) -> dict[str, StreamOutputs]:
    ready = [o for o in outcomes.values() if o.status != FAILED and o.source]
    if not ready:
        return {}
    sources = {o.video.stream_id: o.source for o in ready}
    per_video = []
    for o in ready:
        assert o.source is not None
        renditions = options.job.renditions_from(o.source)
        o.renditions, o.ladder = len(renditions), renditions
        per_video.append(plan_tasks(o.source, o.chunks, renditions, options.job,
                                    storage_config))
    tasks = interleave(per_video)
    total_units = sum(task_units(t) for t in tasks)
    chunks_of = defaultdict(int)
    for t in tasks:
        chunks_of[_stream_of(t)] += 1
    done = sc.accumulator(0)
    per_stream = sc.accumulator({}, CountsParam())
    failures = sc.accumulator(0)
    audio = options.job.audio

    def map_task(pair) -> list:
        task, data = pair
        sid = _stream_of(task)
        started = time.monotonic()
        result = guarded(sid, "transcode", _attempt(), attempts, lambda: run_task(task, data))
        done.add(task_units(task))
        per_stream.add({sid: 1})
        if isinstance(result, Failure):
            failures.add(1)
            return [(sid, result)]
        return [(sid, s) for s in result] + [(sid, _TaskSeconds(time.monotonic() - started))]

    def seconds_of(items) -> float:
        return sum(i.seconds for i in items if isinstance(i, _TaskSeconds))

    sc.setJobDescription(f"sparkcast job {job_id}: transcode {len(ready)} videos, "
                         f"{len(tasks)} tasks")
    rdd = (with_inputs(sc, tasks, storage).flatMap(map_task)
           .groupByKey(numPartitions=max(1, min(len(ready), 64)))
           .map(lambda kv: (kv[0], seconds_of(kv[1]), _reduce(sources[kv[0]], kv[1], audio))))
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.5):
            if progress:
                counts = per_stream.value
                progress(sum(counts.get(s, 0) == n for s, n in chunks_of.items()),
                         len(outcomes), min(done.value, total_units), total_units)
            if options.fail_fast and failures.value:
                sc.cancelJobGroup(job_id)
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        results = rdd.collect()
    except Exception:
        if options.fail_fast and failures.value:
            for o in ready:
                if o.status != FAILED:
                    o.status, o.error = CANCELLED, "not finished: the job stopped at the " \
                        "first failed video (--fail-fast)"
            return {}
        raise
    finally:
        stop.set()
        watcher.join()
    outputs: dict[str, StreamOutputs] = {}
    for sid, seconds, result in results:
        outcomes[sid].task_seconds += seconds
        if isinstance(result, Failure):
            _fail(outcomes[sid], result.error)
        else:
            outputs[sid] = result
    if progress:
        progress(len(outcomes), len(outcomes), total_units, total_units)
    return outputs


def _stream_of(task: Task) -> str:
    return task.stream_id if isinstance(task, AudioTask) else task.chunk.stream_id


# load ---------------------------------------------------------------------------------------

def _load(storage: Storage, outcome: VideoOutcome, outputs: StreamOutputs,
          options: LibraryOptions, job_id: str) -> None:
    for path, data in outputs.files:  # manifests last
        storage.write(path, data)
    outcome.status = COMPLETE
    outcome.segments, outcome.bytes = outputs.segments, outputs.segment_bytes
    storage.write_text(StreamLayout(outcome.video.stream_id).completion_record,
                       completion_json(outcome, options, job_id))


def _row(o: VideoOutcome, started: float) -> VideoRow:
    source = o.source
    return VideoRow(o.video.stream_id, o.video.url, o.status or CANCELLED, o.error,
                    source.duration if source else 0.0, source.frames if source else 0,
                    o.renditions, o.segments, o.bytes, round(o.task_seconds, 3),
                    round((o.finished or time.time()) - started, 3), started,
                    o.finished or time.time())


def run_library(spark, storage: Storage, storage_config: StorageConfig,
                videos: Sequence[VideoInput], options: LibraryOptions, job_id: str,
                progress: Progress | None = None) -> LibraryReport:
    """Transcode every video; returns one row per video (also written as the job table)."""
    started = time.time()
    sc = spark.sparkContext
    sc.setJobGroup(job_id, f"sparkcast job {job_id}: {len(videos)} videos",
                   interruptOnCancel=True)
    phases: dict[str, float] = {}
    rows: list[VideoRow] = []
    outcomes: dict[str, VideoOutcome] = {}
    for v in videos:
        record = completed_record(storage, v, options)
        if record is None:
            outcomes[v.stream_id] = VideoOutcome(v)
        else:
            now = time.time()
            rows.append(VideoRow(v.stream_id, v.url, SKIPPED, None, record["duration"],
                                 record["frames"], record["renditions"], record["segments"],
                                 record["bytes"], 0.0, 0.0, now, now))
    phases["resume check"] = time.time() - started
    attempts = task_attempts(sc)
    mark = time.time()
    _ingest(sc, storage, outcomes, options, storage_config, attempts)
    phases["ingest"] = time.time() - mark
    if options.fail_fast and any(o.status == FAILED for o in outcomes.values()):
        for o in outcomes.values():
            if o.status != FAILED:
                o.status, o.error = CANCELLED, "not run: the job stopped at the first " \
                    "failed video (--fail-fast)"
    else:
        for o in outcomes.values():
            if o.status != FAILED and o.source is not None:
                # Old manifests go first: none may list a segment being rewritten.
                clear_outputs(storage, o.video.stream_id)
                storage.delete(StreamLayout(o.video.stream_id).completion_record)
                storage.write_text(StreamLayout(o.video.stream_id).source_record,
                                   o.source.to_json())
        mark = time.time()
        outputs = _transcode(sc, storage, outcomes, options, storage_config, attempts, job_id,
                             progress)
        phases["transcode"] = time.time() - mark
        mark = time.time()
        for sid, out in outputs.items():
            _load(storage, outcomes[sid], out, options, job_id)
            outcomes[sid].finished = time.time()
        phases["load"] = time.time() - mark
    rows += [_row(o, started) for o in outcomes.values()]
    rows.sort(key=lambda r: r.stream_id)
    storage.write(job_table_file(job_id), table_bytes(rows))
    return LibraryReport(job_id, tuple(rows), phases, time.time() - started,
                         {sid: o.ladder for sid, o in outcomes.items()})
