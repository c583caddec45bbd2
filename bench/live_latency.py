"""Live latency benchmark: sparkcast's live path vs one ffmpeg doing a live DASH ladder.

    python bench/live_latency.py [--seconds 90] [--chunks 2,10]

A 720p30 test publisher (testsrc2 + tone, x264 ultrafast, 2 s GOP) is sent over RTMP
to the whole live stack (nginx-rtmp -> live chunker -> Spark live job, local[2]) with a
720p/480p/360p ladder, once per chunk length. Measured, every 0.25 s:
  (a) chunk closed at ingest (its record's wallclock) -> all of its segments listed in
      the live MPD;
  (b) capture (media time 0 + segment start, PROGRAM-DATE-TIME's clock) -> segment
      listed, i.e. first downloadable;
  (c) backlog: chunks closed but not yet listed when the publisher stops, and (a) in the
      first vs the last third of the run (a growing backlog shows as a rising (a)).
The reference, in the same run: one ffmpeg encoding the same ladder from the same kind
of source in real time into ffmpeg's own live DASH (2 s segments); (b) for it is
"segment listed in its MPD" minus the wall clock at which that media time was made.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lxml import etree  # noqa: E402

from core.config import Settings  # noqa: E402
from core.records import ChunkRecord  # noqa: E402
from hdfs_layout import StreamLayout, open_storage  # noqa: E402
from jobs.live_reduce import LiveState  # noqa: E402
from sparkcast.stack import LiveStack  # noqa: E402

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
LADDER = "720:2800k,480:1400k,360:800k"


def listed_end(mpd_bytes: bytes) -> float:
    """Media end (s) of the video listed in an MPD (last period start + its timeline)."""
    root = etree.fromstring(mpd_bytes)
    end = 0.0
    for period in root.iterfind("d:Period", NS):
        m = re.fullmatch(r"PT([\d.]+)S", period.get("start", "PT0S"))
        start = float(m.group(1)) if m else 0.0
        # ours has it on the AdaptationSet, ffmpeg's dash muxer on each Representation
        tpl = period.find("d:AdaptationSet[@contentType='video']//d:SegmentTemplate", NS)
        scale, pto = int(tpl.get("timescale")), int(tpl.get("presentationTimeOffset", 0))
        t = 0
        for s in tpl.find("d:SegmentTimeline", NS):
            t = int(s.get("t", t))
            t += int(s.get("d")) * (int(s.get("r", 0)) + 1)
        end = max(end, start + (t - pto) / scale)
    return end


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def run_sparkcast(chunk: float, seconds: float, work: Path) -> dict[str, float]:
    settings = Settings(root=(work / f"root-{chunk:g}").as_uri(),
                        database_url=f"sqlite:///{work / f'db-{chunk:g}.sqlite'}",
                        chunk_seconds=chunk, ladder=LADDER, port=0, rtmp_port=0,
                        live_end_timeout=5)
    storage = open_storage(settings.root)
    layout = StreamLayout("bench")
    closed_at: dict[int, ChunkRecord] = {}
    listed_at: dict[int, float] = {}
    seg_listed: list[tuple[float, float]] = []  # (media end, wall time first listed)
    last_end = 0.0
    with LiveStack(settings, work / f"run-{chunk:g}") as stack:
        pub = stack.publish(stack.create_key("bench"), seconds, size="1280x720", rate=30)
        backlog = None
        deadline = time.time() + seconds + 120
        while time.time() < deadline:
            now = time.time()
            for name in storage.list(layout.index_dir):
                seq = int(name.split(".")[0])
                if seq not in closed_at:
                    closed_at[seq] = ChunkRecord.from_json(
                        storage.read(f"{layout.index_dir}/{name}"))
            if storage.exists(layout.manifest):
                data = storage.read(layout.manifest)
                if b'type="static"' in data:
                    break
                end = listed_end(data)
                if end > last_end:
                    seg_listed.append((end, now))
                    last_end = end
                for seq, rec in closed_at.items():
                    if seq not in listed_at and end >= rec.start + rec.duration - 1e-3:
                        listed_at[seq] = now
            if backlog is None and pub.poll() is not None:
                backlog = len(closed_at) - len(listed_at)
            time.sleep(0.25)
        state = LiveState.from_json(storage.read(layout.live_state))
    a = [listed_at[s] - closed_at[s].wallclock for s in sorted(listed_at)]
    b = [wall - (state.anchor + end) for end, wall in seg_listed]
    third = max(1, len(a) // 3)
    return {"chunks": len(closed_at), "a_median": statistics.median(a), "a_p95": pct(a, 0.95),
            "b_median": statistics.median(b), "b_p95": pct(b, 0.95),
            "a_first_third": statistics.mean(a[:third]),
            "a_last_third": statistics.mean(a[-third:]),
            "backlog_at_end": float(backlog or 0)}


def run_reference(seconds: float, work: Path) -> dict[str, float]:
    out = work / "ref"
    out.mkdir(exist_ok=True)
    rungs = [(1280, 720, "2800k"), (854, 480, "1400k"), (640, 360, "800k")]
    graph = "[0:v]split=3" + "".join(f"[s{i}]" for i in range(3)) + ";" + ";".join(
        f"[s{i}]scale={w}:{h}[o{i}]" for i, (w, h, _) in enumerate(rungs))
    args = ["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i",
            "testsrc2=size=1280x720:rate=30", "-t", str(seconds), "-filter_complex", graph]
    for i, (_, _, rate) in enumerate(rungs):
        args += ["-map", f"[o{i}]", f"-c:v:{i}", "libx264", f"-b:v:{i}", rate]
    args += ["-preset", "veryfast", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
             "-f", "dash", "-seg_duration", "2", "-window_size", "30", "-streaming", "0",
             "-use_timeline", "1", "-use_template", "1", str(out / "live.mpd")]
    started = time.time()
    proc = subprocess.Popen(args)
    seg_listed, last_end = [], 0.0
    while proc.poll() is None:
        mpd = out / "live.mpd"
        if mpd.exists():
            try:
                end = listed_end(mpd.read_bytes())
            except (etree.XMLSyntaxError, AttributeError, TypeError):
                end = last_end
            if end > last_end:
                seg_listed.append((end, time.time()))
                last_end = end
        time.sleep(0.25)
    b = [wall - (started + end) for end, wall in seg_listed]
    return {"b_median": statistics.median(b), "b_p95": pct(b, 0.95)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=90)
    ap.add_argument("--chunks", default="2,10")
    args = ap.parse_args()
    os.environ.setdefault("SPARKCAST_CONFIG", "/nonexistent/sparkcast.toml")
    with tempfile.TemporaryDirectory(prefix="sparkcast-live-bench-") as tmp:
        work = Path(tmp)
        results = {}
        for c in args.chunks.split(","):
            results[f"sparkcast, {c} s chunks"] = r = run_sparkcast(float(c), args.seconds, work)
            print(f"{c} s chunks: {r}", file=sys.stderr, flush=True)  # kept if a later run fails
        ref = run_reference(args.seconds, work)
    print(f"{args.seconds:g} s of 720p30 published; ladder {LADDER}; {os.cpu_count()} cores")
    print(f"{'run':26} {'(a) med':>8} {'(a) p95':>8} {'(b) med':>8} {'(b) p95':>8} "
          f"{'(a) 1st/3':>9} {'(a) last/3':>10} {'backlog':>7}")
    for name, r in results.items():
        print(f"{name:26} {r['a_median']:8.2f} {r['a_p95']:8.2f} {r['b_median']:8.2f} "
              f"{r['b_p95']:8.2f} {r['a_first_third']:9.2f} {r['a_last_third']:10.2f} "
              f"{r['backlog_at_end']:7.0f}")
    print(f"{'one ffmpeg, live DASH':26} {'-':>8} {'-':>8} {ref['b_median']:8.2f} "
          f"{ref['b_p95']:8.2f}")
    for name, r in results.items():
        print(f"ratio (b) median, {name} / one ffmpeg: {r['b_median'] / ref['b_median']:.2f}")


if __name__ == "__main__":
    main()
