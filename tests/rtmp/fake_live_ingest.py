"""Stands in for `sparkcast live-ingest` in the RTMP tests (set as live_ingest_command).

    fake_live_ingest.py --out DIR --stream-id ID URL

Records how it was started (DIR/ID.started.json), plays URL from nginx like the real
chunker would (DIR/ID.pulled.json: ffmpeg's exit code and decoded frames), then waits;
on SIGTERM (nginx ending the publish) writes DIR/ID.terminated and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stream-id", required=True)
    parser.add_argument("url")
    args = parser.parse_args()
    base = args.out / args.stream_id

    def on_term(_signum: int, _frame: object) -> None:
        (base.parent / f"{args.stream_id}.terminated").write_text(str(os.getpid()))
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    (base.parent / f"{args.stream_id}.started.json").write_text(json.dumps(
        {"argv": sys.argv, "pid": os.getpid(), "path": os.environ.get("PATH", "")}))
    # A recording (file:) is read as it grows, like the real chunker reads it.
    follow = ["-follow", "1"] if args.url.startswith("file:") else []
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", *follow, "-rw_timeout", "5000000",
                           "-analyzeduration", "1000000", "-i", args.url,
                           "-frames:v", "20", "-f", "null", "-"],
                          capture_output=True, text=True, timeout=30, check=False)
    frames = re.findall(r"frame=\s*(\d+)", proc.stderr)
    (base.parent / f"{args.stream_id}.pulled.json").write_text(json.dumps(
        {"rc": proc.returncode, "frames": int(frames[-1]) if frames else 0,
         "stderr": proc.stderr[-2000:]}))
    while True:
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
