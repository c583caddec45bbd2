"""manifest/splice.py on manifests shaped like the job's (pure; no server, no database)."""

from __future__ import annotations

import pytest
from lxml import etree

from manifest.mpd import date_time, parse_duration
from manifest.rewrite import ManifestError
from manifest.splice import AdMedia, Splice, closest_rendition, splice_mpd, splice_playlist

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
AST = 1_800_000_000.0  # availabilityStartTime of the live examples


def mpd(kind: str = "static", segments: int = 10, extra: str = "") -> bytes:
    head = ('type="static" mediaPresentationDuration="PT%.3fS"' % (2.0 * segments)
            if kind == "static" else
            f'type="dynamic" availabilityStartTime="{date_time(AST)}"')
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" {head} minBufferTime="PT5.000S">
  <Period id="p0" start="PT0.000S">{extra}
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4">
      <SegmentTemplate timescale="30000" initialization="out/$RepresentationID$/init.mp4"
          media="out/$RepresentationID$/$Number%08d$.m4s" startNumber="0">
        <SegmentTimeline><S t="0" d="60000" r="{segments - 1}"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="360p" bandwidth="800000" width="640" height="360"/>
      <Representation id="240p" bandwidth="400000" width="426" height="240"/>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4">
      <SegmentTemplate timescale="48000" presentationTimeOffset="1024"
          initialization="out/$RepresentationID$/init.mp4"
          media="out/$RepresentationID$/$Number%08d$.m4s" startNumber="0">
        <SegmentTimeline><S t="0" d="96256" r="{segments - 1}"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="audio" bandwidth="128000"/>
    </AdaptationSet>
  </Period>
</MPD>""".encode()


def playlist(rendition: str, segments: int, durations: list[float] | None = None,
             live_pdt: float | None = None, first_seq: int = 0) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:2",
             f"#EXT-X-MEDIA-SEQUENCE:{first_seq}"]
    if live_pdt is None:
        lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
    lines.append(f'#EXT-X-MAP:URI="out/{rendition}/init.mp4"')
    if live_pdt is not None:
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{date_time(live_pdt)}")
    for i in range(segments):
        d = durations[i] if durations else 2.0
        lines += [f"#EXTINF:{d:.5f},", f"out/{rendition}/{first_seq + i:08d}.m4s"]
    if live_pdt is None:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


AD = AdMedia("spot", 5.0, mpd(segments=3).replace(b"PT6.000S", b"PT5.000S"),
             {"360p": playlist("360p", 3, [2.0, 2.0, 1.0]),
              "audio": playlist("audio", 3, [2.0, 2.0, 1.0])})


def periods(data: bytes) -> list[tuple[str, float, float | None, list[int]]]:
    """(id, start, duration, presentationTimeOffsets) per Period."""
    root = etree.fromstring(data)
    out = []
    for p in root.findall("d:Period", NS):
        ptos = [int(t.get("presentationTimeOffset", "0"))
                for t in p.iterfind(".//d:SegmentTemplate", NS)]
        dur = p.get("duration")
        out.append((p.get("id"), parse_duration(p.get("start")),
                    parse_duration(dur) if dur else None, ptos))
    return out


def test_vod_midroll_pauses_the_content_and_resumes_where_it_was_cut() -> None:
    out = splice_mpd(mpd(), [Splice(7, 6.2, AD)])  # snapped to the 6 s boundary
    assert periods(out) == [("p0", 0.0, 6.0, [0, 1024]),
                            ("ad-7", 6.0, 5.0, [0, 1024]),
                            ("p0-7", 11.0, None, [6 * 30000, 1024 + 6 * 48000])]
    root = etree.fromstring(out)
    assert parse_duration(root.get("mediaPresentationDuration")) == 25.0
    ad_tmpl = root.find("d:Period[@id='ad-7']//d:SegmentTemplate", NS)
    assert ad_tmpl.get("media") == "../spot/out/$RepresentationID$/$Number%08d$.m4s"
    assert ad_tmpl.get("initialization") == "../spot/out/$RepresentationID$/init.mp4"


def test_vod_preroll_and_two_midrolls_keep_content_time_in_order() -> None:
    out = splice_mpd(mpd(), [Splice(3, 10.0, AD), Splice(1, 0.0, AD), Splice(2, 4.0, AD)])
    assert [(p[0], p[1], p[2]) for p in periods(out)] == [
        ("ad-1", 0.0, 5.0), ("p0-1", 5.0, 4.0), ("ad-2", 9.0, 5.0), ("p0-1-2", 14.0, 6.0),
        ("ad-3", 20.0, 5.0), ("p0-1-2-3", 25.0, None)]
    # each content Period shows content seconds [0,4), [4,10), [10,20)
    assert [p[3][0] // 30000 for p in periods(out) if not p[0].startswith("ad")] == [0, 4, 10]
    assert parse_duration(etree.fromstring(out).get("mediaPresentationDuration")) == 35.0


def test_vod_break_past_the_end_is_left_out() -> None:
    assert periods(splice_mpd(mpd(), [Splice(1, 25.0, AD)])) == periods(mpd())


def test_event_streams_follow_the_content_into_the_second_half() -> None:
    events = ('<EventStream schemeIdUri="urn:x" timescale="1000">'
              '<Event presentationTime="8000" duration="1000" id="1">n</Event></EventStream>')
    out = etree.fromstring(splice_mpd(mpd(extra=events), [Splice(1, 6.0, AD)]))
    after = out.find("d:Period[@id='p0-1']/d:EventStream", NS)
    assert after.get("presentationTimeOffset") == "6000"  # event at 8 s -> 2 s into Period


def test_live_break_replaces_content_and_returns_on_a_keyframe() -> None:
    # placed at 7.1 s after availabilityStartTime: cut at 8 s, ad 5 s, back at 14 s (8+5
    # snapped up to a segment boundary) shown from 13 s on the Period timeline
    out = splice_mpd(mpd("dynamic"), [Splice(4, AST + 7.1, AD)])
    assert periods(out) == [("p0", 0.0, 8.0, [0, 1024]),
                            ("ad-4", 8.0, 5.0, [0, 1024]),
                            ("p0-4", 13.0, None, [14 * 30000, 1024 + 14 * 48000])]


def test_live_break_beyond_the_listed_segments_uses_the_segment_grid() -> None:
    out = splice_mpd(mpd("dynamic", segments=3), [Splice(4, AST + 9.5, AD)])
    assert [(p[0], p[1]) for p in periods(out)] == [("p0", 0.0), ("ad-4", 10.0),
                                                    ("p0-4", 15.0)]
    assert periods(out)[2][3][0] == 16 * 30000


def test_dynamic_mpd_without_availability_start_is_an_error() -> None:
    with pytest.raises(ManifestError, match="availabilityStartTime"):
        splice_mpd(mpd("dynamic").replace(b"availabilityStartTime", b"x"),
                   [Splice(1, AST, AD)])


def test_hls_vod_midroll_between_discontinuities_with_a_daterange() -> None:
    out = splice_playlist(playlist("360p", 10), "360p", [Splice(7, 6.0, AD)])
    lines = out.splitlines()
    uris = [x for x in lines if not x.startswith("#")]
    assert uris[:3] == [f"out/360p/{i:08d}.m4s" for i in range(3)]
    assert uris[3:6] == [f"../spot/out/360p/{i:08d}.m4s" for i in range(3)]
    assert uris[6:] == [f"out/360p/{i:08d}.m4s" for i in range(3, 10)]
    assert lines.count("#EXT-X-DISCONTINUITY") == 2
    assert '#EXT-X-MAP:URI="../spot/out/360p/init.mp4"' in lines
    assert lines.count('#EXT-X-MAP:URI="out/360p/init.mp4"') == 2  # top, and after the ad
    assert ('#EXT-X-DATERANGE:ID="ad-7",CLASS="com.sparkcast.ad",'
            'START-DATE="1970-01-01T00:00:06.000Z",DURATION=5.000') in lines
    assert "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:11.000Z" in lines  # content resumes
    assert lines[-1] == "#EXT-X-ENDLIST"


def test_hls_live_break_replaces_one_segment_per_slot() -> None:
    pdt0 = AST - 4.0  # program dates run 4 s before the DASH clock (LiveState)
    text = playlist("360p", 10, live_pdt=pdt0, first_seq=0)
    out = splice_playlist(text, "360p", [Splice(4, AST + 7.1, AD)], pdt_offset=-4.0)
    uris = [x for x in out.splitlines() if not x.startswith("#")]
    # same cut as DASH: content 0-3, ad in slots 4-6, content from 7 (14 s)
    assert uris == ([f"out/360p/{i:08d}.m4s" for i in range(4)]
                    + [f"../spot/out/360p/{i:08d}.m4s" for i in range(3)]
                    + [f"out/360p/{i:08d}.m4s" for i in range(7, 10)])
    assert f"#EXT-X-PROGRAM-DATE-TIME:{date_time(pdt0 + 14.0)}" in out.splitlines()
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:0" in out


def test_hls_live_window_past_the_break_counts_its_discontinuities() -> None:
    pdt0 = AST - 4.0
    # the window starts at slot 5 (mid-ad), then at slot 8 (after it)
    mid = splice_playlist(playlist("360p", 6, live_pdt=pdt0 + 10.0, first_seq=5), "360p",
                          [Splice(4, AST + 7.1, AD)], pdt_offset=-4.0).splitlines()
    assert [x for x in mid if not x.startswith("#")][:2] == ["../spot/out/360p/00000001.m4s",
                                                             "../spot/out/360p/00000002.m4s"]
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1" in mid  # the tag before slot 4 slid out
    assert mid.index('#EXT-X-MAP:URI="../spot/out/360p/init.mp4"') < mid.index(
        "../spot/out/360p/00000001.m4s")
    after = splice_playlist(playlist("360p", 6, live_pdt=pdt0 + 16.0, first_seq=8), "360p",
                            [Splice(4, AST + 7.1, AD)], pdt_offset=-4.0)
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:2" in after
    assert "spot" not in after and "#EXT-X-DISCONTINUITY\n" not in after


def test_closest_rendition() -> None:
    assert closest_rendition("360p", ["360p", "240p"]) == "360p"
    assert closest_rendition("1080p", ["720p", "480p"]) == "720p"
    assert closest_rendition("144p", ["720p", "480p"]) == "480p"
    assert closest_rendition("audio", ["audio", "720p"]) == "audio"
    with pytest.raises(ManifestError):
        closest_rendition("720p", ["audio"])
