"""Live job: Spark Structured Streaming over the chunk-index records of every stream.

    extract    a streaming file source over streams/*/index/*.json (checkpointed on storage)
    transform  each micro-batch: the batch job's map step over the new chunks (chunk x rung
               in parallel), then the live reduce per stream it touched
    load       catalog part per batch, live playlists, then the dynamic MPD

A stream whose publisher has been gone for `end_timeout` seconds ends: its
manifests become a static VOD of the whole recording (every period). A
restart from the checkpoint replays an unfinished batch: the map step rewrites
the same bytes, the catalog part of that batch is rewritten under the same
name, and the reduce keeps one segment per (rendition, number), so no chunk is
lost and none is listed twice.

    ./spark-submit.sh --master local[2] live
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

from core.records import ChunkRecord, SourceRecord
from core.segments import Segment, segment_from_json
from hdfs_layout import Storage, StorageError, StreamLayout
from hdfs_layout.layout import all_index_dirs, live_checkpoint_dir, streams_dir
from jobs.catalog import catalog_bytes, read_catalog
from jobs.live_reduce import LiveState, build_live_presentation, manifest_files, new_state
from jobs.reduce import ReduceError
from jobs.task_input import with_inputs
from jobs.task_output import run_tasks
from jobs.transcode import JobOptions, plan_tasks, run_task, run_task_with_input
from jobs.transcode_map import StorageConfig
from manifest.presentation import Event

log = logging.getLogger("sparkcast.live")

# Measured on 2 cores, 720p 3-rung ladder: one chunk's rungs in parallel cut a 10 s chunk's
# latency from 17 to 10.5 s, and raised a 2 s chunk's from 6 to 13 s (a backlog formed).
SPLIT_RUNGS_MIN_SECONDS = 6.0

READY = "live query started"  # logged once the query runs (sparkcast.stack waits for it)


@dataclass(frozen=True)
class LiveOptions:
    job: JobOptions
    chunk_seconds: float = 10.0
    dvr_seconds: float = 300.0
    delay_seconds: float | None = None  # the MPD's suggestedPresentationDelay; None: default
    end_timeout: float = 30.0
    trigger_seconds: float = 0.5
    # A stream's notices (admin disclaimers, news flashes) to carry in its manifests; may
    # raise when the database is down (the manifests then keep the last ones known).
    notices: Callable[[str], tuple[Event, ...]] | None = None


def chunk_schema():
    from pyspark.sql.types import (
        BooleanType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    types = {"stream_id": StringType(), "raw": StringType(), "start": DoubleType(),
             "duration": DoubleType(), "wallclock": DoubleType(),
             "discontinuity": BooleanType(), "last": BooleanType()}
    from dataclasses import fields

    return StructType([StructField(f.name, types.get(f.name, LongType()), True)
                       for f in fields(ChunkRecord)])


class _Stream:
    """What the driver remembers of one live stream between micro-batches."""

    def __init__(self, storage: Storage, stream_id: str):
        self.layout = StreamLayout(stream_id)
        self.source = SourceRecord.from_json(storage.read(self.layout.source_record))
        self.video: dict[tuple[str, int], Segment] = {}
        self.events: tuple[Event, ...] = ()
        self.audio: dict[int, Segment] = {}
        self.last_chunk_wallclock = 0.0
        self.publish_over = False  # the newest chunk was the last of its publish
        self.loaded_catalog = False


class LiveJob:
    def __init__(self, spark, storage: Storage, storage_config: StorageConfig,
                 options: LiveOptions, on_end=None):
        self.spark, self.storage, self.storage_config = spark, storage, storage_config
        self.options = options
        self.on_end = on_end  # called with a stream id when a stream ends
        self.streams: dict[str, _Stream] = {}
        self.lock = threading.Lock()
        self.batches = 0

    # per stream state ---------------------------------------------------------------------

    def _stream(self, stream_id: str) -> _Stream:
        if stream_id not in self.streams:
            self.streams[stream_id] = _Stream(self.storage, stream_id)
        st = self.streams[stream_id]
        if not st.loaded_catalog:  # after a restart: what earlier batches produced
            for name in self.storage.list(st.layout.catalog_dir):
                if name.endswith(".parquet"):
                    for s in read_catalog(self.storage.read(f"{st.layout.catalog_dir}/{name}")):
                        st.video[(s.rendition, s.number)] = s
            st.loaded_catalog = True
        return st

    def _load_audio(self, st: _Stream) -> None:
        names = self.storage.list(st.layout.audio_index_dir)
        for name in names[len(st.audio):] if len(st.audio) <= len(names) else names:
            seg = segment_from_json(self.storage.read(f"{st.layout.audio_index_dir}/{name}"))
            st.audio[seg.number] = seg

    def _state(self, st: _Stream) -> LiveState:
        if self.storage.exists(st.layout.live_state):
            return LiveState.from_json(self.storage.read(st.layout.live_state))
        first = ChunkRecord.from_json(self.storage.read(st.layout.index_record(0)))
        listed_end = max((s.start_seconds + s.duration_seconds for s in st.video.values()),
                         default=0.0)
        state = new_state(first.wallclock - first.duration - first.start,
                          self.options.chunk_seconds, listed_end, time.time())
        self.storage.write_text(st.layout.live_state, state.to_json())
        return state

    def _refresh_events(self, stream_id: str, st: _Stream) -> bool:
        """Fetch the stream's notices; True when they changed."""
        if self.options.notices is None:
            return False
        try:
            events = tuple(self.options.notices(stream_id))
        except Exception as exc:  # noqa: BLE001 - notices may fail; video may not
            log.warning("stream %s: notices unavailable (%s); keeping the last ones",
                        stream_id, exc)
            return False
        changed = events != st.events
        st.events = events
        return changed

    def publish(self, stream_id: str, now: float | None = None) -> None:
        """Rewrite a stream's live manifests from everything transcoded so far."""
        st = self._stream(stream_id)
        self._load_audio(st)
        self._refresh_events(stream_id, st)
        state = self._state(st)
        try:
            p = build_live_presentation(st.source, [*st.video.values(), *st.audio.values()],
                                        state, now or time.time(), self.options.dvr_seconds,
                                        self.options.chunk_seconds, self.options.job.audio,
                                        st.events, self.options.delay_seconds)
        except ReduceError as exc:
            # One stream's broken segments must not stop every other stream's manifests.
            log.error("stream %s: manifests not updated: %s", stream_id, exc)
            return
        for path, data in manifest_files(p):
            self.storage.write(path, data)

    # the micro-batch --------------------------------------------------------------------------

    @staticmethod
    def batch_options(job: JobOptions, chunks: list[ChunkRecord], cores: int) -> JobOptions:
        """Per-chunk tasks decode once for all rungs, but a batch of fewer chunks than cores
        then leaves cores idle while its latency is the whole ladder in series. So such a
        batch spreads each chunk over the spare cores: chunks of at least
        SPLIT_RUNGS_MIN_SECONDS get a task per chunk x rendition (the rungs in parallel);
        shorter ones keep one task each, whose x264 encoders get the spare cores as threads
        (three decodes and process starts per 2 s chunk cost more than they give).
        Measured in docs/BENCHMARKS.md, "Live latency". Pure."""
        if job.task_grouping != "chunk" or not 0 < len(chunks) < cores:
            return job
        if min(c.duration for c in chunks) >= SPLIT_RUNGS_MIN_SECONDS:
            return replace(job, task_grouping="rendition")
        if job.video.threads == 1:
            return replace(job, video=replace(job.video, threads=cores // len(chunks)))
        return job

    def process(self, chunks: list[ChunkRecord], batch_id: int) -> None:
        started = time.monotonic()
        by_stream: dict[str, list[ChunkRecord]] = defaultdict(list)
        for c in chunks:
            by_stream[c.stream_id].append(c)
        tasks = []
        sc = self.spark.sparkContext
        job = self.batch_options(self.options.job, chunks, sc.defaultParallelism)
        # names the batch's Spark jobs in the UI and event log
        sc.setJobDescription(f"live batch {batch_id}: {len(chunks)} chunk(s)")
        with self.lock:
            for stream_id, recs in by_stream.items():
                st = self._stream(stream_id)
                renditions = job.renditions_from(st.source)
                tasks += plan_tasks(st.source, sorted(recs, key=lambda c: c.seq), renditions,
                                    job, self.storage_config)
        # an hdfs:// root's chunks are read by Spark's Hadoop client, where a replica is
        segments = [s for segs in run_tasks(
            with_inputs(sc, tasks, self.storage), run_task_with_input,
            self.storage.root_url, self.storage_config.open) for s in segs] if tasks else []
        with self.lock:
            for stream_id, recs in by_stream.items():
                st = self._stream(stream_id)
                mine = [s for s in segments if s.stream_id == stream_id]
                self.storage.write(st.layout.catalog_batch(batch_id), catalog_bytes(mine))
                for s in mine:
                    st.video[(s.rendition, s.number)] = s
                newest = max(recs, key=lambda c: c.seq)
                if newest.wallclock >= st.last_chunk_wallclock:
                    st.last_chunk_wallclock = newest.wallclock
                    st.publish_over = bool(newest.last)
                state = self._state(st)
                if state.ended:  # a publisher came back after the end: live again
                    self.storage.write_text(st.layout.live_state,
                                            LiveState(state.anchor, state.availability_start)
                                            .to_json())
                self.publish(stream_id)
        self.batches += 1
        log.info("batch %d: %d chunk(s) of %s -> %d segments in %.1f s", batch_id, len(chunks),
                 ", ".join(sorted(by_stream)), len(segments), time.monotonic() - started)

    def _foreach_batch(self, df, batch_id: int) -> None:
        from dataclasses import fields

        names = [f.name for f in fields(ChunkRecord)]
        rows = df.collect()
        self.process([ChunkRecord(**{n: r[n] for n in names if r[n] is not None})
                      for r in rows], batch_id)

    # ending streams ---------------------------------------------------------------------------

    def end_idle_streams(self, now: float | None = None) -> list[str]:
        """Streams whose publish ended end_timeout ago (or that have had no chunk for 30 s
        more than that, as when a chunker died) become VODs; returns their ids."""
        now = now or time.time()
        ended = []
        with self.lock:
            for stream_id, st in self.streams.items():
                if not st.last_chunk_wallclock:
                    continue
                idle = now - st.last_chunk_wallclock
                # Without the chunker's "last chunk" mark, give a chunker that is finishing
                # a recording (or died) time before calling the stream over.
                if idle < self.options.end_timeout + (0 if st.publish_over else 30):
                    continue
                state = self._state(st)
                if state.ended:
                    continue
                pending = len(self.storage.list(st.layout.index_dir)) > len(
                    {s.chunk_seq for s in st.video.values()})
                if pending:
                    continue  # chunks still on their way through a batch
                self.storage.write_text(st.layout.live_state,
                                        LiveState(state.anchor, state.availability_start,
                                                  ended=True).to_json())
                self.publish(stream_id, now)
                ended.append(stream_id)
                log.info("stream %s ended: its manifests are now a VOD", stream_id)
        for stream_id in ended:
            if self.on_end:
                self.on_end(stream_id)
        return ended

    # the query ----------------------------------------------------------------------------------

    def republish_changed_notices(self) -> None:
        """A notice created mid-stream reaches the manifests within a second or two, not
        only with the next chunk."""
        with self.lock:
            for stream_id, st in self.streams.items():
                if st.video and self._refresh_events(stream_id, st):
                    self.publish(stream_id)

    def discover(self) -> None:
        """Register live streams that have not ended (after a restart no batch may touch them)."""
        for stream_id in self.storage.list(streams_dir()):
            layout = StreamLayout(stream_id)
            try:
                if not self.storage.exists(layout.live_state):
                    continue
                if LiveState.from_json(self.storage.read(layout.live_state)).ended:
                    continue
                names = self.storage.list(layout.index_dir)
                with self.lock:
                    st = self._stream(stream_id)
                    if names:
                        last = ChunkRecord.from_json(
                            self.storage.read(f"{layout.index_dir}/{names[-1]}"))
                        st.last_chunk_wallclock = max(st.last_chunk_wallclock, last.wallclock)
                        st.publish_over = last.last
            except (StorageError, ValueError) as exc:
                log.warning("stream %s: not resumed (%s)", stream_id, exc)

    def _warm_up(self) -> None:
        """Start the Python workers and import the map step before the first chunk comes:
        a cold first batch listed a new stream's first chunk ~10 s after it closed."""
        sc = self.spark.sparkContext
        n = max(1, sc.defaultParallelism)
        sc.parallelize(range(n), n).map(lambda _: run_task.__module__).collect()

    def run(self, stop: threading.Event) -> None:
        """Run until stop is set (or the query fails, which raises)."""
        self.discover()
        self._warm_up()
        for d in (streams_dir(), live_checkpoint_dir()):
            if not self.storage.exists(d):
                self.storage.write(f"{d}/.keep", b"")
        reader = (self.spark.readStream.schema(chunk_schema())
                  .json(self.storage.url(all_index_dirs())))
        query = (reader.writeStream.foreachBatch(self._foreach_batch)
                 .option("checkpointLocation", self.storage.url(live_checkpoint_dir()))
                 .trigger(processingTime=f"{self.options.trigger_seconds} seconds")
                 .start())
        log.info("%s: watching %s", READY, self.storage.url(all_index_dirs()))
        logged = -1
        try:
            while not stop.is_set():
                if query.awaitTermination(1.0):
                    break
                logged = _log_progress(query.lastProgress, logged)
                try:
                    self.end_idle_streams()
                    self.republish_changed_notices()
                except StorageError as exc:
                    log.warning("ending idle streams: %s", exc)
        finally:
            if query.isActive:
                query.stop()
        if query.exception():
            raise query.exception()


def _log_progress(progress: dict | None, logged: int) -> int:
    """Log where a finished micro-batch's time went (Spark's own phases, ms), once per
    batch; returns the last batch id logged."""
    if not progress or progress.get("batchId", -1) <= logged or progress.get(
            "numInputRows", 0) == 0:
        return logged
    durations = progress.get("durationMs", {})
    log.info("batch %d phases (ms): %s", progress["batchId"],
             ", ".join(f"{k}={v}" for k, v in sorted(durations.items())))
    return progress["batchId"]
