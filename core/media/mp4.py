"""A small ISO-BMFF (MP4) box reader for fragmented MP4 / CMAF.

Enough to split ffmpeg's fragmented output into an init segment and media
segments, to read and rewrite each fragment's decode time (`tfdt`) and
sequence number (`mfhd`), and to read the timing and codec facts a manifest
needs. Pure functions over bytes; no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"moof", b"traf", b"mvex", b"edts"}
SAMPLE_ENTRY_CHILD_OFFSET = {b"avc1": 78, b"avc3": 78, b"mp4a": 28}


class BoxError(ValueError):
    """The bytes are not the fragmented MP4 we expect."""


@dataclass(frozen=True)
class Box:
    type: bytes
    start: int  # offset of the box header
    header: int  # header length (8 or 16)
    size: int  # whole box, header included

    @property
    def body(self) -> int:
        return self.start + self.header

    @property
    def end(self) -> int:
        return self.start + self.size


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise BoxError(f"box {kind!r} at {pos} overruns its parent ({size} bytes)")
        yield Box(kind, pos, header, size)
        pos += size


def find(data: bytes, path: str, start: int = 0, end: int | None = None) -> Box | None:
    """First box along a slash-separated path, e.g. 'moov/trak/mdia/mdhd'."""
    head, _, rest = path.partition("/")
    for box in iter_boxes(data, start, end):
        if box.type == head.encode():
            if not rest:
                return box
            body = box.body + SAMPLE_ENTRY_CHILD_OFFSET.get(box.type, 0)
            if box.type == b"stsd":
                body += 8  # version/flags + entry count
            found = find(data, rest, body, box.end)
            if found:
                return found
    return None


def split_fragments(data: bytes) -> tuple[bytes, list[bytes]]:
    """Split fragmented MP4 bytes into (init segment, [media segment per moof+mdat])."""
    boxes = list(iter_boxes(data))
    first_moof = next((i for i, b in enumerate(boxes) if b.type == b"moof"), None)
    if first_moof is None or not any(b.type == b"moov" for b in boxes[:first_moof]):
        raise BoxError("not a fragmented MP4 (no moov before the first moof)")
    # Anything between fragments that belongs to the next one (styp, sidx, prft) leads it.
    lead = {b"styp", b"sidx", b"prft", b"emsg"}
    init_end = boxes[first_moof].start
    while first_moof > 0 and boxes[first_moof - 1].type in lead:
        first_moof -= 1
        init_end = boxes[first_moof].start
    init = data[:init_end]
    fragments: list[bytes] = []
    current_start = init_end
    for box in boxes[first_moof:]:
        if box.type == b"mdat":
            fragments.append(data[current_start:box.end])
            current_start = box.end
    return init, fragments


def _full_box(data: bytes, box: Box) -> tuple[int, int]:
    version_flags = struct.unpack_from(">I", data, box.body)[0]
    return version_flags >> 24, version_flags & 0xFFFFFF


@dataclass(frozen=True)
class FragmentTiming:
    sequence: int
    decode_time: int
    duration: int
    samples: int
    starts_with_sync: bool
    first_composition_offset: int = 0


@dataclass(frozen=True)
class _Sample:
    duration: int | None
    flags: int | None
    cto_at: int | None  # byte offset of the sample's composition time offset, if present
    cto: int
    size: int | None = None


def _tfhd_defaults(fragment: bytes, tfhd: Box) -> tuple[int | None, int | None, int | None]:
    """(default sample duration, flags, size) a track fragment header declares."""
    _, flags = _full_box(fragment, tfhd)
    pos = tfhd.body + 8  # version/flags + track_ID
    duration = sample_flags = size = None
    if flags & 0x01:
        pos += 8
    if flags & 0x02:
        pos += 4
    if flags & 0x08:
        duration = struct.unpack_from(">I", fragment, pos)[0]
        pos += 4
    if flags & 0x10:
        size = struct.unpack_from(">I", fragment, pos)[0]
        pos += 4
    if flags & 0x20:
        sample_flags = struct.unpack_from(">I", fragment, pos)[0]
    return duration, sample_flags, size


def _samples(fragment: bytes) -> Iterator[tuple[Box, _Sample]]:
    """Every sample of the fragment's first track, with the trun box it is listed in."""
    traf = find(fragment, "moof/traf")
    tfhd = find(fragment, "moof/traf/tfhd")
    if not (traf and tfhd):
        raise BoxError("fragment lacks traf/tfhd")
    default_duration, default_flags, default_size = _tfhd_defaults(fragment, tfhd)
    for trun in (b for b in iter_boxes(fragment, traf.body, traf.end) if b.type == b"trun"):
        version, flags = _full_box(fragment, trun)
        count = struct.unpack_from(">I", fragment, trun.body + 4)[0]
        pos = trun.body + 8 + (4 if flags & 0x01 else 0)
        first_flags = None
        if flags & 0x04:
            first_flags = struct.unpack_from(">I", fragment, pos)[0]
            pos += 4
        for i in range(count):
            duration, sample_flags, cto_at, cto = default_duration, default_flags, None, 0
            size = default_size
            if flags & 0x100:
                duration = struct.unpack_from(">I", fragment, pos)[0]
                pos += 4
            if flags & 0x200:
                size = struct.unpack_from(">I", fragment, pos)[0]
                pos += 4
            if flags & 0x400:
                sample_flags = struct.unpack_from(">I", fragment, pos)[0]
                pos += 4
            if flags & 0x800:
                cto_at = pos
                cto = struct.unpack_from(">i" if version else ">I", fragment, pos)[0]
                pos += 4
            if i == 0 and first_flags is not None:
                sample_flags = first_flags
            yield trun, _Sample(duration, sample_flags, cto_at, cto, size)


def fragment_timing(fragment: bytes) -> FragmentTiming:
    """Sequence number, tfdt, summed sample durations and first-sample sync flag of one fragment."""
    mfhd = find(fragment, "moof/mfhd")
    tfdt = find(fragment, "moof/traf/tfdt")
    if not (mfhd and tfdt):
        raise BoxError("fragment lacks mfhd/tfdt")
    sequence = struct.unpack_from(">I", fragment, mfhd.body + 4)[0]
    version, _ = _full_box(fragment, tfdt)
    decode_time = struct.unpack_from(">Q" if version == 1 else ">I", fragment, tfdt.body + 4)[0]
    duration = count = 0
    first: _Sample | None = None
    for _, sample in _samples(fragment):
        if sample.duration is None:
            raise BoxError("sample without a duration (no trun duration, no tfhd default)")
        first = first or sample
        duration += sample.duration
        count += 1
    # sample_is_non_sync_sample is bit 16 of the sample flags.
    sync = first is not None and first.flags is not None and not (first.flags >> 16) & 1
    return FragmentTiming(sequence, decode_time, duration, count, sync,
                          first.cto if first else 0)


def shift_composition(fragment: bytes, shift: int) -> bytes:
    """Subtract shift from every composition offset, as a version-1 (signed) trun.

    x264's B-frames make ffmpeg present the first frame `shift` ticks after its decode
    time; rungs without B-frames present it at once. Shifting (what CMAF calls negative
    composition offsets) makes the same picture carry the same time in every rung.
    """
    if shift == 0:
        return fragment
    out = bytearray(fragment)
    for trun, sample in _samples(fragment):
        out[trun.body] = 1  # version 1: signed offsets
        if sample.cto_at is not None:
            struct.pack_into(">i", out, sample.cto_at, sample.cto - shift)
    return bytes(out)


def retime_fragment(fragment: bytes, decode_time: int, sequence: int) -> bytes:
    """Return the fragment with its tfdt and mfhd sequence number rewritten."""
    out = bytearray(fragment)
    mfhd = find(fragment, "moof/mfhd")
    tfdt = find(fragment, "moof/traf/tfdt")
    if not (mfhd and tfdt):
        raise BoxError("fragment lacks mfhd/tfdt")
    struct.pack_into(">I", out, mfhd.body + 4, sequence)
    version, _ = _full_box(fragment, tfdt)
    if version == 1:
        struct.pack_into(">Q", out, tfdt.body + 4, decode_time)
    elif decode_time < 2**32:
        struct.pack_into(">I", out, tfdt.body + 4, decode_time)
    else:
        raise BoxError("decode time does not fit a version-0 tfdt")
    return bytes(out)


@dataclass(frozen=True)
class Sample:
    """One coded sample of a fragment: its bytes and its duration in track ticks."""

    data: bytes
    duration: int


def fragment_samples(fragment: bytes) -> list[Sample]:
    """The samples of a single-trun fragment whose data offsets count from its moof (what
    ffmpeg writes with default_base_moof)."""
    moof, trun = find(fragment, "moof"), find(fragment, "moof/traf/trun")
    if not (moof and trun):
        raise BoxError("fragment lacks moof/traf/trun")
    _, flags = _full_box(fragment, trun)
    if not flags & 0x01:
        raise BoxError("trun without a data offset")
    pos = moof.start + struct.unpack_from(">i", fragment, trun.body + 8)[0]
    out = []
    for _, sample in _samples(fragment):
        if sample.size is None or sample.duration is None:
            raise BoxError("sample without a size or duration")
        if pos + sample.size > len(fragment):
            raise BoxError("sample data overruns the fragment")
        out.append(Sample(fragment[pos:pos + sample.size], sample.duration))
        pos += sample.size
    return out


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def build_fragment(track_id: int, sequence: int, decode_time: int,
                   samples: list[Sample], sample_flags: int = 0x02000000) -> bytes:
    """One moof + mdat holding `samples` (every one a sync sample by default, as audio is)."""
    # tfhd: default-base-is-moof (0x020000) + default sample flags (0x20).
    tfhd = _box(b"tfhd", struct.pack(">III", 0x020020, track_id, sample_flags))
    tfdt = _box(b"tfdt", struct.pack(">IQ", 0x01000000, decode_time))
    entries = b"".join(struct.pack(">II", s.duration, len(s.data)) for s in samples)
    trun_size = 8 + 4 + 4 + 4 + len(entries)
    mfhd = _box(b"mfhd", struct.pack(">II", 0, sequence))
    moof_size = 8 + len(mfhd) + 8 + len(tfhd) + len(tfdt) + trun_size
    # data offset, sample duration, sample size present; data starts after mdat's header
    trun = _box(b"trun", struct.pack(">IIi", 0x000301, len(samples), moof_size + 8), entries)
    moof = _box(b"moof", mfhd, _box(b"traf", tfhd, tfdt, trun))
    assert len(moof) == moof_size
    return moof + _box(b"mdat", *(s.data for s in samples))


def track_id(init: bytes) -> int:
    tkhd = find(init, "moov/trak/tkhd")
    if tkhd is None:
        raise BoxError("init segment lacks tkhd")
    version, _ = _full_box(init, tkhd)
    return struct.unpack_from(">I", init, tkhd.body + (20 if version == 1 else 12))[0]


@dataclass(frozen=True)
class TrackInfo:
    handler: str  # 'vide' or 'soun'
    timescale: int
    codec: str  # RFC 6381 codecs string, e.g. avc1.64001f or mp4a.40.2
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0


def track_info(init: bytes) -> TrackInfo:
    """Timescale and codecs string of the (single) track of an init segment."""
    mdhd = find(init, "moov/trak/mdia/mdhd")
    hdlr = find(init, "moov/trak/mdia/hdlr")
    if not (mdhd and hdlr):
        raise BoxError("init segment lacks mdhd/hdlr")
    version, _ = _full_box(init, mdhd)
    timescale = struct.unpack_from(">I", init, mdhd.body + (20 if version == 1 else 12))[0]
    handler = init[hdlr.body + 8:hdlr.body + 12].decode("ascii", "replace")
    avcc = find(init, "moov/trak/mdia/minf/stbl/stsd/avc1/avcC")
    if avcc:
        profile, compat, level = init[avcc.body + 1:avcc.body + 4]
        entry = find(init, "moov/trak/mdia/minf/stbl/stsd/avc1")
        assert entry is not None
        width, height = struct.unpack_from(">HH", init, entry.body + 24)
        return TrackInfo(handler, timescale, f"avc1.{profile:02x}{compat:02x}{level:02x}",
                         width=width, height=height)
    mp4a = find(init, "moov/trak/mdia/minf/stbl/stsd/mp4a")
    if mp4a:
        channels = struct.unpack_from(">H", init, mp4a.body + 16)[0]
        rate = struct.unpack_from(">I", init, mp4a.body + 24)[0] >> 16
        return TrackInfo(handler, timescale, f"mp4a.40.{_aac_object_type(init, mp4a)}",
                         sample_rate=rate, channels=channels)
    raise BoxError("init segment holds neither avc1 nor mp4a")


def _descriptor(body: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, payload start, payload end) of the MPEG-4 descriptor at pos."""
    tag = body[pos]
    pos += 1
    size = 0
    for _ in range(4):
        byte = body[pos]
        pos += 1
        size = (size << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return tag, pos, pos + size


def _aac_object_type(init: bytes, mp4a: Box) -> int:
    """Audio object type from esds (ES -> DecoderConfig -> DecoderSpecificInfo); 2 is AAC-LC."""
    esds = find(init, "esds", mp4a.body + SAMPLE_ENTRY_CHILD_OFFSET[b"mp4a"], mp4a.end)
    if esds is None:
        raise BoxError("mp4a without esds")
    body = init[esds.body + 4:esds.end]
    tag, pos, _ = _descriptor(body, 0)
    if tag != 0x03:
        raise BoxError("esds does not start with an ES descriptor")
    flags = body[pos + 2]
    pos += 3 + (2 if flags & 0x80 else 0)
    if flags & 0x40:
        pos += 1 + body[pos]
    if flags & 0x20:
        pos += 2
    tag, pos, _ = _descriptor(body, pos)
    if tag != 0x04:
        raise BoxError("esds lacks a DecoderConfigDescriptor")
    tag, pos, _ = _descriptor(body, pos + 13)
    if tag != 0x05:
        raise BoxError("esds lacks a DecoderSpecificInfo")
    return body[pos] >> 3
