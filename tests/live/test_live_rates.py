"""The live chunker records the exact frame rate of a file input at every standard rate,
and every chunk's duration is its frame count at that rate (issue 12). RTMP publishes
at the same rates are in test_live_clock.py."""

from __future__ import annotations

from fractions import Fraction

import pytest

from core.records import ChunkRecord, SourceRecord
from hdfs_layout import StreamLayout, open_storage
from ingest.live import LiveChunker
from media_tools import SourceSpec, count_frames

pytestmark = pytest.mark.heavy

RATES = ("24", "25", "30000/1001", "30", "50", "60")


@pytest.mark.parametrize("rate", RATES)
def test_a_file_published_live_keeps_its_exact_rate(rate, make_media, tmp_path):
    seconds = 7.0
    src = make_media(SourceSpec(f"live-rate-{rate.replace('/', '_')}", rate=rate,
                                seconds=seconds, bframes=0))
    storage = open_storage((tmp_path / "root").as_uri())
    stream = "rate" + rate.replace("/", "-")
    chunks = LiveChunker(storage, stream, str(src), chunk_seconds=2, segment_seconds=2).run()

    layout = StreamLayout(stream)
    source = SourceRecord.from_json(storage.read(layout.source_record))
    assert Fraction(source.frame_rate) == Fraction(rate)
    records = [ChunkRecord.from_json(storage.read(layout.index_record(c.seq))) for c in chunks]
    assert sum(r.frames for r in records) == count_frames(src)
    for r in records:
        assert r.duration == pytest.approx(r.frames / Fraction(rate), abs=1e-9), r
        assert r.start == pytest.approx(r.start_frame / Fraction(rate), abs=1e-9), r
