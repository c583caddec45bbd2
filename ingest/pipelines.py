"""Where a publish's frames sit on its stream's grid, agreed by every ingest pipeline.

A stream may be published to two fronts at once (an encoder's primary and backup URLs),
each with its own chunker. Both receive the same coded frames, so the chunkers agree on
a frame's place in the stream by its content, not by a clock or a counter of their own:

  - every GOP a chunker reads gets a key, a hash of its packets' bytes;
  - a chunker that has placed a GOP on the stream's frame grid says so with an anchor
    (`anchors/<period>.<frame>.<key>.<unix time>`, an empty file);
  - a chunker that starts while the stream's newest period is live looks its GOPs up
    among that period's anchors and continues the same period, the same seqs;
  - otherwise it claims a new period (`periods/<period>.json`, created once: if two
    chunkers claim at the same moment one wins and the other places itself on the
    winner's anchors).

Chunk records are created once (`Storage.create`): whichever pipeline finishes a chunk
first wins, the other's copy is dropped. With a single front the same code runs: its
own anchors let a restarted chunker that reads the publish's recording from the start
continue the period instead of beginning a new one.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from core.grid import Grid
from core.records import ChunkRecord
from hdfs_layout import Storage, StreamLayout

ANCHOR_KEEP_S = 600.0  # anchors are kept this long
LIVE_PERIOD_S = 10.0  # a period with an anchor this recent may have a pipeline running
# How much older than its own GOP another pipeline's anchor may be: the two read the
# publish at about the same time, give or take a slow front, chunker or storage.
ANCHOR_SLACK_S = 20.0


@dataclass(frozen=True)
class PeriodClaim:
    """Where a period starts: its first chunk's seq and frame, its first audio segment."""

    period: int
    seq: int
    start_frame: int
    audio_number: int
    discontinuity: bool  # the period follows an earlier one (a reconnect)
    pipeline: str = ""
    wallclock: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> PeriodClaim:
        return cls(**json.loads(text))

    def chunk_at_or_after(self, frame: int, grid: Grid) -> tuple[int, int]:
        """(seq, start frame) of the period's first chunk that starts at or after frame."""
        k = max(0, math.ceil((frame - self.start_frame) / grid.chunk_frames))
        return self.seq + k, self.start_frame + k * grid.chunk_frames


@dataclass(frozen=True)
class Anchor:
    """A GOP (by content key) placed at `frame` of `period` at unix time `wallclock`."""

    period: int
    frame: int
    key: str
    wallclock: int

    @property
    def name(self) -> str:
        return f"{self.period:05d}.{self.frame:012d}.{self.key}.{self.wallclock}"

    @classmethod
    def parse(cls, name: str) -> Anchor | None:
        parts = name.split(".")
        if len(parts) != 4 or not all(p.isalnum() for p in parts):
            return None
        try:
            return cls(int(parts[0]), int(parts[1]), parts[2], int(parts[3]))
        except ValueError:
            return None


def gop_key(packet_hashes: Iterable[str]) -> str:
    """A GOP's content key from its packets' data hashes, in decode order. Pure."""
    h = hashlib.sha256()
    for p in packet_hashes:
        h.update(p.encode())
    return h.hexdigest()[:32]


def place(keys: Sequence[str], ages: Sequence[float], anchors: Iterable[Anchor],
          now: float) -> tuple[int, Anchor] | None:
    """The first GOP (of `keys`, in arrival order) that anchors put at exactly one frame:
    (its index, an anchor). An anchor older than the GOP's `ages` entry (how long ago the
    GOP can have been placed by another pipeline) does not count: a new publish that
    opens on the same still picture as an earlier one must not be taken for it. A GOP
    whose content recurs (a still picture encoded alike twice) is ambiguous and skipped.
    Pure."""
    places: dict[str, dict[tuple[int, int], Anchor]] = {}
    for a in anchors:
        places.setdefault(a.key, {})[(a.period, a.frame)] = a
    for i, (key, age) in enumerate(zip(keys, ages, strict=True)):
        found = places.get(key, {})
        if len(found) == 1:
            anchor = next(iter(found.values()))
            if now - anchor.wallclock <= age:
                return i, anchor
    return None


def next_period(storage: Storage, stream_id: str, grid: Grid, pipeline: str = "",
                now: float | None = None) -> PeriodClaim:
    """The claim a publish that does not continue a live period makes: after the stream's
    last chunk, on the next segment boundary.

    The new period starts where the wall clock says (media time 0 was captured at the
    first chunk's close minus its duration), so a viewer's live edge stays in step with
    real time across a reconnect gap.
    """
    layout = StreamLayout(stream_id)
    now = time.time() if now is None else now
    names = [n for n in storage.list(layout.index_dir) if n.endswith(".json")]
    audio = [n for n in storage.list(layout.audio_index_dir) if n.endswith(".json")]
    audio_next = int(audio[-1].split(".")[0]) + 1 if audio else 0
    claimed = latest_claim(storage, layout)
    period = claimed.period + 1 if claimed else 0
    if not names:
        return PeriodClaim(period, 0, 0, audio_next, False, pipeline, now)
    last = ChunkRecord.from_json(storage.read(f"{layout.index_dir}/{names[-1]}"))
    first = ChunkRecord.from_json(storage.read(f"{layout.index_dir}/{names[0]}"))
    anchor = first.wallclock - first.duration - first.start
    wall_frame = int((now - anchor) * grid.frame_rate)
    end = max(last.start_frame + last.frames, wall_frame)
    start = math.ceil(end / grid.segment_frames) * grid.segment_frames
    return PeriodClaim(max(period, last.period + 1), last.seq + 1, start, audio_next, True,
                       pipeline, now)


def latest_claim(storage: Storage, layout: StreamLayout) -> PeriodClaim | None:
    names = [n for n in storage.list(layout.periods_dir) if n.endswith(".json")]
    return PeriodClaim.from_json(storage.read(f"{layout.periods_dir}/{names[-1]}")) \
        if names else None


class Board:
    """One stream's claims and anchors in storage, as one pipeline sees them."""

    def __init__(self, storage: Storage, stream_id: str, pipeline: str = ""):
        self.storage, self.layout, self.pipeline = storage, StreamLayout(stream_id), pipeline

    def latest_claim(self) -> PeriodClaim | None:
        return latest_claim(self.storage, self.layout)

    def claim(self, claim: PeriodClaim) -> bool:
        """True if this pipeline's claim made the period; False if another came first."""
        return self.storage.create(self.layout.period_claim(claim.period),
                                   claim.to_json().encode())

    def anchors(self, period: int) -> list[Anchor]:
        found = (Anchor.parse(n) for n in self.storage.list(self.layout.anchors_dir))
        return [a for a in found if a is not None and a.period == period]

    def anchor(self, period: int, frame: int, key: str, now: float | None = None) -> None:
        a = Anchor(period, frame, key, int(time.time() if now is None else now))
        self.storage.write(f"{self.layout.anchors_dir}/{a.name}", b"")

    def continues_after(self, period: int, frame: int) -> bool:
        """Some pipeline has placed a GOP of the period at or after frame."""
        return any(a.frame >= frame for a in self.anchors(period))

    def live(self, period: int, now: float) -> bool:
        """A pipeline placed a GOP of the period lately (it may be running)."""
        return any(now - a.wallclock <= LIVE_PERIOD_S for a in self.anchors(period))

    def prune(self, now: float) -> None:
        for name in self.storage.list(self.layout.anchors_dir):
            a = Anchor.parse(name)
            if a is not None and now - a.wallclock > ANCHOR_KEEP_S:
                self.storage.delete(f"{self.layout.anchors_dir}/{name}")
