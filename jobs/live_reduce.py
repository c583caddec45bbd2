"""The live job's reduce: a live stream's segments -> a dynamic MPD and live playlists. Pure.

Same periods and tracks as the batch reduce (jobs/reduce.py); on top of them a
DVR window, audio held back to the video's edge, and the live timing of
`live.json`, which fixes availabilityStartTime once for the stream's life.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from core.codecs import AudioCodec
from core.records import SourceRecord
from core.segments import Segment
from hdfs_layout.layout import StreamLayout
from jobs.reduce import build_periods
from manifest.hls import build_master, build_media
from manifest.mpd import build_mpd
from manifest.presentation import Event, LiveTiming, Period, Presentation, Track


@dataclass(frozen=True)
class LiveState:
    anchor: float  # unix time the stream's media time 0 was captured
    availability_start: float  # MPD availabilityStartTime
    ended: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> LiveState:
        return cls(**json.loads(text))


def new_state(anchor: float, chunk_seconds: float, listed_end: float = 0.0,
              now: float | None = None) -> LiveState:
    """availabilityStartTime for a stream's first manifest.

    Segments of a chunk appear together once it is closed and transcoded, so they are
    announced at least a chunk late. And when the first batch comes late (the job busy
    or just started; measured: the first chunk listed ~10 s after it closed), the clock
    starts where the listed media ends now, so a player that joins at once aims at
    segments that exist, rather than polling until the job has caught up.
    """
    start = anchor + chunk_seconds
    if now is not None:
        start = max(start, now - listed_end)
    return LiveState(anchor=anchor, availability_start=round(start, 3))


def _end(track: Track, period: Period) -> float:
    last = track.segments[-1]
    return period.start + (last.start + last.duration - track.presentation_time_offset) \
        / track.timescale


def _start(seg: Segment, track: Track, period: Period) -> float:
    return period.start + (seg.start - track.presentation_time_offset) / track.timescale


def _trim(track: Track, period: Period, lo: float, hi: float) -> Track | None:
    """The track with only the segments that overlap presentation times (lo, hi)."""
    segs = tuple(s for s in track.segments
                 if _start(s, track, period) < hi
                 and _start(s, track, period) + s.duration_seconds > lo)
    return replace(track, segments=segs) if segs else None


def _keep(tracks: tuple[Track, ...], period: Period, lo: float, hi: float) -> tuple[Track, ...]:
    return tuple(t for t in (_trim(x, period, lo, hi) for x in tracks) if t)


def live_window(periods: tuple[Period, ...], dvr_seconds: float) -> tuple[Period, ...]:
    """Periods cut to the DVR window, audio cut to the video it plays with."""
    edge = max(_end(p.video[0], p) for p in periods)
    horizon = edge - dvr_seconds
    out = []
    for period in periods:
        video = _keep(period.video, period, horizon, float("inf"))
        if not video:
            continue
        video_end = _end(period.video[0], period)
        audio = _keep(period.audio, period, horizon, video_end)
        out.append(replace(period, video=video, audio=audio))
    return tuple(out)


def build_live_presentation(source: SourceRecord, segments: Iterable[Segment], state: LiveState,
                            now: float, dvr_seconds: float, chunk_seconds: float,
                            audio: AudioCodec | None = None, events: tuple[Event, ...] = (),
                            delay_seconds: float | None = None) -> Presentation:
    periods = build_periods(source, segments, audio)
    segment_seconds = source.segment_frames / float(source.grid.frame_rate)
    if state.ended:
        return Presentation(source.stream_id, live_window(periods, float("inf")),
                            segment_seconds=segment_seconds, wallclock_anchor=state.anchor,
                            events=events)
    timing = LiveTiming(
        availability_start=state.availability_start, publish_time=now,
        # Half a segment: a player's refresh that gets a cache's copy from just before an
        # update (an edge keeps one up to a second) waits half a segment for the next, not
        # a whole one, which behind an edge was a stall.
        minimum_update_period=segment_seconds / 2, time_shift_buffer_depth=dvr_seconds,
        # Behind the edge by a chunk plus two segments unless told: segments arrive a chunk
        # at a time.
        suggested_presentation_delay=delay_seconds or chunk_seconds + 2 * segment_seconds)
    return Presentation(source.stream_id, live_window(periods, dvr_seconds), live=timing,
                        segment_seconds=segment_seconds, wallclock_anchor=state.anchor,
                        events=events)


def manifest_files(p: Presentation) -> list[tuple[str, bytes]]:
    """Media playlists, then master playlist and MPD (written last)."""
    layout = StreamLayout(p.stream_id)
    ids = dict.fromkeys(t.id for period in p.periods for t in (*period.video, *period.audio))
    files = [(layout.media_playlist(i), build_media(p, i).encode()) for i in ids]
    files.append((layout.master_playlist, build_master(p).encode()))
    files.append((layout.manifest, build_mpd(p).encode()))
    return files
