"""Every public URL of sparkcast, spelled once (as datasette's `Urls` does): the rules serve
routes by (Flask syntax), the paths the OpenAPI document lists, the regexes of the fast
paths, and the URLs pages and players are given. Pure.

A stream's media URLs mirror its storage layout (layout.py): `/streams/<id>/...` serves
`streams/<id>/...` of the storage root.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from hdfs_layout.layout import STREAM_ID_PATTERN

# --- media (serve/media.py)
MANIFEST = "/streams/<stream_id>/manifest.mpd"
PLAYLIST = "/streams/<stream_id>/<name>.m3u8"
SEGMENT = "/streams/<stream_id>/out/<rendition>/<name>"
CLOCK = "/clock"
# --- pages and their assets (serve/player.py, serve/admin_page.py)
WATCH = "/watch/<stream_id>"
ADMIN_PAGE = "/admin"
# --- APIs
STREAM_API = "/api/streams/<stream_id>"  # comments, reactions, notices, events
STREAM_ADS_API = STREAM_API + "/ads"
ADMIN_API = "/api/admin"
OPENAPI = "/api/openapi.json"
RTMP_CALLBACKS = "/rtmp"
# --- operations
HEALTH = "/healthz"
METRICS = "/metrics"

_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: `/watch/<stream_id>` -> `/watch/{stream_id}`."""
    return _PARAM.sub(r"{\1}", rule)


def rule_regex(rule: str) -> re.Pattern[str]:
    """A regex matching the paths of `rule`, one group per parameter (a stream id only as
    layout.py allows it; anything else one path segment)."""
    parts = re.split(r"(<(?:[a-z]+:)?[a-z_]+>)", rule)
    out = []
    for part in parts:
        m = _PARAM.fullmatch(part)
        if m is None:
            out.append(re.escape(part))
        else:
            out.append(f"({STREAM_ID_PATTERN})" if m.group(1) == "stream_id" else "([^/]+)")
    return re.compile("^" + "".join(out) + r"\Z")


class Urls:
    """Concrete URLs, under `base` (an origin such as http://host:8080, or "" for paths)."""

    def __init__(self, base: str = "") -> None:
        self.base = base.rstrip("/")

    def _path(self, rule: str, **values: str) -> str:
        return self.base + _PARAM.sub(lambda m: quote(values[m.group(1)], safe=""), rule)

    def manifest(self, stream_id: str) -> str:
        return self._path(MANIFEST, stream_id=stream_id)

    def playlist(self, stream_id: str, name: str = "master") -> str:
        return self._path(PLAYLIST, stream_id=stream_id, name=name)

    def watch(self, stream_id: str) -> str:
        return self._path(WATCH, stream_id=stream_id)

    def stream_api(self, stream_id: str) -> str:
        return self._path(STREAM_API, stream_id=stream_id)

    def admin_api(self) -> str:
        return self.base + ADMIN_API

    def clock(self) -> str:
        return self.base + CLOCK
