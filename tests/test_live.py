"""The live path end to end with real publishers: nginx-rtmp, the live chunker, the
Structured Streaming job (as its own process, as in production), serve.

Publishers are ffmpeg sending 320x240 at 15 fps over RTMP in real time; chunks are
2 s (the low-latency setting) so minutes of real time stay short.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from hdfs_layout import StreamLayout
from live_tools import (
    NS,
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
RATE = 15
SIZE = "320x240"
END_TIMEOUT = 6.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("live"), live_end_timeout=END_TIMEOUT) as s:
        yield s


def test_sixty_seconds_two_publishers_and_a_following_client(stack, tmp_path):
    key_a, key_b = stack.create_key("show-a"), stack.create_key("show-b")
    pub_a = stack.publish(key_a, 60, size=SIZE, rate=RATE)
    pub_b = stack.publish(key_b, 30, size="426x240", rate=RATE)

    first = wait_for(lambda: mpd_of(stack, "show-a"), 120, "the first live MPD", stack)
    assert first.get("type") == "dynamic"
    for attr in ("availabilityStartTime", "publishTime", "minimumUpdatePeriod",
                 "timeShiftBufferDepth", "suggestedPresentationDelay"):
        assert first.get(attr), attr
    assert first.find("d:UTCTiming", NS) is not None

    # A real client follows the dynamic MPD through serve for 30 s, meanwhile the
    # manifest must grow as chunks land, in order, without gaps.
    follower = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-i", f"{stack.base_url}/streams/show-a/manifest.mpd",
         "-t", "30", "-map", "0:v:0", "-f", "null", "-"], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        mpd = mpd_of(stack, "show-a")
        if mpd.get("type") != "dynamic":
            break
        seen.append(video_segments(mpd))
        time.sleep(1)
    assert len({len(s) for s in seen}) >= 2, "the live MPD did not grow as chunks landed"
    _, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err[-1000:]
    for listing in seen:
        times = [t for _, t, _ in listing]
        assert times == sorted(times)
        for (_, t, d), (_, t2, _) in zip(listing, listing[1:], strict=False):
            assert t2 == t + d

    assert pub_a.wait() == 0 and pub_b.wait() == 0
    for stream_id, seconds in (("show-a", 60), ("show-b", 30)):
        wait_for(lambda s=stream_id: ended(stack, s), 90, f"{stream_id} to end", stack)
        check_tfdt_continuous_per_period(stack, stream_id)
        for rendition in ("240p", "180p"):
            f = joined_rendition(stack, stream_id, rendition, tmp_path)
            assert count_frames(f) == seconds * RATE, (stream_id, rendition)
    media = storage_of(stack).read_text(StreamLayout("show-a").media_playlist("240p"))
    assert media.rstrip().endswith("#EXT-X-ENDLIST") and "#EXT-X-PROGRAM-DATE-TIME" in media
    # The streams are independent: different sizes, their own segments.
    b = mpd_of(stack, "show-b")
    assert b.find(".//d:Representation[@id='240p']", NS).get("width") == "426"


def test_publisher_drop_and_reconnect_is_one_stream_with_a_new_period(stack, tmp_path):
    key = stack.create_key("flaky")
    first = stack.publish(key, None, size=SIZE, rate=RATE)
    wait_for(lambda: len(storage_of(stack).list(StreamLayout("flaky").index_dir)) >= 3, 60,
             "three chunks before the drop", stack)
    first.kill()  # the connection drops, no goodbye
    first.wait()
    time.sleep(2)
    second = stack.publish(key, 10, size=SIZE, rate=RATE)
    assert second.wait(timeout=60) == 0
    wait_for(lambda: ended(stack, "flaky"), 90, "the stream to end", stack)

    mpd = mpd_of(stack, "flaky")
    periods = mpd.findall("d:Period", NS)
    assert len(periods) == 2
    starts = [float(re.fullmatch(r"PT([\d.]+)S", p.get("start")).group(1)) for p in periods]
    assert starts[1] > starts[0]
    media = storage_of(stack).read_text(StreamLayout("flaky").media_playlist("240p"))
    assert media.count("#EXT-X-DISCONTINUITY\n") == 1
    check_tfdt_continuous_per_period(stack, "flaky")
    # No segment lost: every chunk's segments are listed, in both renditions.
    records = storage_of(stack).list(StreamLayout("flaky").index_dir)
    listed = video_segments(mpd)
    assert len(listed) == len(records)  # 2 s chunks of one 2 s segment each
    res = subprocess.run(["ffmpeg", "-v", "error", "-i",
                          str(Path(storage_of(stack).local_path(StreamLayout("flaky").manifest))),
                          "-map", "0:v:0", "-f", "null", "-"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_live_job_killed_and_restarted_loses_and_repeats_nothing(stack, tmp_path):
    key = stack.create_key("crash")
    pub = stack.publish(key, 24, size=SIZE, rate=RATE)
    wait_for(lambda: mpd_of(stack, "crash"), 60, "the first live MPD", stack)
    stack.kill_live_job()
    time.sleep(4)
    stack.start_live_job()
    assert pub.wait(timeout=60) == 0
    wait_for(lambda: ended(stack, "crash"), 120, "the stream to end after the restart", stack)

    segments = read_all_catalog(stack, "crash")
    records = storage_of(stack).list(StreamLayout("crash").index_dir)
    for rendition in ("240p", "180p"):
        numbers = sorted(s.number for s in segments if s.rendition == rendition)
        assert numbers == list(range(len(records)))
    listed = video_segments(mpd_of(stack, "crash"))
    assert len(listed) == len(set(listed)) == len(records)
    f = joined_rendition(stack, "crash", "240p", tmp_path)
    assert count_frames(f) == 24 * RATE
