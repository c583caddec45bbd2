"""Two ingest pipelines agreeing on where a publish's frames sit (ingest/pipelines.py),
first-wins storage, and live audio cut on the video's segment grid (ingest/live_audio.py).
Real ffmpeg for the audio; no fronts (tests/live/test_dual_ingest.py has those)."""

from __future__ import annotations

import io
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

from core.grid import plan_grid
from core.media import mp4
from core.segments import segment_from_json
from hdfs_layout import StreamLayout
from hdfs_layout.layout import AUDIO
from hdfs_layout.storage import LocalStorage
from ingest.live_audio import AudioPackager
from ingest.pipelines import Anchor, Board, PeriodClaim, gop_key, next_period, place

GRID = plan_grid(Fraction(30), 2.0, 10.0)  # 60-frame segments, 300-frame chunks


def test_anchor_names_round_trip_and_junk_is_ignored() -> None:
    a = Anchor(3, 123456, gop_key(["SHA256:ab", "SHA256:cd"]), 1_700_000_000)
    assert Anchor.parse(a.name) == a
    for junk in ("", ".tmp", "1.2.3", "x.y.z.w", "00001.000000000001.k.1.extra"):
        assert Anchor.parse(junk) is None


def test_a_gop_is_placed_by_the_first_unambiguous_recent_anchor() -> None:
    now = 1000.0
    anchors = [Anchor(1, 600, "k600", 995), Anchor(1, 660, "k660", 996),
               Anchor(1, 660, "k660", 996),  # the other pipeline placed it the same
               Anchor(1, 120, "still", 990), Anchor(1, 180, "still", 991)]
    # The leading GOP is unknown, the still picture recurs: the third GOP places them.
    found = place(["new", "still", "k600", "k660"], [30.0] * 4, anchors, now)
    assert found == (2, anchors[0])
    # An anchor older than the GOP can be (an earlier publish opening on the same
    # picture) places nothing.
    assert place(["k600"], [2.0], anchors, now) is None
    assert place(["nothing", "here"], [30.0] * 2, anchors, now) is None


def test_a_joiner_starts_at_the_next_whole_chunk_of_the_period() -> None:
    claim = PeriodClaim(2, 40, 6000, 7, True)
    assert claim.chunk_at_or_after(6000, GRID) == (40, 6000)
    assert claim.chunk_at_or_after(6001, GRID) == (41, 6300)
    assert claim.chunk_at_or_after(6300 + 299, GRID) == (42, 6600)


def test_first_writer_wins_and_a_racing_claim_loses(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    assert storage.create("a/b.json", b"first")
    assert not storage.create("a/b.json", b"second")
    assert storage.read("a/b.json") == b"first"
    assert storage.list("a") == ["b.json"]  # no temporary file left behind
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        barrier.wait()
        wins.append(Board(storage, "s", f"p{i}").claim(PeriodClaim(0, 0, 0, 0, False, f"p{i}")))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_a_new_period_follows_the_newest_claim_even_without_chunks(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    board = Board(storage, "s", "a")
    first = next_period(storage, "s", GRID, "a", now=100.0)
    assert (first.period, first.seq, first.start_frame, first.discontinuity) == (0, 0, 0, False)
    assert board.claim(first)
    # That publish ended before its first chunk: the next one is period 1, still seq 0.
    second = next_period(storage, "s", GRID, "b", now=200.0)
    assert (second.period, second.seq) == (1, 0)
    assert board.latest_claim() == first


def _aac(path: Path, seconds: float, start: float = 0.0) -> bytes:
    """ffmpeg's live audio output for a sine from `start` s: a fragment per AAC frame."""
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    f"sine=f=440:r=48000,atrim=start={start},asetpts=PTS-STARTPTS",
                    "-t", str(seconds), "-c:a", "aac", "-f", "mp4",
                    "-movflags", "+empty_moov+default_base_moof", "-frag_duration", "1",
                    "-fflags", "+bitexact", str(path)], check=True)
    return path.read_bytes()


def test_audio_is_cut_on_the_segment_grid_and_written_once(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    claim = PeriodClaim(0, 0, 0, 5, False)
    data = _aac(tmp_path / "a.mp4", 7.0)
    a = AudioPackager(storage, "s")
    a.consume(io.BytesIO(data))  # held until placed
    assert a.segments == []
    a.place(claim, GRID, 0.0)
    a.flush()
    layout = StreamLayout("s")
    numbers = [s.number for s in a.segments]
    assert numbers == [5, 6, 7, 8]  # 2 s segments of 7 s, the last one short
    for k, seg in enumerate(a.segments):
        # each starts with the first AAC frame (1024 ticks) at or after its video segment's
        assert 0 <= seg.start - k * 96000 < 1024
        stored = segment_from_json(storage.read(layout.audio_record(seg.number)))
        assert stored == seg
        body = storage.read(layout.media_segment(AUDIO, seg.number))
        assert mp4.fragment_timing(body).decode_time == seg.start
    for prev, seg in zip(a.segments, a.segments[1:], strict=False):
        assert prev.start + prev.duration == seg.start  # no gap, no overlap
    # A second pipeline whose encoder started 0.7 s later (its local time 0 is stream
    # time 0.7 s) skips the segment it joined mid-way and loses the races to the first one's
    # copies, describing those.
    b = AudioPackager(storage, "s")
    b.consume(io.BytesIO(_aac(tmp_path / "b.mp4", 6.3, start=0.7)))
    b.place(claim, GRID, 0.7)
    b.flush()
    assert [s.number for s in b.segments] == [6, 7, 8]
    assert b.segments == a.segments[1:]


def test_a_bad_pipeline_name_is_refused_naming_the_setting() -> None:
    import pytest
    from pydantic import ValidationError

    from core.config import Settings

    assert Settings(ingest_pipeline="b").ingest_pipeline == "b"
    for bad in ("B", "a/b", "a.b", "toolongname"):
        with pytest.raises(ValidationError, match="ingest_pipeline"):
            Settings(ingest_pipeline=bad)
