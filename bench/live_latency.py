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
      first vs the last third of the run (a growing backlog shows as a rising (a));
  (g) glass-to-glass, as a viewer sees it: the publisher burns its wall clock into the
      picture (core/timecode.py); Chromium plays the stream through serve's player page,
      with dash.js and then with hls.js, and reads the clock back from the frame on
      screen once a second (`--samples` readings each), counting the stalls meanwhile.
The reference, in the same run: one ffmpeg encoding the same ladder from the same kind
of source (clock strip included) in real time into ffmpeg's own live DASH and HLS (2 s
segments); (b) for it is "segment listed in its MPD" minus the wall clock at which that
media time was made, and (g) is read the same way from a page playing its MPD with
dash.js (the player page's settings; the live delay dash.js's default, as ffmpeg's MPD
suggests none) and its HLS with hls.js (liveSyncDurationCount 3, as the player page).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from lxml import etree  # noqa: E402

from browser_tools import launch_chromium  # noqa: E402
from core.config import Settings  # noqa: E402
from core.records import ChunkRecord  # noqa: E402
from core.timecode import FRAME_JS, frame_latency_ms  # noqa: E402
from hdfs_layout import Storage, StreamLayout, open_storage  # noqa: E402
from jobs.live_reduce import LiveState  # noqa: E402
from serve.player import DEFAULT_PLAYER_DIR, VENDOR  # noqa: E402
from sparkcast.stack import LiveStack, publisher_args  # noqa: E402

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
LADDER = "720:2800k,480:1400k,360:800k"
SOURCE = (1280, 720)
ENGINES = ("dash", "hls")
ROWS = 24  # bottom rows read back: the clock strip's cells are 16 px high at 720p


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


# Stalls while the readings are taken: from each 'waiting' to the next 'playing' (ms).
STALL_WATCH = """() => { const v = document.getElementById('video'); window.__stalls = [];
  let since = null;
  v.addEventListener('waiting', () => { since = since ?? performance.now(); });
  v.addEventListener('playing', () => {
    if (since !== null) { window.__stalls.push(performance.now() - since); since = null; } });
  window.__open = () => since === null ? [] : [performance.now() - since]; }"""
STALLS = "() => window.__stalls.concat(window.__open())"


class GlassReader(threading.Thread):
    """Chromium on a player page, once per engine: glass-to-glass readings (ms) for each,
    in `readings[engine]`, taken once `ready()` holds. Its own thread: Playwright's sync
    API stays in the thread that started it."""

    def __init__(self, url: Callable[[str], str], ready: Callable[[], bool], samples: int,
                 settle: float = 8.0) -> None:
        super().__init__(daemon=True)
        self.url, self.ready, self.samples, self.settle = url, ready, samples, settle
        self.readings: dict[str, list[int]] = {e: [] for e in ENGINES}
        self.stalls: dict[str, list[float]] = {e: [] for e in ENGINES}  # ms, while sampling
        self.error: str | None = None

    def run(self) -> None:
        from playwright.sync_api import sync_playwright

        try:
            while not self.ready():
                time.sleep(0.5)
            with sync_playwright() as pw:
                browser = launch_chromium(pw)
                for engine in ENGINES:
                    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
                    page = ctx.new_page()
                    page.goto(self.url(engine))
                    page.wait_for_function("() => { const v = document.getElementById("
                                           "'video'); return v && v.currentTime > 0; }",
                                           timeout=60_000)
                    time.sleep(self.settle)  # past the start-up: what a viewer watching sees
                    page.evaluate(STALL_WATCH)
                    for _ in range(self.samples):
                        lat = frame_latency_ms(page.evaluate(FRAME_JS, ROWS), ROWS, SOURCE[1])
                        if lat is not None:
                            self.readings[engine].append(lat)
                        time.sleep(1)
                    self.stalls[engine] = page.evaluate(STALLS)
                    ctx.close()
                browser.close()
        except Exception as exc:  # noqa: BLE001 - reported with the results
            self.error = f"{type(exc).__name__}: {exc}"


def glass_stats(reader: GlassReader) -> dict[str, float]:
    out = {}
    for engine, values in reader.readings.items():
        s = [v / 1000 for v in values]
        out[f"g_{engine}_median"] = statistics.median(s) if s else float("nan")
        out[f"g_{engine}_p95"] = pct(s, 0.95)
        out[f"g_{engine}_n"] = float(len(s))
        out[f"g_{engine}_stall_max"] = max(reader.stalls[engine], default=0.0) / 1000
        out[f"g_{engine}_stalls"] = float(len(reader.stalls[engine]))
    return out


# The reference's player: the same libraries and live settings as player/src/watch.js.
REFERENCE_PAGE = """<!doctype html><meta charset="utf-8"><title>reference</title>
<video id="video" muted autoplay playsinline width="1280" height="720"></video>
<script src="dash.all.min.js"></script><script src="hls.min.js"></script>
<script>
const v = document.getElementById("video");
if (new URLSearchParams(location.search).get("engine") === "hls") {
  const hls = new Hls({ liveSyncDurationCount: 3, enableWorker: true });
  hls.loadSource("out/master.m3u8"); hls.attachMedia(v);
} else {
  const p = dashjs.MediaPlayer().create();
  p.updateSettings({ streaming: { liveCatchup: { enabled: true, maxDrift: 6,
    playbackRate: { min: -0.2, max: 0.2 }, mode: "liveCatchupModeLoLP",
    playbackBufferMin: 1.0 } } });
  p.initialize(v, "out/live.mpd", true);
}
</script>
"""


class _NoStore(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a live MPD, polled
        super().end_headers()

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Listing:
    """What a live stream's storage showed while it was followed."""

    closed_at: dict[int, ChunkRecord] = field(default_factory=dict)  # seq -> its record
    listed_at: dict[int, float] = field(default_factory=dict)  # seq -> wall time listed
    seg_listed: list[tuple[float, float]] = field(default_factory=list)  # (end, wall)
    backlog: int = 0  # chunks closed but not listed when the publisher stopped

    def stats(self) -> dict[str, float]:
        """(a): chunk closed -> listed, median, p95, first and last third."""
        a = [self.listed_at[s] - self.closed_at[s].wallclock for s in sorted(self.listed_at)]
        third = max(1, len(a) // 3)
        return {"chunks": float(len(self.closed_at)), "a_median": statistics.median(a),
                "a_p95": pct(a, 0.95), "a_first_third": statistics.mean(a[:third]),
                "a_last_third": statistics.mean(a[-third:]),
                "backlog_at_end": float(self.backlog)}


def follow(storage: Storage, stream_id: str, pub: subprocess.Popen, seconds: float
           ) -> Listing:
    """Poll a live stream's index records and MPD every 0.25 s until it turns static (or
    `seconds` + 120 s have passed)."""
    layout = StreamLayout(stream_id)
    seen = Listing()
    last_end, backlog = 0.0, None
    deadline = time.time() + seconds + 120
    while time.time() < deadline:
        now = time.time()
        for name in storage.list(layout.index_dir):
            seq = int(name.split(".")[0])
            if seq not in seen.closed_at:
                seen.closed_at[seq] = ChunkRecord.from_json(
                    storage.read(f"{layout.index_dir}/{name}"))
        if storage.exists(layout.manifest):
            data = storage.read(layout.manifest)
            if b'type="static"' in data:
                break
            end = listed_end(data)
            if end > last_end:
                seen.seg_listed.append((end, now))
                last_end = end
            for seq, rec in seen.closed_at.items():
                if seq not in seen.listed_at and end >= rec.start + rec.duration - 1e-3:
                    seen.listed_at[seq] = now
        if backlog is None and pub.poll() is not None:
            backlog = len(seen.closed_at) - len(seen.listed_at)
        time.sleep(0.25)
    seen.backlog = backlog or 0
    return seen


def run_sparkcast(chunk: float, seconds: float, work: Path, samples: int) -> dict[str, float]:
    settings = Settings(root=(work / f"root-{chunk:g}").as_uri(),
                        database_url=f"sqlite:///{work / f'db-{chunk:g}.sqlite'}",
                        chunk_seconds=chunk, ladder=LADDER, port=0, rtmp_port=0,
                        live_end_timeout=5)
    storage = open_storage(settings.root)
    layout = StreamLayout("bench")
    with LiveStack(settings, work / f"run-{chunk:g}") as stack:
        pub = stack.publish(stack.create_key("bench"), seconds, size="1280x720", rate=30,
                            timecode=True)
        glass = GlassReader(lambda e: f"{stack.base_url}/watch/bench?engine={e}",
                            lambda: storage.exists(layout.manifest), samples)
        glass.start()
        seen = follow(storage, "bench", pub, seconds)
        state = LiveState.from_json(storage.read(layout.live_state))
        glass.join()
    if glass.error:
        print(f"{chunk:g} s chunks: glass-to-glass: {glass.error}", file=sys.stderr)
    b = [wall - (state.anchor + end) for end, wall in seen.seg_listed]
    return {**seen.stats(), "b_median": statistics.median(b), "b_p95": pct(b, 0.95),
            **glass_stats(glass)}


def reference_args(seconds: float, out: Path) -> list[str]:
    """One ffmpeg: the publisher's source (clock strip and tone) encoded in real time into
    the same ladder, as live DASH and HLS (2 s segments)."""
    head = publisher_args("-", seconds, f"{SOURCE[0]}x{SOURCE[1]}", 30, timecode=True)
    head = head[:head.index("-c:v")]
    rungs = [(1280, 720, "2800k"), (854, 480, "1400k"), (640, 360, "800k")]
    at = head.index("-filter_complex") + 1
    head[at] += ";[vt]split=3" + "".join(f"[s{i}]" for i in range(3)) + ";" + ";".join(
        f"[s{i}]scale={w}:{h}[o{i}]" for i, (w, h, _) in enumerate(rungs))
    at = head.index("[vt]")  # its -map: the rungs are mapped instead
    args = head[:at - 1] + head[at + 1:]
    for i, (_, _, rate) in enumerate(rungs):
        args += ["-map", f"[o{i}]", f"-c:v:{i}", "libx264", f"-b:v:{i}", rate]
    return args + [
        "-c:a", "aac", "-b:a", "128k", "-preset", "veryfast", "-g", "60", "-keyint_min",
        "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-f", "dash", "-seg_duration",
        "2", "-window_size", "30", "-streaming", "0", "-use_timeline", "1",
        "-use_template", "1", "-hls_playlist", "1",
        "-adaptation_sets", "id=0,streams=v id=1,streams=a", str(out / "live.mpd")]


def run_reference(seconds: float, work: Path, samples: int) -> dict[str, float]:
    site = work / "ref"
    out = site / "out"
    out.mkdir(parents=True, exist_ok=True)
    (site / "index.html").write_text(REFERENCE_PAGE)
    for name, rel in VENDOR.items():
        shutil.copy(DEFAULT_PLAYER_DIR / rel, site / name)
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(_NoStore, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    started = time.time()
    proc = subprocess.Popen(reference_args(seconds, out))
    glass = GlassReader(lambda e: f"{base}/index.html?engine={e}",
                        lambda: (out / "master.m3u8").exists(), samples)
    glass.start()
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
    glass.join()
    server.shutdown()
    if glass.error:
        print(f"reference: glass-to-glass: {glass.error}", file=sys.stderr)
    b = [wall - (started + end) for end, wall in seg_listed]
    return {"b_median": statistics.median(b), "b_p95": pct(b, 0.95), **glass_stats(glass)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--chunks", default="2,10")
    ap.add_argument("--samples", type=int, default=20,
                    help="glass-to-glass readings per engine (one a second)")
    args = ap.parse_args()
    os.environ.setdefault("SPARKCAST_CONFIG", "/nonexistent/sparkcast.toml")
    with tempfile.TemporaryDirectory(prefix="sparkcast-live-bench-") as tmp:
        work = Path(tmp)
        results = {}
        for c in args.chunks.split(","):
            results[f"sparkcast, {c} s chunks"] = r = run_sparkcast(float(c), args.seconds,
                                                                    work, args.samples)
            print(f"{c} s chunks: {r}", file=sys.stderr, flush=True)  # kept if a later run fails
        ref = run_reference(args.seconds, work, args.samples)
        print(f"reference: {ref}", file=sys.stderr, flush=True)
    print(f"{args.seconds:g} s of 720p30 published; ladder {LADDER}; {os.cpu_count()} cores")
    print(f"{'run':26} {'(a) med':>8} {'(a) p95':>8} {'(b) med':>8} {'(b) p95':>8} "
          f"{'(a) 1st/3':>9} {'(a) last/3':>10} {'backlog':>7}")
    for name, r in results.items():
        print(f"{name:26} {r['a_median']:8.2f} {r['a_p95']:8.2f} {r['b_median']:8.2f} "
              f"{r['b_p95']:8.2f} {r['a_first_third']:9.2f} {r['a_last_third']:10.2f} "
              f"{r['backlog_at_end']:7.0f}")
    print(f"{'one ffmpeg, live DASH':26} {'-':>8} {'-':>8} {ref['b_median']:8.2f} "
          f"{ref['b_p95']:8.2f}")
    print()
    print(f"{'glass-to-glass (s)':26} {'dash med':>8} {'dash p95':>8} {'hls med':>8} "
          f"{'hls p95':>8} {'readings':>9} {'stalls (longest s) dash / hls':>30}")
    for name, r in [*results.items(), ("one ffmpeg, live DASH/HLS", ref)]:
        print(f"{name:26} {r['g_dash_median']:8.2f} {r['g_dash_p95']:8.2f} "
              f"{r['g_hls_median']:8.2f} {r['g_hls_p95']:8.2f} "
              f"{r['g_dash_n']:4.0f}/{r['g_hls_n']:<4.0f} "
              f"{r['g_dash_stalls']:5.0f} ({r['g_dash_stall_max']:.2f}) / "
              f"{r['g_hls_stalls']:.0f} ({r['g_hls_stall_max']:.2f})")
    for name, r in results.items():
        print(f"ratio (b) median, {name} / one ffmpeg: {r['b_median'] / ref['b_median']:.2f}")
        for e in ENGINES:
            print(f"ratio glass-to-glass median ({e}), {name} / one ffmpeg: "
                  f"{r[f'g_{e}_median'] / ref[f'g_{e}_median']:.2f}")


if __name__ == "__main__":
    main()
