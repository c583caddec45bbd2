"""The rendition ladder: parse it from configuration, fit it to a source. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hdfs_layout.layout import validate_rendition

PROFILES = ("baseline", "main", "high")
_RATE = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)\Z")


class LadderError(ValueError):
    """The ladder specification cannot be understood."""


@dataclass(frozen=True)
class Rung:
    """One configured step of the ladder, before it meets a source."""

    height: int
    bitrate: int  # bits per second
    profile: str | None = None


@dataclass(frozen=True)
class Rendition:
    """One output video rendition, sized for a particular source."""

    name: str
    width: int
    height: int
    bitrate: int  # the rung's rate: a cap under capped CRF, the target under ABR
    profile: str



def parse_bitrate(text: str) -> int:
    """'2800k' -> 2800000. Raises LadderError."""
    m = _RATE.match(text.strip())
    if not m:
        raise LadderError(f"bitrate {text!r} is not like 800k or 5M")
    scale = {"": 1, "k": 1000, "m": 1_000_000}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def parse_ladder(spec: str) -> tuple[Rung, ...]:
    """'1080:5000k,720:2800k,240:400k:baseline' -> rungs, highest first. Raises LadderError."""
    rungs = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        parts = item.split(":")
        if len(parts) not in (2, 3) or not parts[0].rstrip("p").isdigit():
            raise LadderError(f"ladder rung {item!r} is not HEIGHT:BITRATE[:PROFILE]")
        height = int(parts[0].rstrip("p"))
        if height < 16 or height > 4320:
            raise LadderError(f"ladder rung {item!r}: height must be 16..4320")
        profile = parts[2].lower() if len(parts) == 3 else None
        if profile is not None and profile not in PROFILES:
            raise LadderError(f"ladder rung {item!r}: profile must be one of {PROFILES}")
        try:
            bitrate = parse_bitrate(parts[1])
        except LadderError as exc:
            raise LadderError(f"ladder rung {item!r}: {exc}") from None
        rungs.append(Rung(height, bitrate, profile))
    if not rungs:
        raise LadderError("the ladder is empty")
    heights = [r.height for r in rungs]
    if len(set(heights)) != len(heights):
        raise LadderError(f"ladder {spec!r} repeats a height")
    return tuple(sorted(rungs, key=lambda r: -r.height))


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def plan_ladder(rungs: tuple[Rung, ...], width: int, height: int,
                sar: float = 1.0) -> tuple[Rendition, ...]:
    """Fit rungs to a source of width x height: never upscale, keep the display aspect.

    Rungs taller than the source are dropped; when every rung is taller, the lowest
    rung is kept at the source's own height so there is always one rendition.
    """
    aspect = width * sar / height
    fitting = [r for r in rungs if r.height <= height]
    if not fitting:
        lowest = rungs[-1]
        fitting = [Rung(height, lowest.bitrate, lowest.profile)]
    out = []
    for rung in fitting:
        h = _even(rung.height) if rung.height % 2 == 0 else _even(rung.height - 1)
        h = min(h, height - height % 2)
        profile = rung.profile or ("high" if h >= 720 else "main")
        out.append(Rendition(validate_rendition(f"{h}p"), _even(h * aspect), h, rung.bitrate,
                             profile))
    return tuple(out)
