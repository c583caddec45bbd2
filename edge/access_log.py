"""nginx's access log of a front (the `sparkcast` log_format of edge/templates), read back.

    parse_line(text)  one line as an AccessRecord, or None (pure)
    LogTail(path)     the lines appended since the last read (survives rotation)
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import NamedTuple

from hdfs_layout.layout import STREAM_ID_PATTERN

_SEGMENT = re.compile(rf"^/streams/({STREAM_ID_PATTERN})/out/[^/?]+/"
                      r"(?:init\.mp4|\d{8,12}\.m4s)(?:\?|$)")
_MANIFEST = re.compile(rf"^/streams/({STREAM_ID_PATTERN})/[^/?]+\.(?:mpd|m3u8)(?:\?|$)")


class AccessRecord(NamedTuple):  # a tuple: made once per logged request
    at: float  # unix time the request ended
    status: int
    sent: int  # body bytes
    tier: str  # disk, cache, stale, origin (edge/templates/nginx-http.conf)
    kind: str  # segment, manifest, other
    stream_id: str | None
    client: str  # "address|user agent"


@functools.lru_cache(maxsize=8192)
def _classify(uri: str) -> tuple[str, str | None]:
    """(kind, stream id) of a request target; remembered: the same manifest and segment
    URLs come from every viewer. Pure."""
    if seg := _SEGMENT.match(uri):
        return "segment", seg.group(1)
    if man := _MANIFEST.match(uri):
        return "manifest", man.group(1)
    return "other", None


def parse_line(line: str) -> AccessRecord | None:
    """One log line, or None for anything that is not one (a torn last line). Pure.

    Split, not matched with a regex: a front answering tens of thousands of manifest polls
    a second logs as many lines, and this process reads them all (nginx writes a `"` in a
    field as \\x22, so `" "` separates the two quoted fields)."""
    parts = line.rstrip("\n").split(" ", 5)
    if len(parts) != 6 or len(parts[1]) != 3:
        return None
    msec, status, sent, _, tier, quoted = parts
    if len(quoted) < 5 or quoted[0] != '"' or quoted[-1] != '"':
        return None
    uri, sep, client = quoted[1:-1].partition('" "')
    if not sep or '"' in client:
        return None
    try:
        at, code, size = float(msec), int(status), int(sent)
    except ValueError:
        return None
    kind, stream_id = _classify(uri)
    return AccessRecord(at, code, size, tier, kind, stream_id, client)


class LogTail:
    """Whole lines appended to a file since the last `read()`. A file replaced or cut
    short (rotation) is read again from its start."""

    def __init__(self, path: Path, from_end: bool = False) -> None:
        self.path = path
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""
        if from_end and path.exists():
            st = path.stat()
            self._inode, self._offset = st.st_ino, st.st_size

    def read(self, max_bytes: int = 8 << 20) -> list[str]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._inode, self._offset, self._partial = st.st_ino, 0, b""
        if st.st_size == self._offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read(max_bytes)
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # the last line may still be being written
        return [ln.decode("utf-8", "replace") for ln in lines if ln]
