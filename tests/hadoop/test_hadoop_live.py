"""Live on the cluster: an RTMP publish whose chunks the live chunker writes to HDFS, the
live job on YARN (spark-submit.sh, client mode) reading them through Spark's Hadoop
client, its checkpoint on HDFS, and serve answering from HDFS while the stream runs and
after it ends."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hadooptools import REPO, SUPERUSER, Hadoop, stage_tasks, yarn_opts

from browser_tools import wait_js
from hdfs_layout import StreamLayout
from hdfs_layout.layout import live_checkpoint_dir
from live_tools import (
    check_tfdt_continuous_per_period,
    ended,
    joined_rendition,
    mpd_of,
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


@pytest.fixture(scope="module")
def yarn_stack(hadoop: Hadoop, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("hdfs-live")
    events = tmp / "events"
    env = hadoop.env()
    live_job = [str(REPO / "spark-submit.sh"), *yarn_opts(events), "live"]
    with pytest.MonkeyPatch.context() as mp:
        for name in ("HADOOP_CONF_DIR", "YARN_CONF_DIR", "HADOOP_USER_NAME", "PYSPARK_PYTHON"):
            mp.setenv(name, env[name])
        with running_stack(tmp, live_job=live_job, root=hadoop.root("live"),
                           webhdfs_url=hadoop.info.webhdfs, hdfs_user=SUPERUSER) as stack:
            yield stack, events


def test_a_publish_on_hdfs_with_the_live_job_on_yarn(yarn_stack, browser, tmp_path: Path):
    stack, events = yarn_stack
    pub = stack.publish(stack.create_key(STREAM), SECONDS, size=SIZE, rate=RATE)
    first = wait_for(lambda: mpd_of(stack, STREAM), 120, "the first live MPD", stack)
    assert first.get("type") == "dynamic"
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

    # Every frame, once, in every rendition; one segment per 2 s chunk, none twice.
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
    assert st.list(live_checkpoint_dir()), "no checkpoint on HDFS"

    # The ended stream is a VOD that plays in Chromium, from HDFS through serve.
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(f"{stack.base_url}/watch/{STREAM}?engine=dash")
        wait_js(page, "() => window.sparkcastPlayer && sparkcastPlayer.live === false && "
                "document.getElementById('video').currentTime > 4", 30, "the VOD to play")
        assert page.evaluate("() => sparkcastPlayer.errors") == []
    finally:
        ctx.close()

    # The map tasks read their chunks through Spark's Hadoop client, where HDFS keeps them
    # (RACK_LOCAL on the mini cluster: see test_hadoop_transcode's locality test).
    stack.stop()  # the application ends: its event log is complete
    localities = {loc for desc, _, loc in stage_tasks(events) if desc.startswith("live batch")}
    assert localities and localities <= {"NODE_LOCAL", "RACK_LOCAL"}, localities

