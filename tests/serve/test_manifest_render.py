"""Live manifests rendered for the front door (serve/manifest_render.py): the files nginx
answers from disk are what the origin would answer, kept fresh as the stored manifests
change, and gone once a stream ends (its requests then reach the origin again)."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import requests
from lxml import etree
from servetools import VOD_ID, free_port, live_copy, start_server

from core.config import Settings
from hdfs_layout import StreamLayout
from live_sim import LiveSimulator
from serve import context, create_app
from serve.manifest_render import ManifestRenderer

LIVE = "live1"


def _live_root(vod_root: Path, tmp_path: Path) -> Path:
    """The VOD as itself, and as a live stream with live HLS playlists too."""
    root = live_copy(vod_root, tmp_path / "root", LIVE)
    src, dst = vod_root / StreamLayout(VOD_ID).base, root / StreamLayout(LIVE).base
    for playlist in src.glob("*.m3u8"):
        text = playlist.read_text().replace("#EXT-X-ENDLIST\n", "")
        (dst / playlist.name).write_text(text.replace("#EXT-X-PLAYLIST-TYPE:VOD\n", ""))
    shutil.copytree(src, root / StreamLayout(VOD_ID).base)
    return root


def test_renders_what_the_origin_answers_keeps_it_fresh_and_drops_an_ended_stream(
        vod_root: Path, tmp_path: Path) -> None:
    root = _live_root(vod_root, tmp_path)
    app = create_app(Settings(root=root.as_uri(), cache_seconds=0, origins=
                              "http://a.example,http://b.example"),
                     {"TESTING": True, "EDGE_FILLER": False})
    origin = app.test_client()
    out = tmp_path / "rendered" / StreamLayout(LIVE).base
    renderer = ManifestRenderer(context.get(app), tmp_path / "rendered")

    written = renderer.poll_once()
    assert set(renderer.live) == {LIVE}, "the VOD is left to the origin"
    names = sorted(p.name for p in out.iterdir())
    playlists = sorted(p.name for p in (root / StreamLayout(LIVE).base).glob("*.m3u8"))
    assert names == sorted(["manifest.mpd", *playlists]) and len(playlists) >= 3
    assert written == len(names)
    for name in names:
        answer = origin.get(f"/streams/{LIVE}/{name}")
        assert answer.status_code == 200
        assert (out / name).read_bytes() == answer.data, name
    assert b"http://b.example/streams/live1/" in (out / "manifest.mpd").read_bytes()
    assert not (tmp_path / "rendered" / StreamLayout(VOD_ID).base).exists()
    assert renderer.poll_once() == 0, "nothing changed: nothing written"

    stored = root / StreamLayout(LIVE).manifest
    stored.write_text(stored.read_text().replace('timeShiftBufferDepth="PT60S"',
                                                 'timeShiftBufferDepth="PT120S"'))
    assert renderer.poll_once() == 1
    assert b'timeShiftBufferDepth="PT120S"' in (out / "manifest.mpd").read_bytes()

    stored.write_text(re.sub(r'type="dynamic"[^>]*?timeShiftBufferDepth="PT120S"',
                             'type="static"', stored.read_text()))
    assert origin.get(f"/streams/{LIVE}/manifest.mpd").headers["Cache-Control"] \
        == "public, max-age=60"
    assert renderer.poll_once() == 0
    assert renderer.live == {} and not out.exists(), "an ended stream is the origin's again"


def test_a_stream_whose_manifest_breaks_is_left_to_the_origin(vod_root: Path,
                                                              tmp_path: Path) -> None:
    root = _live_root(vod_root, tmp_path)
    app = create_app(Settings(root=root.as_uri(), cache_seconds=0),
                     {"TESTING": True, "EDGE_FILLER": False})
    renderer = ManifestRenderer(context.get(app), tmp_path / "rendered")
    renderer.poll_once()
    (root / StreamLayout(LIVE).manifest).write_text("<MPD type='dynamic'")  # truncated
    assert renderer.poll_once() == 0
    assert renderer.live == {}
    assert not (tmp_path / "rendered" / StreamLayout(LIVE).base).exists()
    answer = app.test_client().get(f"/streams/{LIVE}/manifest.mpd")
    assert answer.status_code == 500 and "malformed" in answer.get_data(as_text=True)


def _last_number(mpd: bytes) -> int:
    """The newest video segment a live MPD lists (its last Period's)."""
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    period = etree.fromstring(mpd).findall("d:Period", ns)[-1]
    template = period.find("d:AdaptationSet[@contentType='video']/d:SegmentTemplate", ns)
    count = sum(int(s.get("r", 0)) + 1 for s in template.find("d:SegmentTimeline", ns))
    return int(template.get("startNumber", 1)) + count - 1


def test_the_front_door_answers_live_manifests_from_disk_as_they_change(
        vod_root: Path, tmp_path: Path) -> None:
    """Through `sparkcast serve`: every poll of a live MPD is answered by nginx from the
    rendered file (the origin sees none after the first), with the origin's headers, and
    a segment listed in the stored MPD is in the served one moments later."""
    root = tmp_path / "root"
    root.mkdir()
    sim = LiveSimulator(vod_root, VOD_ID, root, LIVE, preroll_segments=3,
                        segment_seconds=2.0, presentation_delay=4.0)
    sim.start()
    server = start_server(root, free_port(), "--workers", "1")
    url = f"{server.url}/streams/{LIVE}/manifest.mpd"
    stored = root / StreamLayout(LIVE).manifest
    try:
        seen_stored: dict[int, float] = {}
        seen_served: dict[int, float] = {}
        deadline = time.monotonic() + 9
        while time.monotonic() < deadline:
            seen_stored.setdefault(_last_number(stored.read_bytes()), time.monotonic())
            answer = requests.get(url, timeout=5)
            assert answer.status_code == 200
            seen_served.setdefault(_last_number(answer.content), time.monotonic())
            time.sleep(0.01)
        first = min(seen_stored)
        lags = {n: seen_served[n] - t for n, t in seen_stored.items()
                if n > first and n in seen_served}
        print(f"listed in storage -> served by the front door: {lags}")
        assert len(lags) >= 3 and set(seen_stored) - {first} <= set(seen_served), \
            (seen_stored, seen_served)
        # generous: the renderer polls every 50 ms; a second's lag (the cache it replaces
        # kept copies up to 2 s) stalled players behind a reconnect (docs/SERVING.md)
        assert max(lags.values()) < 0.5, lags

        answer = requests.get(url, timeout=5)
        assert answer.headers["Cache-Control"] == "public, max-age=1"
        assert answer.headers["Content-Type"] == "application/dash+xml"
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        assert "X-Cache" not in answer.headers and "X-Accel-Expires" not in answer.headers
        again = requests.get(url, headers={"If-None-Match": answer.headers["ETag"]},
                             timeout=5)
        assert again.status_code in (200, 304)  # 200 only if a segment was listed between
        metrics = requests.get(f"{server.url}/metrics", timeout=5).text
        asked = sum(float(v) for v in re.findall(
            r'^sparkcast_http_requests_total\{endpoint="media\.mpd"[^}]*\} (\S+)$', metrics,
            re.MULTILINE))
        assert asked <= 3, f"the origin built {asked} live MPDs of {len(seen_served)}+ polls"
        # a name matched whole (a trailing newline is another stream) and a preflight
        # reach the origin, which answers them
        odd = requests.get(f"{server.url}/streams/{LIVE}%0A/manifest.mpd", timeout=5)
        assert odd.status_code in (400, 404), odd.status_code
        pre = requests.options(url, headers={"Origin": "http://x.example",
                                             "Access-Control-Request-Method": "GET"},
                               timeout=5)
        assert pre.status_code in (200, 204) and pre.headers["Access-Control-Allow-Origin"]
    finally:
        server.stop()
        sim.stop()
