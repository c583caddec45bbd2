"""The library job: many videos, one Spark application (`sparkcast submit`, spark-submit.sh).

Every video runs its own small pipeline, several videos at once, each in its own
fair-scheduler pool, so the tasks of all running videos share the cluster (a
long video's chunks and short videos' interleave) and each video's manifests
appear as soon as that video is done:

    extract    skip the video if its outputs are complete and valid, resume it if it was
               ingested with the same input and options (jobs/resume.py); else an ingest
               task on an executor probes, plans and cuts it (a long video: range tasks)
    transform  map: one task per chunk (all rungs) plus the audio task, started first;
               tasks whose done record says they finished in an earlier run are skipped;
               reduce: the video's segments -> manifests (pure, jobs/reduce.py)
    load       catalog and playlists, then the MPD, then the completion record

A bad input fails only its own video: its tasks return a Failure (jobs/library_tasks.py),
and when Spark itself cannot read an input, only that video's Spark job fails.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from py4j.protocol import Py4JJavaError
from pyspark import TaskContext

from core.errors import one_line
from core.ladder import Rendition
from core.records import ChunkRecord, SourceRecord
from core.segments import Segment, segment_to_json
from hdfs_layout import Storage, StorageError, StreamLayout
from hdfs_layout.layout import job_table_file
from jobs.job_table import COMPLETE, FAILED, SKIPPED, VideoRow, table_bytes
from jobs.library_inputs import VideoInput
from jobs.library_tasks import (
    Cut,
    Failure,
    Ingested,
    IngestTask,
    cut_range,
    guarded,
    ingest_video,
)
from jobs.reduce import ReduceError, StreamOutputs, build_outputs
from jobs.resume import completed_record, completion_json, resumable
from jobs.task_input import with_files, with_inputs
from jobs.task_output import OutFile, TaskRun, run_tasks
from jobs.transcode import JobOptions, clear_outputs, plan_tasks, run_task, task_units
from jobs.transcode_map import AudioTask, StorageConfig, Task

CANCELLED = "cancelled"
# Driver threads (one per video in flight): 2 per executor core, so cores stay busy
# while some videos are in their one-task ingest step (bench/scaling_model.py).
MAX_CONCURRENT_VIDEOS = 2048


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
    task_seconds: float = 0.0
    segments: int = 0
    bytes: int = 0
    ladder: tuple[Rendition, ...] = ()
    resumed_tasks: int = 0  # map tasks an earlier run had finished
    finished: float = 0.0


@dataclass(frozen=True)
class LibraryReport:
    job_id: str
    rows: tuple[VideoRow, ...]
    phases: dict[str, float]  # summed over videos: ingest, transcode, load (driver) seconds
    wall_seconds: float
    ladders: dict[str, tuple[Rendition, ...]]  # the renditions of each transcoded video
    table_error: str | None = None  # why the job table could not be written

    @property
    def failed(self) -> list[VideoRow]:
        return [r for r in self.rows if r.status in (FAILED, CANCELLED)]


# (videos done, videos total, chunk x rendition units done, units known so far)
Progress = Callable[[int, int, int, int], None]


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


def task_key(task: Task) -> str:
    """A map task's name among its video's tasks (its done record's name)."""
    if isinstance(task, AudioTask):
        return "audio"
    names = "" if len(task.renditions) > 1 else f"-{task.renditions[0].name}"
    return f"{task.chunk.seq:08d}{names}"


def stream_of(task: Task) -> str:
    return task.stream_id if isinstance(task, AudioTask) else task.chunk.stream_id


def ordered(tasks: Sequence[Task]) -> list[Task]:
    """Audio first: it is one long task, and would otherwise be the video's tail. Pure."""
    return sorted(tasks, key=lambda t: not isinstance(t, AudioTask))


# one video ------------------------------------------------------------------------------------

class _Cancelled(Exception):
    pass


@dataclass
class _Job:
    """What every video's pipeline shares: Spark, storage, options, counters."""

    sc: object
    storage: Storage
    storage_config: StorageConfig
    options: LibraryOptions
    job_id: str
    attempts: int
    cancel: threading.Event
    units_done: object  # a Spark accumulator
    lock: threading.Lock = field(default_factory=threading.Lock)
    units_total: int = 0
    videos_done: int = 0
    phases: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def timed(self, phase: str, started: float) -> None:
        with self.lock:
            self.phases[phase] += time.monotonic() - started


def _input_url(video: VideoInput) -> str | None:
    """The URL Spark reads for a task (hdfs://), or None: the task reads a local file."""
    return video.url if video.is_hdfs else None


def _collect(job: _Job, run: Callable[[], list], description: str) -> list:
    """run()'s results, as one Spark job named in the UI; _Cancelled once --fail-fast has
    cancelled the job group (before it starts, or as the reason it failed)."""
    if job.cancel.is_set():
        raise _Cancelled()
    job.sc.setJobDescription(f"{description} [sparkcast job {job.job_id}]")
    try:
        return run()
    except Exception:
        if job.cancel.is_set():
            raise _Cancelled() from None
        raise


def _spark_run(job: _Job, rdd, fn: Callable[[object], TaskRun], description: str) -> list:
    """fn over rdd's elements on the executors, their files written (jobs/task_output.py)."""
    return _collect(job, lambda: run_tasks(rdd, fn, job.storage.root_url,
                                           job.storage_config.open), description)


def _ingest(job: _Job, o: VideoOutcome) -> list[ChunkRecord]:
    """Ingest tasks for one video: probe + plan + first range, then the other ranges."""
    v = o.video
    task = IngestTask(v, job.storage_config, job.options.chunk_seconds,
                      job.options.segment_seconds, job.options.range_chunks, job.attempts)
    [result] = _spark_run(job, with_files(job.sc, [task], [_input_url(v)], v.url),
                          lambda p: ingest_video(p[0], p[1], _attempt()),
                          f"ingest {v.stream_id}: probe, plan, cut")
    if isinstance(result, Failure):
        raise _VideoFailed(result.error)
    assert isinstance(result, Ingested)
    chunks = list(result.chunks)
    o.task_seconds += result.seconds
    if result.pending:
        cuts = _spark_run(job, with_files(job.sc, result.pending,
                                          [_input_url(v)] * len(result.pending), v.url,
                                          [t.ranges for t in result.pending]),
                          lambda p: cut_range(p[0], p[1], _attempt()),
                          f"ingest {v.stream_id}: cut {len(result.pending)} more ranges")
        for cut in cuts:
            if isinstance(cut, Failure):
                raise _VideoFailed(cut.error)
            assert isinstance(cut, Cut)
            chunks += cut.chunks
            o.task_seconds += cut.seconds
    o.source = replace(result.source, options=job.options.fingerprint)
    return sorted(chunks, key=lambda c: c.seq)


class _VideoFailed(Exception):
    pass


def _transcode(job: _Job, o: VideoOutcome, chunks: list[ChunkRecord],
               done: dict[str, list[Segment]]) -> StreamOutputs:
    source = o.source
    assert source is not None
    opts = job.options
    o.ladder = opts.job.renditions_from(source)
    tasks = plan_tasks(source, chunks, o.ladder, opts.job, job.storage_config)
    todo = ordered([t for t in tasks if task_key(t) not in done])
    o.resumed_tasks = len(tasks) - len(todo)
    segments = [s for key, segs in done.items() for s in segs
                if key in {task_key(t) for t in tasks}]
    with job.lock:
        job.units_total += sum(task_units(t) for t in tasks)
    job.units_done.add(sum(task_units(t) for t in tasks if task_key(t) in done))
    if todo:
        attempts, units = job.attempts, job.units_done
        input_url = o.video.url

        def map_task(pair) -> TaskRun[tuple[list[Segment] | Failure, float]]:
            task, data = pair
            started = time.monotonic()
            result = yield from guarded(stream_of(task), input_url, "transcode", _attempt(),
                                        attempts, run_task(task, data))
            if not isinstance(result, Failure):
                # After the segments: "this task is done" for a re-submit after a crash.
                yield OutFile(StreamLayout(stream_of(task)).done_record(task_key(task)),
                              ("[" + ",".join(segment_to_json(s) for s in result) + "]")
                              .encode())
            units.add(task_units(task))
            return result, time.monotonic() - started

        results = _spark_run(job, with_inputs(job.sc, todo, job.storage), map_task,
                             f"transcode {o.video.stream_id}: {len(todo)} tasks")
        for result, seconds in results:
            o.task_seconds += seconds
            if isinstance(result, Failure):
                raise _VideoFailed(result.error)
            segments += result
    try:
        return build_outputs(source, segments, opts.job.audio)
    except ReduceError as exc:
        raise _VideoFailed(f"{o.video.url}: {exc}") from exc


def _load(job: _Job, o: VideoOutcome, outputs: StreamOutputs) -> None:
    for path, data in outputs.files:  # manifests last
        job.storage.write(path, data)
    o.segments, o.bytes = outputs.segments, outputs.segment_bytes
    job.storage.write_text(
        StreamLayout(o.video.stream_id).completion_record,
        completion_json(o.video, job.options.fingerprint, job.job_id, o.segments, o.bytes,
                        len(o.ladder), o.source))
    o.status = COMPLETE


def _process(job: _Job, o: VideoOutcome) -> None:
    """One video, extract -> transform -> load; sets o.status (never raises)."""
    sc, v = job.sc, o.video
    sc.setJobGroup(job.job_id, f"sparkcast job {job.job_id}", interruptOnCancel=True)
    # One fair-scheduler pool per worker thread: the running videos share the cluster.
    sc.setLocalProperty("spark.scheduler.pool", threading.current_thread().name)
    layout = StreamLayout(v.stream_id)
    try:
        started = time.monotonic()
        earlier = resumable(job.storage, v, job.options.fingerprint)
        if earlier is not None:
            o.source, chunks, done = earlier
            # The old manifests go first: none may list a segment being rewritten.
            for path in (layout.completion_record, layout.manifest, layout.master_playlist):
                job.storage.delete(path)
            job.storage.delete(layout.catalog_dir, recursive=True)
        else:
            # The earlier ingest's records and raw chunks go (source.json first: it says
            # "ingested", and a re-submit trusts it); the outputs stay playable until the
            # video's new ones replace them.
            job.storage.delete(layout.source_record)
            for folder in (layout.done_dir, layout.raw_dir, layout.index_dir):
                job.storage.delete(folder, recursive=True)
            chunks, done = _ingest(job, o), {}
            job.storage.delete(layout.completion_record)
            clear_outputs(job.storage, v.stream_id)
            assert o.source is not None
            job.storage.write_text(layout.source_record, o.source.to_json())
        job.timed("ingest", started)
        started = time.monotonic()
        outputs = _transcode(job, o, chunks, done)
        job.timed("transcode", started)
        started = time.monotonic()
        _load(job, o, outputs)
        job.timed("load", started)
    except _Cancelled:
        o.status, o.error = CANCELLED, (f"{v.url}: not finished: the job stopped at the "
                                        "first failed video (--fail-fast)")
    except _VideoFailed as exc:
        o.status, o.error = FAILED, str(exc)
    except (Py4JJavaError, StorageError, OSError) as exc:
        # Spark could not read the input or a chunk (after its retries), or storage failed.
        o.status, o.error = FAILED, f"{v.url}: {_cause(exc)}"
    if o.status == FAILED and job.options.fail_fast:
        job.cancel.set()
        sc.cancelJobGroup(job.job_id)
    o.finished = time.time()
    with job.lock:
        job.videos_done += 1


def _cause(exc: BaseException) -> str:
    text = one_line(exc)
    return text.split("Exception: ", 1)[-1] if "Exception: " in text else text


def _row(o: VideoOutcome, started: float) -> VideoRow:
    source = o.source
    finished = o.finished or time.time()
    return VideoRow(o.video.stream_id, o.video.url, o.status or CANCELLED, o.error,
                    source.duration if source else 0.0, source.frames if source else 0,
                    len(o.ladder), o.segments, o.bytes, round(o.task_seconds, 3),
                    round(finished - started, 3), started, finished)


def concurrency(sc) -> int:
    """Videos in flight: enough that every core has a task while some videos are in their
    one-task ingest step, few enough that each gets done soon."""
    return max(2, min(MAX_CONCURRENT_VIDEOS, 2 * sc.defaultParallelism))


def run_library(spark, storage: Storage, storage_config: StorageConfig,
                videos: Sequence[VideoInput], options: LibraryOptions, job_id: str,
                progress: Progress | None = None) -> LibraryReport:
    """Transcode every video; returns one row per video (also written as the job table)."""
    started = time.time()
    sc = spark.sparkContext
    rows: list[VideoRow] = []
    outcomes: list[VideoOutcome] = []
    for v in videos:
        record = completed_record(storage, v, options.fingerprint)
        if record is None:
            outcomes.append(VideoOutcome(v))
        else:
            now = time.time()
            rows.append(VideoRow(v.stream_id, v.url, SKIPPED, None, record["duration"],
                                 record["frames"], record["renditions"], record["segments"],
                                 record["bytes"], 0.0, 0.0, now, now))
    job = _Job(sc, storage, storage_config, options, job_id, task_attempts(sc),
               threading.Event(), sc.accumulator(0))
    job.phases["resume check"] = time.time() - started
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.5):
            progress(len(rows) + job.videos_done, len(videos),
                     job.units_done.value, job.units_total)

    watcher = threading.Thread(target=watch, daemon=True)
    if progress:
        watcher.start()
    # Longest first, so the longest video does not start last and finish alone.
    queue = sorted(outcomes, key=lambda o: -o.video.bytes)
    try:
        with ThreadPoolExecutor(concurrency(sc), thread_name_prefix="video") as pool:
            list(pool.map(lambda o: _process(job, o), queue))
    finally:
        stop.set()
        if progress:
            watcher.join()
            progress(len(videos), len(videos), job.units_done.value, job.units_total)
    rows += [_row(o, started) for o in outcomes]
    rows.sort(key=lambda r: r.stream_id)
    table_error = None
    try:
        storage.write(job_table_file(job_id), table_bytes(rows))
    except StorageError as exc:  # the videos' outcomes are still reported
        table_error = str(exc)
    return LibraryReport(job_id, tuple(rows), dict(job.phases), time.time() - started,
                         {o.video.stream_id: o.ladder for o in outcomes}, table_error)
