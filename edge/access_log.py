"""nginx's access log of a front (the `sparkcast` log_format of edge/templates), read back.

    parse_line(text)  one line as an AccessRecord, or None (pure)
    LogTail(path)     the lines appended since the last read (survives rotation)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from hdfs_layout.layout import STREAM_ID_PATTERN

_LINE = re.compile(r'^(?P<msec>\d+\.\d+) (?P<status>\d{3}) (?P<bytes>\d+) (?P<cache>\S+) '
                   r'(?P<tier>\S+) "(?P<uri>[^"]*)" "(?P<client>[^"]*)"$')
_SEGMENT = re.compile(rf"^/streams/({STREAM_ID_PATTERN})/out/[^/?]+/"
                      r"(?:init\.mp4|\d{8,12}\.m4s)(?:\?|$)")
_MANIFEST = re.compile(rf"^/streams/({STREAM_ID_PATTERN})/[^/?]+\.(?:mpd|m3u8)(?:\?|$)")


@dataclass(frozen=True, slots=True)
class AccessRecord:
    at: float  # unix time the request ended
    status: int
    sent: int  # body bytes
    tier: str  # disk, cache, stale, origin (edge/templates/nginx-http.conf)
    kind: str  # segment, manifest, other
    stream_id: str | None
    client: str  # "address|user agent"


def parse_line(line: str) -> AccessRecord | None:
    """One log line, or None for anything that is not one (a torn last line). Pure."""
    m = _LINE.match(line.rstrip("\n"))
    if m is None:
        return None
    uri = m.group("uri")
    kind, stream_id = "other", None
    if seg := _SEGMENT.match(uri):
        kind, stream_id = "segment", seg.group(1)
    elif man := _MANIFEST.match(uri):
        kind, stream_id = "manifest", man.group(1)
    return AccessRecord(float(m.group("msec")), int(m.group("status")), int(m.group("bytes")),
                        m.group("tier"), kind, stream_id, m.group("client"))


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
