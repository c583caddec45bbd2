"""The reduce step: one stream's segments -> manifests and catalog. Pure.

Everything is checked before anything is produced: a rendition with a missing
segment, a tfdt gap or an init segment that differs between chunks raises
ReduceError, and no manifest lists it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from core.codecs import AudioCodec
from core.records import SourceRecord
from core.segments import Segment
from hdfs_layout.layout import AUDIO, StreamLayout
from jobs.catalog import catalog_bytes
from jobs.encode import AAC_FRAME_SAMPLES, AAC_PRIMING_SAMPLES
from manifest.hls import build_master, build_media
from manifest.mpd import build_mpd
from manifest.presentation import Period, Presentation, Track
from manifest.timeline import TimelineError, check_contiguous


class ReduceError(ValueError):
    """The segments of a stream do not make a playable presentation."""


@dataclass(frozen=True)
class StreamOutputs:
    """Everything the load step writes for one stream (paths from StreamLayout)."""

    stream_id: str
    files: tuple[tuple[str, bytes], ...]  # (storage path, bytes), manifests last
    segments: int = 0  # media segments of every track
    segment_bytes: int = 0

    def paths(self) -> list[str]:
        return [p for p, _ in self.files]


def _by_track(segments: Iterable[Segment]) -> dict[str, list[Segment]]:
    tracks: dict[str, list[Segment]] = defaultdict(list)
    for s in segments:
        tracks[s.rendition].append(s)
    for name, segs in tracks.items():
        segs.sort(key=lambda s: s.number)
        hashes = {s.init_sha1 for s in segs}
        if len(hashes) != 1:
            raise ReduceError(f"{segs[0].stream_id}/{name}: init segment differs between chunks")
        try:
            # Live audio from two ingest pipelines: each encoder has its own AAC frame
            # lattice, so where their segments meet they may overlap or part by less than
            # a frame (listed with its own S@t; measured: 16 ticks at 48 kHz).
            check_contiguous(segs, AAC_FRAME_SAMPLES if name == AUDIO else 0)
        except TimelineError as exc:
            raise ReduceError(str(exc)) from exc
    return tracks


def _period_tracks(source: SourceRecord, video: dict[str, list[Segment]],
                   audio: list[Segment], audio_codec: AudioCodec) -> tuple[tuple[Track, ...],
                                                                           tuple[Track, ...]]:
    v_tracks = tuple(sorted(
        (Track(name, "video", segs[0].codec, segs[0].timescale, tuple(segs),
               width=segs[0].width, height=segs[0].height, frame_rate=source.frame_rate,
               presentation_time_offset=segs[0].start)
         for name, segs in video.items()), key=lambda t: -t.height))
    a_tracks: tuple[Track, ...] = ()
    if audio:
        # The encoder's priming samples sit before the period's first real sample.
        a_tracks = (Track(AUDIO, "audio", audio[0].codec, audio[0].timescale, tuple(audio),
                          sample_rate=audio_codec.sample_rate, channels=audio_codec.channels,
                          presentation_time_offset=audio[0].start + AAC_PRIMING_SAMPLES),)
    return v_tracks, a_tracks


def build_periods(source: SourceRecord, segments: Iterable[Segment],
                  audio_codec: AudioCodec | None = None) -> tuple[Period, ...]:
    """Group a stream's segments into periods (one per continuous run) of checked tracks."""
    audio_codec = audio_codec or AudioCodec()
    by_period: dict[int, list[Segment]] = defaultdict(list)
    for s in segments:
        by_period[s.period].append(s)
    periods = []
    for number in sorted(by_period):
        tracks = _by_track(by_period[number])
        audio = tracks.pop(AUDIO, [])
        if not tracks:
            continue  # audio ahead of its video: listed once the video is there
        v_tracks, a_tracks = _period_tracks(source, tracks, audio, audio_codec)
        ends = {t.segments[-1].number for t in v_tracks}
        if len(ends) != 1 or len({t.start_number for t in v_tracks}) != 1:
            raise ReduceError(f"{source.stream_id}: renditions of period {number} "
                              "cover different segments")
        periods.append(Period(str(number), v_tracks[0].segments[0].start_seconds, v_tracks,
                              a_tracks))
    if not periods:
        raise ReduceError(f"{source.stream_id}: no video segments")
    return tuple(periods)


def build_presentation(source: SourceRecord, segments: Iterable[Segment],
                       audio: AudioCodec | None = None, expected_segments: int | None = None,
                       base_urls: tuple[str, ...] = ()) -> Presentation:
    """The VOD presentation of a finished stream. Raises ReduceError."""
    segments = list(segments)
    periods = build_periods(source, segments, audio)
    if expected_segments is not None:
        for t in periods[0].video:
            if len(t.segments) != expected_segments:
                raise ReduceError(f"{source.stream_id}/{t.id}: {len(t.segments)} segments, "
                                  f"expected {expected_segments}")
    if source.audio and not any(p.audio for p in periods):
        raise ReduceError(f"{source.stream_id}: the source has audio but no audio segments")
    return Presentation(source.stream_id, periods,
                        segment_seconds=source.segment_frames / float(source.grid.frame_rate),
                        base_urls=base_urls)


def build_outputs(source: SourceRecord, segments: list[Segment],
                  audio: AudioCodec | None = None) -> StreamOutputs:
    """Catalog, media playlists, then master playlist and MPD (written last)."""
    p = build_presentation(source, segments, audio, source.expected_segments)
    layout = StreamLayout(source.stream_id)
    files: list[tuple[str, bytes]] = [(layout.catalog_file, catalog_bytes(segments))]
    for track_id in dict.fromkeys(t.id for period in p.periods
                                  for t in (*period.video, *period.audio)):
        files.append((layout.media_playlist(track_id), build_media(p, track_id).encode()))
    files.append((layout.master_playlist, build_master(p).encode()))
    files.append((layout.manifest, build_mpd(p).encode()))
    return StreamOutputs(source.stream_id, tuple(files), len(segments),
                         sum(s.bytes for s in segments))
