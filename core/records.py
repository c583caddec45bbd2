"""Chunk-index records and the source record: what ingest tells the transcode job.

Plain frozen dataclasses with a JSON form, one file per record, so batch jobs
list a folder and the live job streams the same records.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields
from fractions import Fraction
from typing import Any, TypeVar

from core.grid import Grid

T = TypeVar("T")


class RecordError(ValueError):
    """A record file is missing a field or holds a wrong value."""


def _from_dict(cls: type[T], data: dict[str, Any], source: str) -> T:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    missing = [f.name for f in fields(cls)  # type: ignore[arg-type]
               if f.name not in data and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise RecordError(f"{source}: missing field(s) {', '.join(missing)}")
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise RecordError(f"{source}: {exc}") from exc


def _from_json(cls: type[T], text: str | bytes, source: str) -> T:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RecordError(f"{source}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise RecordError(f"{source}: not a JSON object")
    return _from_dict(cls, data, source)


@dataclass(frozen=True)
class ChunkRecord:
    """One raw chunk: which source frames it holds and where they sit in media time."""

    stream_id: str
    seq: int
    raw: str  # storage path of the raw chunk
    start_frame: int  # index of the chunk's first frame in the stream
    frames: int  # frames the chunk contributes
    skip: int  # frames to decode and drop first (cut from the previous keyframe)
    start: float  # media start, seconds
    duration: float  # seconds
    bytes: int
    wallclock: float  # unix time the chunk was closed
    discontinuity: bool = False
    period: int = 0  # continuous run the chunk belongs to (a reconnect starts a new one)
    last: bool = False  # the final chunk of a publish (the publisher went away)
    # Output segments: numbered from first_segment (-1: start_frame's place on the grid),
    # `segments` of them (0: one per segment_frames, the last one short).
    first_segment: int = -1
    segments: int = 0

    def segment_span(self, grid: Grid) -> tuple[int, int]:
        """(number of the first output segment, how many) for this chunk on `grid`."""
        first = self.first_segment if self.first_segment >= 0 else (
            self.start_frame // grid.segment_frames)
        return first, self.segments or -(-self.frames // grid.segment_frames)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "chunk record") -> ChunkRecord:
        return _from_json(cls, text, source)


@dataclass(frozen=True)
class SourceRecord:
    """What ingest learned about a stream's source; fixed for the stream's life."""

    stream_id: str
    input: str
    width: int
    height: int
    sar: str  # e.g. "1/1"
    frame_rate: str  # e.g. "30000/1001"
    segment_frames: int
    chunk_frames: int
    frames: int  # total video frames (0 while a live stream is running)
    duration: float
    audio: str | None  # storage path of the stream's raw audio, if any
    audio_offset: float = 0.0  # audio start minus video start, seconds
    live: bool = False
    segments: int = 0  # video segments of each rendition (0: one per segment_frames)
    # What the input was when it was ingested (size, mtime): a re-submit of a changed file
    # is transcoded again (jobs/library.py).
    input_bytes: int = -1
    input_mtime: float = -1.0
    options: str = ""  # fingerprint of the settings the stream was planned with

    @property
    def expected_segments(self) -> int | None:
        if self.segments:
            return self.segments
        return -(-self.frames // self.segment_frames) if self.frames else None

    @property
    def grid(self) -> Grid:
        return Grid(Fraction(self.frame_rate), self.segment_frames, self.chunk_frames)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "source record") -> SourceRecord:
        return _from_json(cls, text, source)
