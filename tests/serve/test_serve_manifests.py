"""Serve-time manifest edits (BaseURLs, UTCTiming, redundant HLS variants) and edge reading."""

from __future__ import annotations

from lxml import etree

from manifest.rewrite import (
    NS,
    edge_segments,
    is_dynamic_mpd,
    is_live_playlist,
    redundant_master,
    rewrite_mpd,
)

LIVE_MPD = f"""<?xml version="1.0"?>
<MPD xmlns="{NS}" type="dynamic" availabilityStartTime="2026-01-01T00:00:00Z"
     minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT60S" minBufferTime="PT4S">
  <ProgramInformation/>
  <Period id="0" start="PT0S">
    <AdaptationSet contentType="video" mimeType="video/mp4">
      <SegmentTemplate timescale="1000" startNumber="5"
                       media="out/$RepresentationID$/$Number%08d$.m4s"
                       initialization="out/$RepresentationID$/init.mp4">
        <SegmentTimeline><S t="10000" d="2000" r="9"/><S d="1500"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="720p" bandwidth="2800000"/>
      <Representation id="360p" bandwidth="800000"/>
    </AdaptationSet>
  </Period>
</MPD>"""

MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="audio",DEFAULT=YES,URI="audio.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1000000,CODECS="avc1.4d401e,mp4a.40.2",AUDIO="aac"
360p.m3u8
"""


def _children(xml: bytes) -> list[str]:
    return [etree.QName(c).localname for c in etree.fromstring(xml)]


def test_base_urls_go_after_program_information_in_order_replacing_stored_ones():
    src = LIVE_MPD.replace("<ProgramInformation/>", "<ProgramInformation/><BaseURL>old/</BaseURL>")
    out = rewrite_mpd(src, ["http://a:1/streams/s/", "http://b:2/streams/s/"], None)
    root = etree.fromstring(out)
    assert _children(out)[:4] == ["ProgramInformation", "BaseURL", "BaseURL", "Period"]
    assert [b.text for b in root.findall(f"{{{NS}}}BaseURL")] == [
        "http://a:1/streams/s/", "http://b:2/streams/s/"]


def test_utc_timing_added_last_for_dynamic_only():
    out = rewrite_mpd(LIVE_MPD, [], "http://h/clock")
    assert _children(out)[-1] == "UTCTiming"
    timing = etree.fromstring(out).find(f"{{{NS}}}UTCTiming")
    assert timing.get("value") == "http://h/clock"
    static = LIVE_MPD.replace('type="dynamic"', 'type="static"')
    assert "UTCTiming" not in _children(rewrite_mpd(static, [], "http://h/clock"))
    assert is_dynamic_mpd(LIVE_MPD) and not is_dynamic_mpd(static)


def test_edge_segments_are_the_newest_seconds_of_every_representation():
    renditions, edge = edge_segments(LIVE_MPD, 5.0)
    assert renditions == ["720p", "360p"]
    # 11 segments numbered 5..15; the last ends at 31.5 s; newest 5 s = ends after 26.5 s
    assert [(e.rendition, e.number) for e in edge] == [
        ("720p", 13), ("720p", 14), ("720p", 15), ("360p", 13), ("360p", 14), ("360p", 15)]


def test_redundant_master_repeats_variants_per_origin_with_own_audio_group():
    out = redundant_master(MASTER, ["http://a/streams/s/", "http://b/streams/s/"]).decode()
    lines = out.splitlines()
    assert lines[:3] == ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    assert [ln for ln in lines if not ln.startswith("#")] == [
        "http://a/streams/s/360p.m3u8", "http://b/streams/s/360p.m3u8"]
    assert 'GROUP-ID="aac-1"' in out and 'AUDIO="aac-1"' in out
    assert 'URI="http://b/streams/s/audio.m3u8"' in out
    assert redundant_master(MASTER, []).decode() == MASTER


def test_live_playlist_has_no_endlist():
    assert is_live_playlist("#EXTM3U\n#EXTINF:2,\na.m4s\n")
    assert not is_live_playlist("#EXTM3U\n#EXTINF:2,\na.m4s\n#EXT-X-ENDLIST\n")
    assert not is_live_playlist(MASTER)
