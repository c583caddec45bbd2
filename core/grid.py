"""The frame grid every chunk and segment is cut on. Pure.

Durations are counted in frames at the source's frame rate, so 29.97 fps gives
60-frame (2.002 s) segments rather than fractional ones, and a chunk is a whole
number of segments. Keyframes of every rendition then fall on the same frames,
and segment n of every rendition covers the same pictures.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Grid:
    frame_rate: Fraction
    segment_frames: int
    chunk_frames: int

    @property
    def timescale(self) -> int:
        """Video track timescale in which one frame is a whole number of ticks."""
        num = self.frame_rate.numerator
        return num if num >= 1000 else num * 1000

    @property
    def frame_ticks(self) -> int:
        return self.timescale * self.frame_rate.denominator // self.frame_rate.numerator

    @property
    def segments_per_chunk(self) -> int:
        return self.chunk_frames // self.segment_frames

    def frame_time(self, frame: int) -> float:
        return float(frame / self.frame_rate)

    def ticks(self, frame: int) -> int:
        return frame * self.frame_ticks


def plan_grid(frame_rate: Fraction, segment_seconds: float, chunk_seconds: float) -> Grid:
    """Segment and chunk lengths in whole frames; a chunk is a whole number of segments."""
    if frame_rate <= 0:
        raise ValueError(f"frame rate {frame_rate} must be positive")
    segment_frames = max(1, round(segment_seconds * frame_rate))
    per_chunk = max(1, round(chunk_seconds / segment_seconds))
    return Grid(Fraction(frame_rate), segment_frames, segment_frames * per_chunk)
