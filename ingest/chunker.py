"""Cut a video file into raw chunks on the frame grid, plus the stream's raw audio.

Chunks are cut by stream copy (no re-encoding) starting at the keyframe at or
before the chunk's first frame; the record's `skip` says how many decoded
frames to drop so that the chunk starts exactly on its grid frame. A source
whose keyframes fall on the grid gives skip = 0 (cut on keyframes); a long-GOP
source (one keyframe a minute) still splits into independent chunks, at the
price of decoding the frames before each cut.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import ffmpeg

from core.grid import Grid, plan_grid
from core.media.ffmpeg_run import FFMPEG, MediaError, run
from core.media.probe import MediaInfo, VideoInfo, packets_args, parse_packets, probe
from core.records import ChunkRecord, SourceRecord
from hdfs_layout import Storage, StreamLayout

# Codecs MPEG-TS carries; anything else is chunked into Matroska.
TS_VIDEO_CODECS = {"h264", "hevc", "mpeg2video", "mpeg1video", "mpeg4"}
# Decode-order packets past the last wanted frame, so B-frames shown before it are whole.
TAIL_MARGIN_S = 1.0


@dataclass(frozen=True)
class ChunkPlan:
    seq: int
    start_frame: int
    frames: int
    seek: float  # input seek time (s); ffmpeg starts the copy at the keyframe at or before it
    end: float  # source time (s) up to which packets are copied


def plan_chunks(video: VideoInfo, grid: Grid) -> list[ChunkPlan]:
    """Chunks of grid.chunk_frames frames each (the last may be shorter). Pure."""
    times = video.frame_times
    frame = 1 / float(video.frame_rate)
    plans = []
    for seq, start in enumerate(range(0, len(times), grid.chunk_frames)):
        count = min(grid.chunk_frames, len(times) - start)
        # A quarter frame past the first frame, so rounding never seeks one keyframe early.
        plans.append(ChunkPlan(seq, start, count, times[start] + frame / 4,
                               times[start + count - 1] + frame / 2 + TAIL_MARGIN_S))
    return plans


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


def seek_keyframe(video: VideoInfo, plan: ChunkPlan) -> int:
    """Index of the keyframe an input seek to plan.seek lands on (the last one at or before)."""
    return max(k for k in video.keyframes if video.frame_times[k] <= plan.seek)


def _raw_frame_times(path: str) -> tuple[float, ...]:
    times, _ = parse_packets(json.loads(run(packets_args(path), source=path) or b"{}"))
    return times


def cut_chunk(info: MediaInfo, plan: ChunkPlan, workdir: str, ext: str) -> tuple[str, int]:
    """Cut one raw chunk into workdir; return (local file, skip). Raises MediaError.

    The container may shift all timestamps (MPEG-TS cannot hold negative ones), so the
    chunk is checked against the source by frame spacing, not absolute time.
    """
    local = os.path.join(workdir, f"{plan.seq:08d}.{ext}")
    run(cut_args(info.path, local, plan, ext), source=info.path)
    frame = 1 / float(info.video.frame_rate)
    raw = _raw_frame_times(local)
    times = info.video.frame_times
    key = seek_keyframe(info.video, plan)
    skip = plan.start_frame - key
    last = plan.start_frame + plan.frames - 1
    whole = len(raw) >= skip + plan.frames and all(
        abs((raw[i - key] - raw[0]) - (times[i] - times[key])) < frame / 2
        for i in (plan.start_frame, last))
    if not whole:
        raise MediaError(info.path, f"chunk {plan.seq} (frames {plan.start_frame}..{last}) "
                         f"could not be cut whole: the copy holds {len(raw)} frames from "
                         f"keyframe {key}, {skip + plan.frames} needed")
    return local, skip


def source_record(stream_id: str, info: MediaInfo, grid: Grid, audio_path: str | None
                  ) -> SourceRecord:
    v = info.video
    offset = info.audio.start - v.frame_times[0] if info.audio else 0.0
    return SourceRecord(
        stream_id=stream_id, input=info.path, width=v.width, height=v.height, sar=str(v.sar),
        frame_rate=str(v.frame_rate), segment_frames=grid.segment_frames,
        chunk_frames=grid.chunk_frames, frames=v.frames, duration=v.frames / float(v.frame_rate),
        audio=audio_path, audio_offset=round(offset, 6),
    )


Progress = Callable[[int, int], None]


def ingest_file(src: str, stream_id: str, storage: Storage, chunk_seconds: float = 10.0,
                segment_seconds: float = 2.0, progress: Progress | None = None
                ) -> tuple[SourceRecord, list[ChunkRecord]]:
    """Probe src, replace any earlier stream of that id, write chunks, records and raw audio.

    Raises MediaError naming src when it is not a readable video; nothing is written then.
    """
    if not os.path.isfile(src):
        raise MediaError(src, "no such file")
    if os.path.getsize(src) == 0:
        raise MediaError(src, "file is empty (0 bytes)")
    info = probe(src)
    grid = plan_grid(Fraction(info.video.frame_rate), segment_seconds, chunk_seconds)
    layout = StreamLayout(stream_id)
    ext = raw_extension(info.video.codec)
    plans = plan_chunks(info.video, grid)
    with tempfile.TemporaryDirectory(prefix="sparkcast-ingest-") as workdir:
        # Cut everything locally first: a source that fails halfway leaves an earlier
        # stream of the same id untouched.
        cut = []
        for plan in plans:
            local, skip = cut_chunk(info, plan, workdir, ext)
            cut.append((plan, local, skip))
            if progress:
                progress(plan.seq + 1, len(plans))
        local_audio = None
        if info.audio is not None:
            local_audio = os.path.join(workdir, "audio.mka")
            run(audio_args(src, local_audio), source=src)
        storage.delete(layout.base, recursive=True)
        audio_path = layout.raw_audio("mka") if local_audio else None
        if local_audio and audio_path:
            storage.put_file(local_audio, audio_path)
        records = []
        for plan, local, skip in cut:
            raw_path = layout.raw_chunk(plan.seq, ext)
            storage.put_file(local, raw_path)
            record = ChunkRecord(
                stream_id=stream_id, seq=plan.seq, raw=raw_path, start_frame=plan.start_frame,
                frames=plan.frames, skip=skip, start=grid.frame_time(plan.start_frame),
                duration=plan.frames / float(grid.frame_rate), bytes=os.path.getsize(local),
                wallclock=time.time(),
            )
            storage.write_text(layout.index_record(plan.seq), record.to_json())
            records.append(record)
    source = source_record(stream_id, info, grid, audio_path)
    storage.write_text(layout.source_record, source.to_json())
    return source, records
