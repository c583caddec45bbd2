"""EdgeFiller over a growing live stream, five minutes of it on a simulated clock."""

from __future__ import annotations

import os
from pathlib import Path

from hdfs_layout import StreamLayout, open_storage
from manifest.rewrite import NS
from serve.cache import SegmentCache
from serve.live_fill import EdgeFiller

LIVE = StreamLayout("live5")
RENDITIONS = ("720p", "360p")
SEGMENT_BYTES = {"720p": 60_000, "360p": 20_000}


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def _mpd(segments: int) -> str:
    reps = "".join(f'<Representation id="{r}" bandwidth="1"/>' for r in RENDITIONS)
    return (f'<MPD xmlns="{NS}" type="dynamic" availabilityStartTime="2026-01-01T00:00:00Z">'
            '<Period id="0" start="PT0S"><AdaptationSet contentType="video">'
            '<SegmentTemplate timescale="1000" startNumber="0"><SegmentTimeline>'
            f'<S t="0" d="2000" r="{segments - 1}"/></SegmentTimeline></SegmentTemplate>'
            f'{reps}</AdaptationSet></Period></MPD>')


def _publish(root: Path, n: int) -> None:
    """Segment n of each rendition, then the MPD listing 0..n (the live job's order)."""
    for r in RENDITIONS:
        path = root / LIVE.media_segment(r, n)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(SEGMENT_BYTES[r]))
        if n == 0:
            (root / LIVE.init_segment(r)).write_bytes(b"init" * 100)
    (root / LIVE.manifest).write_text(_mpd(n + 1))


def test_five_minutes_of_live_edge_stay_in_ram_and_within_bounds(tmp_path: Path):
    clock = Clock()
    # 30 s of both rungs is 15 x 80 kB = 1.2 MB: the 1 MB bound must bite, not only age.
    cache = SegmentCache(max_age=30, max_bytes=1_000_000, clock=clock)
    filler = EdgeFiller(open_storage(tmp_path.as_uri()), cache, rescan=0)
    peak = 0
    for n in range(150):  # 150 segments of 2 s = 5 minutes
        _publish(tmp_path, n)
        clock.t += 2.0
        filler.poll_once()
        stats = cache.stats()
        peak = max(peak, stats.bytes)
        assert stats.bytes <= 1_000_000
        for r in RENDITIONS:  # the live edge is always in RAM, before any viewer asks
            assert cache.peek(LIVE.media_segment(r, n)) is not None, (n, r)
        assert cache.peek(LIVE.manifest) is not None
    assert filler.live == {"live5"}
    # nothing older than the window survives
    assert cache.peek(LIVE.media_segment("720p", 100)) is None
    assert stats.evictions > 0 and stats.peak_bytes == peak
    # a viewer joining now gets the newest 10 s from memory
    hits_before = cache.stats().hits
    for n in range(145, 150):
        for r in RENDITIONS:
            assert cache.get(LIVE.media_segment(r, n), "live5") is not None
    assert cache.stats().hits - hits_before == 10
