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
    HDFS,
    LAUNCH,
    LONGEST,
    Measured,
    film_library,
    main,
    mixed_library,
    parse_library,
    simulate,
    stage_tasks,
)

EXAMPLE = REPO / "bench" / "measured_example.json"

# Round numbers so that every case below can be worked out by hand.
M = Measured(
    app_start_s=5.0, plan_s_per_video=0.5, stage_overhead_s=1.0, probe_task_s=2.0,
    cut_s_per_media_s=0.1, map_s_per_media_s=1.0, audio_s_per_media_s=0.05,
    reduce_s_per_video=0.3, load_s_per_video=0.2, hdfs_read_mb_s=100.0,
    hdfs_aggregate_mb_s=1000.0, bytes_per_media_s=1e6, task_launch_s=0.01,
    chunk_seconds=10.0, range_chunks=2,
)
ZERO = replace(M, app_start_s=0.0, plan_s_per_video=0.0, stage_overhead_s=0.0, probe_task_s=0.0,
               cut_s_per_media_s=0.0, reduce_s_per_video=0.0, load_s_per_video=0.0)


def test_tasks_of_each_stage():
    tasks = stage_tasks([25.0, 10.0], M)
    assert tasks["probe"] == [(2.0, 0.0), (2.0, 0.0)]
    # ranges of 2 chunks: 25 s -> 20 s + 5 s; 10 s -> 10 s (compute 0.1 s/s, 1 MB/s)
    flat = {name: [x for task in stage for x in task] for name, stage in tasks.items()}
    assert flat["cut"] == pytest.approx([2.0, 20.0, 0.5, 5.0, 1.0, 10.0])
    # audio first (0.05 s/s, no reads), then chunks 10, 10, 5 and 10
    assert flat["map"] == pytest.approx([1.25, 0, 0.5, 0, 10, 10, 10, 10, 5, 5, 10, 10])


def test_one_slot_is_the_sum_of_task_times_plus_fixed_costs():
    r = simulate([25.0, 10.0], M, executors=1, cores=1)
    # every task pays its 0.01 s launch; reads at 100 MB/s; 1 s per stage barrier
    probe = 2 * (0.01 + 2.0) + 1.0 + 2 * 0.5  # + planning
    cut = 3 * 0.01 + (2.0 + 0.2) + (0.5 + 0.05) + (1.0 + 0.1) + 1.0
    map_ = 6 * 0.01 + 1.25 + 0.5 + 3 * (10 + 0.1) + (5 + 0.05) + 1.0
    assert r.phases == pytest.approx(
        {"start": 5.0, "probe": probe, "cut": cut, "map": map_, "reduce_load": 2 * 0.5})
    assert (probe, cut, map_) == pytest.approx((6.02, 4.88, 38.16))
    assert r.wall_s == pytest.approx(55.06)
    assert (r.speedup, r.efficiency, r.limiter) == (1.0, 1.0, CORES)


def test_two_executors_hand_schedule():
    r = simulate([25.0, 10.0], M, executors=2, cores=1)
    # map, given order: audio 1.25 and 0.5 on slots A, B (launched 0.01, 0.02);
    # B frees at 0.52 -> chunk 10.1 s runs 0.53-10.63; A frees at 1.26 -> 1.27-11.37;
    # B: 5.05 s chunk 10.64-15.69; A: the last 10.1 s chunk 11.38-21.48; + 1 s barrier
    assert r.phases["map"] == pytest.approx(22.48)
    assert r.speedup == pytest.approx(55.06 / r.wall_s)
    assert r.efficiency == pytest.approx(r.speedup / 2)


def test_doubling_executors_with_many_small_tasks_nearly_halves_the_map_phase():
    library = mixed_library(400, seed=3)
    m = replace(M, task_launch_s=0.001)
    maps = [simulate(library, m, e).phases["map"] for e in (10, 20, 40)]
    for before, after in zip(maps, maps[1:], strict=False):
        assert 0.5 <= after / before <= 0.53


def test_huge_task_launch_makes_driver_launch_the_limiter():
    library = mixed_library(50, seed=1)
    slow = simulate(library, replace(M, task_launch_s=1.0), executors=100)
    assert slow.limiter == LAUNCH
    map_tasks = len(stage_tasks(library, M)["map"])
    assert slow.phases["map"] >= map_tasks * 1.0  # the driver launches one per second
    assert simulate(library, M, executors=100).limiter != LAUNCH


def test_hdfs_aggregate_cap_shares_reads():
    m = replace(ZERO, hdfs_aggregate_mb_s=50.0, map_s_per_media_s=0.01, audio_s_per_media_s=0.0,
                range_chunks=1)
    r = simulate([40.0], m, executors=4)
    # cut: 4 tasks of 10 MB launched at 0.01..0.04; HDFS serves 50 MB/s whenever anyone reads
    # (one reader: min(100, 50)), so the reads end at 0.01 + 40/50
    assert r.phases["cut"] == pytest.approx(0.81)
    # map: audio (nothing) at 0.01, chunks launched 0.02..0.05; the last read ends at
    # 0.02 + 40/50, then computes 0.1 s
    assert r.phases["map"] == pytest.approx(0.92)
    assert r.limiter == HDFS
    assert simulate([40.0], replace(m, hdfs_aggregate_mb_s=1e6), executors=4).phases[
        "map"] == pytest.approx(0.05 + 0.1 + 0.1)  # last launch + own 100 MB/s read + compute


def test_a_two_hour_video_limits_growth_unless_split():
    library = mixed_library(50, seed=1) + [7200.0]
    m = replace(M, plan_s_per_video=0.05, map_s_per_media_s=2.0, audio_s_per_media_s=0.02,
                cut_s_per_media_s=0.05, task_launch_s=0.001)
    whole = simulate(library, replace(m, chunk_seconds=7200.0, range_chunks=1), executors=20)
    assert whole.limiter == LONGEST
    assert whole.phases["map"] >= 7200 * 2.0  # the film's one chunk
    split = simulate(library, replace(m, chunk_seconds=10.0, range_chunks=6), executors=20)
    assert split.limiter == CORES
    assert split.wall_s < whole.wall_s / 10
    # with far more slots than tasks, the longest task limits even the split job
    assert simulate(library, replace(m, chunk_seconds=10.0, range_chunks=6),
                    executors=5000).limiter == LONGEST


def test_longest_first_order():
    m = replace(ZERO, task_launch_s=0.0, bytes_per_media_s=0.0, audio_s_per_media_s=0.0,
                chunk_seconds=100.0)
    library = [10.0] * 9 + [100.0]
    # given: nine 10 s tasks on 2 slots, the 100 s one starts at 40 -> 140
    assert simulate(library, m, 2).phases["map"] == pytest.approx(140.0)
    # longest first: 100 s on one slot, 9 x 10 s on the other -> 100
    assert simulate(library, m, 2, order="longest_first").phases["map"] == pytest.approx(100.0)


def test_efficiency_falls_with_executors():
    library = mixed_library(300, seed=7)
    m = Measured.from_json(EXAMPLE)
    runs = [simulate(library, m, e) for e in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)]
    for before, after in zip(runs, runs[1:], strict=False):
        assert after.efficiency <= before.efficiency * 1.02
        assert after.wall_s <= before.wall_s * 1.02
    assert runs[0].efficiency == 1.0 and runs[-1].efficiency < 0.3


def test_stragglers():
    every = simulate([10.0], replace(M, straggler_p=1.0, straggler_factor=3.0), 1)
    # audio 0.5 s x 3, chunk 10 s x 3 + its 0.1 s read, two launches, barrier
    assert every.phases["map"] == pytest.approx(1.5 + 30.1 + 0.02 + 1.0)
    library = mixed_library(100, seed=2)
    some = replace(M, straggler_p=0.3, straggler_factor=3.0)
    a, b = simulate(library, some, 10, seed=5), simulate(library, some, 10, seed=5)
    assert a == b
    lo, hi = simulate(library, M, 10), simulate(library, replace(some, straggler_p=1.0), 10)
    assert lo.wall_s < a.wall_s < hi.wall_s


def test_driver_threads():
    library = [10.0] * 5
    assert simulate(library, M, 4).phases["reduce_load"] == pytest.approx(2.5)
    assert simulate(library, M, 4, driver_threads=2).phases["reduce_load"] == pytest.approx(1.5)


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
    assert m.range_chunks >= 1
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


def test_cli(capsys: pytest.CaptureFixture[str]):
    assert main(["--measured", str(EXAMPLE), "--library", "mixed:12",
                 "--executors", "1,10", "--cores", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == ["executors", "wall", "s", "speed-up"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "10"]
    assert main(["--measured", str(EXAMPLE), "--library", "mixed:12", "--videos", "3"]) == 2
