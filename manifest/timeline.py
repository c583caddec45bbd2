"""Segment timelines: runs of equal-length contiguous segments, as DASH `S` elements. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.segments import Segment


class TimelineError(ValueError):
    """Segments that do not form one gapless, ordered run."""


@dataclass(frozen=True)
class S:
    t: int  # start, ticks
    d: int  # duration of each, ticks
    r: int = 0  # how many more follow with the same d


def check_contiguous(segments: Sequence[Segment], slack: int = 0) -> None:
    """Raise TimelineError unless numbers count up by one and each starts where the last
    ended (within `slack` ticks either way)."""
    for prev, cur in zip(segments, segments[1:], strict=False):
        where = f"{cur.stream_id}/{cur.rendition} segment {cur.number}"
        if cur.number != prev.number + 1:
            raise TimelineError(f"{where}: follows segment {prev.number} (a segment is missing)")
        if abs(cur.start - (prev.start + prev.duration)) > slack:
            raise TimelineError(f"{where}: starts at {cur.start}, previous ends at "
                                f"{prev.start + prev.duration} (timescale {cur.timescale})")


def build_timeline(segments: Sequence[Segment]) -> list[S]:
    """Compress ordered segments into S runs; a gap starts a new run with an explicit t."""
    runs: list[S] = []
    for seg in segments:
        last = runs[-1] if runs else None
        if last and seg.duration == last.d and seg.start == last.t + last.d * (last.r + 1):
            runs[-1] = S(last.t, last.d, last.r + 1)
        else:
            runs.append(S(seg.start, seg.duration))
    return runs
