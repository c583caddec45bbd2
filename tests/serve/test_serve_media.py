"""Media endpoints over a real transcoded VOD: headers, ranges, ETags, CORS, errors, traversal,
origins, the live-edge cache, clock, health and metrics."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from servetools import VOD_ID, HttpClient, live_copy

from hdfs_layout import StreamLayout
from manifest.rewrite import NS
from serve import context
from serve.live_fill import EdgeFiller

LAYOUT = StreamLayout(VOD_ID)
SEG = f"/streams/{VOD_ID}/out/360p/00000003.m4s"
SECRET = "sparkcast-secret-marker"


def _file(root: Path, path: str) -> bytes:
    return (root / path).read_bytes()


HLS = "application/vnd.apple.mpegurl"


@pytest.mark.parametrize(("url", "ctype", "path"), [
    (f"/streams/{VOD_ID}/manifest.mpd", "application/dash+xml", None),
    (f"/streams/{VOD_ID}/master.m3u8", HLS, LAYOUT.master_playlist),
    (f"/streams/{VOD_ID}/360p.m3u8", HLS, LAYOUT.media_playlist("360p")),
    (f"/streams/{VOD_ID}/out/360p/init.mp4", "video/mp4", LAYOUT.init_segment("360p")),
    (SEG, "video/mp4", LAYOUT.media_segment("360p", 3)),
    (f"/streams/{VOD_ID}/out/audio/00000002.m4s", "audio/mp4", LAYOUT.media_segment("audio", 2)),
])
def test_content_type_length_and_bytes(client, vod_root, url, ctype, path):
    r = client.get(url)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == ctype
    assert int(r.headers["Content-Length"]) == len(r.data)
    if path:
        assert r.data == _file(vod_root, path)
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_cache_control_per_kind(client):
    assert client.get(SEG).headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert client.get(f"/streams/{VOD_ID}/manifest.mpd").headers["Cache-Control"] == (
        "public, max-age=60")
    assert client.get(f"/streams/{VOD_ID}/out/360p/99999999.m4s").headers[
        "Cache-Control"] == "no-store"


def test_range_requests(client, vod_root):
    whole = _file(vod_root, LAYOUT.media_segment("360p", 3))
    n = len(whole)
    r = client.get(SEG, headers={"Range": "bytes=0-99"})
    assert (r.status_code, r.headers["Content-Range"], r.data) == (206, f"bytes 0-99/{n}",
                                                                    whole[:100])
    assert r.headers["Content-Length"] == "100"
    r = client.get(SEG, headers={"Range": "bytes=-50"})
    assert (r.status_code, r.data) == (206, whole[-50:])
    r = client.get(SEG, headers={"Range": f"bytes={n - 10}-"})
    assert (r.status_code, r.headers["Content-Range"], r.data) == (
        206, f"bytes {n - 10}-{n - 1}/{n}", whole[-10:])
    r = client.get(SEG, headers={"Range": f"bytes={n}-{n + 5}"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{n}"
    if not isinstance(client, HttpClient):
        # nginx's own 416 (a segment from disk): its short HTML page, and the segment's
        # headers, added before it found the range unsatisfiable (its proxy_cache never
        # stores a 416, whatever the header says). Players never ask for one.
        assert r.headers["Cache-Control"] == "no-store"
        assert r.json["error"]["code"] == "range_not_satisfiable"


def test_etag_and_if_none_match(client):
    first = client.get(SEG)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    r = client.get(SEG, headers={"If-None-Match": etag})
    assert (r.status_code, r.data, r.headers["ETag"]) == (304, b"", etag)
    assert client.get(SEG, headers={"If-None-Match": '"other"'}).status_code == 200
    mpd = client.get(f"/streams/{VOD_ID}/manifest.mpd")
    again = client.get(f"/streams/{VOD_ID}/manifest.mpd",
                       headers={"If-None-Match": mpd.headers["ETag"]})
    assert again.status_code == 304


def test_head_has_length_and_no_body(client, vod_root):
    r = client.head(SEG)
    assert r.status_code == 200 and r.data == b""
    assert int(r.headers["Content-Length"]) == len(_file(vod_root, LAYOUT.media_segment("360p", 3)))


def test_cors_preflight(client):
    r = client.options(SEG, headers={"Origin": "https://cms.example",
                                     "Access-Control-Request-Method": "GET",
                                     "Access-Control-Request-Headers": "range"})
    assert r.status_code in (200, 204)  # Flask, nginx
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in r.headers["Access-Control-Allow-Methods"]
    assert "Range" in r.headers["Access-Control-Allow-Headers"]
    assert "Content-Range" in client.get(SEG).headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize("url", [
    "/streams/nosuch/manifest.mpd",
    f"/streams/{VOD_ID}/out/360p/00009999.m4s",
    f"/streams/{VOD_ID}/out/1080p/init.mp4",
    f"/streams/{VOD_ID}/1080p.m3u8",
])
def test_unknown_stream_or_segment_is_json_404(client, url):
    r = client.get(url)
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/json"
    assert r.json["error"]["code"] == "not_found" and r.json["error"]["message"]


# Raw request targets: sent verbatim to gunicorn, percent-decoded by the test client.
FUZZ = [
    "/streams/../etc/passwd",
    f"/streams/{VOD_ID}/../../etc/passwd",
    f"/streams/{VOD_ID}/out/360p/../../../../secret.txt",
    f"/streams/{VOD_ID}/out/..%2f..%2f..%2fsecret.txt",
    f"/streams/{VOD_ID}/out/360p/..%2F..%2F..%2F..%2Fsecret.txt",
    f"/streams/{VOD_ID}%2fout%2f360p/init.mp4",
    f"/streams/%2e%2e/{VOD_ID}/manifest.mpd",
    f"/streams/{VOD_ID}/out/%2e%2e/source.json",
    f"/streams/{VOD_ID}/out/360p/%2e%2e",
    f"/streams/{VOD_ID}/out/360p/%00.m4s",
    f"/streams/{VOD_ID}%00/manifest.mpd",
    f"/streams/{VOD_ID}/out/360p/00000001.m4s%00.txt",
    "//etc/passwd",
    "/streams//etc/passwd/manifest.mpd",
    f"/streams/{VOD_ID}/out//etc/passwd",
    f"/streams/{VOD_ID}/out/360p/%2fetc%2fpasswd",
    f"/streams/{VOD_ID}/out/360p/%2F..%2F..%2F..%2F..%2Fsecret.txt",
    f"/streams/{VOD_ID}/out/360p/..\\..\\..\\secret.txt",
    f"/streams/{VOD_ID}/out/360p/..%5c..%5c..%5csecret.txt",
    f"/streams/{VOD_ID}/..%252f..%252fsecret.txt",
    f"/streams/{VOD_ID}/out/360p/%252e%252e%252fsecret.txt",
    "/streams/%c0%ae%c0%ae/manifest.mpd",
    f"/streams/{VOD_ID}/manifest.mpd/..",
    f"/streams/{VOD_ID}/raw/00000000.ts",
    f"/streams/{VOD_ID}/source.json",
    f"/streams/{VOD_ID}/index/00000000.json",
    f"/streams/{VOD_ID}/catalog/segments.parquet",
    f"/streams/{VOD_ID}/out/360p/-0000001.m4s",
    f"/streams/{VOD_ID}/out/360p/1.m4s",
    f"/streams/{VOD_ID}/out/360p/000000000000000000003.m4s",
    f"/streams/{VOD_ID}/out/360p/00000003.M4S",
    f"/streams/{VOD_ID}/%2e%2e%2f%2e%2e%2fsecret.m3u8",
    f"/streams/{VOD_ID}/..%2f..%2fsecret.m3u8",
    "/streams/" + "a" * 70 + "/manifest.mpd",
    "/streams/-lead/manifest.mpd",
    "/watch/..%2f..%2fetc%2fpasswd",
    "/watch/%2e%2e",
    "/player/vendor/..%2fpackage.json",
    "/player/vendor/../../pyproject.toml",
    "/player/..%2fpackage.json",
    "/player/vendor/dash.all.min.js%00",
    "/secret.txt",
    "/streams/secret.txt",
]


@pytest.fixture(scope="module")
def planted(vod_root: Path) -> Path:
    """Files a traversal would try to reach: one in the root, one beside it."""
    (vod_root / "secret.txt").write_text(SECRET)
    (vod_root / "secret.m3u8").write_text(SECRET)
    (vod_root.parent / "secret.txt").write_text(SECRET)
    return vod_root


@pytest.mark.parametrize("target", FUZZ)
def test_traversal_fuzz_test_client(client, planted, target):
    r = client.get(target)
    assert r.status_code in (400, 404), target
    assert SECRET.encode() not in r.data


def _raw_get(port: int, target: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def test_traversal_fuzz_real_gunicorn(server, planted):
    answers = {t: _raw_get(server.port, t.encode()) for t in FUZZ}
    answers["raw NUL"] = _raw_get(server.port, f"/streams/{VOD_ID}/\x00/manifest.mpd".encode())
    answers["absolute-form"] = _raw_get(server.port, b"http://127.0.0.1/../../secret.txt")
    bad = {t: s for t, (s, _) in answers.items() if s not in (400, 404)}
    assert not bad
    assert not [t for t, (_, body) in answers.items() if SECRET.encode() in body]
    # and the server still serves
    assert _raw_get(server.port, SEG.encode())[0] == 200


def test_origins_become_base_urls_and_redundant_variants(app_factory):
    c = app_factory(origins="http://o1:8080, http://o2:8080/").test_client()
    root = etree.fromstring(c.get(f"/streams/{VOD_ID}/manifest.mpd").data)
    assert [b.text for b in root.findall(f"{{{NS}}}BaseURL")] == [
        f"http://o1:8080/streams/{VOD_ID}/", f"http://o2:8080/streams/{VOD_ID}/"]
    master = c.get(f"/streams/{VOD_ID}/master.m3u8").data.decode()
    uris = [ln for ln in master.splitlines() if ln and not ln.startswith("#")]
    assert uris == [f"http://o1:8080/streams/{VOD_ID}/360p.m3u8",
                    f"http://o1:8080/streams/{VOD_ID}/240p.m3u8",
                    f"http://o2:8080/streams/{VOD_ID}/360p.m3u8",
                    f"http://o2:8080/streams/{VOD_ID}/240p.m3u8"]


def test_clock_is_iso_utc_now(client):
    r = client.get("/clock")
    assert r.headers["Cache-Control"] == "no-store"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r.data.decode())
    then = datetime.fromisoformat(r.data.decode().replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - then).total_seconds()) < 5


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json["status"] == "ok"


def _metric(text: str, name: str, labels: str) -> float:
    m = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


@pytest.fixture
def live_root(vod_root: Path, tmp_path: Path) -> Path:
    return live_copy(vod_root, tmp_path, "live1")


def test_live_edge_is_served_from_memory_after_a_poll(live_root: Path):
    from core.config import Settings
    from serve import create_app

    app = create_app(Settings(root=live_root.as_uri(), cache_seconds=10),
                     {"TESTING": True, "EDGE_FILLER": False})
    c = app.test_client()
    ctx = context.get(app)
    filler = EdgeFiller(ctx.storage, ctx.cache)
    loaded = filler.poll_once()
    assert filler.live == {"live1"}
    # 60 s VOD, 2 s segments: the newest 10 s are segments 25..29 of 2 video rungs; audio
    # segments are 2.005 s (whole AAC frames) and 6 of them end in that window; plus 3 init
    # segments.
    assert loaded == 5 * 2 + 6 + 3
    before = ctx.cache.stats()
    metrics_before = c.get("/metrics").data.decode()
    edge = c.get("/streams/live1/out/360p/00000029.m4s")
    init = c.get("/streams/live1/out/240p/init.mp4")
    old = c.get("/streams/live1/out/360p/00000003.m4s")
    assert edge.status_code == init.status_code == old.status_code == 200
    assert edge.data == (live_root / StreamLayout("live1").media_segment("360p", 29)).read_bytes()
    after = ctx.cache.stats()
    assert (after.hits - before.hits, after.misses - before.misses) == (2, 1)
    text = c.get("/metrics").data.decode()
    hit = 'result="hit"'
    assert _metric(text, "sparkcast_cache_requests_total", hit) - _metric(
        metrics_before, "sparkcast_cache_requests_total", hit) == 2
    assert after.bytes <= ctx.cache.max_bytes
    mpd = c.get("/streams/live1/manifest.mpd")
    assert mpd.headers["Cache-Control"] == "public, max-age=1"
    assert b"UTCTiming" in mpd.data and b"/clock" in mpd.data
    assert filler.poll_once() == 0  # nothing new: nothing read again


def test_filler_ignores_vod_streams(vod_root: Path):
    from hdfs_layout import open_storage
    from serve.cache import SegmentCache

    filler = EdgeFiller(open_storage(vod_root.as_uri()), SegmentCache(30, 10**8))
    assert filler.poll_once() == 0 and filler.live == set()


def test_metrics_count_requests_and_bytes(vod_root: Path):
    """What the origin itself answered (Flask alone: under serve nginx answers segments)."""
    from core.config import Settings
    from serve import create_app

    client = create_app(Settings(root=vod_root.as_uri()),
                        {"TESTING": True, "EDGE_FILLER": False}).test_client()
    client.get(SEG)
    text = client.get("/metrics").data.decode()
    assert _metric(text, "sparkcast_http_requests_total",
                   'endpoint="media.segment",status="200"') >= 1
    assert _metric(text, "sparkcast_http_response_bytes_total", 'kind="segment"') > 0
    assert "sparkcast_segment_seconds_bucket" in text


def test_serve_metrics_count_what_nginx_answered(server_factory):
    """Under `sparkcast serve` the origin's /metrics also shows the front door's requests
    by tier (from nginx's log): segments from disk, a manifest's second fetch from the
    front's cache, and the viewers that fetched segments."""
    import time

    import requests

    server = server_factory("--workers", "1")
    sizes = []
    for agent in ["tv/1", "phone/2"]:
        r = requests.get(server.url + SEG, headers={"User-Agent": agent}, timeout=10)
        assert r.status_code == 200
        sizes.append(len(r.content))
    for _ in range(2):
        requests.get(f"{server.url}/streams/{VOD_ID}/manifest.mpd", timeout=10)
    deadline = time.monotonic() + 10
    while True:
        text = requests.get(server.url + "/metrics", timeout=10).text
        disk = _metric(text, "sparkcast_front_requests_total",
                       'kind="segment",status="2xx",tier="disk"')
        cached = _metric(text, "sparkcast_front_requests_total",
                         'kind="manifest",status="2xx",tier="cache"')
        viewers = _metric(text, "sparkcast_active_viewers", f'stream="{VOD_ID}"')
        if (disk, cached, viewers) == (2, 1, 2) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (disk, cached, viewers) == (2, 1, 2), text[-3000:]
    assert _metric(text, "sparkcast_front_response_bytes_total",
                   'kind="segment",tier="disk"') == sum(sizes)
    assert 'sparkcast_front_connections{state="waiting"}' in text
