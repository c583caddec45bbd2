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
    assert [c.start_frame for c in chunks] == list(range(0, len(expected), grid.chunk_frames))
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
