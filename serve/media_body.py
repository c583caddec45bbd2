"""The answer to a media request (serve/media.py), as a value: bytes or a local file."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaBody:
    """What to send: bytes in memory, or a local file for the server's sendfile."""

    data: bytes | None
    path: str | None
    size: int
    etag: str  # unquoted
    content_type: str
    cache_control: str
    cached: bool = False

    def read(self) -> bytes:
        if self.data is None:
            with open(self.path or "", "rb") as f:
                return f.read()
        return self.data
