"""The batch job end to end on Spark local[2], measured with ffmpeg/ffprobe.

Each source is ingested and transcoded once (module fixture); the tests then
measure the outputs: frame counts, timing, keyframes, init segments, manifests,
bitrates and picture quality against a single-pass reference encode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
from lxml import etree

from core.codecs import VideoCodec
from core.config import load_settings
from core.ladder import Rendition
from core.media import mp4
from hdfs_layout import StreamLayout, open_storage
from ingest.chunker import ingest_file
from jobs.catalog import read_catalog
from jobs.encode import x264_options
from jobs.transcode import run_job
from media_tools import (
    SourceSpec,
    concat,
    count_frames,
    decoded_duration,
    packets,
    psnr,
    sh,
    stream_info,
)
from sparkcast.pipeline import job_options, storage_config

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
pytestmark = pytest.mark.heavy  # three Spark jobs plus reference encodes: minutes, not seconds
LADDER = "480:1000k,360:700k,240:300k"


@dataclass
class Run:
    spec: SourceSpec
    src: Path
    root: Path
    renditions: tuple[Rendition, ...]
    frames: int
    segments: int  # video segments of each rendition

    @property
    def stream(self) -> Path:
        return self.root / "streams" / self.spec.name

    def rendition_file(self, name: str, tmp: Path) -> Path:
        out = self.stream / "out" / name
        parts = [out / "init.mp4", *sorted(out.glob("*.m4s"))]
        return concat(parts, tmp / f"{self.spec.name}-{name}.mp4")


RUN_SOURCES = [
    SourceSpec("vod30", width=640, height=360, rate="30", seconds=20, gop_seconds=8.3),
    SourceSpec("vod2997_odd", width=854, height=481, rate="30000/1001", seconds=13,
               gop_seconds=5, audio=False),
    SourceSpec("vod25_longgop", width=480, height=270, rate="25", seconds=14, gop_seconds=60),
]


def _transcode(spark, spec: SourceSpec, make_media, root: Path) -> Run:
    settings = load_settings(root=root.as_uri(), ladder=LADDER, chunk_seconds=6)
    storage = open_storage(settings.root)
    src = make_media(spec)
    source, _ = ingest_file(str(src), spec.name, storage, settings.chunk_seconds,
                            settings.segment_seconds)
    options = job_options(settings)
    summary = run_job(spark, storage, storage_config(settings), spec.name, options)
    return Run(spec, src, root, summary.renditions, source.frames,
               source.expected_segments or 0)


@pytest.fixture(scope="module", params=RUN_SOURCES, ids=lambda s: s.name)
def run(request, spark, make_media, tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp(f"root-{request.param.name}")
    return _transcode(spark, request.param, make_media, root)


def test_every_rendition_has_the_source_frame_count(run: Run, tmp_path: Path) -> None:
    assert run.renditions, "no renditions"
    for r in run.renditions:
        f = run.rendition_file(r.name, tmp_path)
        assert count_frames(f) == run.frames, r.name
        info = stream_info(f)["stream"]
        assert (int(info["width"]), int(info["height"])) == (r.width, r.height)
        duration = run.frames / Fraction(run.spec.rate)
        assert abs(float(info["duration"]) - float(duration)) <= 1 / float(Fraction(run.spec.rate))


def test_ladder_never_upscales_and_keeps_aspect(run: Run) -> None:
    src_aspect = run.spec.width / run.spec.height
    for r in run.renditions:
        assert r.height <= run.spec.height
        assert abs(r.width / r.height - src_aspect) < 0.02
        assert r.width % 2 == 0 and r.height % 2 == 0


def test_tfdt_continuous_and_segments_start_with_keyframes(run: Run) -> None:
    for name in [r.name for r in run.renditions] + (["audio"] if run.spec.audio else []):
        out = run.stream / "out" / name
        segments = sorted(out.glob("*.m4s"))
        timings = [mp4.fragment_timing(p.read_bytes()) for p in segments]
        assert [int(p.stem) for p in segments] == list(range(len(segments)))
        assert timings[0].decode_time == 0
        for prev, cur in zip(timings, timings[1:], strict=False):
            assert cur.decode_time == prev.decode_time + prev.duration, name
        assert all(t.starts_with_sync for t in timings), name
        assert [t.sequence for t in timings] == list(range(1, len(segments) + 1))


def test_keyframes_identical_across_renditions(run: Run, tmp_path: Path) -> None:
    """Checked twice: ffprobe's packet flags on the joined renditions, and the boxes' own
    presentation time of each segment's first frame (tfdt + composition offset). Keyframes
    are the segment starts, the same frames in every rendition; segments are 2 s, except
    where a chunk ends at a source keyframe and its last segment takes the remainder
    (between half and one and a half segments: docs/TRANSCODING.md)."""
    keyframe_times = {}
    seg = round(2 * Fraction(run.spec.rate))
    catalog = read_catalog((run.stream / "catalog" / "segments.parquet").read_bytes())
    for r in run.renditions:
        rows = sorted((s for s in catalog if s.rendition == r.name), key=lambda s: s.number)
        frame = rows[0].timescale * Fraction(run.spec.rate).denominator // \
            Fraction(run.spec.rate).numerator
        starts = [s.start // frame for s in rows]  # segment starts, in frames
        lengths = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert all(seg // 2 <= n <= seg * 3 // 2 for n in lengths), (r.name, lengths)
        pk = packets(run.rendition_file(r.name, tmp_path))
        dts = [int(p["dts"]) for p in pk]
        assert all(b > a for a, b in zip(dts, dts[1:], strict=False)), "dts not increasing"
        keys = sorted(int(p["pts"]) for p in pk if "K" in p["flags"])
        assert [(k - keys[0]) // frame for k in keys] == starts, r.name
        keyframe_times[r.name] = keys
        segments = sorted((run.stream / "out" / r.name).glob("*.m4s"))
        presented = [(t.decode_time + t.first_composition_offset) // frame for t in
                     (mp4.fragment_timing(p.read_bytes()) for p in segments)]
        assert presented == starts, r.name
    values = list(keyframe_times.values())
    assert all(v == values[0] for v in values), keyframe_times
    assert len(values[0]) == run.segments


def test_init_segment_is_the_same_for_every_chunk(run: Run) -> None:
    segments = read_catalog((run.stream / "catalog" / "segments.parquet").read_bytes())
    chunks = {s.chunk_seq for s in segments if s.rendition != "audio"}
    assert len(chunks) > 1
    for r in run.renditions:
        hashes = {s.init_sha1 for s in segments if s.rendition == r.name}
        assert len(hashes) == 1, r.name
        assert hashes == {mp4_sha1(run.stream / "out" / r.name / "init.mp4")}


def mp4_sha1(path: Path) -> str:
    import hashlib

    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_audio_gapless_and_full_length(run: Run, tmp_path: Path) -> None:
    if not run.spec.audio:
        assert not (run.stream / "out" / "audio").exists()
        return
    joined = run.rendition_file("audio", tmp_path)
    source_audio = decoded_duration(run.src, "a:0")
    # The first 1024 samples are AAC priming, hidden by the MPD's presentationTimeOffset.
    produced = decoded_duration(joined, "a:0") - 1024 / 48000
    assert abs(produced - source_audio) <= 0.025


def test_ffmpeg_plays_mpd_and_hls(run: Run) -> None:
    for manifest in ("manifest.mpd", "master.m3u8"):
        res = sh("ffmpeg", "-v", "error", "-i", str(run.stream / manifest), "-map", "0",
                 "-f", "null", "-", check=False)
        assert res.returncode == 0 and not res.stderr.strip(), f"{manifest}: {res.stderr}"


def _avc_profile_level(info: dict) -> tuple[str, str]:
    """profile_idc and level_idc as ffprobe reports them (it does not show constraint flags)."""
    profiles = {"Constrained Baseline": 0x42, "Baseline": 0x42, "Main": 0x4D, "High": 0x64}
    return f"{profiles[info['profile']]:02x}", f"{int(info['level']):02x}"


def test_mpd_describes_the_streams(run: Run, tmp_path: Path) -> None:
    mpd = etree.parse(str(run.stream / "manifest.mpd")).getroot()
    assert mpd.get("type") == "static"
    assert "urn:mpeg:dash:profile:isoff-live:2011" in mpd.get("profiles")
    m = re.fullmatch(r"PT([\d.]+)S", mpd.get("mediaPresentationDuration"))
    assert m and abs(float(m.group(1)) - run.frames / float(Fraction(run.spec.rate))) < 0.05
    reps = {r.get("id"): r for r in mpd.iterfind(".//d:Representation", NS)}
    for r in run.renditions:
        rep = reps[r.name]
        f = run.rendition_file(r.name, tmp_path)
        info = stream_info(f)["stream"]
        codecs = rep.get("codecs")
        assert re.fullmatch(r"avc1\.[0-9a-f]{6}", codecs)
        assert (codecs[5:7], codecs[9:11]) == _avc_profile_level(info)
        assert (int(rep.get("width")), int(rep.get("height"))) == (r.width, r.height)
        seconds = run.frames / float(Fraction(run.spec.rate))
        media_bytes = sum(p.stat().st_size for p in (run.stream / "out" / r.name).glob("*.m4s"))
        measured = media_bytes * 8 / seconds
        assert abs(int(rep.get("bandwidth")) - measured) <= 0.2 * measured
    if run.spec.audio:
        assert reps["audio"].get("codecs") == "mp4a.40.2"
        assert stream_info(run.rendition_file("audio", tmp_path), "a:0")["stream"][
            "profile"] == "LC"
    timeline = mpd.find(".//d:AdaptationSet[@contentType='video']/d:SegmentTemplate", NS)
    assert int(timeline.get("timescale")) % Fraction(run.spec.rate).numerator == 0


def test_hls_playlists_cover_the_same_segments(run: Run) -> None:
    master = (run.stream / "master.m3u8").read_text()
    for r in run.renditions:
        assert f"{r.name}.m3u8" in master
        media = (run.stream / f"{r.name}.m3u8").read_text()
        listed = re.findall(r"^out/[^\n]+\.m4s$", media, re.MULTILINE)
        on_disk = sorted(f"out/{r.name}/{p.name}" for p in (run.stream / "out" / r.name)
                         .glob("*.m4s"))
        assert listed == on_disk
        assert f'#EXT-X-MAP:URI="out/{r.name}/init.mp4"' in media
        assert media.rstrip().endswith("#EXT-X-ENDLIST")


def test_quality_within_half_a_db_of_one_pass(run: Run, tmp_path: Path) -> None:
    """Same x264 settings over the whole file in one process vs our chunked encode."""
    rate = Fraction(run.spec.rate)
    from core.grid import plan_grid

    grid = plan_grid(rate, 2, 6)
    for r in run.renditions[:2]:
        ref = tmp_path / f"ref-{r.name}.mp4"
        opts = x264_options(r, grid, VideoCodec())
        args = ["ffmpeg", "-v", "error", "-y", "-i", str(run.src), "-map", "0:v:0", "-vf",
                f"scale={r.width}:{r.height}:flags=bicubic,setsar=1", "-r", str(rate)]
        for k, v in opts.items():
            args += [f"-{k}", str(v)]
        sh(*args, str(ref))
        ours = psnr(run.rendition_file(r.name, tmp_path), run.src, r.width, r.height)
        theirs = psnr(ref, run.src, r.width, r.height)
        assert ours >= theirs - 0.5, f"{r.name}: chunked {ours:.2f} dB vs one pass {theirs:.2f}"


def test_rerun_writes_identical_bytes(run: Run, spark, tmp_path_factory) -> None:
    """A second, independent run (as a Spark retry would do) gives byte-identical output."""
    if run.spec.name != RUN_SOURCES[0].name:
        pytest.skip("checked on one source; the encode path is the same for all")
    again = _transcode(spark, run.spec, lambda s: run.src, tmp_path_factory.mktemp("again"))
    first = {p.relative_to(run.stream): p.read_bytes() for p in (run.stream / "out").rglob("*")
             if p.is_file()}
    second = {p.relative_to(again.stream): p.read_bytes()
              for p in (again.stream / "out").rglob("*") if p.is_file()}
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first)
    for name in ("manifest.mpd", "master.m3u8"):
        assert (run.stream / name).read_bytes() == (again.stream / name).read_bytes()


def test_layout_paths_match_the_files(run: Run) -> None:
    layout = StreamLayout(run.spec.name)
    assert (run.root / layout.manifest).is_file()
    assert (run.root / layout.master_playlist).is_file()
    assert (run.root / layout.catalog_file).is_file()
