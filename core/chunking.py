"""Where a video file is cut into chunks, and how many segments each chunk yields. Pure.

The rule (docs/TRANSCODING.md, "Chunks"): a chunk ends at the source keyframe
nearest its chunk-length mark when one lies within a quarter chunk of it, so
the next chunk starts on a keyframe and its task decodes nothing it then
drops; only where no keyframe is near does the chunk end on the mark itself
(decode from the keyframe before it and trim, as before). Inside a chunk,
segments are `segment_frames` long; the last one takes the remainder, merged
into it when it is shorter than half a segment, so keyframes (one per segment)
stay on the same frames in every rendition.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from core.grid import Grid

# Decode-order packets past the last wanted frame, so B-frames shown before it are whole.
TAIL_MARGIN_S = 1.0
# When the chunk ends right before a source keyframe (a closed GOP), every frame shown
# before it is decoded before it: a few frames of margin are enough.
KEYFRAME_TAIL_MARGIN_S = 0.1


@dataclass(frozen=True)
class ChunkPlan:
    seq: int
    start_frame: int
    frames: int
    seek: float  # input seek time (s); ffmpeg starts the copy at the keyframe at or before it
    end: float  # source time (s) up to which packets are copied
    first_segment: int  # number of the chunk's first output segment
    segments: int  # output segments the chunk yields


def segments_in(frames: int, segment_frames: int) -> int:
    """Segments of a chunk of `frames` frames: whole segments, a short remainder merged."""
    whole, rest = divmod(frames, segment_frames)
    if whole == 0:
        return 1
    return whole + (1 if rest * 2 >= segment_frames else 0)


def chunk_ends(frames: int, keyframes: tuple[int, ...], grid: Grid) -> list[int]:
    """The frame index each chunk ends before (the last is `frames`)."""
    tolerance = grid.chunk_frames // 4
    ends = []
    start = 0
    while start < frames:
        mark = start + grid.chunk_frames
        if mark >= frames:
            ends.append(frames)
            break
        i = bisect.bisect_left(keyframes, mark - tolerance)
        near = [k for k in keyframes[i:bisect.bisect_right(keyframes, mark + tolerance)]
                if start + grid.segment_frames // 2 <= k < frames]
        end = min(near, key=lambda k: (abs(k - mark), k)) if near else mark
        ends.append(end)
        start = end
    return ends


def plan_chunks(frame_times: tuple[float, ...], keyframes: tuple[int, ...], frame_seconds: float,
                grid: Grid) -> list[ChunkPlan]:
    """The chunks of a source with these frame times (display order) and keyframe indices."""
    keyset = set(keyframes)
    plans = []
    start = 0
    segment = 0
    for seq, end in enumerate(chunk_ends(len(frame_times), keyframes, grid)):
        count = end - start
        margin = KEYFRAME_TAIL_MARGIN_S if end in keyset else TAIL_MARGIN_S
        # A quarter frame past the first frame, so rounding never seeks one keyframe early.
        seek = frame_times[start] + frame_seconds / 4
        stop = frame_times[end - 1] + frame_seconds / 2 + margin
        n = segments_in(count, grid.segment_frames)
        plans.append(ChunkPlan(seq, start, count, seek, stop, segment, n))
        segment += n
        start = end
    return plans


def seek_keyframe(frame_times: tuple[float, ...], keyframes: tuple[int, ...], plan: ChunkPlan
                  ) -> int:
    """Index of the keyframe an input seek to plan.seek lands on (the last one at or before)."""
    return max(k for k in keyframes if frame_times[k] <= plan.seek)
