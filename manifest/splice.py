"""Splicing ad breaks into manifests at the origin (server-side ad insertion). Pure.

An ad creative is transcoded by the same pipeline into a stream of its own (same
ladder, same codecs), so an ad break is a manifest edit, never a re-encode:

- DASH: the content Period is cut at the break; the ad's Period (its AdaptationSets,
  segment URLs pointing at the ad's stream) goes between the two halves; the second
  half is the same Period again with `presentationTimeOffset` moved on, so the player
  resumes exactly where the content was cut.
- HLS: the ad's segments go between `EXT-X-DISCONTINUITY` tags, with their own
  `EXT-X-MAP` and an `EXT-X-DATERANGE` (CLASS "com.sparkcast.ad") naming the break.

VOD breaks are inserted: the content pauses at the offset, the presentation grows by
the ad's length. Live breaks replace: the content made during the ad is not shown and
the viewer comes back to the live programme, like a broadcast ad slot. The cut is
snapped to a segment boundary (a keyframe), and a live return is snapped up to the next
one, so every Period starts on a keyframe.

The ad Period's id is "ad-<break id>": the player counts impressions by it.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from manifest.mpd import ManifestError, date_time, duration, parse_duration, parse_mpd
from manifest.tags import (
    BYTERANGE,
    DATERANGE,
    DISCONTINUITY,
    DISCONTINUITY_SEQUENCE,
    ENDLIST,
    EXTINF,
    EXTM3U,
    MAP,
    MEDIA_SEQUENCE,
    NS,
    PROGRAM_DATE_TIME,
    TARGETDURATION,
)

AD_PERIOD_PREFIX = "ad-"
DATERANGE_CLASS = "com.sparkcast.ad"
_EPS = 1e-3

_Q = {
    "period": f"{{{NS}}}Period",
    "aset": f"{{{NS}}}AdaptationSet",
    "tmpl": f"{{{NS}}}SegmentTemplate",
    "timeline": f"{{{NS}}}SegmentTimeline",
    "s": f"{{{NS}}}S",
    "events": f"{{{NS}}}EventStream",
}


@dataclass(frozen=True)
class AdMedia:
    """A transcoded creative: its stream id, length, static MPD and HLS media playlists."""

    stream_id: str
    duration: float
    mpd: bytes
    playlists: Mapping[str, str]  # rendition name ("720p", "audio") -> media playlist


@dataclass(frozen=True)
class Splice:
    """One ad break to apply: VOD `at` is content media seconds; live `at` is Unix time."""

    break_id: int
    at: float
    ad: AdMedia


# --- DASH --------------------------------------------------------------------------------

def _seconds(value: str | None, default: float = 0.0) -> float:
    return parse_duration(value) if value else default


def _fmt(seconds: float) -> str:
    return duration(seconds)


def _boundaries(period: etree._Element) -> list[float]:
    """Period-relative start times (s) of the video segments listed, plus the end of the last."""
    for aset in period.iter(_Q["aset"]):
        if aset.get("contentType") != "video":
            continue
        tmpl = aset.find(_Q["tmpl"])
        timeline = tmpl.find(_Q["timeline"]) if tmpl is not None else None
        if timeline is None:
            continue
        scale = int(tmpl.get("timescale", "1"))
        pto = int(tmpl.get("presentationTimeOffset", "0"))
        out: list[float] = []
        t = 0
        for s in timeline.iter(_Q["s"]):
            t = int(s.get("t", t))
            d = int(s.get("d"))
            for _ in range(int(s.get("r", "0")) + 1):
                out.append((t - pto) / scale)
                t += d
        out.append((t - pto) / scale)
        return out
    return []


def _snap(boundaries: list[float], rel: float, *, up: bool) -> float:
    """A segment boundary near `rel` (the nearest, or the first at or after it when `up`);
    beyond the listed segments, continue at the last segment's duration (live)."""
    if not boundaries:
        return rel
    step = boundaries[-1] - boundaries[-2] if len(boundaries) > 1 else 0.0
    grid = list(boundaries)
    if step > 0 and rel > grid[-1]:
        grid += [grid[-1] + step * k for k in range(1, math.ceil((rel - grid[-1]) / step) + 2)]
    if up:
        return next((b for b in grid if b >= rel - _EPS), rel)
    return min(grid, key=lambda b: abs(b - rel))


def _shift_offsets(period: etree._Element, seconds: float) -> None:
    """Move every SegmentTemplate's and EventStream's presentationTimeOffset on by `seconds`."""
    for el in [*period.iter(_Q["tmpl"]), *period.iter(_Q["events"])]:
        scale = int(el.get("timescale", "1"))
        el.set("presentationTimeOffset",
               str(int(el.get("presentationTimeOffset", "0")) + round(seconds * scale)))


def ad_duration(mpd: bytes | str) -> float:
    """A (static) MPD's length in seconds. Raises ManifestError."""
    value = parse_mpd(mpd).get("mediaPresentationDuration")
    try:
        return parse_duration(value or "")
    except ValueError:
        raise ManifestError(f"MPD mediaPresentationDuration {value!r} is not usable") from None


def representation_ids(mpd: bytes | str) -> list[str]:
    return [r.get("id") for r in parse_mpd(mpd).iter(f"{{{NS}}}Representation") if r.get("id")]


def _ad_period(ad: AdMedia, break_id: int, start: float) -> etree._Element:
    ad_root = parse_mpd(ad.mpd)
    source = ad_root.find(_Q["period"])
    if source is None:
        raise ManifestError(f"ad stream {ad.stream_id}: its MPD has no Period")
    period = etree.Element(_Q["period"], id=f"{AD_PERIOD_PREFIX}{break_id}", start=_fmt(start),
                           duration=_fmt(ad.duration))
    prefix = f"../{ad.stream_id}/"
    for aset in source.iter(_Q["aset"]):
        aset = copy.deepcopy(aset)
        for tmpl in aset.iter(_Q["tmpl"]):
            for attr in ("initialization", "media"):
                if tmpl.get(attr):
                    tmpl.set(attr, prefix + tmpl.get(attr))
        period.append(aset)
    period.text, period.tail = "\n    ", "\n  "
    return period


def splice_mpd(text: bytes | str, splices: Sequence[Splice]) -> bytes:
    """The MPD with each break's ad Period spliced in (see the module doc).

    Static MPDs take VOD breaks (`at` in media seconds); dynamic ones take live breaks
    (`at` in Unix seconds, placed on the timeline at `at - availabilityStartTime`). A break
    outside every content Period is skipped. Raises ManifestError.
    """
    root = parse_mpd(text)
    dynamic = root.get("type") == "dynamic"
    availability_start = 0.0
    if dynamic:
        try:
            availability_start = _pdt("x:" + root.get("availabilityStartTime", ""))
        except ValueError:
            raise ManifestError("a dynamic MPD without availabilityStartTime") from None
    added = 0.0  # VOD: presentation time inserted so far
    for sp in sorted(splices, key=lambda s: (s.at, s.break_id)):
        at = sp.at - availability_start if dynamic else sp.at + added
        periods = root.findall(_Q["period"])
        for i, period in enumerate(periods):
            if (period.get("id") or "").startswith(AD_PERIOD_PREFIX):
                continue
            start = _seconds(period.get("start"))
            nxt = (_seconds(periods[i + 1].get("start")) if i + 1 < len(periods)
                   else _seconds(root.get("mediaPresentationDuration"), math.inf))
            end = min(nxt, start + _seconds(period.get("duration"), math.inf))
            if not start - _EPS <= at < end - _EPS:
                continue
            edges = _boundaries(period)
            cut = _snap(edges, at - start, up=dynamic)
            if start + cut >= end - _EPS:
                break
            # live: the content made during the ad is skipped, resuming on a keyframe
            resume = _snap(edges, cut + sp.ad.duration, up=True) if dynamic else cut
            room = end - (start + cut) if dynamic else math.inf
            length = min(sp.ad.duration, room)
            pos = root.index(period)
            had_duration = period.get("duration") is not None
            if cut > _EPS:
                period.set("duration", _fmt(cut))
                pos += 1
            else:
                root.remove(period)
            root.insert(pos, _ad_period(sp.ad, sp.break_id, start + cut))
            if dynamic and start + cut + length >= end - _EPS:
                break  # the ad runs to the next Period: nothing of this one comes back
            after = copy.deepcopy(period)
            after.set("id", f"{period.get('id')}-{sp.break_id}")
            after.set("start", _fmt(start + cut + length))
            after.attrib.pop("duration", None)
            if had_duration and math.isfinite(end):
                after.set("duration", _fmt(end - start - resume))
            _shift_offsets(after, resume)
            root.insert(pos + 1, after)
            if not dynamic:
                added += length
                if root.get("mediaPresentationDuration"):
                    root.set("mediaPresentationDuration", _fmt(
                        _seconds(root.get("mediaPresentationDuration")) + length))
                for later in after.itersiblings(_Q["period"]):
                    later.set("start", _fmt(_seconds(later.get("start")) + length))
            break
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --- HLS ---------------------------------------------------------------------------------

@dataclass
class _Segment:
    tags: list[str]  # tag lines before the URI that belong to this segment
    duration: float
    uri: str


def _parse_playlist(text: str) -> tuple[list[str], list[_Segment], list[str]]:
    """(header lines, segments, trailing lines). Tags between segments go with the next."""
    header: list[str] = []
    segments: list[_Segment] = []
    pending: list[str] = []
    seen_segment_tag = False
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            if line.startswith((EXTINF, DISCONTINUITY, MAP,
                                PROGRAM_DATE_TIME, DATERANGE,
                                BYTERANGE)) and not line.startswith(
                                    DISCONTINUITY_SEQUENCE):
                seen_segment_tag = True
            (pending if seen_segment_tag else header).append(line)
            continue
        extinf = next((t for t in pending if t.startswith(f"{EXTINF}:")), None)
        if extinf is None:
            raise ManifestError(f"playlist: segment {line!r} has no {EXTINF}")
        segments.append(_Segment(pending, float(extinf[8:].split(",")[0]), line))
        pending = []
    return header, segments, pending


def _header_int(header: list[str], tag: str) -> int:
    for line in header:
        if line.startswith(tag + ":"):
            return int(line.split(":", 1)[1])
    return 0


def _set_header(header: list[str], tag: str, value: int) -> list[str]:
    out = [f"{tag}:{value}" if line.startswith(tag + ":") else line for line in header]
    if not any(line.startswith(tag + ":") for line in header):
        out.insert(1 if out and out[0] == EXTM3U else 0, f"{tag}:{value}")
    return out


def _iso(t: float) -> str:
    return date_time(t)


def _pdt(line: str) -> float:
    return datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00")).timestamp()


_MAP = re.compile("^" + re.escape(MAP) + r':URI="([^"]+)"')


def _ad_segments(ad: AdMedia, rendition: str) -> tuple[str, list[_Segment]]:
    """(init URI, segments) of the ad rendition matching `rendition`, URIs made relative to
    the content's playlist (both live under streams/)."""
    text = ad.playlists.get(rendition) or ad.playlists[closest_rendition(rendition,
                                                                         list(ad.playlists))]
    _, segments, _ = _parse_playlist(text)
    init = next((m.group(1) for s in segments for t in s.tags if (m := _MAP.match(t))), None)
    if init is None:
        raise ManifestError(f"ad stream {ad.stream_id}: playlist has no EXT-X-MAP")
    prefix = f"../{ad.stream_id}/"
    return prefix + init, [_Segment([t for t in s.tags if t.startswith(EXTINF)],
                                    s.duration, prefix + s.uri) for s in segments]


def closest_rendition(name: str, available: list[str]) -> str:
    """The ad rendition to play in place of content rendition `name`: same name, else the
    tallest not taller, else the shortest ("720p" -> "480p" when the ad stops there)."""
    if name in available:
        return name
    def height(n: str) -> int:
        return int(n[:-1]) if n.endswith("p") and n[:-1].isdigit() else 0
    video = sorted((n for n in available if height(n)), key=height)
    if not video:
        raise ManifestError(f"ad has no rendition to stand in for {name!r}")
    lower = [n for n in video if height(n) <= height(name)]
    return lower[-1] if lower else video[0]


def _daterange(break_id: int, start: float, duration: float) -> str:
    return (f'{DATERANGE}:ID="ad-{break_id}",CLASS="{DATERANGE_CLASS}",'
            f'START-DATE="{_iso(start)}",DURATION={duration:.3f}')


def splice_playlist(text: str, rendition: str, splices: Sequence[Splice],
                    pdt_offset: float = 0.0) -> str:
    """The HLS media playlist of `rendition` with the breaks spliced in (see module doc).

    A VOD playlist (ENDLIST) gets its breaks inserted at `at` media seconds and program
    dates counted from 1970-01-01 (EXT-X-DATERANGE needs one). A live playlist has program
    dates; a break at Unix time `at` replaces the segments from `at + pdt_offset` on, one
    ad segment per content segment, so media sequence numbers keep naming the same slots
    while the window slides. Raises ManifestError.
    """
    header, segments, trailer = _parse_playlist(text)
    if not splices or not segments:
        return text
    vod = any(line.startswith(ENDLIST) for line in (*header, *trailer))
    out = _splice_vod(segments, rendition, splices) if vod else None
    first_seq = _header_int(header, MEDIA_SEQUENCE)
    if out is None:
        out, extra = _splice_live(segments, rendition, splices, pdt_offset, first_seq)
        header = _set_header(header, DISCONTINUITY_SEQUENCE,
                             _header_int(header, DISCONTINUITY_SEQUENCE) + extra)
    longest = max(s.duration for s in out)
    header = _set_header(header, TARGETDURATION,
                         max(_header_int(header, TARGETDURATION), round(longest)))
    lines = [*header]
    for s in out:
        lines += [*s.tags, s.uri]
    return "\n".join([*lines, *trailer]) + "\n"


def _content_map(segments: list[_Segment], upto: int) -> str:
    for s in reversed(segments[: upto + 1]):
        for t in s.tags:
            if t.startswith(MAP):
                return t
    raise ManifestError("playlist has no EXT-X-MAP")


def _splice_vod(segments: list[_Segment], rendition: str,
                splices: Sequence[Splice]) -> list[_Segment]:
    starts, t = [], 0.0
    for s in segments:
        starts.append(t)
        t += s.duration
    total = t
    at_index: dict[int, list[Splice]] = {}
    for sp in splices:
        if not 0 <= sp.at < total - _EPS:
            continue
        i = min(range(len(starts)), key=lambda k: abs(starts[k] - sp.at))
        at_index.setdefault(i, []).append(sp)
    out: list[_Segment] = []
    clock = 0.0  # spliced presentation time
    for i, seg in enumerate(segments):
        tags = [t for t in seg.tags if not t.startswith(PROGRAM_DATE_TIME)]
        resumed = False
        for sp in sorted(at_index.get(i, []), key=lambda s: s.break_id):
            init, ads = _ad_segments(sp.ad, rendition)
            for k, a in enumerate(ads):
                head = ([DISCONTINUITY, f'{MAP}:URI="{init}"',
                         f"{PROGRAM_DATE_TIME}:{_iso(clock)}",
                         _daterange(sp.break_id, clock, sp.ad.duration)] if k == 0 else [])
                out.append(_Segment([*head, *a.tags], a.duration, a.uri))
            clock += sum(a.duration for a in ads)
            resumed = True
        if resumed:
            content_map = _content_map(segments, i)
            tags = [DISCONTINUITY, content_map,
                    *[t for t in tags if not t.startswith(MAP)]]
        if i == 0 or resumed:
            tags.insert(len(tags) - 1, f"{PROGRAM_DATE_TIME}:{_iso(clock)}")
        out.append(_Segment(tags, seg.duration, seg.uri))
        clock += seg.duration
    return out


def _splice_live(segments: list[_Segment], rendition: str, splices: Sequence[Splice],
                 pdt_offset: float, first_seq: int) -> tuple[list[_Segment], int]:
    """(segments, discontinuities that slid out of the window before the first segment)."""
    # each segment's program date, carried forward from the last tag
    dates: list[float] = []
    date: float | None = None
    for s in segments:
        tag = next((t for t in s.tags if t.startswith(PROGRAM_DATE_TIME)), None)
        if tag is not None:
            date = _pdt(tag)
        if date is None:
            raise ManifestError("live playlist has no EXT-X-PROGRAM-DATE-TIME")
        dates.append(date)
        date += s.duration
    step = sorted(s.duration for s in segments)[len(segments) // 2]
    # slot -> (splice, index of the ad segment in it); slots are media sequence numbers
    slots: dict[int, tuple[Splice, int]] = {}
    gone = 0
    for sp in sorted(splices, key=lambda s: (s.at, s.break_id)):
        when = sp.at + pdt_offset
        first = next((first_seq + i for i, d in enumerate(dates) if d >= when - _EPS), None)
        if first is None:  # after the window: not listed yet
            continue
        if first == first_seq:  # may have begun before the window: count back slots
            first -= math.floor((dates[0] - when + _EPS) / step)
        _, ads = _ad_segments(sp.ad, rendition)
        if any(first + k in slots for k in range(len(ads))):
            continue  # overlaps an earlier break: the earlier one wins
        for k in range(len(ads)):
            slots[first + k] = (sp, k)
        gone += (first < first_seq) + (first + len(ads) < first_seq)
    out: list[_Segment] = []
    for i, seg in enumerate(segments):
        seq = first_seq + i
        slot = slots.get(seq)
        prev = slots.get(seq - 1)
        if slot is None:
            tags = list(seg.tags)
            if prev is not None or i == 0:
                tags = [t for t in tags if not t.startswith((MAP,
                                                             PROGRAM_DATE_TIME))]
                head = [DISCONTINUITY] if prev is not None else []
                tags = [*head, _content_map(segments, i),
                        f"{PROGRAM_DATE_TIME}:{_iso(dates[i])}", *tags]
            out.append(_Segment(tags, seg.duration, seg.uri))
            continue
        sp, k = slot
        init, ads = _ad_segments(sp.ad, rendition)
        ad = ads[k]
        head: list[str] = []
        if k == 0 or i == 0:
            if k == 0 and i > 0:
                head.append(DISCONTINUITY)
            head += [f'{MAP}:URI="{init}"', f"{PROGRAM_DATE_TIME}:{_iso(dates[i])}"]
            if k == 0:
                head.append(_daterange(sp.break_id, dates[i], sp.ad.duration))
        out.append(_Segment([*head, *ad.tags], ad.duration, ad.uri))
    return out, gone
