"""Discrete-event model of one Spark application transcoding a library (jobs/library.py).

    python bench/scaling_model.py --measured FILE [--defaults FILE] [--videos N]
        [--library mixed:N|films:N:SECONDS] [--executors 1,10,100,1000] [--cores 1] [--seed 0]

Predicts how the library job scales past the machine it was measured on. FILE holds all
Measured fields (bench/measured_example.json) or is bench/library_yarn_scaling.py's --out
(mapped by Measured.from_measurement; the other costs from --defaults, the example).

The job: application start; the driver's resume check of each video (serial); then
concurrency() = max(2, min(MAX_VIDEOS, 2 x cores)) driver threads take the videos longest first,
each video a chain with no global barrier: a Spark job of one ingest task (probe + plan +
cut the first range_chunks chunks + copy the audio), a Spark job of range tasks
(range_chunks chunks each) if there are more chunks, a Spark job of map tasks (audio
first, then one per chunk, all renditions), then reduce + load on the thread, then the
thread's next video. Each Spark job costs job_overhead_s before its tasks can run. FAIR
scheduler, one pool per thread: a freed core takes the next task (in order) of the running
job with the fewest running tasks (ties: submitted first; Spark breaks them by pool name).
The driver launches one task at a time, in task_launch_s (the core waits). A fraction
straggler_p of the tasks (seeded, drawn per task in queue order: the same ones at every
size) computes straggler_factor times longer. No locality, speculation or failures.

HDFS: a task first reads its bytes (ingest and range tasks: the whole input, as the real
code does; a map task: its chunk; audio: nothing), then computes; N tasks reading at once
each get min(hdfs_read_mb_s / ceil(N / executors), hdfs_aggregate_mb_s / N) MB/s (spread
evenly over executors; no writes). MB = 1e6 bytes.

Limiter: each core-second is charged to a label: reading while the aggregate cap binds ->
"HDFS aggregate"; any other running task -> "executor cores" (utilisation counts both);
idle while tasks wait to be launched -> "driver task launch"; idle with nothing to run
while videos wait in the queue -> "driver reduce+load" (the share of threads in it) or
"job overheads / too few videos in flight"; idle once the queue is empty -> "longest
video"; application start and resume checks -> "application start". The label charged
the most limits growth ("executor cores": more executors still help).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

MB = 1e6
EPS = 1e-9
CORES = "executor cores"
LAUNCH = "driver task launch"
HDFS = "HDFS aggregate"
LONGEST = "longest video"
REDUCE = "driver reduce+load"
FEW = "job overheads / too few videos in flight"
START = "application start"
LABELS = (CORES, LAUNCH, HDFS, LONGEST, REDUCE, FEW, START)
PHASES = ("start", "ingest", "map", "reduce_load")
EXAMPLE = Path(__file__).resolve().parent / "measured_example.json"
# What bench/library_yarn_scaling.py writes and Measured has no field for.
MEASUREMENT_ONLY = ("media_seconds", "ingest_task_s_median", "ingest_s_per_media_s",
                    "map_tasks", "wall_1x1", "wall_2x1")

Task = tuple[float, float]  # (compute seconds, MB read from HDFS)


@dataclass(frozen=True)
class Measured:
    """Measured costs (seconds, MB/s, bytes); see bench/measured_example.json."""

    app_start_s: float  # application start to the first job's submission
    job_overhead_s: float  # per Spark job: submitting it and its stage
    probe_task_s: float  # the ingest task's fixed part: probe, plan, task start
    cut_s_per_media_s: float  # cutting, per media second cut (ingest and range tasks)
    map_s_per_media_s: float  # a chunk's map task (all renditions), per media second
    audio_s_per_media_s: float  # the audio map task, per media second of the video
    reduce_s_per_video: float
    load_s_per_video: float
    hdfs_read_mb_s: float  # one reader's rate
    hdfs_aggregate_mb_s: float
    bytes_per_media_s: float  # input and raw chunks
    task_launch_s: float
    audio_copy_s_per_media_s: float = 0.0  # the ingest task's audio copy
    resume_check_s_per_video: float = 0.0  # driver, serial, before the threads start
    straggler_p: float = 0.0
    straggler_factor: float = 1.0
    chunk_seconds: float = 10.0
    range_chunks: int = 6

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{f.name} must be a number >= 0, not {value!r}")
        if min(self.hdfs_read_mb_s, self.hdfs_aggregate_mb_s, self.chunk_seconds) <= 0:
            raise ValueError("hdfs_read_mb_s, hdfs_aggregate_mb_s, chunk_seconds must be > 0")
        if self.straggler_p > 1 or self.straggler_factor < 1:
            raise ValueError("straggler_p must be in [0, 1] and straggler_factor >= 1")
        if self.range_chunks < 1 or int(self.range_chunks) != self.range_chunks:
            raise ValueError(f"range_chunks must be an integer >= 1, not {self.range_chunks!r}")

    @classmethod
    def from_json(cls, path: str | Path) -> Measured:
        """A full file; a "note" key (and keys starting with "_") is ignored."""
        data = json.loads(Path(path).read_text())
        data = {k: v for k, v in data.items() if k != "note" and not k.startswith("_")}
        if unknown := sorted(set(data) - {f.name for f in fields(cls)}):
            raise ValueError(f"{path}: unknown keys {unknown}")
        return _build(data, str(path))

    @classmethod
    def from_measurement(cls, measurement: Mapping[str, Any],
                         defaults: Measured | Mapping[str, Any]) -> Measured:
        """From bench/library_yarn_scaling.py's figures; the other fields from `defaults`.

        Keys named like a field are taken as they are, except these, whose measured task
        times include what the model adds separately: app_start_s (less the first job's
        job_overhead_s); map_s_per_media_s (transcode-step task seconds per media second,
        less the audio task's audio_s_per_media_s and the chunk read at hdfs_read_mb_s);
        ingest_s_per_media_s -> cut_s_per_media_s, less the probe's share of the median
        ingest task (probe_task_s, capped at ingest_task_s_median), the audio copy and the
        input read. Other keys (media_seconds, map_tasks, wall_*, note) are ignored."""
        names = {f.name for f in fields(cls)}
        base = asdict(defaults) if isinstance(defaults, Measured) else dict(defaults)
        v = {k: x for k, x in {**base, **measurement}.items() if k in names}
        try:
            got = {k: float(measurement[k]) for k in ("app_start_s", "map_s_per_media_s",
                   "ingest_s_per_media_s", "ingest_task_s_median") if k in measurement}
            read = v["bytes_per_media_s"] / MB / v["hdfs_read_mb_s"]  # s per media s
            if "app_start_s" in got:
                v["app_start_s"] = max(0.0, got["app_start_s"] - v["job_overhead_s"])
            if "map_s_per_media_s" in got:
                v["map_s_per_media_s"] = max(
                    0.0, got["map_s_per_media_s"] - v["audio_s_per_media_s"] - read)
            if "ingest_s_per_media_s" in got:
                median = got.get("ingest_task_s_median") or math.inf
                v["probe_task_s"] = min(v["probe_task_s"], median)
                v["cut_s_per_media_s"] = max(0.0, got["ingest_s_per_media_s"] * (
                    1 - v["probe_task_s"] / median) - v.get("audio_copy_s_per_media_s", 0) - read)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"measurement: cannot map {exc}") from exc
        return _build(v, "measurement and defaults")


def _build(values: Mapping[str, Any], where: str) -> Measured:
    if missing := sorted(f.name for f in fields(Measured)
                         if f.name not in values and f.default is MISSING):
        raise ValueError(f"{where}: missing keys {missing}")
    return Measured(**values)


@dataclass(frozen=True)
class Result:
    executors: int
    cores: int
    wall_s: float
    phases: dict[str, float]  # start, then ingest, map, reduce_load summed over videos
    charged: dict[str, float]  # limiter label -> seconds of wall time; they add up to wall_s
    limiter: str
    speedup: float  # vs 1 executor x 1 core, same library and inputs
    utilisation: float  # core-seconds running tasks / (cores x wall_s)
    video_end: tuple[float, ...]  # when each video's load ends, in library order

    @property
    def efficiency(self) -> float:
        return self.speedup / (self.executors * self.cores)


# jobs/library.py: MAX_CONCURRENT_VIDEOS (not imported: the model runs without Spark)
MAX_VIDEOS = 2048


def concurrency(total_cores: int, cap: int = MAX_VIDEOS) -> int:
    """Videos in flight, as jobs/library.py: concurrency() (defaultParallelism = cores)."""
    return max(2, min(cap, 2 * total_cores))


def mixed_library(n: int, seed: int = 0) -> list[float]:
    """n clips of 10-40 s (uniform, seeded)."""
    rng = random.Random(seed)
    return [round(rng.uniform(10.0, 40.0), 3) for _ in range(n)]


def film_library(n: int, seconds: float = 7200.0) -> list[float]:
    """n films of `seconds` each."""
    return [float(seconds)] * n


def video_jobs(duration: float, m: Measured) -> list[list[Task]]:
    """One video's Spark jobs in order: [ingest task], [range tasks] if any, [map tasks]."""
    mb = duration * m.bytes_per_media_s / MB
    c, r = m.chunk_seconds, int(m.range_chunks)
    lengths = [min(c, duration - i * c) for i in range(max(1, math.ceil(duration / c - EPS)))]
    spans = [sum(lengths[i:i + r]) for i in range(0, len(lengths), r)]
    ingest = [(m.probe_task_s + spans[0] * m.cut_s_per_media_s
               + duration * m.audio_copy_s_per_media_s, mb)]
    ranges = [(s * m.cut_s_per_media_s, mb) for s in spans[1:]]
    maps = [(duration * m.audio_s_per_media_s, 0.0)] + [
        (s * m.map_s_per_media_s, s * m.bytes_per_media_s / MB) for s in lengths]
    return [ingest, ranges, maps] if ranges else [ingest, maps]


@dataclass
class _Job:
    thread: int
    seq: int  # submission order
    tasks: list[Task]
    next: int = 0  # the next task to launch
    running: int = 0  # launched (or launching), not finished


def simulate(library: Sequence[float], measured: Measured, executors: int, cores: int = 1, *,
             seed: int = 0, max_videos: int = MAX_VIDEOS) -> Result:
    """Model the job on `executors` x `cores`; speed-up is vs 1 x 1."""
    own = _run(library, measured, executors, cores, seed, max_videos)
    base = own if executors * cores == 1 else _run(library, measured, 1, 1, seed, max_videos)
    wall, phases, charged, busy, ends = own
    return Result(executors, cores, wall, phases, charged, max(charged, key=charged.__getitem__),
                  base[0] / wall, busy / (executors * cores * wall), ends)


def _run(library: Sequence[float], m: Measured, executors: int, cores: int, seed: int,
         max_videos: int = MAX_VIDEOS
         ) -> tuple[float, dict[str, float], dict[str, float], float, tuple[float, ...]]:
    if not library or min(library) <= 0 or executors < 1 or cores < 1:
        raise ValueError("need >= 1 video, all of positive duration, executors and cores >= 1")
    n, slots = len(library), executors * cores
    threads = concurrency(slots, max_videos)
    queue = sorted(range(n), key=lambda i: -library[i])  # longest first
    rng = random.Random(seed)
    chains = {i: [[(c * (m.straggler_factor if rng.random() < m.straggler_p else 1.0), mb)
                   for c, mb in job] for job in video_jobs(library[i], m)] for i in queue}
    now = m.app_start_s + n * m.resume_check_s_per_video
    phases = {"start": now, "ingest": 0.0, "map": 0.0,
              "reduce_load": n * (m.reduce_s_per_video + m.load_s_per_video)}
    charged = {**dict.fromkeys(LABELS, 0.0), START: now}
    ends = [0.0] * n
    events: list[tuple[float, int, str, Any]] = []  # (time, seq, kind, data)
    ready: list[_Job] = []  # running jobs with tasks to launch
    readers: list[tuple[float, int, _Job, float]] = []  # (virtual MB at end, seq, job, compute)
    at: dict[int, list[Any]] = {}  # thread -> [video, its job's index in the chain, since]
    seq, taken, pending, free, in_driver, virtual, busy = 0, 0, 0, slots, 0, 0.0, 0.0
    launching = False

    def push(t: float, kind: str, data: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, data))

    def submit(th: int) -> None:  # the thread's next Spark job, or else its next video
        nonlocal taken
        if th not in at or at[th][1] == len(chains[at[th][0]]):
            if taken == n:
                return
            at[th], taken = [queue[taken], 0, now], taken + 1
        push(now + m.job_overhead_s, "ready", _Job(th, seq + 1, chains[at[th][0]][at[th][1]]))

    for th in range(min(threads, n)):
        submit(th)
    while True:
        if not launching and free and ready:  # FAIR: fewest running, then submitted first
            job = min(ready, key=lambda j: (j.running, j.seq))
            push(now + m.task_launch_s, "start", (job, job.tasks[job.next]))
            job.next, job.running, launching = job.next + 1, job.running + 1, True
            pending, free = pending - 1, free - 1
            if job.next == len(job.tasks):
                ready.remove(job)
        per_executor = m.hdfs_read_mb_s / max(1, math.ceil(len(readers) / executors))
        rate = min(per_executor, m.hdfs_aggregate_mb_s / len(readers)) if readers else 0.0
        step = min(events[0][0] if events else math.inf,
                   now + (readers[0][0] - virtual) / rate if readers else math.inf)
        if step == math.inf:
            break
        if (dt := max(now, step) - now) > 0:  # charge the core-seconds (see the module doc)
            running = slots - free - launching
            hdfs, idle = (len(readers) if rate < per_executor else 0), slots - running
            waiting = idle if pending else int(launching)
            rest = idle - waiting
            driver = rest * in_driver / threads if taken < n else 0.0
            for label, k in ((HDFS, hdfs), (CORES, running - hdfs), (LAUNCH, waiting),
                             (REDUCE, driver), (FEW if taken < n else LONGEST, rest - driver)):
                charged[label] += dt * k / slots
            busy += dt * running
        virtual, now = virtual + rate * dt, now + dt
        while True:  # every event due now, before the next launch decision
            if readers and readers[0][0] <= virtual + EPS * max(1.0, virtual):
                _, _, job, compute = heapq.heappop(readers)
                push(now + compute, "done", job)
                continue
            if not events or events[0][0] > now + EPS:
                break
            _, _, kind, data = heapq.heappop(events)
            if kind == "ready":
                ready.append(data)
                pending += len(data.tasks)
            elif kind == "start":  # launched: read, then compute
                (job, (compute, mb)), launching, seq = data, False, seq + 1
                if mb:
                    heapq.heappush(readers, (virtual + mb, seq, job, compute))
                else:
                    push(now + compute, "done", job)
            elif kind == "free":  # the thread's reduce+load is done
                in_driver -= 1
                ends[at[data][0]] = now
                submit(data)
            else:  # a task's end
                job, free = data, free + 1
                job.running -= 1
                if job.running or job.next < len(job.tasks):
                    continue
                state = at[job.thread]
                state[1] += 1
                if state[1] == len(chains[state[0]]):  # the map job: reduce+load
                    phases["map"] += now - state[2]
                    in_driver += 1
                    push(now + m.reduce_s_per_video + m.load_s_per_video, "free", job.thread)
                    continue
                if state[1] == len(chains[state[0]]) - 1:  # ingest (and ranges) done
                    phases["ingest"] += now - state[2]
                    state[2] = now
                submit(job.thread)
    return now, phases, charged, busy, tuple(ends)


def parse_library(spec: str, videos: int | None, seed: int = 0) -> list[float]:
    """`mixed[:N]` or `films[:N[:SECONDS]]`; N defaults to `videos` (else 100)."""
    kind, *args = spec.split(":")
    if args and videos is not None:
        raise ValueError("give the number of videos once (--library KIND:N or --videos N)")
    n = int(args[0]) if args else (videos if videos is not None else 100)
    if kind == "mixed" and len(args) <= 1:
        return mixed_library(n, seed)
    if kind == "films" and len(args) <= 2:
        return film_library(n, float(args[1]) if len(args) == 2 else 7200.0)
    raise ValueError(f"unknown library {spec!r} (mixed:N or films:N:SECONDS)")


def load_measured(path: str | Path, defaults: str | Path = EXAMPLE) -> tuple[Measured, str]:
    """A full Measured file, or a library_yarn_scaling.py measurement (+ defaults)."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    if any(k in data for k in MEASUREMENT_ONLY):
        return (Measured.from_measurement(data, Measured.from_json(defaults)),
                f"measurement {path}, other costs from {defaults}")
    return Measured.from_json(path), str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measured", required=True,
                        help="JSON: Measured fields, or bench/library_yarn_scaling.py --out")
    parser.add_argument("--defaults", default=str(EXAMPLE),
                        help="full Measured file for what a measurement lacks")
    parser.add_argument("--library", default="mixed", help="mixed:N or films:N:SECONDS")
    parser.add_argument("--videos", type=int, help="number of videos (default 100)")
    parser.add_argument("--executors", default="1,10,100,1000")
    parser.add_argument("--cores", type=int, default=1, help="cores per executor")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        measured, source = load_measured(args.measured, args.defaults)
        library = parse_library(args.library, args.videos, args.seed)
        counts = [int(e) for e in args.executors.split(",")]
        results = [simulate(library, measured, e, args.cores, seed=args.seed) for e in counts]
    except (OSError, ValueError) as exc:
        print(f"scaling_model: {exc}", file=sys.stderr)
        return 2
    print(f"library {args.library}: {len(library)} videos, {sum(library):.0f} media s; "
          f"{args.cores} core(s) per executor; costs: {source}")
    print(f"{'executors':>9} {'wall s':>9} {'speed-up':>8} {'effic.':>6} {'util.':>5} "
          + " ".join(f"{p:>11}" for p in PHASES) + "  limiter  (phases: s summed over videos)")
    for r in results:
        print(f"{r.executors:>9} {r.wall_s:>9.1f} {r.speedup:>8.1f} {r.efficiency:>6.2f} "
              f"{r.utilisation:>5.2f} " + " ".join(f"{r.phases[p]:>11.1f}" for p in PHASES)
              + f"  {r.limiter}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
