"""DASH MPD writer: a Presentation in, MPD text out. Pure (lxml, no I/O).

Element and attribute names follow ISO/IEC 23009-1; see docs/MANIFESTS.md for
what each choice is for.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from fractions import Fraction

from lxml import etree

from hdfs_layout.layout import StreamLayout
from manifest.presentation import (
    EVENT_SCHEME,
    Event,
    Period,
    Presentation,
    Track,
    max_segment_seconds,
)
from manifest.tags import AUDIO_CHANNELS_SCHEME, NS, PROFILE_CMAF, PROFILE_LIVE, UTC_HTTP_ISO
from manifest.timeline import build_timeline


def duration(seconds: float) -> str:
    """xs:duration with millisecond precision, e.g. PT30.030S."""
    return f"PT{seconds:.3f}S"


_XS_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?"
                          r"(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?\Z")


def parse_duration(text: str) -> float:
    """Seconds of an xs:duration as MPDs use it (PnDTnHnMnS). Raises ValueError."""
    m = _XS_DURATION.match(text.strip())
    if m is None or text.strip() in ("P", "PT"):
        raise ValueError(f"not an xs:duration: {text!r}")
    d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


def date_time(unix: float) -> str:
    """xs:dateTime in UTC with milliseconds, e.g. 2026-11-25T20:00:00.000Z."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def period_id(number: int | str) -> str:
    """The Period@id of a stream's period `number` (its publish, counted from 0)."""
    return f"p{number}"


class ManifestError(ValueError):
    """A stored manifest that cannot be parsed."""


def parse_mpd(text: bytes | str) -> etree._Element:
    """An MPD's root element. Raises ManifestError when it does not parse."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        # no network, no entities: the MPD comes from our own storage, but be strict anyway
        return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise ManifestError(f"MPD does not parse: {exc}") from exc


def _el(parent: etree._Element, tag: str, **attrs: object) -> etree._Element:
    return etree.SubElement(parent, f"{{{NS}}}{tag}",
                            {k: str(v) for k, v in attrs.items() if v is not None})


def _segment_template(parent: etree._Element, track: Track) -> None:
    tpl = _el(parent, "SegmentTemplate", timescale=track.timescale,
              presentationTimeOffset=track.presentation_time_offset or None,
              initialization=StreamLayout.INIT_TEMPLATE, media=StreamLayout.SEGMENT_TEMPLATE,
              startNumber=track.start_number)
    timeline = _el(tpl, "SegmentTimeline")
    for s in build_timeline(track.segments):
        _el(timeline, "S", t=s.t, d=s.d, r=s.r or None)


def _par(width: int, height: int) -> str:
    ratio = Fraction(width, height)
    return f"{ratio.numerator}:{ratio.denominator}"


def _video_set(period_el: etree._Element, tracks: tuple[Track, ...], set_id: int) -> None:
    top = max(tracks, key=lambda t: t.height)
    aset = _el(period_el, "AdaptationSet", id=set_id, contentType="video", mimeType="video/mp4",
               segmentAlignment="true", startWithSAP=1, frameRate=top.frame_rate,
               maxWidth=top.width, maxHeight=top.height, par=_par(top.width, top.height))
    # Every rung has the same frames and segment grid, so one timeline serves them all.
    _segment_template(aset, top)
    for t in sorted(tracks, key=lambda t: -t.height):
        _el(aset, "Representation", id=t.id, bandwidth=t.average_bitrate, codecs=t.codec,
            width=t.width, height=t.height, sar="1:1")


def _audio_set(period_el: etree._Element, track: Track, set_id: int) -> None:
    aset = _el(period_el, "AdaptationSet", id=set_id, contentType="audio", mimeType="audio/mp4",
               lang="und", segmentAlignment="true", startWithSAP=1)
    _el(aset, "AudioChannelConfiguration", schemeIdUri=AUDIO_CHANNELS_SCHEME,
        value=track.channels)
    _segment_template(aset, track)
    _el(aset, "Representation", id=track.id, bandwidth=track.average_bitrate,
        codecs=track.codec, audioSamplingRate=track.sample_rate)


def _event_stream(period_el: etree._Element, period: Period, events: tuple[Event, ...],
                  anchor: float, period_end: float | None) -> None:
    """Notices overlapping the period, in ms from its start (EventStream before the sets)."""
    start_unix = anchor + period.start
    mine = [e for e in events
            if (e.duration is None or e.start + e.duration > start_unix)
            and (period_end is None or e.start < anchor + period_end)]
    if not mine:
        return
    stream = _el(period_el, "EventStream", schemeIdUri=EVENT_SCHEME, value="notice",
                 timescale=1000)
    for e in mine:
        begin = max(0.0, e.start - start_unix)
        dur = None if e.duration is None else round((e.start + e.duration - start_unix
                                                     - begin) * 1000)
        ev = _el(stream, "Event", id=e.id, presentationTime=round(begin * 1000), duration=dur)
        ev.text = f"{e.kind}: {e.text}"


def _period(root: etree._Element, period: Period, p: Presentation | None = None,
            period_end: float | None = None) -> None:
    media_end = period.media_end
    # A period followed by a gap (a publisher's reconnect) ends where its media ends: left
    # open, it would reach the next period's start, and a player aiming into the gap
    # would wait there for segments that never come.
    closed = p is not None and period is not p.periods[-1] and period_end is not None \
        and media_end < period_end - 0.001
    el = _el(root, "Period", id=period_id(period.id), start=duration(period.start),
             duration=duration(media_end - period.start) if closed else None)
    if p is not None and p.events and p.wallclock_anchor is not None:
        _event_stream(el, period, p.events, p.wallclock_anchor, period_end)
    _video_set(el, period.video, 0)
    for i, audio in enumerate(period.audio, start=1):
        _audio_set(el, audio, i)


def build_mpd(p: Presentation) -> str:
    """Static MPD for a finished presentation, dynamic while p.live is set."""
    tracks = [t for period in p.periods for t in (*period.video, *period.audio)]
    longest = max_segment_seconds(tracks)
    root = etree.Element(f"{{{NS}}}MPD", nsmap={None: NS})
    root.set("profiles", f"{PROFILE_LIVE},{PROFILE_CMAF}")
    if p.live:
        root.set("type", "dynamic")
        root.set("availabilityStartTime", date_time(p.live.availability_start))
        root.set("publishTime", date_time(p.live.publish_time))
        root.set("minimumUpdatePeriod", duration(p.live.minimum_update_period))
        root.set("timeShiftBufferDepth", duration(p.live.time_shift_buffer_depth))
        root.set("suggestedPresentationDelay", duration(p.live.suggested_presentation_delay))
        root.set("maxSegmentDuration", duration(longest))
    else:
        root.set("type", "static")
        root.set("mediaPresentationDuration", duration(p.duration))
    root.set("minBufferTime", duration(math.ceil(longest * 2)))
    for url in p.base_urls:
        _el(root, "BaseURL").text = url
    for i, period in enumerate(p.periods):
        end = p.periods[i + 1].start if i + 1 < len(p.periods) else (
            None if p.live else p.duration)
        _period(root, period, p, end)
    if p.live:
        _el(root, "UTCTiming", schemeIdUri=UTC_HTTP_ISO, value=p.live.utc_timing_url)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                          pretty_print=True).decode("utf-8")
