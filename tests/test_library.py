"""The library job (jobs/library*.py): the pure planning, and real runs on local[2] with real
ffmpeg: many inputs, list files, bad inputs failing alone, resume after a crash, fail-fast.
(The same job on HDFS and YARN: tests/hadoop/test_hadoop_library.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.chunking import chunk_ends, plan_chunks, segments_in
from core.grid import plan_grid
from jobs.encode import keyframe_options
from jobs.job_table import read_rows
from jobs.library import ordered, task_attempts, task_key
from jobs.library_inputs import (
    FoundFile,
    InputError,
    assign_stream_ids,
    find_inputs,
    parse_text_list,
)
from media_tools import SourceSpec, sh

LADDER = "180:300k,120:150k"
CLIPS = [
    SourceSpec("lib-a", width=320, height=180, rate="25", seconds=6, gop_seconds=2),
    SourceSpec("lib-b", width=256, height=144, rate="30", seconds=5, gop_seconds=1,
               audio=False),
    SourceSpec("lib-c", width=320, height=180, rate="30", seconds=9, gop_seconds=3),
]


# pure -----------------------------------------------------------------------------------------

def test_segments_in_merges_a_short_remainder() -> None:
    assert segments_in(300, 60) == 5
    assert segments_in(250, 60) == 4  # 60+60+60+70
    assert segments_in(270, 60) == 5  # 60*4 + 30: half a segment stands alone
    assert segments_in(20, 60) == 1


def test_chunk_ends_prefer_a_keyframe_near_the_mark() -> None:
    grid = plan_grid(Fraction(30), 2, 10)  # 60-frame segments, 300-frame chunks
    assert chunk_ends(900, tuple(range(0, 900, 250)), grid) == [250, 500, 750, 900]
    assert chunk_ends(900, tuple(range(0, 900, 60)), grid) == [300, 600, 900]
    # One keyframe only: on the marks (decode from it and trim).
    assert chunk_ends(700, (0,), grid) == [300, 600, 700]
    # A keyframe beyond a quarter chunk of the mark is not taken.
    assert chunk_ends(1000, (0, 200, 700), grid) == [300, 600, 900, 1000]
    assert chunk_ends(1000, (0, 650), grid) == [300, 650, 950, 1000]


def test_plan_numbers_segments_across_uneven_chunks() -> None:
    grid = plan_grid(Fraction(30), 2, 10)
    times = tuple(i / 30 for i in range(900))
    plans = plan_chunks(times, tuple(range(0, 900, 250)), 1 / 30, grid)
    assert [(p.start_frame, p.frames, p.first_segment, p.segments) for p in plans] == [
        (0, 250, 0, 4), (250, 250, 4, 4), (500, 250, 8, 4), (750, 150, 12, 3)]


def test_keyframes_are_forced_only_for_a_merged_tail() -> None:
    grid = plan_grid(Fraction(30), 2, 10)
    assert "force_key_frames" not in keyframe_options(grid, 300, 5)
    merged = keyframe_options(grid, 250, 4)
    assert merged["force_key_frames"] == "expr:lt(n,240)*not(mod(n,60))"
    assert merged["g"] == 70  # the last segment's length: x264 adds no keyframe inside it


def test_stream_ids_from_names_and_lists_and_clashes() -> None:
    found = [FoundFile("file:///a/talk one.mp4", 1, 0.0), FoundFile("hdfs://nn/x/b.mkv", 2, 0.0),
             FoundFile("file:///c/c.mp4", 3, 0.0, "given")]
    assert [v.stream_id for v in assign_stream_ids(found)] == ["talk-one", "b", "given"]
    with pytest.raises(InputError, match="both map to stream id 'b'"):
        assign_stream_ids([FoundFile("file:///1/b.mp4", 1, 0.0),
                           FoundFile("hdfs://nn/2/b.mov", 1, 0.0)])
    with pytest.raises(InputError, match="invalid"):
        assign_stream_ids([FoundFile("file:///1/x.mp4", 1, 0.0, "bad id!")])
    assert parse_text_list("# list\n/a.mp4\n\n/b.mp4  bee\n", "l.txt") == [
        ("/a.mp4", None), ("/b.mp4", "bee")]
    with pytest.raises(InputError, match="l.txt:1"):
        parse_text_list("/a.mp4 b c\n", "l.txt")


def test_task_attempts_and_order(spark) -> None:
    assert task_attempts(spark.sparkContext) == 1  # local[2]: no retries
    from jobs.transcode_map import AudioTask
    audio = AudioTask(None, "s", "raw/audio.mka", 0, 10, 2, None)  # type: ignore[arg-type]
    assert task_key(audio) == "audio" and ordered(["v1", audio, "v2"])[0] is audio  # type: ignore[list-item]


# real runs ----------------------------------------------------------------------------------

def sparkcast(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sparkcast", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def frames_of(path: Path) -> int:
    out = sh("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
             "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)).stdout
    return int(out.strip())


def joined_frames(stream_dir: Path, rendition: str, tmp: Path) -> int:
    out = tmp / f"{stream_dir.name}-{rendition}.mp4"
    parts = sorted((stream_dir / "out" / rendition).glob("*.m4s"))
    out.write_bytes((stream_dir / "out" / rendition / "init.mp4").read_bytes() +
                    b"".join(p.read_bytes() for p in parts))
    return frames_of(out)


@pytest.fixture(scope="module")
def cli_env_module(tmp_path_factory) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SPARK_LOCAL_IP="127.0.0.1",
               SPARKCAST_CONFIG=str(tmp_path_factory.mktemp("cfg") / "no-config.toml"))
    env.pop("SPARKCAST_ROOT", None)
    return env


@pytest.fixture(scope="module")
def library(make_media, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("library")
    for spec in CLIPS:
        sub = d / ("nested" if spec.name == "lib-c" else "")
        sub.mkdir(exist_ok=True)
        shutil.copy(make_media(spec), sub / f"{spec.name}.mp4")
    (d / "lib-empty.mp4").write_bytes(b"")
    (d / "lib-broken.mp4").write_bytes(make_media(CLIPS[0]).read_bytes()[:20_000])
    (d / "notes.txt.bak").write_text("not a video")
    return d


@pytest.fixture(scope="module")
def first_run(library: Path, cli_env_module, tmp_path_factory):
    root = tmp_path_factory.mktemp("library-root")
    env = dict(cli_env_module, SPARKCAST_ROOT=root.as_uri())
    res = sparkcast(env, "submit", str(library), "--ladder", LADDER, "--chunk-seconds", "4",
                    "--master", "local[2]", "--job-id", "first")
    return root, env, res


def test_a_directory_job_completes_the_good_videos_and_fails_the_bad(first_run, library,
                                                                       tmp_path) -> None:
    root, _, res = first_run
    assert res.returncode == 1, res.stderr[-2000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("sparkcast: error:")]
    assert len(errors) == 2 and "2 failed of 5 videos" in res.stdout
    assert any("lib-empty.mp4" in e and "empty" in e for e in errors), errors
    assert any("lib-broken.mp4" in e for e in errors), errors
    rows = {r.stream_id: r for r in read_rows(
        (root / "jobs" / "job_id=first" / "videos.parquet").read_bytes())}
    assert {k: r.status for k, r in rows.items()} == {
        "lib-a": "complete", "lib-b": "complete", "lib-c": "complete",
        "lib-empty": "failed", "lib-broken": "failed"}
    for spec in CLIPS:
        src = library / ("nested" if spec.name == "lib-c" else "") / f"{spec.name}.mp4"
        rungs = sorted(d.name for d in (root / "streams" / spec.name / "out").iterdir()
                       if d.name != "audio")
        assert rungs == (["120p"] if spec.height < 180 else ["120p", "180p"])  # no upscale
        for rendition in rungs:
            assert joined_frames(root / "streams" / spec.name, rendition, tmp_path) == \
                frames_of(src), (spec.name, rendition)
        assert rows[spec.name].frames == frames_of(src)
        assert rows[spec.name].task_seconds > 0
    assert not (root / "streams" / "lib-broken" / "manifest.mpd").exists()


def test_resubmit_skips_complete_videos_and_a_crash_redoes_only_missing_tasks(
        first_run, library) -> None:
    root, env, _ = first_run
    stream = root / "streams" / "lib-c"
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in stream.rglob("*.m4s")}
    # A crash after chunk 1's task: its done record and the manifests never got written.
    (stream / "done" / "00000001.json").unlink()
    (stream / "complete.json").unlink()
    (stream / "manifest.mpd").unlink()
    res = sparkcast(env, "submit", str(library / "lib-a.mp4"), str(library / "lib-b.mp4"),
                    str(library / "nested"), "--ladder", LADDER, "--chunk-seconds", "4",
                    "--master", "local[2]", "--job-id", "again")
    assert res.returncode == 0, res.stderr[-2000:]
    rows = {r.stream_id: r.status for r in read_rows(
        (root / "jobs" / "job_id=again" / "videos.parquet").read_bytes())}
    assert rows == {"lib-a": "skipped", "lib-b": "skipped", "lib-c": "complete"}
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in stream.rglob("*.m4s")}
    assert {p: b for p, (b, _) in after.items()} == {p: b for p, (b, _) in before.items()}
    rewritten = sorted(p.name for p in after if after[p][1] != before[p][1])
    # Only chunk 1's segments (numbers 2 and 3 of each rung) were written again.
    assert rewritten == ["00000002.m4s"] * 2 + ["00000003.m4s"] * 2, rewritten
    # A changed input is transcoded again, not skipped.
    os.utime(library / "lib-a.mp4", (1, 1))
    res = sparkcast(env, "submit", str(library / "lib-a.mp4"), "--ladder", LADDER,
                    "--chunk-seconds", "4", "--master", "local[2]", "--job-id", "changed")
    assert res.returncode == 0, res.stderr[-2000:]
    assert [r.status for r in read_rows(
        (root / "jobs" / "job_id=changed" / "videos.parquet").read_bytes())] == ["complete"]
    jobs = sparkcast(env, "jobs")
    assert jobs.returncode == 0 and "first" in jobs.stdout and "again" in jobs.stdout
    show = sparkcast(env, "jobs", "show", "first")
    assert "lib-broken" in show.stdout and "failed" in show.stdout


def test_a_long_video_is_cut_by_several_range_tasks(library: Path, cli_env_module,
                                                    tmp_path: Path) -> None:
    """9 one-second chunks: the ingest task cuts 6, a range task the other 3, and every
    frame is in every rendition."""
    env = dict(cli_env_module, SPARKCAST_ROOT=tmp_path.as_uri())
    src = library / "nested" / "lib-c.mp4"
    res = sparkcast(env, "submit", str(src), "--ladder", LADDER, "--chunk-seconds", "1",
                    "--segment-seconds", "1", "--master", "local[2]")
    assert res.returncode == 0, res.stderr[-2000:]
    stream = tmp_path / "streams" / "lib-c"
    assert len(list((stream / "index").glob("*.json"))) == 9
    for rendition in ("180p", "120p"):
        assert joined_frames(stream, rendition, tmp_path) == frames_of(src)


def test_list_files_give_paths_and_stream_ids(library: Path, spark, tmp_path: Path) -> None:
    (tmp_path / "list.txt").write_text(f"{library}/lib-a.mp4 alpha\n# comment\n"
                                       f"nested/lib-c.mp4\n")
    shutil.copytree(library / "nested", tmp_path / "nested")
    (tmp_path / "list.csv").write_text(f"path,stream_id\n{library}/lib-b.mp4,bravo\n")
    pq.write_table(pa.table({"path": [f"{library}/lib-a.mp4"]}), tmp_path / "list.parquet")
    found = find_inputs(spark, [str(tmp_path / "list.txt"), str(tmp_path / "list.csv"),
                                str(tmp_path / "list.parquet")])
    assert [(Path(f.url[7:]).name, f.stream_id) for f in found] == [
        ("lib-a.mp4", "alpha"), ("lib-c.mp4", None), ("lib-b.mp4", "bravo"),
        ("lib-a.mp4", None)]
    with pytest.raises(InputError, match="no such file"):
        find_inputs(spark, [str(tmp_path / "missing.mp4")])
    with pytest.raises(InputError, match="no video files"):
        find_inputs(spark, [str(tmp_path / "nested" / "*.mkv")])


def test_bad_job_inputs_are_one_line_and_write_nothing(library: Path, cli_env_module,
                                                       tmp_path: Path) -> None:
    env = dict(cli_env_module, SPARKCAST_ROOT=tmp_path.as_uri())
    clash = tmp_path / "clash"
    (clash / "x").mkdir(parents=True)
    (clash / "y").mkdir()
    shutil.copy(library / "lib-a.mp4", clash / "x" / "same.mp4")
    shutil.copy(library / "lib-a.mp4", clash / "y" / "same.mov")
    (tmp_path / "nothing").mkdir()
    for args, words in ((["submit", str(clash)], "both map to stream id 'same'"),
                        (["submit", str(tmp_path / "nothing")], "no video files"),
                        (["submit", str(tmp_path / "gone.mp4")], "no such file")):
        res = sparkcast(env, *args, "--master", "local[1]")
        errors = [ln for ln in res.stderr.splitlines() if ln.startswith("sparkcast: error:")]
        assert res.returncode == 1 and len(errors) == 1 and words in errors[0], res.stderr
    assert not (tmp_path / "streams").exists() and not (tmp_path / "jobs").exists()


def test_fail_fast_stops_at_the_first_failed_video(library: Path, cli_env_module,
                                                   tmp_path: Path) -> None:
    env = dict(cli_env_module, SPARKCAST_ROOT=tmp_path.as_uri())
    # The largest input goes first (longest first), and fails at once.
    broken = tmp_path / "lib-noise.mp4"
    broken.write_bytes(os.urandom(4_000_000))
    res = sparkcast(env, "submit", str(broken), str(library / "lib-a.mp4"),
                    str(library / "nested"), "--fail-fast", "--master", "local[1]",
                    "--ladder", LADDER, "--job-id", "ff")
    assert res.returncode == 1
    rows = {r.stream_id: r for r in read_rows(
        (tmp_path / "jobs" / "job_id=ff" / "videos.parquet").read_bytes())}
    assert rows["lib-noise"].status == "failed"
    others = {k: r.status for k, r in rows.items() if k != "lib-noise"}
    assert set(others.values()) <= {"cancelled", "complete"} and "cancelled" in \
        others.values(), others
    assert json.dumps([r.error for r in rows.values()]).count("--fail-fast") >= 1
