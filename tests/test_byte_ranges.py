"""Range reads (core/media/byte_ranges.py): a range task's chunks cut from a copy holding
only the bytes cut_ranges names are the chunks cut from the whole file, frame for frame."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import pytest

from core.chunking import plan_chunks
from core.grid import plan_grid
from core.media.byte_ranges import (
    MDAT_HEADER,
    TopBox,
    cut_ranges,
    frames_range,
    header_ranges,
    merge,
    top_level_boxes,
)
from core.media.cutting import cut_chunk
from core.media.probe import probe
from media_tools import SourceSpec, sh


def test_merge_sorts_joins_and_drops_empty() -> None:
    assert merge([(50, 10), (0, 10), (5, 10), (15, 0), (60, 5), (100, 1)]) == (
        (0, 15), (50, 15), (100, 1))


def test_frames_range_covers_every_chosen_packet_with_slack() -> None:
    times = [0.0, 1.0, 2.0, 3.0]
    spans = [(100, 10), (400, 10), (200, 50), (900, 10)]  # stored out of display order
    assert frames_range(times, spans, 1.0, 2.0, 1000, slack=5) == (195, 220)
    assert frames_range(times, spans, 0.0, 3.0, 905, slack=5) == (95, 810)  # clamped
    assert frames_range(times, spans, 5.0, 6.0, 1000) == (0, 0)


def test_header_ranges_keep_every_box_but_the_media_data() -> None:
    boxes = [TopBox("ftyp", 0, 32), TopBox("moov", 32, 5000), TopBox("mdat", 5032, 10**9)]
    assert header_ranges(boxes) == ((0, 32), (32, 5000), (5032, MDAT_HEADER))
    assert header_ranges([*boxes[:1], TopBox("mdat", 32, 100)]) is None  # no index
    assert header_ranges([*boxes, TopBox("moof", 10**9 + 5032, 100)]) is None  # fragmented


@pytest.mark.parametrize("spec", [
    SourceSpec("ranges-r25", rate="25", seconds=60, gop_seconds=2),
    SourceSpec("ranges-r30-b0", rate="30", seconds=60, gop_seconds=3, bframes=0),
], ids=lambda s: s.name)
@pytest.mark.parametrize("faststart", [True, False], ids=["moov-first", "moov-last"])
def test_chunks_cut_from_the_ranges_alone_match_the_whole_file(
        spec: SourceSpec, faststart: bool, make_media, tmp_path: Path) -> None:
    src = make_media(spec)
    if not faststart:  # the same media with its index at the end
        moved = tmp_path / "moov-last.mp4"
        sh("ffmpeg", "-v", "error", "-i", str(src), "-c", "copy", "-map", "0", str(moved))
        src = moved
    info = probe(str(src))
    boxes = top_level_boxes(str(src))
    assert boxes is not None and [b.kind for b in boxes].index("moov") == (1 if faststart
                                                                             else 3)
    grid = plan_grid(Fraction(spec.rate), 2, 4)
    plans = plan_chunks(info.video.frame_times, info.video.keyframes,
                        1 / float(info.video.frame_rate), grid)
    tail = tuple(plans[6:8])  # 8 s in the middle of the file
    size = src.stat().st_size
    ranges = cut_ranges(info, tail, boxes, size)
    assert ranges is not None
    assert sum(n for _, n in ranges) < 0.4 * size, ranges

    sparse = tmp_path / "sparse.mp4"
    with src.open("rb") as whole, sparse.open("wb") as out:
        for start, length in ranges:
            whole.seek(start)
            out.seek(start)
            out.write(whole.read(length))
        out.truncate(size)
    for which, path in (("whole", src), ("sparse", sparse)):
        (tmp_path / which).mkdir()
        at = probe(str(path)) if which == "whole" else \
            type(info)(str(path), info.format_name, info.duration, info.video, info.audio)
        for plan in tail:
            local, skip, frames = cut_chunk(at, plan, str(tmp_path / which), "ts")
            shutil.move(local, tmp_path / which / f"{plan.seq}.ts")
    for plan in tail:
        a = (tmp_path / "whole" / f"{plan.seq}.ts").read_bytes()
        b = (tmp_path / "sparse" / f"{plan.seq}.ts").read_bytes()
        assert a == b, f"chunk {plan.seq} differs when cut from the ranges"


def test_other_containers_are_read_whole(make_media, tmp_path: Path) -> None:
    src = make_media(SourceSpec("ranges-mkv-src", seconds=12))
    mkv = tmp_path / "clip.mkv"
    sh("ffmpeg", "-v", "error", "-i", str(src), "-c", "copy", str(mkv))
    info = probe(str(mkv))
    plans = plan_chunks(info.video.frame_times, info.video.keyframes,
                        1 / float(info.video.frame_rate), plan_grid(Fraction(30), 2, 4))
    assert top_level_boxes(str(mkv)) is None
    assert cut_ranges(info, tuple(plans[1:]), top_level_boxes(str(mkv)), mkv.stat().st_size) \
        is None
