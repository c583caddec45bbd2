"""Pure pieces, without Spark: ladder, grid, layout, storage, manifests, errors."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from lxml import etree

from core.errors import one_line
from core.grid import plan_grid
from core.ladder import LadderError, Rung, parse_ladder, plan_ladder
from core.segments import Segment
from hdfs_layout import LayoutError, StorageError, StreamLayout, open_storage
from hdfs_layout.storage import resolve
from hdfs_layout.webhdfs import webhdfs_address
from jobs.reduce import ReduceError, build_presentation
from manifest.hls import build_master, build_media
from manifest.mpd import build_mpd
from manifest.presentation import Period, Presentation, Track
from manifest.timeline import S, build_timeline

# ladder --------------------------------------------------------------------------------------


def test_parse_ladder_sorts_and_reads_profiles():
    rungs = parse_ladder("360:800k, 1080:5M,240:400k:baseline")
    assert rungs == (Rung(1080, 5_000_000), Rung(360, 800_000), Rung(240, 400_000, "baseline"))


@pytest.mark.parametrize("spec", ["", "720", "720:fast", "abc:800k", "720:800k:ultra",
                                  "720:1M,720:2M", "8:100k"])
def test_parse_ladder_rejects(spec):
    with pytest.raises(LadderError):
        parse_ladder(spec)


def test_plan_ladder_caps_at_source_and_keeps_aspect():
    rungs = parse_ladder("1080:5M,720:2800k,480:1400k,360:800k")
    out = plan_ladder(rungs, 1280, 720)
    assert [(r.name, r.width, r.height) for r in out] == [
        ("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)]
    assert [r.profile for r in out] == ["high", "main", "main"]


def test_plan_ladder_odd_sizes_and_anamorphic():
    out = plan_ladder(parse_ladder("480:1M,240:300k"), 854, 481)
    assert [(r.width, r.height) for r in out] == [(852, 480), (426, 240)]
    # 720x576 with 16:15 pixels (PAL 4:3) displays as 768x576.
    wide = plan_ladder(parse_ladder("576:2M"), 720, 576, sar=16 / 15)
    assert (wide[0].width, wide[0].height) == (768, 576)


def test_plan_ladder_small_source_gets_one_rendition_at_its_size():
    out = plan_ladder(parse_ladder("720:2M,360:800k"), 321, 181)
    assert [(r.width, r.height, r.bitrate) for r in out] == [(320, 180, 800_000)]


# grid ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate, seg, ticks, timescale", [
    ("30", 60, 1000, 30000), ("30000/1001", 60, 1001, 30000), ("25", 50, 1000, 25000),
    ("24000/1001", 48, 1001, 24000), ("60", 120, 1000, 60000)])
def test_grid_counts_whole_frames(rate, seg, ticks, timescale):
    g = plan_grid(Fraction(rate), 2.0, 10.0)
    assert (g.segment_frames, g.frame_ticks, g.timescale) == (seg, ticks, timescale)
    assert g.chunk_frames == 5 * seg


# layout and storage ----------------------------------------------------------------------------


def test_layout_paths():
    lay = StreamLayout("news-1")
    assert lay.raw_chunk(3) == "streams/news-1/raw/00000003.ts"
    assert lay.index_record(3) == "streams/news-1/index/00000003.json"
    assert lay.init_segment("720p") == "streams/news-1/out/720p/init.mp4"
    assert lay.media_segment("audio", 12) == "streams/news-1/out/audio/00000012.m4s"
    assert lay.manifest == "streams/news-1/manifest.mpd"
    assert lay.media_playlist("720p") == "streams/news-1/720p.m3u8"


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "a b", "-x", "x" * 65, "x\x00"])
def test_layout_rejects_stream_ids(bad):
    with pytest.raises(LayoutError):
        StreamLayout(bad)


@pytest.mark.parametrize("bad", ["../etc/passwd", "/etc/passwd", "a/../../b", "a\x00b", "a\\b"])
def test_resolve_refuses_escapes(bad):
    with pytest.raises(StorageError):
        resolve(bad)


def test_local_storage_verbs(tmp_path):
    st = open_storage(tmp_path.as_uri())
    st.write("a/b/c.bin", b"123")
    assert st.read("a/b/c.bin") == b"123" and st.size("a/b/c.bin") == 3
    assert st.list("a/b") == ["c.bin"] and st.list("nope") == []
    st.write("a/b/c.bin", b"45")  # replace atomically, no temp file left behind
    assert st.read("a/b/c.bin") == b"45" and sorted(p.name for p in (tmp_path / "a/b").iterdir()
                                                    ) == ["c.bin"]
    assert st.url("a/b/c.bin") == (tmp_path / "a/b/c.bin").as_uri()
    st.delete("a", recursive=True)
    assert not st.exists("a/b/c.bin")
    with pytest.raises(StorageError, match="c.bin"):
        st.read("a/b/c.bin")
    with pytest.raises(StorageError):
        st.delete("")


def test_storage_root_urls(tmp_path):
    assert open_storage(str(tmp_path)).root_url == tmp_path.as_uri()
    with pytest.raises(StorageError, match="s3"):
        open_storage("s3://bucket/x")
    with pytest.raises(StorageError, match="absolute"):
        open_storage("relative/dir")


def test_webhdfs_address_convention():
    assert webhdfs_address("hdfs://nn.example:8020/sparkcast", None) == "http://nn.example:9870"
    assert webhdfs_address("hdfs://nn:8020/x", "http://gw:14000/") == "http://gw:14000"
    with pytest.raises(StorageError):
        webhdfs_address("hdfs:///x", None)


def test_hdfs_unreachable_namenode_is_one_clear_line():
    st = open_storage("hdfs://127.0.0.1:1/sparkcast", webhdfs_url="http://127.0.0.1:1")
    with pytest.raises(StorageError) as info:
        st.exists("streams/x/manifest.mpd")
    msg = str(info.value)
    assert "hdfs://127.0.0.1:1/sparkcast/streams/x/manifest.mpd" in msg
    assert "unreachable" in msg and "\n" not in msg


# manifests -----------------------------------------------------------------------------------


def _segs(rendition: str, n: int, d: int, scale: int, last: int | None = None) -> list[Segment]:
    out = []
    t = 0
    for i in range(n):
        dur = last if (last and i == n - 1) else d
        out.append(Segment("s", rendition, i, t, dur, scale, 1000 + i, i // 5, 0, "h",
                           "avc1.64001f" if rendition != "audio" else "mp4a.40.2", 1280, 720))
        t += dur
    return out


def test_timeline_runs():
    segs = _segs("720p", 7, 60000, 30000, last=30000)
    assert build_timeline(segs) == [S(0, 60000, 5), S(360000, 30000)]


def test_reduce_refuses_gaps_and_mismatched_inits():
    from core.records import SourceRecord

    src = SourceRecord("s", "in.mp4", 1280, 720, "1", "30", 60, 300, 420, 14.0, None)
    segs = _segs("720p", 7, 60000, 30000)
    with pytest.raises(ReduceError, match="missing"):
        build_presentation(src, segs[:3] + segs[4:])
    bad = [*segs[:-1], Segment(**{**segs[-1].__dict__, "init_sha1": "other"})]
    with pytest.raises(ReduceError, match="init segment differs"):
        build_presentation(src, bad)
    with pytest.raises(ReduceError, match="expected 8"):
        build_presentation(src, segs, expected_segments=8)


def _presentation() -> Presentation:
    video = Track("720p", "video", "avc1.64001f", 30000, tuple(_segs("720p", 5, 60000, 30000)),
                  width=1280, height=720, frame_rate="30")
    audio = Track("audio", "audio", "mp4a.40.2", 48000, tuple(_segs("audio", 5, 96000, 48000)),
                  sample_rate=48000, channels=2, presentation_time_offset=1024)
    return Presentation("s", (Period("0", 0.0, (video,), (audio,)),))


def test_mpd_static_structure():
    root = etree.fromstring(build_mpd(_presentation()).encode())
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    assert root.get("type") == "static" and root.get("mediaPresentationDuration") == "PT10.000S"
    rep = root.find(".//d:Representation[@id='720p']", ns)
    assert rep.get("bandwidth") == str(round(sum(1000 + i for i in range(5)) * 8 / 10))
    tpl = root.find(".//d:AdaptationSet[@contentType='audio']/d:SegmentTemplate", ns)
    assert tpl.get("presentationTimeOffset") == "1024"
    assert tpl.find("d:SegmentTimeline/d:S", ns).attrib == {"t": "0", "d": "96000", "r": "4"}
    # Schema order inside an AdaptationSet: descriptors, SegmentTemplate, Representation.
    audio_set = tpl.getparent()
    assert [etree.QName(c).localname for c in audio_set] == [
        "AudioChannelConfiguration", "SegmentTemplate", "Representation"]


def test_hls_master_and_media():
    p = _presentation()
    master = build_master(p)
    assert '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac"' in master
    assert 'CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720' in master
    media = build_media(p, "720p").splitlines()
    assert media[:3] == ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:2"]
    assert '#EXT-X-MAP:URI="out/720p/init.mp4"' in media
    assert media.count("#EXTINF:2.00000,") == 5 and media[-1] == "#EXT-X-ENDLIST"


# errors --------------------------------------------------------------------------------------


def test_one_line_picks_the_python_error_out_of_a_spark_failure():
    class Py4JJavaError(Exception):
        pass

    text = ("An error occurred while calling o1.collect.\n: org.apache.spark.SparkException: "
            "Job aborted\nTraceback (most recent call last):\n  File \"x.py\"\n"
            "core.media.ffmpeg_run.MediaError: file:///r/00000001.ts: Invalid data\n"
            "\tat org.apache.spark.X")
    assert one_line(Py4JJavaError(text)) == "file:///r/00000001.ts: Invalid data"


def test_notices_ride_in_the_mpd_and_the_playlists():
    """Live: an EventStream in the period, DATERANGEs in every media playlist."""
    from core.records import SourceRecord
    from jobs.live_reduce import LiveState, build_live_presentation
    from manifest.presentation import Event

    src = SourceRecord("s", "rtmp", 1280, 720, "1", "30", 60, 300, 0, 0.0, None, live=True)
    segs = _segs("720p", 10, 60000, 30000)
    anchor = 1_800_000_000.0
    events = (Event(7, "flash", 'Breaking: "quotes"\nand lines', anchor + 5.5, 10.0),
              Event(8, "disclaimer", "Viewer discretion", anchor - 100, None))
    p = build_live_presentation(src, segs, LiveState(anchor, anchor + 10), anchor + 30, 300,
                                10, events=events)
    root = etree.fromstring(build_mpd(p).encode())
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    assert root.get("type") == "dynamic"
    stream = root.find("d:Period/d:EventStream", ns)
    assert stream is not None and stream.get("timescale") == "1000"
    by_id = {e.get("id"): e for e in stream}
    assert by_id["7"].get("presentationTime") == "5500" and by_id["7"].get("duration") == "10000"
    assert by_id["7"].text == 'flash: Breaking: "quotes"\nand lines'
    assert by_id["8"].get("presentationTime") == "0" and by_id["8"].get("duration") is None
    # EventStream precedes the AdaptationSets (schema order).
    period = root.find("d:Period", ns)
    assert etree.QName(period[0]).localname == "EventStream"
    media = build_media(p, "720p")
    assert ('#EXT-X-DATERANGE:ID="notice-7",CLASS="urn:sparkcast:notice:2026:flash",'
            'START-DATE="2027-01-15T08:00:05.500Z",DURATION=10.000,'
            "X-SPARKCAST-TEXT=\"Breaking: 'quotes' and lines\"") in media
    assert "#EXT-X-ENDLIST" not in media and "#EXT-X-PROGRAM-DATE-TIME:" in media


def test_the_live_delay_is_a_chunk_and_two_segments_unless_set():
    from core.records import SourceRecord
    from jobs.live_reduce import LiveState, build_live_presentation

    src = SourceRecord("s", "rtmp", 1280, 720, "1", "30", 60, 60, 0, 0.0, None, live=True)
    segs = _segs("720p", 10, 60000, 30000)
    anchor = 1_800_000_000.0

    def delay(**kw: float) -> str:
        p = build_live_presentation(src, segs, LiveState(anchor, anchor + 2), anchor + 30,
                                    300, 2, **kw)
        return etree.fromstring(build_mpd(p).encode()).get("suggestedPresentationDelay")

    assert delay() == "PT6.000S"  # 2 s chunk + 2 x 2 s segments
    assert delay(delay_seconds=3.5) == "PT3.500S"


def test_live_batch_spreads_a_lone_chunk_over_the_spare_cores():
    from core.codecs import AudioCodec, VideoCodec
    from core.records import ChunkRecord
    from jobs.live import LiveJob
    from jobs.transcode import JobOptions

    job = JobOptions(lambda s: (), VideoCodec(), AudioCodec(), 2.0)

    def chunks(n: int, seconds: float) -> list[ChunkRecord]:
        return [ChunkRecord("s", i, f"raw/{i}", start_frame=i * 30 * int(seconds),
                            frames=30 * int(seconds), skip=0, start=i * seconds,
                            duration=seconds, bytes=1, wallclock=0.0) for i in range(n)]

    assert LiveJob.batch_options(job, chunks(1, 10.0), cores=2).task_grouping == "rendition"
    short = LiveJob.batch_options(job, chunks(1, 2.0), cores=2)  # one task, x264 threads
    assert (short.task_grouping, short.video.threads) == ("chunk", 2)
    assert LiveJob.batch_options(job, chunks(2, 2.0), cores=4).video.threads == 2
    assert LiveJob.batch_options(job, chunks(2, 10.0), cores=2) is job  # a backlog
    assert LiveJob.batch_options(job, chunks(2, 2.0), cores=2) is job
    assert LiveJob.batch_options(job, [], cores=2) is job
    auto = replace(job, video=VideoCodec(threads=0))  # x264's own choice is left alone
    assert LiveJob.batch_options(auto, chunks(1, 2.0), cores=2) is auto


def test_live_preset_is_ultrafast_only_for_low_latency_chunks():
    from core.config import Settings

    assert Settings(chunk_seconds=2).live_preset() == "ultrafast"
    assert Settings(chunk_seconds=4).live_preset() == "ultrafast"
    assert Settings(chunk_seconds=10).live_preset() == "veryfast"
    assert Settings(chunk_seconds=10, x264_preset="fast").live_preset() == "fast"
    assert Settings(chunk_seconds=2, live_x264_preset="veryfast").live_preset() == "veryfast"
