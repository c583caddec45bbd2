"""ffmpeg command lines for the map step. Pure: argv lists in, nothing run here.

Each flag that matters for seamless chunks carries its reason. The rules
(docs/TRANSCODING.md): every chunk is decoded once and trimmed to exactly its
frames; timestamps restart at zero on an exact constant-frame-rate grid (the
map step writes each segment's real decode time into its tfdt afterwards);
keyframes fall on the segment grid in every rendition; output is fragmented
MP4, one fragment per segment, with an init segment that is the same for every
chunk.
"""

from __future__ import annotations

import ffmpeg

from core.codecs import AudioCodec, VideoCodec
from core.grid import Grid
from core.ladder import Rendition
from core.media.ffmpeg_run import FFMPEG

FRAGMENTED_MP4 = "+frag_keyframe+empty_moov+default_base_moof"
# ffmpeg's AAC encoder emits this many priming samples before the first real one; fragmented
# MP4 has no edit list to hide them, so the manifest's presentationTimeOffset does.
AAC_PRIMING_SAMPLES = 1024
AAC_FRAME_SAMPLES = 1024


def rate_options(r: Rendition, codec: VideoCodec) -> dict[str, object]:
    """x264 rate control for one rung.

    Capped CRF (default) picks quality per frame without memory of earlier frames, so a
    chunk encodes as it would inside the whole file (measured: -0.04 dB vs one pass at
    6 s chunks, where ABR lost 0.59 dB: its rate control has to settle again in every
    chunk); the VBV cap at the rung's rate keeps the ladder's bandwidths honest.
    """
    if codec.rate_control == "abr":
        return {"b:v": r.bitrate, "maxrate": r.bitrate * 3 // 2, "bufsize": r.bitrate * 2}
    return {"crf": codec.crf, "maxrate": r.bitrate, "bufsize": r.bitrate * 2}


def keyframe_options(grid: Grid, frames: int, segments: int) -> dict[str, object]:
    """A fixed GOP of one segment, no scene-cut keyframes: IDR frames land on the same
    frames in every rendition and every chunk, so players can switch at any segment.

    A chunk whose last segment is longer than one (a short tail merged into it, see
    core/chunking.py) gets its keyframes forced at each segment start instead, with a GOP
    limit long enough that x264 adds none in that last segment.
    """
    s = grid.segment_frames
    if segments * s >= frames:
        return {"g": s, "keyint_min": s, "sc_threshold": 0}
    return {"g": frames - (segments - 1) * s, "keyint_min": s, "sc_threshold": 0,
            "force_key_frames": f"expr:lt(n,{segments * s})*not(mod(n,{s}))",
            "forced-idr": 1}


def x264_options(r: Rendition, grid: Grid, codec: VideoCodec,
                 keyframes: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "c:v": "libx264",
        "preset": codec.preset,
        "profile:v": r.profile,
        "pix_fmt": "yuv420p",  # 4:2:0 8-bit: what every device decodes
        **rate_options(r, codec),
        **(keyframes or keyframe_options(grid, grid.segment_frames, 1)),
        # One thread per encoder keeps x264 deterministic and leaves parallelism to Spark.
        "threads": codec.threads,
        # Ticks in which a frame is a whole number, so tfdt arithmetic is exact.
        "video_track_timescale": grid.timescale,
        "movflags": FRAGMENTED_MP4,
        # No encoder version strings or source metadata: identical bytes on every re-run.
        "fflags": "+bitexact",
        "map_metadata": -1,
        "f": "mp4",
    }


def video_args(raw: str, skip: int, frames: int, grid: Grid,
               renditions: tuple[tuple[Rendition, str], ...], codec: VideoCodec,
               segments: int = 0) -> list[str]:
    """One decode of a raw chunk, trimmed to its frames, encoded to every (rendition, file)
    as `segments` fragments (default: one per segment_frames)."""
    rate = grid.frame_rate
    keyframes = keyframe_options(grid, frames, segments or -(-frames // grid.segment_frames))
    video = (
        ffmpeg.input(raw)["v:0"]
        # Frame-exact trim: drop the frames decoded only to reach the chunk's first frame.
        .trim(start_frame=skip, end_frame=skip + frames)
        # Exact CFR timestamps from zero; rational so 29.97 fps does not drift.
        .setpts(f"N*{rate.denominator}/{rate.numerator}/TB")
    )
    branches = [video] if len(renditions) == 1 else [
        video.split()[i] for i in range(len(renditions))]
    outputs = [
        branch.filter("scale", r.width, r.height, flags="bicubic").filter("setsar", 1)
        .output(path, r=f"{rate.numerator}/{rate.denominator}",
                **x264_options(r, grid, codec, keyframes))
        for branch, (r, path) in zip(branches, renditions, strict=True)
    ]
    return ffmpeg.merge_outputs(*outputs).global_args("-v", "error", "-nostdin", "-y").compile(
        cmd=FFMPEG)


def audio_args(raw: str, dst: str, offset: float, duration: float, segment_seconds: float,
               codec: AudioCodec) -> list[str]:
    """The whole stream's audio encoded once to AAC-LC, fragmented every ~segment_seconds.

    Encoding once (not per chunk) is what keeps audio gapless: AAC's encoder priming
    would otherwise add a few ms of silence or overlap at every chunk seam.
    """
    audio = ffmpeg.input(raw)["a:0"]
    if offset > 0:  # audio starts after the video: pad its head with silence
        audio = audio.filter("adelay", f"{round(offset * 1000)}", all=1)
    elif offset < 0:  # audio starts before the video: drop what precedes the first frame
        audio = audio.filter("atrim", start=-offset).filter("asetpts", "PTS-STARTPTS")
    audio = (
        audio.filter("aresample", codec.sample_rate).filter("atrim", duration=duration)
        # Sample-count timestamps: the raw audio's container may round times to 1 ms, and
        # jitter there would give AAC frames uneven durations in the fragments.
        .filter("asetpts", "N/SR/TB")
    )
    out = audio.output(
        dst, **{"c:a": "aac", "b:a": codec.bitrate, "ac": codec.channels,
                "ar": codec.sample_rate},
        frag_duration=int(segment_seconds * 1_000_000),
        movflags="+empty_moov+default_base_moof",
        fflags="+bitexact", map_metadata=-1, f="mp4",
    )
    return out.global_args("-v", "error", "-nostdin", "-y").compile(cmd=FFMPEG)
