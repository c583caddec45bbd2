"""Reading a live stream's outputs back in tests, on any storage root: its MPD, listed
segments, catalog, joined renditions, and the checks every live test makes on them."""

from __future__ import annotations

import time
from pathlib import Path

from lxml import etree

from core.media import mp4
from hdfs_layout import Storage, StreamLayout, open_storage
from jobs.catalog import read_catalog
from sparkcast.stack import LiveStack

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


def storage_of(stack: LiveStack) -> Storage:
    s = stack.settings
    return open_storage(s.root, s.webhdfs_url, s.hdfs_user)


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
    """A rendition's init and media segments, joined into one local file (any root)."""
    st, layout = storage_of(stack), StreamLayout(stream_id)
    d = layout.rendition_dir(rendition)
    names = sorted(n for n in st.list(d) if n.endswith(".m4s"))
    out = tmp / f"{stream_id}-{rendition}.mp4"
    with open(out, "wb") as f:
        for name in ["init.mp4", *names]:
            f.write(st.read(f"{d}/{name}"))
    return out


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


def plays_in_chromium(browser, url: str, live: bool, seconds: float = 3,
                      timeout: float = 40) -> None:
    """The player page at `url` plays (live or VOD, as said) past `seconds` with no error,
    in a fresh Chromium context."""
    from browser_tools import wait_js

    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(url)
        wait_js(page, f"() => window.sparkcastPlayer && sparkcastPlayer.live === "
                f"{'true' if live else 'false'} && "
                f"document.getElementById('video').currentTime > {seconds}", timeout,
                f"{'live' if live else 'VOD'} playback of {url}")
        assert page.evaluate("() => sparkcastPlayer.errors") == []
    finally:
        ctx.close()
