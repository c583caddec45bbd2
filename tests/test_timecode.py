"""The machine-readable wall clock of the test publishers (core/timecode.py): burnt in by
real ffmpeg and x264, read back from frames at the source's size and scaled down as a
ladder's lower rungs are."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from core.timecode import MODULUS, frame_latency_ms, latency_ms, read_strip
from sparkcast.stack import publisher_args


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("timecode") / "show.flv"
    epoch = MODULUS * 1000 - 1500  # wraps 1.5 s in: the reader must not care
    args = publisher_args(str(out), 3, size="640x360", timecode=True, epoch_ms=epoch)
    subprocess.run([*args[:-1], "-y", str(out)], check=True, capture_output=True, timeout=60)
    return out, epoch


@pytest.mark.parametrize("at", [0.5, 1.0, 2.5])
@pytest.mark.parametrize("height", [360, 240, 180])
def test_the_clock_reads_back_from_any_rung(published, tmp_path: Path, at: float,
                                            height: int) -> None:
    video, epoch = published
    png = tmp_path / "frame.png"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", f"{at}", "-i", str(video),
                    "-vf", f"scale=-2:{height}", "-c:v", "libx264", "-crf", "30", "-f", "mp4",
                    str(tmp_path / "rung.mp4")], check=True, timeout=60)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "rung.mp4"),
                    "-frames:v", "1", str(png)], check=True, timeout=60)
    image = Image.open(png).convert("L")
    shown = read_strip(lambda x, y: image.getpixel((x, y)), *image.size, source_height=360)
    assert shown == (epoch + round(at * 1000)) % MODULUS


def test_latency_is_counted_across_the_wrap() -> None:
    assert latency_ms(MODULUS - 500, 1500) == 2000
    assert latency_ms(1000, 3500) == 2500


def test_a_browser_frame_gives_its_latency_or_none(published, tmp_path: Path) -> None:
    """frame_latency_ms over the rows FRAME_JS returns (here taken from a decoded frame):
    the shown clock against the page's clock; no picture or an absurd reading is None."""
    video, epoch = published
    png = tmp_path / "frame.png"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", "1", "-i", str(video),
                    "-frames:v", "1", str(png)], check=True, timeout=60)
    image = Image.open(png).convert("L")
    w, h, rows = *image.size, 16
    grey = [image.getpixel((x, y)) for y in range(h - rows, h) for x in range(w)]
    shown = (epoch + 1000) % MODULUS
    frame = {"w": w, "h": h, "now": shown + 4321, "grey": grey}
    assert frame_latency_ms(frame, rows, 360) == 4321
    assert frame_latency_ms({**frame, "now": shown + 120_000}, rows, 360) is None
    assert frame_latency_ms(None, rows, 360) is None
