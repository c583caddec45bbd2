"""The library job on the real MiniDFS + MiniYARN: a directory of videos on HDFS, one
application in YARN cluster mode, bad inputs failing alone, resume, locality.

The inputs are written to HDFS by the test: clips at 25, 29.97 and 60 fps in three sizes,
one without audio, one with 250-frame GOPs, a corrupt file and an empty one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hadooptools import (
    LADDER,
    REPO,
    Hadoop,
    hdfs_files,
    sha1s,
    spark_events,
    stage_tasks,
    yarn_opts,
)
from hdfs.util import HdfsError

from manifest.mpd import parse_mpd
from media_tools import SourceSpec, sh

pytestmark = pytest.mark.heavy

GOOD = [
    SourceSpec("lib-r25", width=320, height=180, rate="25", seconds=8, gop_seconds=2),
    SourceSpec("lib-r2997", width=384, height=216, rate="30000/1001", seconds=7,
               gop_seconds=2),
    SourceSpec("lib-r60-noaudio", width=426, height=240, rate="60", seconds=5, gop_seconds=1,
               audio=False),
    SourceSpec("lib-gop250", width=640, height=360, rate="30", seconds=12,
               gop_seconds=250 / 30),
]
BAD = ("lib-corrupt", "lib-empty")
CHUNK_SECONDS = "4"
MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"
# WebHDFS closed to the executors (every HTTP request of theirs goes to a dead proxy), as on
# clusters where it is off or firewalled: their HDFS reads and writes must go through
# Spark's own Hadoop client.
NO_WEBHDFS_ON_EXECUTORS = [
    arg for name in ("http_proxy", "HTTP_PROXY")
    for arg in ("--conf", f"spark.executorEnv.{name}=http://127.0.0.1:9")]


@dataclass(frozen=True)
class Submit:
    proc: subprocess.CompletedProcess[str]
    events: Path
    root: str


def frames_of(path: Path) -> int:
    out = sh("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
             "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)).stdout
    return int(out.strip().splitlines()[0])


def rendition_frames(files: dict[str, bytes], rendition: str, tmp_path: Path) -> int:
    """Frames of a rendition's init + media segments joined in order (a stream's files)."""
    names = sorted(n for n in files if n.startswith(f"out/{rendition}/") and n.endswith(".m4s"))
    joined = tmp_path / f"{rendition}.mp4"
    joined.write_bytes(files[f"out/{rendition}/init.mp4"] + b"".join(files[n] for n in names))
    return frames_of(joined)


def submit(hadoop: Hadoop, root: str, inputs: str, work: Path, *opts: str,
           cluster: bool = True, timeout: float = 900) -> Submit:
    events = work / f"events-{time.monotonic_ns()}"
    spark_opts = yarn_opts(events) + NO_WEBHDFS_ON_EXECUTORS
    if cluster:
        spark_opts[spark_opts.index("client")] = "cluster"
        spark_opts += ["--driver-memory", "512m"]
    args = [inputs, "--root", root, "--ladder", LADDER, "--chunk-seconds", CHUNK_SECONDS,
            *opts]
    proc = subprocess.run([str(REPO / "spark-submit.sh"), *spark_opts, "transcode", *args],
                          env=hadoop.env(), capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)
    (work / "submit.log").write_text(f"{proc.stdout}\n--- stderr\n{proc.stderr}")
    return Submit(proc, events, root)


@pytest.fixture(scope="module")
def library(hadoop: Hadoop, make_media, tmp_path_factory) -> dict[str, Path]:
    """The inputs, uploaded to /tests/library-in/ (and kept locally for comparison)."""
    local = {spec.name: make_media(spec) for spec in GOOD}
    work = tmp_path_factory.mktemp("library-in")
    (work / "corrupt.mp4").write_bytes(local["lib-r25"].read_bytes()[:30_000])
    (work / "empty.mp4").write_bytes(b"")
    client = hadoop.client()
    client.delete("/tests/library-in", recursive=True)
    for name, path in local.items():
        client.upload(f"/tests/library-in/{name}.mp4", str(path))
    client.upload("/tests/library-in/nested/lib-corrupt.mp4", str(work / "corrupt.mp4"))
    client.upload("/tests/library-in/lib-empty.mp4", str(work / "empty.mp4"))
    client.write("/tests/library-in/README.txt", b"not a video: skipped in a directory")
    return local


@pytest.fixture(scope="module")
def first(hadoop: Hadoop, library, tmp_path_factory) -> Submit:
    work = tmp_path_factory.mktemp("library-run")
    return submit(hadoop, hadoop.root("library"), f"{hadoop.info.namenode_rpc}/tests/library-in/",
                  work)


@pytest.fixture(scope="module")
def outputs(hadoop: Hadoop, first: Submit) -> dict[str, dict[str, bytes]]:
    return {s.name: hdfs_files(hadoop, f"{hadoop.path(first.root)}/streams/{s.name}")
            for s in GOOD}


def test_cluster_mode_completes_the_good_videos_and_fails_only_the_bad(
        first: Submit, spark) -> None:
    assert first.proc.returncode != 0, "a failed video must fail the application"
    table = spark.read.parquet(f"{first.root}/jobs")
    rows = {r["stream_id"]: r for r in table.collect()}
    assert set(rows) == {s.name for s in GOOD} | set(BAD), rows
    assert table.select("job_id").distinct().count() == 1
    for spec in GOOD:
        assert rows[spec.name]["status"] == "complete", rows[spec.name]
        assert rows[spec.name]["renditions"] == 2
    for sid in BAD:
        assert rows[sid]["status"] == "failed"
        assert rows[sid]["error"].count("\n") == 0 and sid in rows[sid]["error"], rows[sid]
    assert "empty (0 bytes)" in rows["lib-empty"]["error"]


@pytest.mark.parametrize("spec", GOOD, ids=lambda s: s.name)
def test_every_rendition_holds_every_source_frame(spec: SourceSpec, library, outputs,
                                                  tmp_path: Path) -> None:
    files = outputs[spec.name]
    expected = frames_of(library[spec.name])
    for rendition in ("180p", "120p"):
        assert rendition_frames(files, rendition, tmp_path) == expected, rendition
    # The manifests play: ffmpeg's DASH and HLS demuxers read every frame of a rendition.
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    mpd = parse_mpd(files["manifest.mpd"])
    assert mpd.get("type") == "static"
    assert len(mpd.findall(f".//{MPD_NS}Representation")) == 2 + (1 if spec.audio else 0)
    assert frames_of(tmp_path / "180p.m3u8") == expected
    assert frames_of(tmp_path / "manifest.mpd") == expected


def test_ingest_and_transcode_tasks_ran_where_their_blocks_are(first: Submit) -> None:
    """Both the ingest tasks (reading the inputs) and the transcode map tasks (reading the
    raw chunks) read through Spark's Hadoop client with their blocks' hosts preferred.
    (RACK_LOCAL on MiniYARN: see test_hadoop_transcode.py.)"""
    tasks = stage_tasks(first.events)
    ingest = [loc for desc, _, loc in tasks if desc.startswith("ingest")]
    mapped = [loc for desc, _, loc in tasks if desc.startswith("transcode")]
    assert len(ingest) == len(GOOD) + len(BAD), tasks
    assert len(mapped) >= 8, tasks
    local = {"NODE_LOCAL", "RACK_LOCAL"}
    # The empty file has no block, so no preferred host: the one PROCESS_LOCAL task.
    assert set(ingest) <= local | {"PROCESS_LOCAL"} and ingest.count("PROCESS_LOCAL") <= 1, \
        ingest
    assert set(mapped) <= local, mapped


def test_resubmit_skips_complete_videos_and_changes_no_byte(
        hadoop: Hadoop, first: Submit, outputs, tmp_path: Path) -> None:
    again = submit(hadoop, first.root, f"{hadoop.info.namenode_rpc}/tests/library-in/",
                   tmp_path)
    assert again.proc.returncode != 0  # the two bad inputs fail again
    tasks = stage_tasks(again.events)
    assert [d for d, _, _ in tasks if d.startswith("transcode")] == [], \
        "complete videos were redone"
    assert len([d for d, _, _ in tasks if d.startswith("ingest")]) <= len(BAD)
    for spec in GOOD:
        now = hdfs_files(hadoop, f"{hadoop.path(first.root)}/streams/{spec.name}")
        assert sha1s(now) == sha1s(outputs[spec.name]), spec.name


def _listed_segments_exist(hadoop: Hadoop, root: str, problems: list[str],
                           stop: threading.Event) -> None:
    """Poll every manifest while a job runs: each segment an MPD lists must exist."""
    client = hadoop.client()
    base = f"{hadoop.path(root)}/streams"
    while not stop.wait(0.3):
        try:
            streams = client.list(base)
        except Exception:  # noqa: BLE001 - not made yet
            continue
        for sid in streams:
            try:
                with client.read(f"{base}/{sid}/manifest.mpd") as r:
                    mpd = parse_mpd(r.read())
            except Exception:  # noqa: BLE001 - no manifest (yet): nothing listed
                continue
            for rep in mpd.iter(f"{MPD_NS}Representation"):
                rid = rep.get("id")
                present = set(client.list(f"{base}/{sid}/out/{rid}"))
                timeline = mpd.find(f".//{MPD_NS}SegmentTimeline")
                count = sum(1 + int(s.get("r", 0)) for s in timeline) if timeline is not None \
                    else 0
                missing = [n for n in range(count) if f"{n:08d}.m4s" not in present]
                if rid != "audio" and missing:
                    problems.append(f"{sid}/{rid}: listed but missing {missing[:3]}")


def _finished_segments(hadoop: Hadoop, root: str) -> dict[str, int]:
    """HDFS path -> modification time of every segment a done record lists."""
    client = hadoop.client()
    out = {}
    for spec in GOOD:
        base = f"{hadoop.path(root)}/streams/{spec.name}"
        for name in client.list(f"{base}/done") if client.status(
                f"{base}/done", strict=False) else []:
            if name.startswith("."):
                continue  # a record still being written
            with client.read(f"{base}/done/{name}") as r:
                for seg in json.loads(r.read()):
                    path = f"{base}/out/{seg['rendition']}/{seg['number']:08d}.m4s"
                    out[path] = client.status(path)["modificationTime"]
    return out


def _visible(client, folder: str) -> list[str]:
    """A folder's names but hidden ones; [] while it does not exist."""
    if client.status(folder, strict=False) is None:
        return []
    try:
        return [n for n in client.list(folder) if not n.startswith(".")]
    except HdfsError:  # removed since
        return []


def test_killed_driver_then_resubmit_finishes_everything(hadoop: Hadoop, library,
                                                         tmp_path: Path) -> None:
    """The driver (client mode) is killed once segments are being written; a re-submit
    completes every video, writes no finished segment twice, and no manifest ever lists a
    segment that is not there."""
    root = hadoop.root("library-kill")
    inputs = f"{hadoop.info.namenode_rpc}/tests/library-in/lib-[rg]*.mp4"
    problems: list[str] = []
    stop = threading.Event()
    poller = threading.Thread(target=_listed_segments_exist,
                              args=(hadoop, root, problems, stop), daemon=True)
    poller.start()
    spark_opts = yarn_opts(tmp_path / "events-killed")
    proc = subprocess.Popen([str(REPO / "spark-submit.sh"), *spark_opts, "transcode", inputs,
                             "--root", root, "--ladder", LADDER, "--chunk-seconds",
                             CHUNK_SECONDS], env=hadoop.env(), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    client = hadoop.client()
    deadline = time.monotonic() + 400
    try:
        # Killed once some video's first map task has finished.
        while time.monotonic() < deadline and proc.poll() is None:
            # A done record, not just its folder: the writer makes the folder for the
            # record's hidden temporary name before renaming it into place.
            done = [n for s in GOOD
                    for n in _visible(client, f"{hadoop.path(root)}/streams/{s.name}/done")]
            if done:
                break
            time.sleep(0.3)
        assert proc.poll() is None, "the job ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        time.sleep(5)  # the YARN executors of the killed driver go too
        finished = _finished_segments(hadoop, root)
        again = submit(hadoop, root, inputs, tmp_path, cluster=False)
    finally:
        stop.set()
        poller.join()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert again.proc.returncode == 0, again.proc.stderr[-2000:]
    assert problems == []
    # What the killed run had finished (its done records) was not written again.
    assert finished, "the kill came before any task finished: the test proves nothing"
    for path, mtime in finished.items():
        assert client.status(path)["modificationTime"] == mtime, path
    for spec in GOOD:
        files = hdfs_files(hadoop, f"{hadoop.path(root)}/streams/{spec.name}")
        assert "manifest.mpd" in files and "complete.json" in files, spec.name


def test_bad_inputs_are_one_line_errors_and_write_nothing(hadoop: Hadoop, library,
                                                          tmp_path: Path) -> None:
    client = hadoop.client()
    client.makedirs("/tests/library-empty-dir")
    client.upload("/tests/library-dup/a/clip.mp4", str(library["lib-r25"]), overwrite=True)
    client.upload("/tests/library-dup/b/clip.mp4", str(library["lib-r25"]), overwrite=True)
    client.upload("/tests/library-locked/secret.mp4", str(library["lib-r25"]), overwrite=True)
    client.set_permission("/tests/library-locked/secret.mp4", "000")
    nn = hadoop.info.namenode_rpc
    cases = {
        f"{nn}/tests/library-empty-dir": "no video files",
        f"{nn}/tests/library-nothing-here": "no such file or directory",
        f"{nn}/tests/library-dup/": "both map to stream id 'clip'",
    }
    root = hadoop.root("library-bad", owner="alice")
    env = hadoop.env(user="alice")
    for inputs, words in cases.items():
        proc = subprocess.run(["sparkcast", "submit", inputs, "--root", root, "--master",
                               "local[1]"], env=env, capture_output=True, text=True,
                              timeout=300)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("sparkcast: error:")]
        assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-2000:]
        assert words in errors[0] and inputs.rstrip("/").split("/")[-1] in errors[0], errors
        assert client.list(hadoop.path(root)) == [], inputs
    proc = subprocess.run(["sparkcast", "submit", f"{nn}/tests/library-locked/secret.mp4",
                           "--root", root, "--master", "local[1]"], env=env,
                          capture_output=True, text=True, timeout=300)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("sparkcast: error:")]
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-2000:]
    assert "secret.mp4" in errors[0] and "ermission" in errors[0], errors
    assert client.list(f"{hadoop.path(root)}") in ([], ["jobs"])


def test_an_input_over_2_gb_streams_through_the_tasks(hadoop: Hadoop, make_media,
                                                      tmp_path: Path) -> None:
    """A film-sized input (2.2 GB: a clip followed by a 2.2 GB `free` box, which demuxers
    skip) is read block by block by its tasks (jobs/task_input.py): Spark's binaryFiles,
    one byte array per file, stops at 2 GB, and the executors here have 512 MB."""
    clip = make_media(SourceSpec("lib-big", width=320, height=180, rate="25", seconds=6,
                                 gop_seconds=2))
    big = tmp_path / "lib-big.mp4"
    size = 2_200_000_000
    with big.open("wb") as f:
        f.write(clip.read_bytes())
        pad = size - f.tell()
        f.write(pad.to_bytes(4, "big") + b"free")
        f.truncate(size)  # sparse here; HDFS stores every byte
    hadoop.client().upload("/tests/library-big-in/lib-big.mp4", str(big), overwrite=True)
    root = hadoop.root("library-big")
    run = submit(hadoop, root, f"{hadoop.info.namenode_rpc}/tests/library-big-in/", tmp_path,
                 cluster=False, timeout=1200)
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    files = hdfs_files(hadoop, f"{hadoop.path(root)}/streams/lib-big")
    assert rendition_frames(files, "180p", tmp_path) == frames_of(clip) == 150
    hadoop.client().delete("/tests/library-big-in", recursive=True)
    hadoop.client().delete(hadoop.path(root), recursive=True)


def test_range_tasks_read_only_their_part_of_an_mp4(hadoop: Hadoop, make_media,
                                                    tmp_path: Path) -> None:
    """A long video is cut by range tasks; each reads the MP4's headers and its own
    frames' bytes (Spark's input metrics), not the whole file, and every frame arrives."""
    spec = SourceSpec("lib-ranges", width=320, height=180, rate="25", seconds=60,
                      gop_seconds=2)
    clip = make_media(spec)
    hadoop.client().upload("/tests/library-ranges-in/lib-ranges.mp4", str(clip),
                           overwrite=True)
    root = hadoop.root("library-ranges")
    run = submit(hadoop, root, f"{hadoop.info.namenode_rpc}/tests/library-ranges-in/",
                 tmp_path, "--chunk-seconds", "2", cluster=False)
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    events = [e for e in spark_events(run.events) if e["Event"] == "SparkListenerTaskEnd"]
    stages = {e["Stage Info"]["Stage ID"]: e for e in spark_events(run.events)
              if e["Event"] == "SparkListenerStageSubmitted"}
    size = clip.stat().st_size
    read = {}
    for e in events:
        description = (stages[e["Stage ID"]].get("Properties") or {}).get(
            "spark.job.description", "")
        if "more ranges" in description and e["Task Info"]["Index"] > 0:
            read[e["Task Info"]["Index"]] = e["Task Metrics"]["Input Metrics"]["Bytes Read"]
    assert len(read) == 4, read  # 30 chunks: the ingest task cuts 6, four range tasks 24
    # Each: its 12 s of the 60, a second either side, the headers.
    assert all(0 < n < 0.4 * size for n in read.values()), (read, size)
    files = hdfs_files(hadoop, f"{hadoop.path(root)}/streams/lib-ranges")
    assert rendition_frames(files, "180p", tmp_path) == frames_of(clip) == 1500
    hadoop.client().delete("/tests/library-ranges-in", recursive=True)
