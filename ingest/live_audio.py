"""Live audio: one AAC encoder per publish, its fragments packaged as they arrive.

Per-chunk AAC encoding would leave priming gaps at every chunk seam (DESIGN's
facts), so a live stream's audio is encoded once per publish, continuously, by
the live chunker's ffmpeg, and packaged here frame by frame into segments on the
video's segment grid (tfdt in the period's media time), each with a small JSON
record the live job's reduce reads.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from fractions import Fraction
from typing import BinaryIO

from core.grid import Grid
from core.media import mp4
from core.segments import Segment, package, segment_to_json, sha1
from hdfs_layout import Storage, StreamLayout
from hdfs_layout.layout import AUDIO
from ingest.pipelines import PeriodClaim


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
    """Cuts one publish's AAC into audio segments on the stream's segment grid.

    ffmpeg writes a fragment per AAC frame; frames are held until the chunker has placed
    the publish on the stream's grid (`place`), then grouped by the video segment their
    start falls in. Segment k of a period is numbered `audio_number + k` and written
    once (`Storage.create`): with two ingest pipelines, whichever finishes it first wins,
    and the other writes the same record from the winner's bytes. A segment whose start
    this publish did not see (it joined mid-segment) is left to the pipeline that did.
    """

    def __init__(self, storage: Storage, stream_id: str):
        self.storage, self.layout = storage, StreamLayout(stream_id)
        self.init: bytes | None = None
        self.track_id = 1
        self.timescale = 48000
        self.segments: list[Segment] = []
        self._lock = threading.Lock()
        self._held: list[tuple[int, mp4.Sample]] = []  # (local tick, sample) until placed
        self._claim: PeriodClaim | None = None
        self._grid: Grid | None = None
        self._offset = 0  # stream tick = local tick + offset
        self._current: list[tuple[int, mp4.Sample]] = []  # the open segment's samples
        self._k = -1  # the open segment's index in its period
        self._first_tick: int | None = None  # stream tick of the first sample placed

    def consume(self, stream: BinaryIO) -> None:
        pending = b""
        local = 0
        for kind, box in read_boxes(stream):
            pending += box
            if self.init is None:
                if kind == b"moov":
                    self.init, pending = pending, b""
                    self.track_id = mp4.track_id(self.init)
                    self.timescale = mp4.track_info(self.init).timescale
                continue
            if kind != b"mdat":
                continue
            fragment, pending = pending, b""
            local = mp4.fragment_timing(fragment).decode_time
            for sample in mp4.fragment_samples(fragment):
                self._add(local, sample)
                local += sample.duration

    def place(self, claim: PeriodClaim, grid: Grid, offset_seconds: float) -> None:
        """Media time = this publish's audio time + offset_seconds."""
        with self._lock:
            self._claim, self._grid = claim, grid
            self._offset = round(offset_seconds * self.timescale)
            held, self._held = self._held, []
            for local, sample in held:
                self._place(local + self._offset, sample)

    def flush(self) -> None:
        """The publish ended: the open segment, however short, is the period's last."""
        with self._lock:
            self._close()

    def _add(self, local: int, sample: mp4.Sample) -> None:
        with self._lock:
            if self._claim is None:
                self._held.append((local, sample))
            else:
                self._place(local + self._offset, sample)

    def _boundary(self, k: int) -> int:
        assert self._claim and self._grid
        frame = self._claim.start_frame + k * self._grid.segment_frames
        return round(Fraction(frame) / self._grid.frame_rate * self.timescale)

    def _place(self, tick: int, sample: mp4.Sample) -> None:
        if tick < self._boundary(0):
            return  # before the period (another publish's, or the encoder's priming)
        if self._first_tick is None:
            self._first_tick = tick
        while tick >= self._boundary(self._k + 1):
            self._close()
            self._k += 1
        self._current.append((tick, sample))

    def _close(self) -> None:
        if not self._current:
            return
        first = self._current[0][0]
        # Written only if this publish saw the segment's start (to within one frame).
        if first - self._boundary(self._k) < self._current[0][1].duration:
            self._write(self._k, first, [s for _, s in self._current])
        self._current = []

    def _write(self, k: int, tick: int, samples: list[mp4.Sample]) -> None:
        assert self.init is not None and self._claim is not None
        number = self._claim.audio_number + k
        packaged = package(self.init + mp4.build_fragment(self.track_id, 0, 0, samples),
                           number, tick)
        path = self.layout.media_segment(AUDIO, number)
        data = packaged.fragments[0]
        if not self.storage.exists(self.layout.init_segment(AUDIO)):
            self.storage.create(self.layout.init_segment(AUDIO), packaged.init)
        if not self.storage.create(path, data):
            data = self.storage.read(path)  # another pipeline's copy won: describe that one
        timing = mp4.fragment_timing(data)
        seg = Segment(self.layout.stream_id, AUDIO, number, timing.decode_time,
                      timing.duration, self.timescale, len(data), -1, self._claim.period,
                      sha1(packaged.init), packaged.track.codec)
        # The record last: the reduce lists a segment only once its bytes are in storage.
        record = self.layout.audio_record(number)
        if not self.storage.exists(record):
            self.storage.write_text(record, segment_to_json(seg))
        self.segments.append(seg)
