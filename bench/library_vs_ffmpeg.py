"""Library benchmark: one `sparkcast submit` over a folder of clips vs a shell loop of one
ffmpeg per file (the same ladder), and vs one `sparkcast submit` per file; same run.

    python bench/library_vs_ffmpeg.py [--clips 8] [--min 10] [--max 40] [--seed 7]

Clips: testsrc2 with noise and a tone, 1080p/720p/480p in turn, 25/30 fps, 2 s GOPs,
durations drawn (seeded) between --min and --max seconds. The reference loop runs
bench/batch_vs_ffmpeg.py's one-decode-split ffmpeg per file, one file after another, x264
threads left to ffmpeg (its best case on this machine). Prints each side's wall time,
the ratios, and where sparkcast's time went (the job line and the job table).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from batch_vs_ffmpeg import make_source, reference  # noqa: E402

from core.config import DEFAULT_LADDER  # noqa: E402

SIZES = [("1920x1080", 1920, 1080), ("1280x720", 1280, 720), ("854x480", 854, 480)]


@dataclass(frozen=True)
class Clip:
    path: Path
    width: int
    height: int
    rate: str
    seconds: int


def make_library(folder: Path, clips: int, low: int, high: int, seed: int) -> list[Clip]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(clips):
        size, w, h = SIZES[i % len(SIZES)]
        rate = "25" if i % 2 else "30"
        seconds = rng.randint(low, high)
        path = folder / f"clip{i:02d}-{h}p{rate}-{seconds}s.mp4"
        make_source(path, seconds, gop=2 * int(rate), size=size, rate=rate)
        out.append(Clip(path, w, h, rate, seconds))
    return out


def submit(inputs: list[Path], root: Path, ladder: str, job_id: str) -> tuple[float, str]:
    env = dict(os.environ, SPARKCAST_ROOT=root.as_uri(), SPARK_LOCAL_IP="127.0.0.1")
    t = time.monotonic()
    proc = subprocess.run(["sparkcast", "submit", *map(str, inputs), "--ladder", ladder,
                           "--master", "local[2]", "--job-id", job_id], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    wall = time.monotonic() - t
    if proc.returncode != 0:
        sys.exit(f"sparkcast submit failed:\n{proc.stdout}")
    return wall, next((ln for ln in proc.stdout.splitlines() if ln.startswith("job ")), "")


def task_seconds(root: Path, job_id: str) -> float:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(
        (root / "jobs" / f"job_id={job_id}" / "videos.parquet").read_bytes()))
    return float(sum(table.column("task_seconds").to_pylist()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--min", type=int, default=10)
    ap.add_argument("--max", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--ladder", default=DEFAULT_LADDER)
    ap.add_argument("--skip-per-file", action="store_true",
                    help="leave out the one-submit-per-file run")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "sparkcast-bench"))
    args = ap.parse_args()
    work = Path(args.workdir)
    lib = make_library(work / f"library-{args.clips}-{args.min}-{args.max}-{args.seed}",
                       args.clips, args.min, args.max, args.seed)
    media = sum(c.seconds for c in lib)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        t = time.monotonic()
        for clip in lib:
            reference(clip.path, Path(tmp), args.ladder, clip.width, clip.height, clip.rate)
        results["ffmpeg loop (reference)"] = time.monotonic() - t
        root = Path(tmp) / "root-one"
        paths = [c.path for c in lib]
        results["sparkcast, one submit"], line = submit(paths, root, args.ladder, "one")
        seconds = task_seconds(root, "one")
        if not args.skip_per_file:
            per_file = 0.0
            for i, path in enumerate(paths):
                per_file += submit([path], Path(tmp) / f"root-{i}", args.ladder, f"f{i}")[0]
            results["sparkcast, a submit per file"] = per_file
    ref = results["ffmpeg loop (reference)"]
    print(f"library: {len(lib)} clips, {media:.0f} s of video (1080p/720p/480p, 25/30 fps); "
          f"ladder {args.ladder}; {os.cpu_count()} cores")
    print(f"{'run':32} {'wall s':>8} {'ratio':>6}")
    for name, wall in results.items():
        print(f"{name:32} {wall:8.1f} {wall / ref:6.2f}")
    print(f"\none submit: {line}\n  task seconds (executors, summed): {seconds:.1f} "
          f"= {seconds / results['sparkcast, one submit'] / 2:.0%} of 2 cores x wall")
    print(json.dumps({k: round(v, 2) for k, v in results.items()}))


if __name__ == "__main__":
    main()
