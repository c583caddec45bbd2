"""Batch benchmark: `sparkcast submit` vs one ffmpeg encoding the same ladder, same run.

    python bench/batch_vs_ffmpeg.py [--seconds 60] [--gop 250] [--grouping chunk,rendition]

The source is generated once (1080p30 testsrc2 with film-like noise and a tone, x264
CRF 18 with 250-frame GOPs by default, as a camera file would be; --gop 60 gives a
source whose keyframes fall on the 2 s grid). The reference is one ffmpeg
process: one decode, `split` into every rung, the same x264 settings as sparkcast
(capped CRF, same preset, GOP and VBV), x264 threads left to ffmpeg (its best case on
this machine), plus the AAC audio. Both sides are timed end to end, wall clock, and
measured for PSNR against the source. Prints a table and the wall-time ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The repository first: a tests/ folder must not shadow a project package.
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from core.codecs import VideoCodec  # noqa: E402
from core.config import DEFAULT_LADDER  # noqa: E402
from core.grid import plan_grid  # noqa: E402
from core.ladder import parse_ladder, plan_ladder  # noqa: E402
from jobs.encode import x264_options  # noqa: E402
from media_tools import concat, psnr  # noqa: E402


def make_source(path: Path, seconds: float, gop: int = 250, size: str = "1920x1080",
                rate: str = "30") -> None:
    if path.exists():
        return
    subprocess.run([
        "ffmpeg", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate},noise=alls=12:allf=t+u",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:beep_factor=2",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "192k", str(path)], check=True)


def reference(src: Path, out: Path, ladder: str, width: int = 1920, height: int = 1080,
              rate: str = "30") -> tuple[float, dict[str, Path]]:
    """One ffmpeg: one decode, `split` into every rung (and AAC): (wall s, rung files)."""
    rungs = plan_ladder(parse_ladder(ladder), width, height)
    grid = plan_grid(Fraction(rate), 2, 10)
    codec = VideoCodec(threads=0)
    n = len(rungs)
    graph = f"[0:v]split={n}" + "".join(f"[s{i}]" for i in range(n)) + ";" + ";".join(
        f"[s{i}]scale={r.width}:{r.height}:flags=bicubic,setsar=1[o{i}]"
        for i, r in enumerate(rungs))
    args = ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-filter_complex", graph]
    files = {}
    for i, r in enumerate(rungs):
        files[r.name] = out / f"ref-{src.stem}-{r.name}.mp4"
        args += ["-map", f"[o{i}]", "-r", rate]
        for k, v in x264_options(r, grid, codec).items():
            args += [f"-{k}", str(v)]
        args.append(str(files[r.name]))
    args += ["-map", "0:a", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "mp4",
             str(out / f"ref-{src.stem}-audio.mp4")]
    t = time.monotonic()
    subprocess.run(args, check=True)
    return time.monotonic() - t, files


def sparkcast(src: Path, root: Path, ladder: str, grouping: str) -> tuple[float, dict[str, Path]]:
    env = dict(os.environ, SPARKCAST_ROOT=root.as_uri(), SPARK_LOCAL_IP="127.0.0.1")
    t = time.monotonic()
    out = subprocess.run(["sparkcast", "submit", str(src), "--stream-id", "bench", "--ladder",
                          ladder, "--master", "local[2]", "--task-grouping", grouping],
                         env=env, check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    wall = time.monotonic() - t
    print(f"  sparkcast {grouping}: " + "".join(ln for ln in out.splitlines()
                                               if ln.startswith("job ")), flush=True)
    files = {}
    for d in sorted((root / "streams/bench/out").iterdir()):
        if d.name != "audio":
            files[d.name] = concat([d / "init.mp4", *sorted(d.glob("*.m4s"))],
                                   root / f"{d.name}.mp4")
    return wall, files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--gop", type=int, default=250, help="source GOP in frames")
    ap.add_argument("--grouping", default="chunk", help="comma list: chunk,rendition")
    ap.add_argument("--ladder", default=DEFAULT_LADDER)
    ap.add_argument("--no-psnr", action="store_true")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "sparkcast-bench"))
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    src = work / f"source-1080p30-{args.seconds}s-gop{args.gop}.mp4"
    make_source(src, args.seconds, args.gop)

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        ref_wall, ref_files = reference(src, Path(tmp), args.ladder)
        runs = {}
        for grouping in args.grouping.split(","):
            root = Path(tmp) / f"root-{grouping}"
            root.mkdir()
            runs[grouping] = sparkcast(src, root, args.ladder, grouping)

        print(f"source: {args.seconds} s 1080p30 + AAC, GOP {args.gop}; ladder {args.ladder}; "
              f"{os.cpu_count()} cores")
        print(f"{'run':28} {'wall s':>8} {'ratio':>6} {'x realtime':>10}")
        print(f"{'one ffmpeg (split, reference)':28} {ref_wall:8.1f} {1:6.2f} "
              f"{args.seconds / ref_wall:10.2f}")
        for grouping, (wall, _) in runs.items():
            print(f"{'sparkcast grouping=' + grouping:28} {wall:8.1f} {wall / ref_wall:6.2f} "
                  f"{args.seconds / wall:10.2f}")
        if not args.no_psnr:
            print(f"\n{'rendition':10} {'reference dB':>12} " +
                  " ".join(f"{g + ' dB':>14}" for g in runs))
            for name in ref_files:
                w, h = (int(x) for x in subprocess.run(
                    ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                     "stream=width,height", "-of", "csv=p=0", str(ref_files[name])],
                    capture_output=True, text=True, check=True).stdout.strip().split(","))
                ref_db = psnr(ref_files[name], src, w, h)
                ours = [psnr(files[name], src, w, h) for _, files in runs.values()]
                print(f"{name:10} {ref_db:12.2f} " + " ".join(f"{d:14.2f}" for d in ours))


if __name__ == "__main__":
    main()
