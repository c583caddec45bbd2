"""Where everything lives under the storage root (see docs/STORAGE.md).

Paths here are relative to the root and use '/' on every backend. Nothing else
in the project builds a storage path by hand; like a URL builder, this module
is the one place to change when the layout changes.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

STREAM_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"  # also what URLs accept (urls.py)
_STREAM_ID = re.compile(rf"^{STREAM_ID_PATTERN}\Z")
_RENDITION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}\Z")
AUDIO = "audio"


class LayoutError(ValueError):
    """A stream id, rendition or segment number that cannot name a storage path."""


def validate_stream_id(stream_id: str) -> str:
    if not isinstance(stream_id, str) or not _STREAM_ID.match(stream_id):
        raise LayoutError(
            f"stream id {stream_id!r} is invalid: use 1-64 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return stream_id


def stream_id_from_name(path: str) -> str:
    """A stream id from a file name: its stem, with anything an id cannot hold made '-'."""
    stem = posixpath.splitext(posixpath.basename(path.rstrip("/")))[0]
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:64]
    return cleaned or "stream"


def validate_rendition(name: str) -> str:
    if not isinstance(name, str) or not _RENDITION.match(name):
        raise LayoutError(f"rendition name {name!r} is invalid")
    return name


@dataclass(frozen=True)
class StreamLayout:
    """All paths of one stream (a live stream or a submitted video)."""

    stream_id: str

    def __post_init__(self) -> None:
        validate_stream_id(self.stream_id)

    @property
    def base(self) -> str:
        return f"streams/{self.stream_id}"

    # ingest
    @property
    def raw_dir(self) -> str:
        return f"{self.base}/raw"

    def raw_chunk(self, seq: int, ext: str = "ts", pipeline: str = "") -> str:
        """A raw chunk; with two ingest pipelines each writes its own copy (the index
        record names the one that won)."""
        return f"{self.raw_dir}/{seq:08d}{'.' + pipeline if pipeline else ''}.{ext}"

    def raw_audio(self, ext: str = "mka") -> str:
        return f"{self.raw_dir}/audio.{ext}"

    @property
    def index_dir(self) -> str:
        return f"{self.base}/index"

    def index_record(self, seq: int) -> str:
        return f"{self.index_dir}/{seq:08d}.json"

    @property
    def source_record(self) -> str:
        """What ingest learned about the source (frame rate, size, audio) for the job."""
        return f"{self.base}/source.json"

    # transcode outputs
    @property
    def out_dir(self) -> str:
        return f"{self.base}/out"

    def rendition_dir(self, rendition: str) -> str:
        return f"{self.out_dir}/{validate_rendition(rendition)}"

    def init_segment(self, rendition: str) -> str:
        return f"{self.rendition_dir(rendition)}/init.mp4"

    def media_segment(self, rendition: str, number: int) -> str:
        if number < 0:
            raise LayoutError(f"segment number {number} is negative")
        return f"{self.rendition_dir(rendition)}/{number:08d}.m4s"

    # manifests, relative to the stream base (what players resolve against)
    SEGMENT_TEMPLATE = "out/$RepresentationID$/$Number%08d$.m4s"
    INIT_TEMPLATE = "out/$RepresentationID$/init.mp4"

    @staticmethod
    def relative_init(rendition: str) -> str:
        return f"out/{rendition}/init.mp4"

    @staticmethod
    def relative_segment(rendition: str, number: int) -> str:
        return f"out/{rendition}/{number:08d}.m4s"

    @staticmethod
    def media_playlist_name(rendition: str) -> str:
        return f"{rendition}.m3u8"

    @property
    def manifest(self) -> str:
        return f"{self.base}/manifest.mpd"

    @property
    def master_playlist(self) -> str:
        return f"{self.base}/master.m3u8"

    def media_playlist(self, rendition: str) -> str:
        return f"{self.base}/{self.media_playlist_name(validate_rendition(rendition))}"

    @property
    def catalog_dir(self) -> str:
        return f"{self.base}/catalog"

    @property
    def catalog_file(self) -> str:
        return f"{self.catalog_dir}/segments.parquet"

    def catalog_batch(self, batch_id: int) -> str:
        """The live job's catalog part for one micro-batch (rewritten, not added, on replay)."""
        return f"{self.catalog_dir}/batch-{batch_id:010d}.parquet"

    @property
    def done_dir(self) -> str:
        """One record per finished map task of a batch job (the segments it wrote), so a
        re-submit after a crash transcodes only what is missing."""
        return f"{self.base}/done"

    def done_record(self, task_key: str) -> str:
        if not _RENDITION.match(task_key.replace(".", "-")):
            raise LayoutError(f"task key {task_key!r} is invalid")
        return f"{self.done_dir}/{task_key}.json"

    @property
    def completion_record(self) -> str:
        """Written last by a batch job: what was transcoded, from which input, with which
        options (a re-submit skips a stream whose record and outputs match)."""
        return f"{self.base}/complete.json"

    # live
    @property
    def live_state(self) -> str:
        """The live job's fixed facts of a live stream (availabilityStartTime, ended)."""
        return f"{self.base}/live.json"

    @property
    def audio_index_dir(self) -> str:
        """One record per live audio segment (live audio is encoded at ingest)."""
        return f"{self.base}/audio_index"

    def audio_record(self, number: int) -> str:
        return f"{self.audio_index_dir}/{number:08d}.json"

    @property
    def periods_dir(self) -> str:
        """One claim per live period (ingest/pipelines.py): where its chunks start."""
        return f"{self.base}/periods"

    def period_claim(self, period: int) -> str:
        return f"{self.periods_dir}/{period:05d}.json"

    @property
    def anchors_dir(self) -> str:
        """Recent GOPs' content keys and their frame places, so an ingest pipeline that
        joins a live period finds where its GOPs sit on the stream's frame grid."""
        return f"{self.base}/anchors"


def streams_dir() -> str:
    return "streams"


def all_index_dirs() -> str:
    """Glob of every stream's chunk-index folder: what the live job's query reads."""
    return "streams/*/index"


JOB_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}"
_JOB_ID = re.compile(rf"^{JOB_ID_PATTERN}\Z")


def validate_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise LayoutError(f"job id {job_id!r} is invalid: use 1-80 letters, digits, '.', "
                          "'-' or '_'")
    return job_id


def jobs_dir() -> str:
    """The job table: one Hive-style partition per batch job (`spark.read.parquet` over
    this folder reads every job, with `job_id` as a column)."""
    return "jobs"


def job_table_file(job_id: str) -> str:
    return f"{jobs_dir()}/job_id={validate_job_id(job_id)}/videos.parquet"


def job_from_dir(name: str) -> str | None:
    """The job id of a partition folder name under jobs_dir(), or None."""
    prefix = "job_id="
    return name[len(prefix):] if name.startswith(prefix) else None


def live_checkpoint_dir() -> str:
    return "live/checkpoint"


def stream_from_path(path: str) -> tuple[str, str]:
    """Split 'streams/<id>/rest' into (id, rest); raises LayoutError for anything else."""
    parts = path.split("/", 2)
    if len(parts) < 3 or parts[0] != "streams":
        raise LayoutError(f"{path!r} is not inside a stream")
    return validate_stream_id(parts[1]), parts[2]


def ad_source(creative_id: int) -> str:
    """An uploaded ad creative's source file (transcoded into the stream ad-<id>)."""
    if creative_id < 1:
        raise LayoutError(f"ad creative id must be positive, got {creative_id}")
    return f"ads/{creative_id}/source"
