"""Cutting a video file into raw chunks by stream copy (no re-encoding), and its audio.

Where to cut is core/chunking.py's (pure); this module runs ffmpeg. A chunk's
raw file starts at the keyframe at or before its first frame; the returned
`skip` is how many decoded frames to drop so the chunk starts exactly on its
frame. Used by the single-file ingest (ingest/chunker.py) and by the library
job's ingest tasks on the executors (jobs/library_tasks.py).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

import ffmpeg

from core.chunking import TAIL_MARGIN_S, ChunkPlan, seek_keyframe
from core.grid import Grid
from core.media.ffmpeg_run import FFMPEG, MediaError, run
from core.media.probe import MediaInfo, packets_args, parse_packets
from core.records import ChunkRecord, SourceRecord

# Codecs MPEG-TS carries; anything else is chunked into Matroska.
TS_VIDEO_CODECS = {"h264", "hevc", "mpeg2video", "mpeg1video", "mpeg4"}


def raw_extension(codec: str) -> str:
    return "ts" if codec in TS_VIDEO_CODECS else "mkv"


def cut_args(src: str, dst: str, plan: ChunkPlan, ext: str) -> list[str]:
    stream = ffmpeg.input(src, ss=f"{plan.seek:.6f}")["v:0"]
    out = stream.output(
        dst, c="copy", to=f"{plan.end:.6f}", f="mpegts" if ext == "ts" else "matroska",
        # Keep source timestamps (-copyts) so the chunk's frames can be matched to the
        # source's by time; no mux delay, so those times are not shifted by 1.4 s.
        muxdelay=0, muxpreload=0, map_metadata=-1,
    )
    return out.global_args("-v", "error", "-copyts", "-y").compile(cmd=FFMPEG)


def audio_args(src: str, dst: str) -> list[str]:
    out = ffmpeg.input(src)["a:0"].output(dst, c="copy", f="matroska", map_metadata=-1)
    return out.global_args("-v", "error", "-y").compile(cmd=FFMPEG)


def raw_frame_times(path: str) -> tuple[float, ...]:
    times, _ = parse_packets(json.loads(run(packets_args(path), source=path) or b"{}"))
    return times


def _is_whole(info: MediaInfo, plan: ChunkPlan, raw: tuple[float, ...], key: int) -> bool:
    """Does the copy hold the plan's frames, spaced as in the source? The container may
    shift every timestamp (MPEG-TS cannot hold negative ones), so spacing is compared."""
    frame = 1 / float(info.video.frame_rate)
    times = info.video.frame_times
    skip = plan.start_frame - key
    last = plan.start_frame + plan.frames - 1
    return len(raw) >= skip + plan.frames and all(
        abs((raw[i - key] - raw[0]) - (times[i] - times[key])) < frame / 2
        for i in (plan.start_frame, last))


def cut_chunk(info: MediaInfo, plan: ChunkPlan, workdir: str, ext: str) -> tuple[str, int, int]:
    """Cut one raw chunk into workdir; return (local file, skip, frames in the file).
    Raises MediaError naming the source and the chunk."""
    local = os.path.join(workdir, f"{plan.seq:08d}.{ext}")
    key = seek_keyframe(info.video.frame_times, info.video.keyframes, plan)
    # A chunk ending right before a keyframe is copied with a short tail; should the
    # source's B-frames reach further than that, the copy is made again with a long one.
    for attempt in (plan, replace(plan, end=max(plan.end, info.video.frame_times[
            plan.start_frame + plan.frames - 1] + TAIL_MARGIN_S))):
        run(cut_args(info.path, local, attempt, ext), source=info.path)
        raw = raw_frame_times(local)
        if _is_whole(info, plan, raw, key):
            return local, plan.start_frame - key, len(raw)
    last = plan.start_frame + plan.frames - 1
    raise MediaError(info.path, f"chunk {plan.seq} (frames {plan.start_frame}..{last}) "
                     f"could not be cut whole: the copy holds {len(raw)} frames from "
                     f"keyframe {key}, {plan.start_frame - key + plan.frames} needed")


def chunk_record(stream_id: str, plan: ChunkPlan, grid: Grid, raw_path: str, skip: int,
                 size: int) -> ChunkRecord:
    """The record of a cut chunk: which source frames it holds, and its output segments."""
    return ChunkRecord(
        stream_id=stream_id, seq=plan.seq, raw=raw_path, start_frame=plan.start_frame,
        frames=plan.frames, skip=skip, start=grid.frame_time(plan.start_frame),
        duration=plan.frames / float(grid.frame_rate), bytes=size, wallclock=time.time(),
        first_segment=plan.first_segment, segments=plan.segments)


def source_record(stream_id: str, info: MediaInfo, grid: Grid, audio_path: str | None,
                  segments: int = 0) -> SourceRecord:
    v = info.video
    offset = info.audio.start - v.frame_times[0] if info.audio else 0.0
    return SourceRecord(
        stream_id=stream_id, input=info.path, width=v.width, height=v.height, sar=str(v.sar),
        frame_rate=str(v.frame_rate), segment_frames=grid.segment_frames,
        chunk_frames=grid.chunk_frames, frames=v.frames, duration=v.frames / float(v.frame_rate),
        audio=audio_path, audio_offset=round(offset, 6), segments=segments,
    )
