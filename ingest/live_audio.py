"""Live audio: one AAC encoder per publish, its fragments packaged as they arrive.

Per-chunk AAC encoding would leave priming gaps at every chunk seam (DESIGN's
facts), so a live stream's audio is encoded once per publish, continuously, by
the live chunker's ffmpeg, and packaged here fragment by fragment. Each
fragment becomes a media segment (with its tfdt moved to the period's media
time) plus a small JSON record the live job's reduce reads.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from core.segments import Segment, package, segment_to_json, sha1
from hdfs_layout import Storage, StreamLayout
from hdfs_layout.layout import AUDIO


def read_boxes(stream: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    """Top-level (type, whole box bytes) from a pipe of fragmented MP4, as they complete."""
    while True:
        header = stream.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        extra = b""
        if size == 1:
            extra = stream.read(8)
            size = struct.unpack(">Q", extra)[0]
        body = stream.read(size - len(header) - len(extra))
        if len(body) < size - len(header) - len(extra):
            return  # the encoder died mid-box: that fragment is lost, not half-written
        yield kind, header + extra + body


class AudioPackager:
    """Turns one publish's fragmented AAC into numbered audio segments of a stream."""

    def __init__(self, storage: Storage, stream_id: str, first_number: int, base_ticks: int,
                 period: int):
        self.storage, self.layout = storage, StreamLayout(stream_id)
        self.number, self.base, self.period = first_number, base_ticks, period
        self.init: bytes | None = None
        self.segments: list[Segment] = []

    def consume(self, stream: BinaryIO) -> None:
        pending = b""
        for kind, box in read_boxes(stream):
            if self.init is None:
                pending += box
                if kind == b"moov":
                    self.init = pending
                    pending = b""
                continue
            pending += box
            if kind == b"mdat":
                self._fragment(pending)
                pending = b""

    def _fragment(self, fragment: bytes) -> None:
        assert self.init is not None
        packaged = package(self.init + fragment, self.number, self.base)
        data, timing = packaged.fragments[0], packaged.timings[0]
        if self.number == 0 or not self.storage.exists(self.layout.init_segment(AUDIO)):
            self.storage.write(self.layout.init_segment(AUDIO), packaged.init)
        self.storage.write(self.layout.media_segment(AUDIO, self.number), data)
        seg = Segment(self.layout.stream_id, AUDIO, self.number, timing.decode_time,
                      timing.duration, packaged.track.timescale, len(data), -1, self.period,
                      sha1(packaged.init), packaged.track.codec)
        # The record last: the reduce lists a segment only once its bytes are in storage.
        self.storage.write_text(self.layout.audio_record(self.number), segment_to_json(seg))
        self.segments.append(seg)
        self.number += 1
