"""The real `sparkcast` command and spark-submit.sh: summaries, bad input, identical output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hdfs_layout import StreamLayout
from media_tools import SourceSpec, sh

REPO = Path(__file__).resolve().parent.parent
SMALL = SourceSpec("small", width=320, height=180, seconds=8, gop_seconds=2)
LADDER = "180:400k,120:200k"


def sparkcast(env: dict[str, str], *args: str, timeout: float = 600
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sparkcast", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def no_manifests(root: Path, stream_id: str) -> bool:
    base = root / StreamLayout(stream_id).base
    return not list(base.glob("*.mpd")) and not list(base.glob("*.m3u8"))


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, make_media) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    good = make_media(SMALL).read_bytes()
    moov_last = d / "moov_last.mp4"
    sh("ffmpeg", "-v", "error", "-i", str(make_media(SMALL)), "-c", "copy",
       "-movflags", "-faststart", str(moov_last))
    files = {
        "zero-length": (d / "empty.mp4", b""),
        "non-video": (d / "notes.txt", b"these are not the frames you are looking for\n" * 50),
        "truncated (index at the end)": (d / "cut1.mp4", moov_last.read_bytes()[:40_000]),
        "truncated (index first)": (d / "cut2.mp4", good[: len(good) // 2]),
    }
    for path, data in files.values():
        path.write_bytes(data)
    audio = d / "audio_only.m4a"
    sh("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine", "-t", "2", str(audio))
    out = {k: p for k, (p, _) in files.items()}
    out["audio only"] = audio
    out["missing"] = d / "does-not-exist.mp4"
    return out


@pytest.mark.parametrize("case", ["zero-length", "non-video", "truncated (index at the end)",
                                  "truncated (index first)", "audio only", "missing"])
def test_bad_input_fails_clearly_and_leaves_no_manifest(case, bad_inputs, cli_env, root):
    path = bad_inputs[case]
    res = sparkcast(cli_env, "submit", str(path), "--stream-id", "bad", "--ladder", LADDER)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("sparkcast: error:")]
    assert len(lines) == 1, res.stderr
    assert path.name in lines[0]
    assert no_manifests(root, "bad")


def test_bad_input_keeps_an_earlier_stream(bad_inputs, make_media, cli_env, root):
    """A failed re-submit under the same id must not destroy what was there."""
    ok = sparkcast(cli_env, "submit", str(make_media(SMALL)), "--stream-id", "keep",
                   "--ladder", LADDER)
    assert ok.returncode == 0, ok.stderr
    res = sparkcast(cli_env, "submit", str(bad_inputs["non-video"]), "--stream-id", "keep")
    assert res.returncode != 0
    assert (root / StreamLayout("keep").manifest).is_file()


def test_submit_prints_summary_and_manifest_paths(make_media, cli_env, root):
    res = sparkcast(cli_env, "submit", str(make_media(SMALL)), "--stream-id", "sum",
                    "--ladder", LADDER, "--master", "local[2]", "--chunk-seconds", "4")
    assert res.returncode == 0, res.stderr
    layout = StreamLayout("sum")
    assert f"{(root / layout.manifest).as_uri()}" in res.stdout
    assert f"{(root / layout.master_playlist).as_uri()}" in res.stdout
    for word in ("duration", "renditions", "segments", "wall time", "x real time"):
        assert word in res.stdout
    assert "180p" in res.stdout and "120p" in res.stdout
    # Progress per chunk x rendition reached its total.
    assert "transcode chunk x rendition: 100%" in res.stderr and "4/4" in res.stderr


def test_corrupt_chunk_names_the_chunk_and_lists_nothing(make_media, cli_env, root):
    ing = sparkcast(cli_env, "ingest", str(make_media(SMALL)), "--stream-id", "corrupt",
                    "--chunk-seconds", "4")
    assert ing.returncode == 0, ing.stderr
    chunk = root / StreamLayout("corrupt").raw_chunk(1, "ts")
    chunk.write_bytes(b"\x00garbage" * 4096)
    res = sparkcast(cli_env, "transcode", "corrupt", "--ladder", LADDER)
    assert res.returncode != 0
    error = [ln for ln in res.stderr.splitlines() if ln.startswith("sparkcast: error:")]
    assert error and "00000001.ts" in error[0], res.stderr
    assert no_manifests(root, "corrupt")


def test_bad_ladder_and_bad_setting_are_named(make_media, cli_env):
    res = sparkcast(cli_env, "submit", str(make_media(SMALL)), "--ladder", "720:fast")
    assert res.returncode != 0 and "720:fast" in res.stderr
    env = dict(cli_env, SPARKCAST_CHUNK_SECONDS="-3")
    res = sparkcast(env, "ingest", str(make_media(SMALL)))
    assert res.returncode != 0 and "chunk_seconds" in res.stderr


def test_spark_submit_gives_byte_identical_segments(make_media, cli_env, root, tmp_path):
    src = str(make_media(SMALL))
    res = sparkcast(cli_env, "submit", src, "--stream-id", "a", "--ladder", LADDER)
    assert res.returncode == 0, res.stderr
    other = tmp_path / "other-root"
    env = dict(cli_env, SPARKCAST_ROOT=other.as_uri())
    res = subprocess.run([str(REPO / "spark-submit.sh"), "--master", "local[2]", "transcode",
                          src, "--stream-id", "a", "--ladder", LADDER], env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    ours = {p.relative_to(root): p.read_bytes() for p in (root / "streams/a/out").rglob("*.m*")}
    theirs = {p.relative_to(other): p.read_bytes()
              for p in (other / "streams/a/out").rglob("*.m*")}
    assert ours and ours == theirs
    assert (root / "streams/a/manifest.mpd").read_bytes() == \
        (other / "streams/a/manifest.mpd").read_bytes()


def test_spark_submit_help_and_usage_errors():
    res = subprocess.run([str(REPO / "spark-submit.sh"), "--help"], capture_output=True,
                         text=True)
    assert res.returncode == 0 and "--py-files" in res.stdout and "yarn" in res.stdout
    res = subprocess.run([str(REPO / "spark-submit.sh"), "--master", "local[2]", "bogus"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "bogus" in res.stderr
