"""The chunker on real media: every source frame lands in exactly one chunk, in order."""

from __future__ import annotations

from fractions import Fraction

import pytest

from core.grid import plan_grid
from core.records import ChunkRecord
from hdfs_layout import StreamLayout
from ingest.chunker import ingest_file
from media_tools import SourceSpec, sh

SOURCES = [
    SourceSpec("r24_gop1", rate="24", gop_seconds=1),
    SourceSpec("r25_gop10", rate="25", seconds=14, gop_seconds=10),
    SourceSpec("r2997_gop2", rate="30000/1001", gop_seconds=2),
    SourceSpec("r60_gop4", rate="60", seconds=9, gop_seconds=4),
    SourceSpec("r30_longgop", rate="30", seconds=16, gop_seconds=60),  # a single keyframe
    SourceSpec("odd_854x481", width=854, height=481, seconds=8, gop_seconds=3),
    SourceSpec("noaudio", audio=False, seconds=7, gop_seconds=2.5),
    SourceSpec("no_bframes", bframes=0, seconds=8, gop_seconds=3),
]


def frame_hashes(path: str, vf: str | None = None) -> list[str]:
    args = ["ffmpeg", "-v", "error", "-i", path, "-map", "0:v:0", "-fps_mode", "passthrough"]
    if vf:
        args += ["-vf", vf]
    out = sh(*args, "-f", "framemd5", "-").stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines()
            if line and not line.startswith("#")]


@pytest.mark.parametrize("spec", SOURCES, ids=lambda s: s.name)
def test_chunks_hold_every_frame_once(spec: SourceSpec, make_media, storage) -> None:
    src = make_media(spec)
    source, chunks = ingest_file(str(src), "s", storage, chunk_seconds=4, segment_seconds=2)
    expected = frame_hashes(str(src))
    grid = plan_grid(Fraction(spec.rate), 2, 4)

    assert source.frames == len(expected)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    starts = [c.start_frame for c in chunks]
    assert starts[0] == 0
    for prev, start, chunk in zip(starts, starts[1:], chunks[1:], strict=False):
        # On a source keyframe near the mark (nothing decoded twice), else on the mark.
        on_mark = start - prev == grid.chunk_frames
        assert on_mark or (chunk.skip == 0 and abs(start - prev - grid.chunk_frames)
                           <= grid.chunk_frames // 4), starts
    assert sum(c.frames for c in chunks) == len(expected)

    decoded: list[str] = []
    for c in chunks:
        raw = storage.local_path(c.raw)
        decoded += frame_hashes(raw, f"trim=start_frame={c.skip}:end_frame={c.skip + c.frames}")
    # Frame-exact: the chunks, trimmed as the map step trims them, are the source's pictures.
    assert decoded == expected


def test_regular_gop_chunks_start_on_keyframes(make_media, storage) -> None:
    src = make_media(SourceSpec("r30_gop2", rate="30", gop_seconds=2))
    _, chunks = ingest_file(str(src), "s", storage, chunk_seconds=4)
    assert all(c.skip == 0 for c in chunks)


def test_chunks_end_at_far_apart_keyframes_near_the_mark(make_media, storage) -> None:
    """250-frame GOPs at 30 fps (8.3 s) and 10 s chunks: every chunk is cut at a source
    keyframe, so no task decodes frames it then drops; the raw copies hold only a few
    frames past their chunk (what B-frames need)."""
    src = make_media(SourceSpec("r30_gop250", rate="30", seconds=30, gop_seconds=250 / 30))
    source, chunks = ingest_file(str(src), "s", storage, chunk_seconds=10)
    assert [c.start_frame for c in chunks] == [0, 250, 500, 750]
    assert all(c.skip == 0 for c in chunks)
    for c in chunks:
        raw_frames = len(frame_hashes(storage.local_path(c.raw)))
        assert c.frames <= raw_frames <= c.frames + 6, (c.seq, raw_frames)
    # 250 frames = 60 + 60 + 60 + 70: the short remainder is merged into the last segment.
    assert [(c.first_segment, c.segments) for c in chunks] == [(0, 4), (4, 4), (8, 4),
                                                               (12, 3)]
    assert source.segments == 15


def test_long_gop_still_splits_into_parallel_chunks(make_media, storage) -> None:
    src = make_media(SourceSpec("r30_longgop", rate="30", seconds=16, gop_seconds=60))
    _, chunks = ingest_file(str(src), "s", storage, chunk_seconds=4)
    assert len(chunks) == 4
    # Each chunk is cut from the only keyframe and skips what precedes its own frames.
    assert [c.skip for c in chunks] == [0, 120, 240, 360]


def test_records_round_trip_and_layout(make_media, storage) -> None:
    src = make_media(SOURCES[0])
    _, chunks = ingest_file(str(src), "s", storage, chunk_seconds=4)
    layout = StreamLayout("s")
    for c in chunks:
        assert ChunkRecord.from_json(storage.read(layout.index_record(c.seq))) == c
        assert c.raw == layout.raw_chunk(c.seq, "ts")
        assert storage.size(c.raw) == c.bytes
    assert storage.exists(layout.raw_audio("mka"))


def test_reingest_replaces_the_stream(make_media, storage) -> None:
    long_src = make_media(SOURCES[0])
    short_src = make_media(SOURCES[6])
    ingest_file(str(long_src), "s", storage, chunk_seconds=4)
    _, chunks = ingest_file(str(short_src), "s", storage, chunk_seconds=4)
    layout = StreamLayout("s")
    assert len(storage.list(layout.index_dir)) == len(chunks)
    assert not storage.exists(layout.raw_audio("mka"))
