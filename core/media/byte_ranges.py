"""Which bytes of a source a task cutting some of its chunks needs.

A range task of a long video (jobs/library_tasks.py) cuts a few minutes of it. For
a plain (not fragmented) MP4/MOV file it needs only the file's headers (every
top-level box but the media data, whose own header it needs too) and the bytes of
the packets of its frames: the demuxer finds each sample through the `moov` index
and reads nothing else, so the rest of the task's local copy can stay a hole.
Anything else (MPEG-TS, Matroska, fragmented MP4), whose demuxers seek by reading,
is read whole. A wrong guess cannot go unnoticed: every cut chunk is checked frame
by frame (core/media/cutting.py).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from core.chunking import TAIL_MARGIN_S, ChunkPlan, seek_keyframe
from core.media.probe import MediaInfo

Ranges = tuple[tuple[int, int], ...]  # (start, length) pairs

MDAT_HEADER = 16  # size, type, and a 64-bit size
# Frames this far either side are read too: the audio interleaved with the video (muxers
# interleave by about a second), and past the last frame the cut's retry reads up to
# TAIL_MARGIN_S further.
BEFORE_S = 1.0
TAIL_S = TAIL_MARGIN_S + 1.0
SLACK = 64 * 1024  # bytes either side: the demuxer's read-ahead
MP4_FORMATS = ("mov", "mp4")


@dataclass(frozen=True)
class TopBox:
    kind: str
    offset: int
    size: int


def top_level_boxes(path: str) -> list[TopBox] | None:
    """The file's top-level ISO BMFF boxes from their headers; None when it is not one
    (a header that does not parse, or boxes that do not tile the file)."""
    size = os.path.getsize(path)
    boxes, pos = [], 0
    with open(path, "rb") as f:
        while pos < size:
            f.seek(pos)
            head = f.read(16)
            if len(head) < 8:
                return None
            length, kind = struct.unpack(">I4s", head[:8])
            if length == 1 and len(head) == 16:
                length = struct.unpack(">Q", head[8:16])[0]
            elif length == 0:
                length = size - pos
            if length < 8 or pos + length > size or not kind.isascii():
                return None
            boxes.append(TopBox(kind.decode("ascii", "replace"), pos, length))
            pos += length
    return boxes


def header_ranges(boxes: Sequence[TopBox]) -> Ranges | None:
    """Every top-level box but the media data's body; None for a file a demuxer cannot
    read through holes (fragmented, or no `moov`). Pure."""
    kinds = {b.kind for b in boxes}
    if "moov" not in kinds or kinds & {"moof", "mfra", "sidx"}:
        return None
    return tuple((b.offset, min(b.size, MDAT_HEADER) if b.kind == "mdat" else b.size)
                 for b in boxes)


def frames_range(times: Sequence[float], spans: Sequence[tuple[int, int]], start: float,
                 end: float, size: int, slack: int = SLACK) -> tuple[int, int]:
    """(start, length) covering the packet of every frame shown from `start` to `end`
    seconds (in whatever order they are stored), `slack` bytes either side. Pure."""
    chosen = [spans[i] for i, t in enumerate(times) if start <= t <= end]
    if not chosen:
        return (0, 0)
    low = max(0, min(pos for pos, _ in chosen) - slack)
    high = min(size, max(pos + n for pos, n in chosen) + slack)
    return (low, high - low)


def merge(ranges: Sequence[tuple[int, int]]) -> Ranges:
    """Sorted, with overlapping or touching ranges joined and empty ones dropped. Pure."""
    out: list[list[int]] = []
    for start, length in sorted(r for r in ranges if r[1] > 0):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], start + length)
        else:
            out.append([start, start + length])
    return tuple((a, b - a) for a, b in out)


def cut_ranges(info: MediaInfo, plans: Sequence[ChunkPlan], boxes: Sequence[TopBox] | None,
               size: int) -> Ranges | None:
    """The bytes a task cutting `plans` reads, or None: read the whole file. Pure."""
    v = info.video
    if not plans or boxes is None or not v.frame_spans or \
            not any(name in info.format_name.split(",") for name in MP4_FORMATS):
        return None
    headers = header_ranges(boxes)
    if headers is None:
        return None
    first = v.frame_times[seek_keyframe(v.frame_times, v.keyframes, plans[0])] - BEFORE_S
    last_plan = plans[-1]
    last = v.frame_times[last_plan.start_frame + last_plan.frames - 1] + TAIL_S
    ranges = merge([*headers, frames_range(v.frame_times, v.frame_spans, first, last, size)])
    # Not worth it when the task would read most of the file anyway.
    return ranges if sum(n for _, n in ranges) < 0.8 * size else None
