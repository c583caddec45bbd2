"""The codecs a stream is encoded with: values the settings, ingest and jobs share."""

from __future__ import annotations

from dataclasses import dataclass

RATE_CONTROLS = ("capped-crf", "abr")


@dataclass(frozen=True)
class VideoCodec:
    preset: str = "veryfast"
    threads: int = 1
    rate_control: str = "capped-crf"
    crf: int = 23


@dataclass(frozen=True)
class AudioCodec:
    bitrate: str = "128k"
    sample_rate: int = 48000
    channels: int = 2
