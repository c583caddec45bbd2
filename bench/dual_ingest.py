"""Two ingest pipelines vs one RTMP front, same machine, same run: backlog and ingest CPU.

    python bench/dual_ingest.py [--minutes 10] [--reference-minutes M] [--reference-first]

One live stack (tests/stack_tools.running_stack: serve, its RTMP front as ingest pipeline
"a", the live job local[2]; 2 s chunks, ladder 240:300k,180:200k, x264 ultrafast) and a
second RTMP front, pipeline "b", on the same storage root. Two streams, one after the
other (`--reference-first` swaps them):
  dual    one encoder (320x240 15 fps, 2 s GOP, a tone) writing MPEG-TS to two UDP ports,
          each relayed to one front by an ffmpeg "leg" (tests/live/test_dual_ingest.py:
          `dual_publish`); both chunkers cut the stream and the first copy of each chunk
          wins; `--minutes` long;
  single  the reference: the same show published straight to front a (`stack.publish`),
          front b idle; `--reference-minutes` long (default: as --minutes).
Measured for each:
  backlog  each chunk's record `wallclock` (its chunker closed it) -> the live MPD lists
           all of it (bench/live_latency.py's `follow`: index records and MPD polled
           every 0.25 s); median and p95 over the first and the last third of the
           chunks, and last/first: the backlog does not grow if the last third is not
           worse (ratio <= 1, give or take the polling);
  CPU      user+system seconds of each front: nginx master and worker and every
           descendant (the `sparkcast live-ingest` chunker, its ffmpeg and its per-GOP
           ffprobe runs), from just before the publish until its chunkers have exited,
           per minute of stream; (a+b)/single. The tree is read every second; a process
           that exits is reaped by its parent in the tree, whose children's times then
           hold all of it, so processes shorter than a reading count too;
  won      how many chunks each pipeline's copy won (index records name raw/<seq>.<p>.ts).
The encoder, the legs and the live job are not counted in the CPU: they are the same for
one or two pipelines (the legs stand in for an encoder's second output).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "live"),
                str(REPO / "bench")]

from live_latency import Listing, follow, pct  # noqa: E402
from test_dual_ingest import (  # noqa: E402
    RATE,
    SIZE,
    dual_publish,
    segments_listed_per_front,
)

from ingest.rtmp import RtmpServer  # noqa: E402
from live_tools import NS, mpd_of, storage_of  # noqa: E402
from sparkcast.stack import LiveStack  # noqa: E402
from stack_tools import running_stack  # noqa: E402

SAMPLE_S = 1.0
CHUNKERS_EXIT_S = 60.0  # how long a run waits for its chunkers to exit after the stream ends


@dataclass
class _Seen:
    """One process as read: its own and its reaped children's CPU seconds (user+system)."""

    own_first: float
    children_first: float
    own: float
    children: float
    at_start: bool  # in the tree at the first reading


@dataclass
class TreeCpu:
    """CPU seconds of a process and all of its descendants, read every second in a thread.

    total = (own + reaped children) summed over the tree at the last reading, minus the
    same at the first: a process that exits in between is reaped by its parent (nginx
    reaps its exec children, the chunker its ffmpeg and ffprobe), whose children's times
    take all of it. `sampled` is the plain per-pid sum of own times as read, a lower
    bound that misses what ran between a process's last reading and its exit."""

    root_pid: int
    seen: dict[tuple[int, float], _Seen] = field(default_factory=dict)
    alive: set[tuple[int, float]] = field(default_factory=set)
    readings: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeCpu:
        self._read()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._read()

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._read()

    def _tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.root_pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _read(self) -> None:
        first = self.readings == 0
        alive = set()
        for proc in self._tree():
            with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                key = (proc.pid, proc.create_time())
                t = proc.cpu_times()
                own, children = t.user + t.system, t.children_user + t.children_system
                s = self.seen.get(key)
                if s is None:
                    base = (own, children) if first else (0.0, 0.0)
                    self.seen[key] = _Seen(*base, own, children, first)
                else:
                    s.own, s.children = own, children
                alive.add(key)
        self.alive = alive
        self.readings += 1

    def chunkers(self) -> int:
        """Live `sparkcast live-ingest` processes under the root, now."""
        n = 0
        for proc in self._tree()[1:]:
            with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                n += "live-ingest" in " ".join(proc.cmdline())
        return n

    @property
    def total(self) -> float:
        end = sum(self.seen[k].own + self.seen[k].children for k in self.alive)
        start = sum(s.own_first + s.children_first for s in self.seen.values() if s.at_start)
        return end - start

    @property
    def sampled(self) -> float:
        return sum(s.own - s.own_first for s in self.seen.values())


@dataclass
class Run:
    name: str
    seconds: float
    listing: Listing
    cpu: dict[str, TreeCpu]  # pipeline -> its front's meter
    won: dict[str, int]
    periods: int
    notes: list[str] = field(default_factory=list)

    def delays(self) -> list[float]:
        seen = self.listing
        return [seen.listed_at[s] - seen.closed_at[s].wallclock for s in sorted(seen.listed_at)]

    def stats(self) -> dict[str, float]:
        d = self.delays()
        third = max(1, len(d) // 3)
        first, last = d[:third], d[-third:]
        nan = float("nan")
        out = {
            "chunks": float(len(self.listing.closed_at)),
            "unlisted": float(len(self.listing.closed_at) - len(self.listing.listed_at)),
            "backlog_at_end": float(self.listing.backlog),
            "first_med": statistics.median(first) if first else nan,
            "first_p95": pct(first, 0.95),
            "last_med": statistics.median(last) if last else nan,
            "last_p95": pct(last, 0.95),
        }
        out["ratio_med"] = out["last_med"] / out["first_med"]
        out["ratio_p95"] = out["last_p95"] / out["first_p95"]
        minutes = self.seconds / 60
        for p, meter in self.cpu.items():
            out[f"cpu_{p}"] = meter.total / minutes
            out[f"cpu_sampled_{p}"] = meter.sampled / minutes
        return out


Publishing = AbstractContextManager[tuple[subprocess.Popen[bytes], list[str]]]


@contextmanager
def dual(key: str, fronts: list[RtmpServer], seconds: float, logs: Path
         ) -> Iterator[tuple[subprocess.Popen[bytes], list[str]]]:
    """One encoder, two legs, one to each front (the test's `dual_publish`)."""
    notes: list[str] = []
    with dual_publish(key, fronts, seconds, logs) as (encoder, legs):
        yield encoder, notes
        code = encoder.wait(timeout=60)
        if code != 0:
            assert encoder.stderr is not None
            notes.append(f"encoder exit {code}: {encoder.stderr.read()[-500:]!r}")
    connects = [leg.connects for leg in legs]
    if connects != [1] * len(legs):
        notes.append(f"legs connected {connects} times")


@contextmanager
def single(stack: LiveStack, key: str, seconds: float
           ) -> Iterator[tuple[subprocess.Popen[bytes], list[str]]]:
    """The same show published straight to the stack's own front."""
    notes: list[str] = []
    pub = stack.publish(key, seconds, size=SIZE, rate=RATE)
    yield pub, notes
    code = pub.wait(timeout=60)
    if code != 0:
        assert pub.stderr is not None
        notes.append(f"publisher exit {code}: {pub.stderr.read()[-500:]!r}")


def measure(stack: LiveStack, name: str, stream: str, seconds: float,
            fronts: dict[str, RtmpServer], publishing: Publishing) -> Run:
    """Meter `fronts`, publish `stream` for `seconds` (`publishing` yields the publisher
    and a list of notes), follow it until its MPD turns static, then until its chunkers
    have exited."""
    storage = storage_of(stack)
    cpu = {}
    for p, front in fronts.items():
        assert front.proc is not None
        cpu[p] = TreeCpu(front.proc.pid).start()
    with publishing as (pub, notes):
        listing = follow(storage, stream, pub, seconds)
    deadline = time.monotonic() + CHUNKERS_EXIT_S
    while any(m.chunkers() for m in cpu.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    for m in cpu.values():
        m.stop()
    left = {p: m.chunkers() for p, m in cpu.items() if m.chunkers()}
    if left:
        notes.append(f"chunkers still running {CHUNKERS_EXIT_S:g} s after the end: {left}")
    mpd = mpd_of(stack, stream)
    periods = len(mpd.findall("d:Period", NS)) if mpd is not None else 0
    if mpd is None or mpd.get("type") != "static":
        notes.append("the stream did not end (its MPD is not static)")
    run = Run(name, seconds, listing, cpu, segments_listed_per_front(stack, stream), periods,
              notes)
    print(f"{name}: {run.stats()} won={run.won} periods={periods} notes={notes}",
          file=sys.stderr, flush=True)  # kept if a later run fails
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10,
                    help="length of the two-pipeline stream (1: a quick trial)")
    ap.add_argument("--reference-minutes", type=float, default=None,
                    help="length of the single-front reference stream (default: --minutes)")
    ap.add_argument("--reference-first", action="store_true",
                    help="publish the reference before the two-pipeline stream")
    args = ap.parse_args()
    seconds = args.minutes * 60
    ref_seconds = (args.minutes if args.reference_minutes is None
                   else args.reference_minutes) * 60
    os.environ["SPARKCAST_CONFIG"] = "/nonexistent/sparkcast.toml"
    with tempfile.TemporaryDirectory(prefix="sparkcast-dual-ingest-") as tmp:
        work = Path(tmp)
        with running_stack(work, ingest_pipeline="a", live_end_timeout=8.0) as stack:
            assert stack.rtmp is not None
            ladder = stack.settings.ladder
            b_settings = stack.settings.model_copy(update={"ingest_pipeline": "b",
                                                           "rtmp_port": 0})
            front_b = RtmpServer(b_settings, work / "run" / "rtmp-b", stack.base_url,
                                 host="127.0.0.1").start()
            try:
                front_a = stack.rtmp

                def run_dual() -> Run:
                    return measure(stack, "two pipelines", "dual", seconds,
                                   {"a": front_a, "b": front_b},
                                   dual(stack.create_key("dual"), [front_a, front_b],
                                        seconds, work))

                def run_single() -> Run:
                    return measure(stack, "one front", "single", ref_seconds,
                                   {"a": front_a},
                                   single(stack, stack.create_key("single"), ref_seconds))

                if args.reference_first:
                    ref = run_single()
                    two = run_dual()
                else:
                    two = run_dual()
                    ref = run_single()
            finally:
                front_b.stop()
    report(args, two, ref, ladder)


def report(args: argparse.Namespace, two: Run, ref: Run, ladder: str) -> None:
    d, r = two.stats(), ref.stats()
    print(f"{SIZE} {RATE} fps, 2 s GOP and chunks, ladder {ladder}, x264 ultrafast; "
          f"{two.seconds / 60:g} min two pipelines, {ref.seconds / 60:g} min one front "
          f"({'reference first' if args.reference_first else 'reference after'}); "
          f"{os.cpu_count()} cores")
    print()
    print("backlog: chunk closed (record wallclock) -> listed in the live MPD, s")
    print(f"{'run':14} {'chunks':>6} {'1st/3 med':>9} {'1st/3 p95':>9} {'last/3 med':>10} "
          f"{'last/3 p95':>10} {'last/1st med':>12} {'last/1st p95':>12} {'unlisted':>8} "
          f"{'at end':>6} {'periods':>7}")
    for run, s in ((two, d), (ref, r)):
        print(f"{run.name:14} {s['chunks']:6.0f} {s['first_med']:9.2f} {s['first_p95']:9.2f} "
              f"{s['last_med']:10.2f} {s['last_p95']:10.2f} {s['ratio_med']:11.2f}x "
              f"{s['ratio_p95']:11.2f}x {s['unlisted']:8.0f} {s['backlog_at_end']:6.0f} "
              f"{run.periods:7d}")
    print()
    print("ingest CPU, user+system s per minute of stream: each front's nginx, chunker and "
          "its ffmpeg/ffprobe (pid reads: the per-pid sum of 1 s readings, a lower bound "
          "that misses short runs)")
    print(f"{'run':14} {'front':>5} {'CPU s/min':>9} {'pid reads':>9} {'chunks won':>10}")
    for run, s in ((two, d), (ref, r)):
        for p in run.cpu:
            print(f"{run.name:14} {p:>5} {s[f'cpu_{p}']:9.2f} {s[f'cpu_sampled_{p}']:9.2f} "
                  f"{run.won.get(p, 0):10d}")
    both = d["cpu_a"] + d["cpu_b"]
    print()
    print(f"ratio CPU (a+b) / one front: {both / r['cpu_a']:.2f} "
          f"({both:.2f} / {r['cpu_a']:.2f} s per minute)")
    print(f"ratio backlog last/first third, median: two pipelines {d['ratio_med']:.2f}, "
          f"one front {r['ratio_med']:.2f}")
    print(f"ratio backlog median, two pipelines / one front: first third "
          f"{d['first_med'] / r['first_med']:.2f}, last third "
          f"{d['last_med'] / r['last_med']:.2f}")
    for run in (two, ref):
        for note in run.notes:
            print(f"note, {run.name}: {note}")
    print(f"command: {shlex.join(sys.orig_argv)}")


if __name__ == "__main__":
    main()
