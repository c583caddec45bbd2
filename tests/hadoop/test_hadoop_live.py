"""Live on the cluster: an RTMP publish whose chunks the live chunker writes to HDFS, the
live job on YARN (spark-submit.sh, client mode) reading them through Spark's Hadoop
client, its checkpoint on HDFS, and serve answering from HDFS while the stream runs and
after it ends."""

from __future__ import annotations

import re
import time
from contextlib import suppress
from pathlib import Path

import psutil
import pytest
from hadooptools import REPO, SUPERUSER, Hadoop, app_id, stage_tasks, yarn_opts

from hdfs_layout import Storage, StreamLayout
from hdfs_layout.layout import live_checkpoint_dir
from live_tools import (
    check_tfdt_continuous_per_period,
    ended,
    joined_rendition,
    mpd_of,
    plays_in_chromium,
    read_all_catalog,
    storage_of,
    video_segments,
    wait_for,
)
from media_tools import count_frames
from stack_tools import running_stack

pytestmark = pytest.mark.heavy
RATE, SIZE, SECONDS = 15, "320x240", 60
STREAM = "yarnlive"


def _yarn_client_env(mp: pytest.MonkeyPatch, hadoop: Hadoop) -> None:
    """What spark-submit needs to reach the cluster, for the stack's children."""
    env = hadoop.env()
    for name in ("HADOOP_CONF_DIR", "YARN_CONF_DIR", "HADOOP_USER_NAME", "PYSPARK_PYTHON"):
        mp.setenv(name, env[name])


@pytest.fixture(scope="module")
def yarn_stack(hadoop: Hadoop, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("hdfs-live")
    events = tmp / "events"
    live_job = [str(REPO / "spark-submit.sh"), *yarn_opts(events), "live"]
    with pytest.MonkeyPatch.context() as mp:
        _yarn_client_env(mp, hadoop)
        with running_stack(tmp, live_job=live_job, root=hadoop.root("live"),
                           webhdfs_url=hadoop.info.webhdfs, hdfs_user=SUPERUSER) as stack:
            yield stack, events


def _check_whole_stream(stack, tmp_path: Path) -> Storage:
    """Every frame once in every rendition, one segment per 2 s chunk, none listed twice,
    continuous tfdt; the stream's storage."""
    check_tfdt_continuous_per_period(stack, STREAM)
    st = storage_of(stack)
    records = st.list(StreamLayout(STREAM).index_dir)
    segments = read_all_catalog(stack, STREAM)
    for rendition in ("240p", "180p"):
        numbers = sorted(s.number for s in segments if s.rendition == rendition)
        assert numbers == list(range(len(records))), rendition
        assert count_frames(joined_rendition(stack, STREAM, rendition, tmp_path)) \
            == SECONDS * RATE, rendition
    listed = video_segments(mpd_of(stack, STREAM))
    assert len(listed) == len(set(listed)) == len(records)
    return st


def test_a_publish_on_hdfs_with_the_live_job_on_yarn(yarn_stack, browser, tmp_path: Path):
    stack, events = yarn_stack
    pub = stack.publish(stack.create_key(STREAM), SECONDS, size=SIZE, rate=RATE)
    first = wait_for(lambda: mpd_of(stack, STREAM), 120, "the first live MPD", stack)
    assert first.get("type") == "dynamic"
    # A viewer watches it live, from HDFS through serve.
    plays_in_chromium(browser, f"{stack.base_url}/watch/{STREAM}?engine=dash", live=True)
    # The manifest grows as chunks land (read back from HDFS), in order, without gaps.
    listings = []
    while (mpd := mpd_of(stack, STREAM)).get("type") == "dynamic" and pub.poll() is None:
        listings.append(video_segments(mpd))
        time.sleep(2)
    assert len({len(x) for x in listings}) >= 5, "the live MPD did not grow as chunks landed"
    for listing in listings:
        for (_, t, d), (_, t2, _) in zip(listing, listing[1:], strict=False):
            assert t2 == t + d
    assert pub.wait(timeout=60) == 0
    wait_for(lambda: ended(stack, STREAM), 120, "the stream to end", stack)

    st = _check_whole_stream(stack, tmp_path)
    assert st.list(live_checkpoint_dir()), "no checkpoint on HDFS"

    # The ended stream is a VOD that plays in Chromium, from HDFS through serve.
    plays_in_chromium(browser, f"{stack.base_url}/watch/{STREAM}?engine=dash", live=False,
                      seconds=4, timeout=30)

    # The map tasks read their chunks through Spark's Hadoop client, where HDFS keeps them
    # (RACK_LOCAL on the mini cluster: see test_hadoop_transcode's locality test).
    stack.stop()  # the application ends: its event log is complete
    assert app_id(events).startswith("application_")  # it ran on YARN
    localities = {loc for desc, _, loc in stage_tasks(events) if desc.startswith("live batch")}
    print("live map tasks' locality:", localities)
    assert localities and localities <= {"NODE_LOCAL", "RACK_LOCAL"}, localities



def _masters(app: str) -> list[tuple[psutil.Process, int]]:
    """The running ApplicationMaster processes of a YARN application (in cluster mode: the
    driver's JVM), each with its attempt number (from its container's id)."""
    ts, num = app.removeprefix("application_").split("_")
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(p.info["cmdline"] or [])
        m = re.search(rf"container_(?:e\d+_)?{ts}_{num}_(\d+)_", cmdline)
        if m and "org.apache.spark.deploy.yarn.ApplicationMaster" in cmdline:
            found.append((p, int(m.group(1))))
    return found


def _attempts_running(app: str) -> set[int]:
    return {attempt for _, attempt in _masters(app)}


def _kill_application_master(app: str) -> int:
    """SIGKILL an application's ApplicationMaster (in cluster mode: the driver's JVM) and
    everything it started (the Python driver), as a crash of its container would. The
    number of processes killed."""
    victims = [q for p, _ in _masters(app) for q in (p, *p.children(recursive=True))]
    for p in victims:
        with suppress(psutil.NoSuchProcess):
            p.kill()
    return len(victims)


def test_the_live_driver_killed_in_yarn_is_retried_and_resumes_from_its_checkpoint(
        hadoop: Hadoop, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """Cluster mode: the driver runs in the ApplicationMaster's container. Killed
    mid-stream, YARN starts a second attempt, which resumes from the checkpoint on HDFS:
    every frame once, no segment listed twice."""
    tmp = tmp_path_factory.mktemp("hdfs-live-am")
    opts = yarn_opts()
    opts[opts.index("client")] = "cluster"
    live_job = [str(REPO / "spark-submit.sh"), *opts, "--driver-memory", "512m",
                "--conf", "spark.yarn.maxAppAttempts=2", "live"]
    with pytest.MonkeyPatch.context() as mp:
        _yarn_client_env(mp, hadoop)
        with running_stack(tmp, live_job=live_job, live_ready="(state: RUNNING)",
                           root=hadoop.root("live-am"), webhdfs_url=hadoop.info.webhdfs,
                           hdfs_user=SUPERUSER) as stack:
            app = re.search(r"application_\d+_\d+",
                            (stack.run_dir / "live.log").read_text()).group(0)
            try:
                pub = stack.publish(stack.create_key(STREAM), SECONDS, size=SIZE, rate=RATE)
                wait_for(lambda: (m := mpd_of(stack, STREAM)) is not None
                         and len(video_segments(m)) >= 3, 240, "three listed segments", stack)
                listed = len(video_segments(mpd_of(stack, STREAM)))
                assert _kill_application_master(app) >= 2
                killed = time.monotonic()
                wait_for(lambda: len(video_segments(mpd_of(stack, STREAM))) > listed, 240,
                         "the retried driver to list a new segment", stack)
                print(f"driver killed: the next segment was listed {time.monotonic() - killed:.1f}"
                      " s later")
                assert _attempts_running(app) == {2}
                assert pub.wait(timeout=120) == 0
                wait_for(lambda: ended(stack, STREAM), 120, "the stream to end", stack)
                _check_whole_stream(stack, tmp_path)
            finally:
                # the last attempt killed: YARN gives the application up
                _kill_application_master(app)


def test_hdfs_create_lets_exactly_one_writer_win(hadoop: Hadoop) -> None:
    """What two ingest pipelines rely on for chunk records on HDFS: `Storage.create` never
    replaces a file, and of writers racing for one name exactly one wins."""
    import threading

    from hdfs_layout import open_storage

    storage = open_storage(hadoop.root("create"), hadoop.info.webhdfs, SUPERUSER)
    assert storage.create("s/index/00000000.json", b"first")
    assert not storage.create("s/index/00000000.json", b"second")
    assert storage.read("s/index/00000000.json") == b"first"
    wins: list[bool] = []
    barrier = threading.Barrier(6)

    def race(i: int) -> None:
        barrier.wait()
        wins.append(storage.create("s/index/00000001.json", f"{i}".encode()))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]
    assert storage.list("s/index") == ["00000000.json", "00000001.json"]  # no temporaries
