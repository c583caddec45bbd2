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
from lxml import etree

from core.media import mp4
from hdfs_layout import StreamLayout, open_storage
from jobs.catalog import read_catalog
from media_tools import concat, count_frames
from sparkcast.stack import LiveStack
from stack_tools import running_stack

pytestmark = pytest.mark.heavy
NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
RATE = 15
SIZE = "320x240"
END_TIMEOUT = 6.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("live"), live_end_timeout=END_TIMEOUT) as s:
        yield s


def storage_of(stack: LiveStack):
    return open_storage(stack.settings.root)


def mpd_of(stack: LiveStack, stream_id: str) -> etree._Element | None:
    st = storage_of(stack)
    path = StreamLayout(stream_id).manifest
    return etree.fromstring(st.read(path)) if st.exists(path) else None


def wait_for(predicate, timeout: float, what: str, stack: LiveStack):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value is not None and value is not False and value != 0:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\nlive job log:\n"
                         f"{stack.log_tail('live', 20)}")


def ended(stack: LiveStack, stream_id: str) -> bool:
    mpd = mpd_of(stack, stream_id)
    return mpd is not None and mpd.get("type") == "static"


def video_segments(mpd: etree._Element) -> list[tuple[str, int, int]]:
    """(period id, S@t, S@d) of every listed video segment, expanded."""
    out = []
    for period in mpd.iterfind("d:Period", NS):
        s_els = period.find("d:AdaptationSet[@contentType='video']/d:SegmentTemplate/"
                            "d:SegmentTimeline", NS)
        t = 0
        for s in s_els:
            t = int(s.get("t", t))
            for _ in range(int(s.get("r", 0)) + 1):
                out.append((period.get("id"), t, int(s.get("d"))))
                t += int(s.get("d"))
    return out


def joined_rendition(stack: LiveStack, stream_id: str, rendition: str, tmp: Path) -> Path:
    root = Path(storage_of(stack).local_path(""))
    d = root / StreamLayout(stream_id).rendition_dir(rendition)
    return concat([d / "init.mp4", *sorted(d.glob("*.m4s"))], tmp / f"{stream_id}.mp4")


def check_tfdt_continuous_per_period(stack: LiveStack, stream_id: str) -> None:
    st = storage_of(stack)
    segments = read_all_catalog(stack, stream_id)
    for rendition in {s.rendition for s in segments}:
        mine = sorted((s for s in segments if s.rendition == rendition), key=lambda s: s.number)
        for period in {s.period for s in mine}:
            numbers = [s.number for s in mine if s.period == period]
            assert numbers == list(range(numbers[0], numbers[-1] + 1)), (rendition, period)
        for prev, cur in zip(mine, mine[1:], strict=False):
            data = st.read(StreamLayout(stream_id).media_segment(rendition, cur.number))
            timing = mp4.fragment_timing(data)
            assert timing.decode_time == cur.start and timing.starts_with_sync
            if cur.period == prev.period:
                assert cur.start == prev.start + prev.duration, (rendition, cur.number)
            else:
                assert cur.start >= prev.start + prev.duration  # time only moves forward


def read_all_catalog(stack: LiveStack, stream_id: str):
    st = storage_of(stack)
    layout = StreamLayout(stream_id)
    segs = {}
    for name in st.list(layout.catalog_dir):
        for s in read_catalog(st.read(f"{layout.catalog_dir}/{name}")):
            segs[(s.rendition, s.number)] = s
    return list(segs.values())


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
