"""What a manifest describes, independent of DASH or HLS syntax. Pure.

The reduce step turns a stream's Segment values into a Presentation; the MPD
and HLS writers only format it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from core.segments import Segment


@dataclass(frozen=True)
class Track:
    """One Representation (DASH) / one media playlist (HLS)."""

    id: str
    kind: str  # "video" or "audio"
    codec: str
    timescale: int
    segments: tuple[Segment, ...]
    width: int = 0
    height: int = 0
    frame_rate: str = ""
    sample_rate: int = 0
    channels: int = 0
    presentation_time_offset: int = 0

    @property
    def duration_ticks(self) -> int:
        return sum(s.duration for s in self.segments)

    @property
    def average_bitrate(self) -> int:
        seconds = self.duration_ticks / self.timescale
        return round(sum(s.bytes for s in self.segments) * 8 / seconds) if seconds else 0

    @property
    def peak_bitrate(self) -> int:
        return max((round(s.bytes * 8 / s.duration_seconds) for s in self.segments
                    if s.duration), default=0)

    @property
    def start_number(self) -> int:
        return self.segments[0].number if self.segments else 0


@dataclass(frozen=True)
class Period:
    id: str
    start: float  # seconds from the presentation start
    video: tuple[Track, ...]
    audio: tuple[Track, ...] = ()

    @property
    def duration(self) -> float:
        t = self.video[0] if self.video else self.audio[0]
        return t.duration_ticks / t.timescale

    @property
    def media_end(self) -> float:
        """Presentation time where the period's video (else audio) ends."""
        t = self.video[0] if self.video else self.audio[0]
        last = t.segments[-1]
        return self.start + (last.start + last.duration - t.presentation_time_offset) \
            / t.timescale

    @property
    def discontinuity(self) -> bool:
        return self.id != "0"


@dataclass(frozen=True)
class Event:
    """A timed notice carried in the stream itself (DASH EventStream, HLS DATERANGE)."""

    id: int
    kind: str  # "disclaimer" | "flash"
    text: str
    start: float  # unix time
    duration: float | None = None  # None: until withdrawn


EVENT_SCHEME = "urn:sparkcast:notice:2026"


@dataclass(frozen=True)
class LiveTiming:
    """What makes a presentation dynamic (a live stream still being published)."""

    availability_start: float  # unix time of media time 0
    publish_time: float  # unix time this version of the manifest was made
    minimum_update_period: float
    time_shift_buffer_depth: float
    suggested_presentation_delay: float
    utc_timing_url: str = "/clock"


@dataclass(frozen=True)
class Presentation:
    stream_id: str
    periods: tuple[Period, ...]
    live: LiveTiming | None = None
    segment_seconds: float = 2.0
    base_urls: tuple[str, ...] = field(default_factory=tuple)
    # unix time of media time 0 (capture of the first frame), for HLS PROGRAM-DATE-TIME
    wallclock_anchor: float | None = None
    events: tuple[Event, ...] = ()

    @property
    def duration(self) -> float:
        last = self.periods[-1]
        return last.start + last.duration


def max_segment_seconds(tracks: Sequence[Track]) -> float:
    return max((s.duration_seconds for t in tracks for s in t.segments), default=0.0)
