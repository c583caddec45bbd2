"""Test helpers that make and measure real media with ffmpeg/ffprobe."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


@dataclass(frozen=True)
class SourceSpec:
    """A synthetic source: lavfi testsrc2 (+ a sine tone), encoded with x264 at a given GOP."""

    name: str
    width: int = 320
    height: int = 180
    rate: str = "30"
    seconds: float = 12.0
    gop_seconds: float = 2.0
    audio: bool = True
    bframes: int = 3

    def make(self, directory: Path) -> Path:
        out = directory / f"{self.name}.mp4"
        if out.exists():
            return out
        gop = max(1, round(self.gop_seconds * Fraction(self.rate)))
        args = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
                "-i", f"testsrc2=size={self.width}x{self.height}:rate={self.rate}"]
        if self.audio:
            args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:beep_factor=4"]
        args += ["-t", str(self.seconds), "-c:v", "libx264", "-preset", "ultrafast",
                 "-pix_fmt", "yuv420p", "-g", str(gop), "-keyint_min", str(gop),
                 "-sc_threshold", "0", "-bf", str(self.bframes)]
        if self.bframes == 0:
            args += ["-tune", "zerolatency"]
        if self.audio:
            args += ["-c:a", "aac", "-b:a", "96k"]
        sh(*args, "-movflags", "+faststart", str(out))
        return out


def count_frames(path: Path | str) -> int:
    out = sh("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
             "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)).stdout
    return int(out.strip().split(",")[0])


def stream_info(path: Path | str, selector: str = "v:0") -> dict:
    doc = json.loads(sh("ffprobe", "-v", "error", "-select_streams", selector, "-show_streams",
                        "-show_format", "-of", "json", str(path)).stdout)
    return {"stream": doc["streams"][0], "format": doc["format"]}


def packets(path: Path | str, selector: str = "v:0") -> list[dict]:
    doc = json.loads(sh("ffprobe", "-v", "error", "-select_streams", selector, "-show_entries",
                        "packet=pts,dts,duration,flags", "-of", "json", str(path)).stdout)
    return doc["packets"]


def decoded_duration(path: Path | str, selector: str = "a:0") -> float:
    """Seconds of media actually decoded (last frame end), independent of container headers."""
    out = sh("ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:{selector}", "-f", "null",
             "-", "-progress", "pipe:1", "-nostats").stdout
    times = re.findall(r"out_time_us=(\d+)", out)
    return int(times[-1]) / 1e6


def psnr(distorted: Path | str, reference: Path | str, width: int, height: int) -> float:
    """Average PSNR (dB) of distorted against reference scaled to its size (bicubic)."""
    graph = (f"[1:v]scale={width}:{height}:flags=bicubic,setsar=1[ref];"
             "[0:v]setsar=1[dist];[dist][ref]psnr")
    err = sh("ffmpeg", "-v", "info", "-nostats", "-i", str(distorted), "-i", str(reference),
             "-lavfi", graph, "-f", "null", "-").stderr
    m = re.search(r"PSNR .*average:([\d.]+|inf)", err)
    assert m, f"no PSNR in ffmpeg output: {err[-500:]}"
    return float(m.group(1))


def concat(parts: list[Path], out: Path) -> Path:
    with open(out, "wb") as f:
        for p in parts:
            f.write(p.read_bytes())
    return out
