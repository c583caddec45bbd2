"""What a source holds: ffprobe's answer turned into small value types."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction

from core.media.ffmpeg_run import FFPROBE, MediaError, run, run_capture, summarize


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    sar: Fraction
    frame_rate: Fraction
    # Presentation times (s) of every frame in display order, and which are keyframes.
    frame_times: tuple[float, ...]
    keyframes: tuple[int, ...]
    # Where each frame's packet is in the file, (byte offset, size) in display order; ()
    # when the container does not say (core/media/byte_ranges.py).
    frame_spans: tuple[tuple[int, int], ...] = ()

    @property
    def frames(self) -> int:
        return len(self.frame_times)

    @property
    def display_width(self) -> float:
        return self.width * float(self.sar)


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int
    start: float
    duration: float


@dataclass(frozen=True)
class MediaInfo:
    path: str
    format_name: str
    duration: float
    video: VideoInfo
    audio: AudioInfo | None


def probe_args(path: str) -> list[str]:
    return [FFPROBE, "-v", "error", "-show_format", "-show_streams", "-of", "json", path]


def packets_args(path: str, hashes: bool = False) -> list[str]:
    """ffprobe listing the video packets (with `hashes`, each one's data hash too)."""
    # Packets, not frames: listing them needs no decoding, so probing a long file is cheap.
    entries = "packet=pts_time,dts_time,flags,pos,size" + (",data_hash" if hashes else "")
    return [
        FFPROBE, "-v", "error", "-select_streams", "v:0",
        *(["-show_data_hash", "sha256"] if hashes else []),
        "-show_entries", entries, "-of", "json", path,
    ]


def _fraction(text: str | None) -> Fraction | None:
    if not text or text in ("0/0", "N/A"):
        return None
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


# Rates cameras, encoders and broadcast standards use; a measured rate near one is that one.
STANDARD_RATES = tuple(Fraction(r) for r in (
    "24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60", "100",
    "120000/1001", "120"))


def snap_rate(rate: Fraction, tolerance: float) -> Fraction:
    """The standard rate nearest `rate` if within `tolerance` (relative), else `rate`. Pure."""
    best = min(STANDARD_RATES, key=lambda std: abs(std - rate))
    return best if abs(best - rate) / best <= tolerance else rate


def frame_rate(stream: dict) -> Fraction | None:
    """A video stream's frame rate from ffprobe's stream entry, for files and live alike.

    `r_frame_rate` is what the encoder declared (the H.264 timing info) or the base
    rate ffmpeg guessed; `avg_frame_rate` is measured from timestamps, which in FLV
    (RTMP) are whole milliseconds: a 30 fps publish measures 1000/33 and 60 fps 125/2.
    So the declared rate wins unless it is implausible (90000/1 in some containers);
    a measured one is snapped to the standard rate its timestamps' precision allows.
    """
    r = _fraction(stream.get("r_frame_rate"))
    avg = _fraction(stream.get("avg_frame_rate"))
    if r and r <= 240:
        return snap_rate(r, 0.001)
    if avg is None:
        return None
    tick = _fraction(stream.get("time_base")) or Fraction(1, 90000)
    # One tick of rounding per frame interval is the measurement's relative error.
    return snap_rate(avg, max(0.001, float(tick * avg)))


def parse_packets(doc: dict) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Frame times in display order and the indices of keyframes among them."""
    packets = []
    for i, p in enumerate(doc.get("packets", [])):
        t = p.get("pts_time", p.get("dts_time"))
        time = float(t) if t not in (None, "N/A") else float(i)
        packets.append((time, "K" in p.get("flags", "")))
    packets.sort(key=lambda item: item[0])
    return tuple(t for t, _ in packets), tuple(i for i, (_, key) in enumerate(packets) if key)


def parse_spans(doc: dict) -> tuple[tuple[int, int], ...]:
    """(byte offset, size) of every frame's packet in display order (as parse_packets
    orders them); () when any packet's position is unknown."""
    spans = []
    for i, p in enumerate(doc.get("packets", [])):
        t = p.get("pts_time", p.get("dts_time"))
        time = float(t) if t not in (None, "N/A") else float(i)
        try:
            pos, size = int(p["pos"]), int(p["size"])
        except (KeyError, TypeError, ValueError):
            return ()
        if pos < 0:
            return ()
        spans.append((time, pos, size))
    spans.sort(key=lambda item: item[0])
    return tuple((pos, size) for _, pos, size in spans)


# ffmpeg "decodes" any text file as ANSI art; such a stream is not a video.
TEXT_CODECS = {"ansi", "bintext", "xbin", "idf"}


def parse_probe(path: str, doc: dict, packets: dict) -> MediaInfo:
    """Build MediaInfo from ffprobe's JSON. Raises MediaError when there is no usable video."""
    streams = doc.get("streams", [])
    if any(s.get("codec_name") in TEXT_CODECS for s in streams):
        raise MediaError(path, "not a video file (ffmpeg reads it as text)")
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not s.get("disposition", {}).get("attached_pic")), None)
    if video is None:
        raise MediaError(path, "no video stream (sparkcast needs a video track)")
    rate = frame_rate(video)
    if rate is None:
        raise MediaError(path, "video stream has no usable frame rate")
    times, keys = parse_packets(packets)
    if not times:
        raise MediaError(path, "video stream holds no frames")
    if not keys or keys[0] != 0:
        raise MediaError(path, "video does not start with a keyframe")
    audio_s = next((s for s in streams if s.get("codec_type") == "audio"), None)
    audio = None
    if audio_s is not None:
        audio = AudioInfo(
            codec=audio_s.get("codec_name", "unknown"),
            sample_rate=int(audio_s.get("sample_rate", 0) or 0),
            channels=int(audio_s.get("channels", 0) or 0),
            start=float(audio_s.get("start_time", 0) or 0),
            duration=float(audio_s.get("duration", 0) or 0),
        )
    fmt = doc.get("format", {})
    return MediaInfo(
        path=path,
        format_name=fmt.get("format_name", "unknown"),
        duration=float(fmt.get("duration", 0) or 0),
        video=VideoInfo(
            codec=video.get("codec_name", "unknown"),
            width=int(video["width"]),
            height=int(video["height"]),
            sar=_fraction(video.get("sample_aspect_ratio")) or Fraction(1),
            frame_rate=rate,
            frame_times=times,
            keyframes=keys,
            frame_spans=parse_spans(packets),
        ),
        audio=audio,
    )


def probe(path: str) -> MediaInfo:
    """Probe a media file. Raises MediaError naming `path` when ffprobe cannot read it."""
    doc = json.loads(run(probe_args(path), source=path) or b"{}")
    if not doc.get("streams"):
        raise MediaError(path, "not a media file ffmpeg can read (no streams)")
    out, err = run_capture(packets_args(path), source=path)
    if err.strip():
        # ffprobe lists what it could read and only complains: a cut-off or damaged file.
        raise MediaError(path, f"file is truncated or damaged ({summarize(err, path)})")
    return parse_probe(path, doc, json.loads(out or b"{}"))
