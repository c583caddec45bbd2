"""Segments as values, and turning one ffmpeg fragmented-MP4 output into them. Pure."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from core.media import mp4


class PackagingError(ValueError):
    """ffmpeg's output does not have the fragments the grid calls for."""


@dataclass(frozen=True)
class Segment:
    """One media segment as written to storage (a row of the catalog)."""

    stream_id: str
    rendition: str  # rendition name, or "audio"
    number: int
    start: int  # decode time of the first sample, in timescale ticks (the tfdt)
    duration: int  # ticks
    timescale: int
    bytes: int
    chunk_seq: int  # the raw chunk it came from (-1 for the stream's audio)
    period: int
    init_sha1: str  # hash of the rendition's init segment, the same for every chunk
    codec: str  # RFC 6381 codecs string
    width: int = 0
    height: int = 0
    psnr: float | None = None

    @property
    def start_seconds(self) -> float:
        return self.start / self.timescale

    @property
    def duration_seconds(self) -> float:
        return self.duration / self.timescale


@dataclass(frozen=True)
class Packaged:
    init: bytes
    fragments: tuple[bytes, ...]
    timings: tuple[mp4.FragmentTiming, ...]
    track: mp4.TrackInfo


def package(data: bytes, first_number: int, start_ticks: int, expect_sync: bool = True
            ) -> Packaged:
    """Split ffmpeg's fragmented MP4 into init + fragments, each carrying its real tfdt.

    ffmpeg encoded the chunk from time zero; fragment i gets decode time start_ticks plus
    ffmpeg's own, and sequence number first_number + i + 1 (mfhd counts from 1).
    Raises PackagingError when a fragment does not start with a keyframe.
    """
    try:
        init, fragments = mp4.split_fragments(data)
        track = mp4.track_info(init)
        out, timings = [], []
        # The first frame's presentation delay (B-frames), removed from every fragment.
        shift = mp4.fragment_timing(fragments[0]).first_composition_offset if fragments else 0
        for i, fragment in enumerate(fragments):
            t = mp4.fragment_timing(fragment)
            if expect_sync and not t.starts_with_sync:
                raise PackagingError(f"fragment {i} does not start with a keyframe")
            retimed = mp4.retime_fragment(mp4.shift_composition(fragment, shift),
                                          start_ticks + t.decode_time, first_number + i + 1)
            out.append(retimed)
            timings.append(mp4.fragment_timing(retimed))
    except mp4.BoxError as exc:
        raise PackagingError(str(exc)) from exc
    return Packaged(init, tuple(out), tuple(timings), track)


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def segment_to_json(s: Segment) -> str:
    return json.dumps(asdict(s), sort_keys=True)


def segment_from_json(text: str | bytes) -> Segment:
    return Segment(**json.loads(text))
