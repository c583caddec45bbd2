"""HLS playlists over the same CMAF segments: master + one media playlist per track. Pure."""

from __future__ import annotations

import math

from hdfs_layout.layout import StreamLayout
from manifest.mpd import date_time
from manifest.presentation import EVENT_SCHEME, Event, Presentation, Track
from manifest.tags import (
    DATERANGE,
    DISCONTINUITY,
    DISCONTINUITY_SEQUENCE,
    ENDLIST,
    EXTINF,
    EXTM3U,
    INDEPENDENT,
    MAP,
    MEDIA,
    MEDIA_SEQUENCE,
    PLAYLIST_TYPE,
    PROGRAM_DATE_TIME,
    STREAM_INF,
    TARGETDURATION,
    VERSION,
    quoted,
)

PROTOCOL_VERSION = 7  # fMP4 segments with EXT-X-MAP in a playlist without I-frames only
AUDIO_GROUP = "aac"


def _tracks(p: Presentation, kind: str) -> list[Track]:
    """Each track id once, from the first period that has it."""
    seen: dict[str, Track] = {}
    for period in p.periods:
        for t in (period.video if kind == "video" else period.audio):
            seen.setdefault(t.id, t)
    return list(seen.values())


def build_master(p: Presentation) -> str:
    audio = _tracks(p, "audio")
    lines = [EXTM3U, f"{VERSION}:{PROTOCOL_VERSION}", INDEPENDENT]
    for a in audio:
        lines.append(f'{MEDIA}:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="{a.id}",DEFAULT=YES,'
                     f'AUTOSELECT=YES,CHANNELS="{a.channels}",'
                     f'URI="{StreamLayout.media_playlist_name(a.id)}"')
    audio_peak = max((a.peak_bitrate for a in audio), default=0)
    audio_avg = max((a.average_bitrate for a in audio), default=0)
    audio_codec = audio[0].codec if audio else None
    for v in sorted(_tracks(p, "video"), key=lambda t: -t.height):
        codecs = ",".join(c for c in (v.codec, audio_codec) if c)
        attrs = [f"BANDWIDTH={v.peak_bitrate + audio_peak}",
                 f"AVERAGE-BANDWIDTH={v.average_bitrate + audio_avg}",
                 f'CODECS="{codecs}"', f"RESOLUTION={v.width}x{v.height}",
                 f"FRAME-RATE={_rate(v.frame_rate)}"]
        if audio:
            attrs.append(f'AUDIO="{AUDIO_GROUP}"')
        lines += [f"{STREAM_INF}:{','.join(attrs)}", StreamLayout.media_playlist_name(v.id)]
    return "\n".join(lines) + "\n"


def _rate(frame_rate: str) -> str:
    num, _, den = frame_rate.partition("/")
    return f"{int(num) / int(den or 1):.3f}"


def _daterange(e: Event) -> str:
    attrs = [f'ID="notice-{e.id}"', f'CLASS="{EVENT_SCHEME}:{e.kind}"',
             f'START-DATE="{date_time(e.start)}"']
    if e.duration is not None:
        attrs.append(f"DURATION={e.duration:.3f}")
    attrs.append(f'X-SPARKCAST-TEXT="{quoted(e.text)}"')
    return f"{DATERANGE}:{','.join(attrs)}"


def build_media(p: Presentation, track_id: str) -> str:
    """Media playlist of one track across every period: VOD, or a live sliding window."""
    parts = [(period, t) for period in p.periods
             for t in (*period.video, *period.audio) if t.id == track_id]
    if not parts:
        raise KeyError(f"no track {track_id!r} in stream {p.stream_id}")
    longest = max(s.duration_seconds for _, t in parts for s in t.segments)
    lines = [EXTM3U, f"{VERSION}:{PROTOCOL_VERSION}",
             f"{TARGETDURATION}:{max(1, math.floor(longest + 0.5))}",
             f"{MEDIA_SEQUENCE}:{parts[0][1].start_number}"]
    if p.live:
        # Period n follows n discontinuities since the stream began.
        lines.append(f"{DISCONTINUITY_SEQUENCE}:{int(parts[0][0].id)}")
    else:
        lines.append(f"{PLAYLIST_TYPE}:VOD")
    lines.append(INDEPENDENT)
    if p.wallclock_anchor is not None:
        lines += [_daterange(e) for e in p.events]
    for i, (period, track) in enumerate(parts):
        if i:
            lines.append(DISCONTINUITY)
        lines.append(f'{MAP}:URI="{StreamLayout.relative_init(track.id)}"')
        for j, s in enumerate(track.segments):
            if p.wallclock_anchor is not None and j == 0:
                offset = (s.start - track.presentation_time_offset) / s.timescale
                lines.append(f"{PROGRAM_DATE_TIME}:"
                             f"{date_time(p.wallclock_anchor + period.start + offset)}")
            lines += [f"{EXTINF}:{s.duration_seconds:.5f},",
                      StreamLayout.relative_segment(track.id, s.number)]
    if not p.live:
        lines.append(ENDLIST)
    return "\n".join(lines) + "\n"
