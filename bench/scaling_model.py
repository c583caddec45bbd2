"""Discrete-event model of one Spark application transcoding a library of videos.

    python bench/scaling_model.py --measured FILE [--library mixed:N|films:N:SECONDS]
        [--videos N] [--executors 1,10,100,1000] [--cores 1] [--order given|longest_first]
        [--driver-threads 1] [--seed 0]

Predicts how a library job scales past the machine it was measured on. The job:
application start; stage 1 probes (one task per video), barrier; driver planning
(listing + probe results, serial; reported in the probe phase); stage 2 cuts (one task
per range of `range_chunks` chunks of a video), barrier; stage 3 transcodes (one audio
task per video, all scheduled first, then one task per chunk), barrier; then the driver
reduces and loads each video (serially, or on `driver_threads` threads).

Each stage is list-scheduled onto executors x cores slots: the next task (given order, or
longest first by its nominal time) goes to the slot that frees first, but only once the
driver has launched it; the driver launches one task at a time, each taking task_launch_s
of its time, so it caps the task rate. A fraction straggler_p of the tasks (seeded RNG,
drawn per stage in given order, so every cluster size sees the same stragglers) computes
straggler_factor times longer.

HDFS approximation: a task first reads its raw bytes (cut: its range; transcode: its
chunk; probes and audio read nothing worth counting), then computes. The N tasks reading
at a moment share the bandwidth equally, each at min(hdfs_read_mb_s / ceil(N / executors),
hdfs_aggregate_mb_s / N) MB/s (readers taken as spread evenly over executors; no reading
while computing, no locality, no write costs). MB = 1e6 bytes.

The limiter: each stage's time is charged to the largest of its lower bounds (executor
cores: work / slots, reads at hdfs_read_mb_s; driver task launch: tasks x task_launch_s;
HDFS aggregate: MB / hdfs_aggregate_mb_s; longest video/straggler: the longest single
task), fixed costs to "stage barriers" (application start and stage overheads), planning
to "driver planning" and the reduce to "driver reduce+load"; the label charged the most
seconds limits growth ("executor cores" means more executors still help).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

MB = 1e6
CORES = "executor cores"
LAUNCH = "driver task launch"
HDFS = "HDFS aggregate"
LONGEST = "longest video/straggler"
REDUCE = "driver reduce+load"
BARRIERS = "stage barriers"
PLANNING = "driver planning"
ORDERS = ("given", "longest_first")
PHASES = ("start", "probe", "cut", "map", "reduce_load")

Task = tuple[float, float]  # (compute seconds, MB read from HDFS)


@dataclass(frozen=True)
class Measured:
    """Measured costs (seconds, MB/s, bytes); see bench/measured_example.json."""

    app_start_s: float
    plan_s_per_video: float
    stage_overhead_s: float
    probe_task_s: float
    cut_s_per_media_s: float
    map_s_per_media_s: float
    audio_s_per_media_s: float
    reduce_s_per_video: float
    load_s_per_video: float
    hdfs_read_mb_s: float
    hdfs_aggregate_mb_s: float
    bytes_per_media_s: float
    task_launch_s: float
    straggler_p: float = 0.0
    straggler_factor: float = 1.0
    chunk_seconds: float = 10.0
    range_chunks: int = 1

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
        """Load from a JSON object; a "note" key (and keys starting with "_") is ignored."""
        data = json.loads(Path(path).read_text())
        data = {k: v for k, v in data.items() if k != "note" and not k.startswith("_")}
        names = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - names):
            raise ValueError(f"{path}: unknown keys {unknown}")
        if missing := sorted(f.name for f in fields(cls)
                             if f.name not in data and f.default is MISSING):
            raise ValueError(f"{path}: missing keys {missing}")
        return cls(**data)


@dataclass(frozen=True)
class Result:
    executors: int
    cores: int
    wall_s: float
    phases: dict[str, float]  # PHASES -> seconds; they add up to wall_s
    charged: dict[str, float]  # limiter label -> seconds of wall time charged to it
    limiter: str
    speedup: float  # vs 1 executor x 1 core, same library and inputs

    @property
    def efficiency(self) -> float:
        return self.speedup / (self.executors * self.cores)


def mixed_library(n: int, seed: int = 0) -> list[float]:
    """n clips of 10-40 s (uniform, seeded)."""
    rng = random.Random(seed)
    return [round(rng.uniform(10.0, 40.0), 3) for _ in range(n)]


def film_library(n: int, seconds: float = 7200.0) -> list[float]:
    """n films of `seconds` each."""
    return [float(seconds)] * n


def chunk_lengths(duration: float, chunk_seconds: float) -> list[float]:
    n = max(1, math.ceil(duration / chunk_seconds - 1e-9))
    return [min(chunk_seconds, duration - i * chunk_seconds) for i in range(n)]


def stage_tasks(library: Sequence[float], m: Measured) -> dict[str, list[Task]]:
    """The tasks of the three stages, in the order the job submits them."""
    mb = m.bytes_per_media_s / MB
    probe = [(m.probe_task_s, 0.0) for _ in library]
    cut: list[Task] = []
    audio: list[Task] = []
    video: list[Task] = []
    for duration in library:
        lengths = chunk_lengths(duration, m.chunk_seconds)
        for i in range(0, len(lengths), m.range_chunks):
            span = sum(lengths[i:i + m.range_chunks])
            cut.append((span * m.cut_s_per_media_s, span * mb))
        audio.append((duration * m.audio_s_per_media_s, 0.0))
        video += [(s * m.map_s_per_media_s, s * mb) for s in lengths]
    return {"probe": probe, "cut": cut, "map": audio + video}


def read_rate(m: Measured, executors: int, readers: int) -> float:
    """MB/s each of `readers` tasks reading at once gets (see the module doc)."""
    return min(m.hdfs_read_mb_s / math.ceil(readers / executors), m.hdfs_aggregate_mb_s / readers)


def run_stage(tasks: Sequence[Task], m: Measured, executors: int, cores: int, order: str,
              rng: random.Random) -> tuple[float, str]:
    """Seconds from the stage's start to its last task's end, and its limiter label."""
    n = len(tasks)
    work = [c * (m.straggler_factor if rng.random() < m.straggler_p else 1.0) for c, _ in tasks]
    reads = [mb for _, mb in tasks]
    nominal = [w + mb / m.hdfs_read_mb_s for w, mb in zip(work, reads, strict=True)]
    pending = list(range(n))
    if order == "longest_first":  # by the times known in advance (stragglers are not)
        pending.sort(key=lambda i: -(tasks[i][0] + reads[i] / m.hdfs_read_mb_s))
    pending.reverse()  # pop() takes the next
    free, now, done = executors * cores, 0.0, 0.0
    launched: float | None = None  # when the driver's launch in flight completes
    driver = 0.0  # when the driver is free to start the next launch
    virtual = 0.0  # MB each reader has read since the stage began (equal shares)
    readers: list[tuple[float, int]] = []  # (virtual MB at which its read ends, task)
    computing: list[float] = []  # end times
    while pending or readers or computing or launched is not None:
        if launched is None and pending and free:
            launched = driver = max(driver, now) + m.task_launch_s
            free -= 1
        rate = read_rate(m, executors, len(readers)) if readers else 0.0
        events = [t for t in (launched, computing[0] if computing else None) if t is not None]
        if readers:
            events.append(now + (readers[0][0] - virtual) / rate)
        step = max(now, min(events))
        virtual += rate * (step - now)
        now = step
        if launched is not None and launched <= now:
            launched, i = None, pending.pop()
            if reads[i]:
                heapq.heappush(readers, (virtual + reads[i], i))
            else:
                heapq.heappush(computing, now + work[i])
        elif computing and computing[0] <= now:
            done = max(done, heapq.heappop(computing))
            free += 1
        else:
            heapq.heappush(computing, now + work[heapq.heappop(readers)[1]])
    bounds = {  # ties go to the first
        CORES: sum(nominal) / (executors * cores),
        LONGEST: m.task_launch_s + max(nominal),
        LAUNCH: n * m.task_launch_s,
        HDFS: sum(reads) / m.hdfs_aggregate_mb_s,
    }
    return done, max(bounds, key=lambda label: bounds[label])


def simulate(library: Sequence[float], measured: Measured, executors: int, cores: int = 1, *,
             order: str = "given", driver_threads: int = 1, seed: int = 0) -> Result:
    """Model the job on `executors` x `cores` slots; speed-up is vs 1 x 1."""
    own = _run(library, measured, executors, cores, order, driver_threads, seed)
    base = own if executors * cores == 1 else _run(library, measured, 1, 1, order,
                                                   driver_threads, seed)
    return Result(executors, cores, own[0], own[1], own[2], max(own[2], key=own[2].__getitem__),
                  base[0] / own[0])


def _run(library: Sequence[float], m: Measured, executors: int, cores: int, order: str,
         driver_threads: int, seed: int) -> tuple[float, dict[str, float], dict[str, float]]:
    if not library or min(library) <= 0:
        raise ValueError("the library needs at least one video, all of positive duration")
    if executors < 1 or cores < 1 or driver_threads < 1:
        raise ValueError("executors, cores and driver_threads must be >= 1")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    n = len(library)
    charged = dict.fromkeys((CORES, LAUNCH, HDFS, LONGEST, REDUCE, BARRIERS, PLANNING), 0.0)
    charged[BARRIERS] = m.app_start_s + 3 * m.stage_overhead_s
    charged[PLANNING] = n * m.plan_s_per_video
    phases = {"start": m.app_start_s}
    for name, tasks in stage_tasks(library, m).items():
        seconds, bound = run_stage(tasks, m, executors, cores, order,
                                   random.Random(f"{seed}:{name}"))
        charged[bound] += seconds
        phases[name] = seconds + m.stage_overhead_s
    phases["probe"] += charged[PLANNING]
    phases["reduce_load"] = charged[REDUCE] = (
        math.ceil(n / driver_threads) * (m.reduce_s_per_video + m.load_s_per_video))
    return sum(phases.values()), phases, charged


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measured", required=True, help="JSON file of Measured fields")
    parser.add_argument("--library", default="mixed", help="mixed:N or films:N:SECONDS")
    parser.add_argument("--videos", type=int, help="number of videos (default 100)")
    parser.add_argument("--executors", default="1,10,100,1000")
    parser.add_argument("--cores", type=int, default=1, help="cores per executor")
    parser.add_argument("--order", choices=ORDERS, default="given")
    parser.add_argument("--driver-threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        measured = Measured.from_json(args.measured)
        library = parse_library(args.library, args.videos, args.seed)
        counts = [int(e) for e in args.executors.split(",")]
        results = [simulate(library, measured, e, args.cores, order=args.order,
                            driver_threads=args.driver_threads, seed=args.seed) for e in counts]
    except (OSError, ValueError) as exc:
        print(f"scaling_model: {exc}", file=sys.stderr)
        return 2
    print(f"library {args.library}: {len(library)} videos, {sum(library):.0f} media s; "
          f"{args.cores} core(s) per executor, order {args.order}")
    print(f"{'executors':>9} {'wall s':>9} {'speed-up':>8} {'effic.':>6} "
          + " ".join(f"{p:>11}" for p in PHASES) + "  limiter")
    for r in results:
        print(f"{r.executors:>9} {r.wall_s:>9.1f} {r.speedup:>8.1f} {r.efficiency:>6.2f} "
              + " ".join(f"{r.phases[p]:>11.1f}" for p in PHASES) + f"  {r.limiter}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
