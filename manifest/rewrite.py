"""Serve-time edits of stored manifests, and reading the live edge out of them. Pure.

The job writes manifests with relative segment URLs and no notion of where they
will be served from; the origin list is a deployment fact, so it is applied
here, per response: one MPD `BaseURL` per origin, one redundant HLS variant
set per origin.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from manifest.mpd import ManifestError, parse_mpd
from manifest.tags import ENDLIST, EXTINF, MEDIA, NS, STREAM_INF, UTC_HTTP_ISO

# MPD children that the schema puts before BaseURL; BaseURL goes after the last of these.
_BEFORE_BASEURL = {f"{{{NS}}}ProgramInformation"}



def is_dynamic_mpd(text: bytes | str) -> bool:
    """True for a live MPD (type="dynamic"). Raises ManifestError."""
    return parse_mpd(text).get("type") == "dynamic"


def is_live_playlist(text: bytes | str) -> bool:
    """An HLS media playlist still growing (no ENDLIST); a master playlist counts as not live."""
    s = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return EXTINF in s and ENDLIST not in s


def rewrite_mpd(text: bytes | str, base_urls: list[str], clock_url: str | None) -> bytes:
    """The MPD with `base_urls` as its BaseURLs (replacing stored ones, in order) and, when
    dynamic and without one, a UTCTiming element naming `clock_url`. Raises ManifestError."""
    root = parse_mpd(text)
    if base_urls:
        for old in root.findall(f"{{{NS}}}BaseURL"):
            root.remove(old)
        pos = 0
        for i, child in enumerate(root):
            if child.tag in _BEFORE_BASEURL:
                pos = i + 1
        for offset, url in enumerate(base_urls):
            el = etree.Element(f"{{{NS}}}BaseURL", serviceLocation=f"origin-{offset}")
            el.text = url
            el.tail = "\n  "
            root.insert(pos + offset, el)
    if clock_url and root.get("type") == "dynamic" and root.find(f"{{{NS}}}UTCTiming") is None:
        # UTCTiming is the last child the schema allows.
        etree.SubElement(root, f"{{{NS}}}UTCTiming", schemeIdUri=UTC_HTTP_ISO,
                         value=clock_url)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def redundant_master(text: bytes | str, stream_bases: list[str]) -> bytes:
    """An HLS master playlist whose variants are repeated once per origin (absolute URIs).

    Each copy gets its own audio GROUP-ID, so a player that drops one origin also drops
    that origin's audio rendition instead of fetching it from the dead host.
    """
    s = text.decode("utf-8") if isinstance(text, bytes) else text
    if not stream_bases:
        return s.encode("utf-8")
    lines = s.splitlines()
    head = [ln for ln in lines if ln.startswith("#") and not ln.startswith((STREAM_INF, MEDIA))]
    out = [ln for ln in head if ln.strip()]
    for i, base in enumerate(stream_bases):
        suffix = "" if i == 0 else f"-{i}"
        pending: str | None = None
        for ln in lines:
            if ln.startswith(MEDIA):
                out.append(_absolute_uri(_regroup(ln, suffix), base))
            elif ln.startswith(STREAM_INF):
                pending = _regroup(ln, suffix)
            elif pending is not None and ln and not ln.startswith("#"):
                out += [pending, base + ln]
                pending = None
    return ("\n".join(out) + "\n").encode("utf-8")


def _regroup(line: str, suffix: str) -> str:
    for attr in ("GROUP-ID=", "AUDIO="):
        key = attr + '"'
        if key in line and suffix:
            start = line.index(key) + len(key)
            end = line.index('"', start)
            line = line[:end] + suffix + line[end:]
    return line


def _absolute_uri(line: str, base: str) -> str:
    key = 'URI="'
    if key not in line:
        return line
    start = line.index(key) + len(key)
    return line[:start] + base + line[start:]


@dataclass(frozen=True)
class EdgeSegment:
    rendition: str
    number: int


def edge_segments(text: bytes | str, seconds: float) -> tuple[list[str], list[EdgeSegment]]:
    """Renditions of the last Period and their segments ending in the newest `seconds`.

    Reads SegmentTemplate + SegmentTimeline (on the AdaptationSet or the Representation),
    the form manifest/mpd.py writes. Raises ManifestError.
    """
    root = parse_mpd(text)
    periods = root.findall(f"{{{NS}}}Period")
    if not periods:
        return [], []
    renditions: list[str] = []
    found: list[EdgeSegment] = []
    for aset in periods[-1].findall(f"{{{NS}}}AdaptationSet"):
        set_tpl = aset.find(f"{{{NS}}}SegmentTemplate")
        for rep in aset.findall(f"{{{NS}}}Representation"):
            tpl = rep.find(f"{{{NS}}}SegmentTemplate")
            tpl = tpl if tpl is not None else set_tpl
            rid = rep.get("id")
            if tpl is None or not rid:
                continue
            renditions.append(rid)
            found += [EdgeSegment(rid, n) for n in _newest_numbers(tpl, seconds)]
    return renditions, found


def _newest_numbers(tpl: etree._Element, seconds: float) -> list[int]:
    try:
        timescale = int(tpl.get("timescale", "1"))
        number = int(tpl.get("startNumber", "1"))
        spans: list[tuple[int, int, int]] = []  # (number, start, end) in ticks
        t = 0
        for s in tpl.iterfind(f"{{{NS}}}SegmentTimeline/{{{NS}}}S"):
            t = int(s.get("t", t))
            d = int(s.get("d", "0"))
            for _ in range(max(0, int(s.get("r", "0"))) + 1):
                spans.append((number, t, t + d))
                number, t = number + 1, t + d
    except ValueError as exc:
        raise ManifestError(f"bad SegmentTemplate: {exc}") from exc
    if not spans:
        return []
    newest_end = spans[-1][2]
    window = seconds * timescale
    return [n for n, _, end in spans if newest_end - end < window]
