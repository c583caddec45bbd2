"""The reduce step: one stream's segments -> manifests and catalog. Pure.

Everything is checked before anything is produced: a rendition with a missing
segment, a tfdt gap or an init segment that differs between chunks raises
ReduceError, and no manifest lists it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from hdfs_layout.layout import AUDIO, StreamLayout
from ingest.records import SourceRecord
from jobs.catalog import catalog_bytes
from jobs.encode import AAC_PRIMING_SAMPLES, AudioCodec
from jobs.hls import build_master, build_media
from jobs.mpd import build_mpd
from jobs.presentation import Period, Presentation, Track
from jobs.segments import Segment
from jobs.timeline import TimelineError, check_contiguous


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
            check_contiguous(segs)
        except TimelineError as exc:
            raise ReduceError(str(exc)) from exc
    return tracks


def build_presentation(source: SourceRecord, segments: Iterable[Segment],
                       audio: AudioCodec | None = None, expected_segments: int | None = None,
                       base_urls: tuple[str, ...] = ()) -> Presentation:
    tracks = _by_track(segments)
    audio = audio or AudioCodec()
    video = []
    for name, segs in tracks.items():
        if name == AUDIO:
            continue
        if expected_segments is not None and len(segs) != expected_segments:
            raise ReduceError(f"{source.stream_id}/{name}: {len(segs)} segments, "
                              f"expected {expected_segments}")
        video.append(Track(name, "video", segs[0].codec, segs[0].timescale, tuple(segs),
                           width=segs[0].width, height=segs[0].height,
                           frame_rate=source.frame_rate))
    if not video:
        raise ReduceError(f"{source.stream_id}: no video segments")
    audio_tracks = ()
    if AUDIO in tracks:
        segs = tracks[AUDIO]
        audio_tracks = (Track(AUDIO, "audio", segs[0].codec, segs[0].timescale, tuple(segs),
                              sample_rate=audio.sample_rate, channels=audio.channels,
                              presentation_time_offset=AAC_PRIMING_SAMPLES),)
    elif source.audio:
        raise ReduceError(f"{source.stream_id}: the source has audio but no audio segments")
    period = Period("0", 0.0, tuple(sorted(video, key=lambda t: -t.height)), audio_tracks)
    return Presentation(source.stream_id, (period,),
                        segment_seconds=source.segment_frames / float(source.grid.frame_rate),
                        base_urls=base_urls)


def build_outputs(source: SourceRecord, segments: list[Segment],
                  audio: AudioCodec | None = None) -> StreamOutputs:
    """Catalog, media playlists, then master playlist and MPD (written last)."""
    grid = source.grid
    expected = -(-source.frames // grid.segment_frames) if source.frames else None
    p = build_presentation(source, segments, audio, expected)
    layout = StreamLayout(source.stream_id)
    files: list[tuple[str, bytes]] = [(layout.catalog_file, catalog_bytes(segments))]
    for period in p.periods[:1]:
        for t in (*period.video, *period.audio):
            files.append((layout.media_playlist(t.id), build_media(p, t.id).encode()))
    files.append((layout.master_playlist, build_master(p).encode()))
    files.append((layout.manifest, build_mpd(p).encode()))
    return StreamOutputs(source.stream_id, tuple(files), len(segments),
                         sum(s.bytes for s in segments))
