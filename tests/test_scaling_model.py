"""bench/scaling_model.py: hand-computed tiny cases and scaling properties (no Spark)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.scaling_model import (  # noqa: E402
    CORES,
    FEW,
    HDFS,
    LAUNCH,
    LONGEST,
    REDUCE,
    START,
    Measured,
    concurrency,
    film_library,
    load_measured,
    main,
    mixed_library,
    parse_library,
    simulate,
    video_jobs,
)

EXAMPLE = REPO / "bench" / "measured_example.json"

# Round numbers so that every case below can be worked out by hand.
M = Measured(
    app_start_s=5.0, job_overhead_s=1.0, probe_task_s=2.0, cut_s_per_media_s=0.1,
    map_s_per_media_s=1.0, audio_s_per_media_s=0.05, reduce_s_per_video=0.3,
    load_s_per_video=0.2, hdfs_read_mb_s=100.0, hdfs_aggregate_mb_s=1000.0,
    bytes_per_media_s=1e6, task_launch_s=0.01, chunk_seconds=10.0, range_chunks=2,
)
# No fixed costs, no reads, instant launches: only the tasks' compute and the scheduling.
BARE = replace(M, app_start_s=0.0, job_overhead_s=0.0, cut_s_per_media_s=0.0,
               bytes_per_media_s=0.0, task_launch_s=0.0, reduce_s_per_video=0.0,
               load_s_per_video=0.0)


def test_jobs_of_one_video():
    # 25 s: chunks 10, 10, 5; ingest cuts the first 2 (20 s) and reads the whole 25 MB;
    # one range task cuts the last 5 s and reads the whole input again
    ingest, ranges, maps = video_jobs(25.0, M)
    assert ingest[0] == pytest.approx((2.0 + 0.1 * 20, 25.0))
    assert [x for task in ranges for x in task] == pytest.approx([0.1 * 5, 25.0])
    assert [x for task in maps for x in task] == pytest.approx([1.25, 0, 10, 10, 10, 10, 5, 5])
    assert [len(job) for job in video_jobs(20.0, M)] == [1, 3]  # no range job
    with_copy = replace(M, audio_copy_s_per_media_s=0.02)
    assert video_jobs(25.0, with_copy)[0][0][0] == pytest.approx(4.0 + 0.5)


def test_concurrency_follows_the_job():
    assert [concurrency(c) for c in (1, 2, 10, 32, 33, 1000)] == [2, 4, 20, 64, 66, 2000]
    assert concurrency(5000) == 2048 and concurrency(1000, cap=64) == 64


def test_single_video_on_one_core():
    r = simulate([25.0], M, executors=1, cores=1)
    # start 5; ingest job: overhead 1, launch .01, read 25 MB at 100 MB/s .25, compute 4
    #   -> 10.26; range job: 1 + .01 + .25 + .5 -> 12.02;
    # map job: 1, audio .01 + 1.25, chunks .01 + .1 + 10, .01 + .1 + 10, .01 + .05 + 5
    #   -> 39.56; reduce + load .5 -> 40.06
    assert r.wall_s == pytest.approx(40.06)
    assert r.video_end == pytest.approx((40.06,))
    assert r.phases == pytest.approx(
        {"start": 5.0, "ingest": 7.02, "map": 27.54, "reduce_load": 0.5})
    busy = 0.25 + 4 + 0.25 + 0.5 + 1.25 + 10.1 + 10.1 + 5.05
    assert r.utilisation == pytest.approx(busy / 40.06)
    # idle during 3 job overheads and the reduce: nothing else in the queue -> the video
    assert r.charged == pytest.approx({CORES: busy, LAUNCH: 6 * 0.01, HDFS: 0.0,
                                       LONGEST: 3.5, REDUCE: 0.0, FEW: 0.0, START: 5.0})
    assert (r.speedup, r.efficiency, r.limiter) == (1.0, 1.0, CORES)


def test_two_videos_share_two_cores_fairly():
    m = replace(BARE, probe_task_s=1.0, reduce_s_per_video=0.3, load_s_per_video=0.2)
    r = simulate([20.0, 40.0], m, executors=2)
    # longest first: the 40 s video (A) is submitted first. Both ingests 0-1; map jobs at 1:
    # tie -> A's audio (2 s) 1-3, B's audio (1 s) 1-2. At 2 B has 0 running, A 1 -> B's
    # chunk 2-12; at 3 A has 0, B 1 -> A's chunk 3-13; 12: B 12-22; 13: A 13-23; 22: A's
    # third chunk 22-32 (B done, load -22.5); 23: A's last 23-33, load -33.5.
    assert r.video_end == pytest.approx((22.5, 33.5))  # library order: B, A
    assert r.wall_s == pytest.approx(33.5)
    assert r.phases["map"] == pytest.approx((33 - 1) + (22 - 1))
    assert r.utilisation == pytest.approx(65 / (2 * 33.5))  # one core idle 32-33.5
    # (first come, first served would have run all of A's tasks first: B ending at 33.5)
    alone = simulate([20.0], m, executors=2)
    assert alone.wall_s == pytest.approx(12.5)  # ingest 0-1; audio 1-2, chunks 1-11, 2-12


def test_one_core_longest_first_ties_to_the_job_submitted_first():
    m = replace(BARE, probe_task_s=1.0, audio_s_per_media_s=0.0, range_chunks=6)
    r = simulate([10.0, 30.0, 20.0], m, executors=1)
    # 2 threads: A (30 s) and B (20 s) first. A's ingest 0-1 (submitted before B's); B's
    # ingest 1-2 (before A's map job, submitted later); from 2 every tie goes to A's map
    # job: A's chunks 2-32; then B's map job (before C's ingest, submitted at 32): 32-52;
    # C's ingest 52-53, its chunk 53-63
    assert r.video_end == pytest.approx((63.0, 32.0, 52.0))
    assert r.utilisation == pytest.approx(1.0)


def test_driver_launch_rate_limits():
    m = replace(BARE, probe_task_s=0.0, audio_s_per_media_s=0.0, chunk_seconds=1.0,
                range_chunks=6)
    r = simulate([5.0] * 20, replace(m, task_launch_s=1.0), executors=100)
    # 20 ingest + 20 x (audio + 5 chunks) = 140 launches back to back, then the last
    # chunk's 1 s: the 100 cores are almost all idle, waiting for the driver
    assert r.wall_s == pytest.approx(141.0)
    assert r.limiter == LAUNCH and r.charged[LAUNCH] > 0.9 * r.wall_s
    fast = simulate([5.0] * 20, replace(m, task_launch_s=0.001), executors=100)
    assert fast.limiter != LAUNCH and fast.wall_s < 2.5


def test_concurrency_limit_idles_cores_during_long_ingests():
    m = replace(BARE, probe_task_s=10.0, audio_s_per_media_s=0.0)
    library = [1.0] * 192
    # 64 videos in flight at most: 3 rounds of (10 s ingest, then a 1 s chunk) = 33 s,
    # whether 100 or 200 cores: the cores beyond 64 never get a task
    at100, at200 = (simulate(library, m, 100, max_videos=64),
                    simulate(library, m, 200, max_videos=64))
    assert at100.wall_s == pytest.approx(33.0) and at200.wall_s == pytest.approx(33.0)
    assert at100.utilisation == pytest.approx(0.64) and at200.utilisation == pytest.approx(0.32)
    # idle cores: 136 of 200 for 11 s per round; rounds 1-2 have videos queued, 3 not
    assert at200.charged[FEW] == pytest.approx(2 * 11 * 136 / 200)
    assert at200.charged[LONGEST] == pytest.approx(11 * 136 / 200)
    assert at200.limiter == FEW and at100.limiter == CORES
    assert simulate(library, m, 32, max_videos=64).wall_s == pytest.approx(192 / 32 * 11)
    # jobs/library.py's cap (2048): 400 videos in flight on 200 cores, none idle
    assert simulate(library, m, 200).limiter != FEW


def test_two_hour_film_with_range_tasks():
    ingest, ranges, maps = video_jobs(7200.0, replace(M, range_chunks=6))
    assert (len(ingest), len(ranges), len(maps)) == (1, 119, 1 + 720)
    assert {mb for _, mb in ranges} == {7200.0}  # every range task reads the whole film
    # 1 core: start 5; ingest 1 + .01 + 72 (read) + 2 + 6; ranges 1 + 119 x (.01 + 72 + 6);
    # map 1 + (.01 + 360) + 720 x (.01 + .1 + 10); reduce .5
    one = simulate([7200.0], replace(M, range_chunks=6), 1)
    assert one.wall_s == pytest.approx(5 + 81.01 + 1 + 119 * 78.01 + 1 + 360.01 + 720 * 10.11
                                       + 0.5)
    # 1000 cores, no fixed costs: ingest 72 + 8 = 80; the 119 range tasks read 7200 MB
    # each at once, sharing 1000 MB/s: 856.8 s, + 6 s cut -> 942.8; the 720 chunks read
    # 10 MB each at once (7.2 s), compute 10 s -> 960; load .5
    m = replace(M, app_start_s=0.0, job_overhead_s=0.0, task_launch_s=0.0, range_chunks=6,
                audio_s_per_media_s=0.001)
    big = simulate([7200.0], m, 1000)
    assert big.wall_s == pytest.approx(960.5)
    assert big.phases["ingest"] == pytest.approx(942.8)
    assert big.charged[HDFS] == pytest.approx((119 * 856.8 + 720 * 7.2) / 1000)
    assert big.limiter == LONGEST  # one video: the rest of the cluster has nothing to do
    # one ingest task cutting all 720 chunks (one read) beats 119 re-reads here:
    # 72 + 2 + 720 + 17.2 + .5
    whole = simulate([7200.0], replace(m, range_chunks=720), 1000)
    assert whole.wall_s == pytest.approx(811.7)


def test_driver_reduce_load_limits():
    m = replace(BARE, probe_task_s=0.0, audio_s_per_media_s=0.0, map_s_per_media_s=0.01,
                reduce_s_per_video=1.0, load_s_per_video=1.0)
    r = simulate([10.0] * 10, m, 1)
    # 2 threads; each video: its 0.1 s chunk on the one core, then 2 s on the driver;
    # thread 1 waits 0.1 s for the core once, then both alternate: 5 x 2.1 + 0.1
    assert r.wall_s == pytest.approx(10.6)
    assert r.limiter == REDUCE


def test_efficiency_falls_with_executors():
    library = mixed_library(300, seed=7)
    m = Measured.from_json(EXAMPLE)
    runs = [simulate(library, m, e) for e in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)]
    for before, after in zip(runs, runs[1:], strict=False):
        assert after.efficiency <= before.efficiency * 1.02
        assert after.wall_s <= before.wall_s * 1.02
    assert runs[0].efficiency == 1.0 and runs[-1].efficiency < 0.5  # 300 videos, 512 cores
    assert runs[1].limiter == CORES and runs[-1].limiter != CORES


def test_stragglers():
    every = simulate([10.0], replace(M, straggler_p=1.0, straggler_factor=3.0), 1)
    # start 5; ingest 1 + .01 + .1 + 3 x 3; map 1 + .01 + 3 x .5 + .01 + .1 + 3 x 10; .5
    assert every.wall_s == pytest.approx(5 + 10.11 + 1 + 1.51 + 30.11 + 0.5)
    library = mixed_library(100, seed=2)
    some = replace(M, straggler_p=0.3, straggler_factor=3.0)
    a, b = simulate(library, some, 10, seed=5), simulate(library, some, 10, seed=5)
    assert a == b
    lo, hi = simulate(library, M, 10), simulate(library, replace(some, straggler_p=1.0), 10)
    assert lo.wall_s < a.wall_s < hi.wall_s


def test_libraries():
    lib = mixed_library(1000, seed=4)
    assert len(lib) == 1000 and min(lib) >= 10 and max(lib) <= 40
    assert lib == mixed_library(1000, seed=4) != mixed_library(1000, seed=5)
    assert film_library(3, 600) == [600.0] * 3
    assert parse_library("films:20:7200", None) == [7200.0] * 20
    assert parse_library("mixed:12", None) == mixed_library(12)
    assert len(parse_library("mixed", 30)) == 30
    for bad in ("mixed:12", "sitcoms:3"):
        with pytest.raises(ValueError):
            parse_library(bad, 5)


def test_measured_from_json(tmp_path: Path):
    m = Measured.from_json(EXAMPLE)
    assert "example" in json.loads(EXAMPLE.read_text())["note"].lower()
    assert m.range_chunks == 6
    data = json.loads(EXAMPLE.read_text())
    (tmp_path / "typo.json").write_text(json.dumps({**data, "task_lanuch_s": 1}))
    with pytest.raises(ValueError, match="task_lanuch_s"):
        Measured.from_json(tmp_path / "typo.json")
    del data["map_s_per_media_s"]
    (tmp_path / "short.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="map_s_per_media_s"):
        Measured.from_json(tmp_path / "short.json")
    with pytest.raises(ValueError):
        replace(M, straggler_p=1.5)


# What bench/library_yarn_scaling.py --out writes, plus a key it may add one day.
MEASUREMENT = {
    "note": "measured by bench/library_yarn_scaling.py on the mini YARN (2 cores)",
    "app_start_s": 20.0, "media_seconds": 160, "ingest_task_s_median": 4.0,
    "ingest_s_per_media_s": 0.25, "map_s_per_media_s": 2.0, "map_tasks": 28,
    "wall_1x1": 500.0, "wall_2x1": 260.0, "executor_memory": "512m",
}


def test_from_measurement():
    m = Measured.from_measurement(MEASUREMENT, M)
    # reads at 1 MB per media s / 100 MB/s = .01 s per media s
    assert m.app_start_s == pytest.approx(20.0 - 1.0)  # less the first job's overhead
    assert m.map_s_per_media_s == pytest.approx(2.0 - 0.05 - 0.01)  # less audio, chunk read
    # a median clip is 4 / .25 = 16 s; of its 4 s, 2 s are probe: (.25 x (1 - 2/4)) - .01
    assert m.probe_task_s == 2.0 and m.cut_s_per_media_s == pytest.approx(0.115)
    assert video_jobs(16.0, replace(m, range_chunks=6))[0][0][0] + 16 * 0.01 == pytest.approx(4)
    assert replace(m, app_start_s=5.0, map_s_per_media_s=1.0, cut_s_per_media_s=0.1) == M
    # a dict of defaults works as well, and a measured field overrides one
    assert Measured.from_measurement({**MEASUREMENT, "task_launch_s": 0.5},
                                     {**vars(M)}).task_launch_s == 0.5
    cheap_probe = Measured.from_measurement(MEASUREMENT, replace(M, probe_task_s=9.0))
    assert cheap_probe.probe_task_s == 4.0 and cheap_probe.cut_s_per_media_s == 0.0
    with pytest.raises(ValueError, match="probe_task_s"):
        Measured.from_measurement(MEASUREMENT, {"app_start_s": 1.0, "job_overhead_s": 1.0,
                                                "bytes_per_media_s": 1.0, "hdfs_read_mb_s": 1.0,
                                                "audio_s_per_media_s": 0.0})
    with pytest.raises(ValueError):
        Measured.from_measurement({**MEASUREMENT, "map_s_per_media_s": "fast"}, M)


def test_load_measured(tmp_path: Path):
    path = tmp_path / "measured.json"
    path.write_text(json.dumps(MEASUREMENT))
    m, source = load_measured(path, EXAMPLE)
    assert "measurement" in source and m.task_launch_s == Measured.from_json(EXAMPLE).task_launch_s
    assert load_measured(EXAMPLE) == (Measured.from_json(EXAMPLE), str(EXAMPLE))


def test_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    assert main(["--measured", str(EXAMPLE), "--library", "mixed:12",
                 "--executors", "1,10", "--cores", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:10] == ["executors", "wall", "s", "speed-up", "effic.", "util.",
                                     "start", "ingest", "map", "reduce_load"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "10"]
    assert 0 < float(lines[3].split()[4]) <= 1  # utilisation
    assert main(["--measured", str(EXAMPLE), "--library", "mixed:12", "--videos", "3"]) == 2
    (tmp_path / "measured.json").write_text(json.dumps(MEASUREMENT))
    assert main(["--measured", str(tmp_path / "measured.json"), "--library", "films:2:600",
                 "--executors", "4"]) == 0
    assert "measurement" in capsys.readouterr().out
