"""Wiring settings to the ingest and transcode steps (shared by the CLI and spark-submit)."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlparse

from core.codecs import AudioCodec, VideoCodec
from core.config import Settings
from core.ladder import parse_ladder, plan_ladder
from core.records import ChunkRecord, SourceRecord
from hdfs_layout import Storage, StorageError, open_storage
from hdfs_layout.webhdfs import webhdfs_address
from ingest.chunker import ingest_file
from jobs.library import LibraryOptions, LibraryReport, run_library
from jobs.library import Progress as LibraryProgress
from jobs.library_inputs import InputError, resolve_inputs
from jobs.spark_session import get_session
from jobs.transcode import JobOptions, JobSummary, run_job
from jobs.transcode_map import StorageConfig

Progress = Callable[[int, int], None]


def storage_config(settings: Settings) -> StorageConfig:
    """How executors open the root. An HDFS root's WebHDFS address is resolved here, on the
    driver, where HADOOP_CONF_DIR is set; executors may not have it."""
    webhdfs = settings.webhdfs_url
    if urlparse(settings.root).scheme == "hdfs":
        webhdfs = webhdfs_address(settings.root, webhdfs)
    return StorageConfig(settings.root, webhdfs, settings.hdfs_user)


def open_root(settings: Settings) -> Storage:
    """The storage root, checked to exist. Raises StorageError naming the root.

    A local root is made on first use; an HDFS root is not (its owner and permissions
    are the cluster administrator's), so a mistyped one fails here, not halfway.
    """
    storage = open_storage(settings.root, settings.webhdfs_url, settings.hdfs_user)
    if not storage.exists(""):
        raise StorageError(f"{storage.root_url}: no such directory (the storage root must "
                           f"exist: hdfs dfs -mkdir -p {urlparse(storage.root_url).path})")
    return storage


def job_options(settings: Settings, preset: str | None = None) -> JobOptions:
    """The map step's options from settings; `preset` overrides x264_preset (live)."""
    rungs = parse_ladder(settings.ladder)

    def renditions(source: SourceRecord):
        sar = float(eval_fraction(source.sar))
        return plan_ladder(rungs, source.width, source.height, sar)

    return JobOptions(
        renditions_from=renditions,
        video=VideoCodec(preset=preset or settings.x264_preset, threads=settings.encoder_threads,
                         rate_control=settings.rate_control, crf=settings.crf),
        audio=AudioCodec(bitrate=settings.audio_bitrate),
        segment_seconds=settings.segment_seconds,
        task_grouping=settings.task_grouping,
    )


def eval_fraction(text: str):
    from fractions import Fraction

    return Fraction(text)


def run_ingest(settings: Settings, input_path: str, stream_id: str,
               progress: Progress | None = None) -> tuple[SourceRecord, list[ChunkRecord]]:
    return ingest_file(input_path, stream_id, open_root(settings), settings.chunk_seconds,
                       settings.segment_seconds, progress)


def run_transcode(settings: Settings, stream_id: str, progress: Progress | None = None
                  ) -> JobSummary:
    options = job_options(settings)  # fail on a bad ladder before Spark starts,
    storage = open_root(settings)  # and on a missing or unreachable root
    spark = get_session(f"sparkcast-transcode-{stream_id}", settings.spark_master)
    return run_job(spark, storage, storage_config(settings), stream_id, options, progress)


def options_fingerprint(settings: Settings) -> str:
    """A hash of every setting that shapes a video's outputs: a re-submit with other
    values transcodes again instead of skipping the video."""
    shaping = {k: getattr(settings, k) for k in (
        "chunk_seconds", "segment_seconds", "ladder", "audio_bitrate", "x264_preset",
        "rate_control", "crf", "encoder_threads", "task_grouping")}
    return hashlib.sha1(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


def new_job_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def run_library_job(settings: Settings, inputs: Sequence[str], stream_id: str | None = None,
                    fail_fast: bool = False, job_id: str | None = None,
                    progress: LibraryProgress | None = None) -> LibraryReport:
    """`sparkcast submit`: list the INPUTs, then ingest and transcode them in one Spark
    application. Raises InputError (nothing runs) when the inputs do not make a job."""
    job_id = job_id or new_job_id()
    options = LibraryOptions(job_options(settings), settings.chunk_seconds,
                             settings.segment_seconds, options_fingerprint(settings),
                             fail_fast=fail_fast)
    storage = open_root(settings)
    spark = get_session(f"sparkcast job {job_id}", settings.spark_master)
    videos = resolve_inputs(spark, inputs, stream_id)
    if spark.sparkContext.getConf().get("spark.submit.deployMode", "client") == "cluster":
        local = [v.url for v in videos if not v.is_hdfs]
        if local:
            raise InputError(f"{local[0]}: in YARN cluster mode the driver runs on the "
                             "cluster and cannot read the submitting host's files; put the "
                             "inputs on HDFS (hdfs://...)")
    return run_library(spark, storage, storage_config(settings), videos, options, job_id,
                       progress)
