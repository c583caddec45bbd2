"""`sparkcast edge` in front of real `sparkcast serve` origins (all on loopback): failover
between origins, the cached window while every origin is down, the prefetched live edge,
TLS with HTTP/2."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import requests
from servetools import VOD_ID, free_port, live_copy

from hdfs_layout import StreamLayout

SEG = f"/streams/{VOD_ID}/out/360p/{{:08d}}.m4s"
MPD = f"/streams/{VOD_ID}/manifest.mpd"


def _metric(text: str, labels: str) -> float:
    m = re.search(rf"^sparkcast_front_requests_total\{{{re.escape(labels)}\}} (\S+)$", text,
                  re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def test_failover_between_origins_and_the_cached_window_while_all_are_down(
        server_factory, edges, vod_root: Path) -> None:
    origins = [server_factory("--workers", "1", "--threads", "4") for _ in range(2)]
    edge = edges([o.url for o in origins], free_port())
    whole = (vod_root / StreamLayout(VOD_ID).media_segment("360p", 1)).read_bytes()
    first = requests.get(edge.url + SEG.format(1), timeout=10)
    assert first.status_code == 200 and first.content == whole
    assert requests.get(edge.url + MPD, timeout=10).status_code == 200
    # One origin dies: every request still succeeds, on the other, at once.
    origins[0].kill()
    for n in range(2, 8):
        started = time.monotonic()
        r = requests.get(edge.url + SEG.format(n), timeout=10)
        assert r.status_code == 200, (n, r.status_code)
        assert time.monotonic() - started < 1.5, f"segment {n} took too long to fail over"
    # Both die: what the edge holds is still served (the manifest stale), the rest is 502.
    origins[1].kill()
    for n in (1, 5):
        r = requests.get(edge.url + SEG.format(n), timeout=10)
        assert r.status_code == 200 and r.headers["X-Cache"] == "HIT", n
    # nginx counts cache lifetimes in whole seconds, so the manifest's 1 s copy stays a HIT
    # for up to 2 s after it was stored; then it must be served stale, not refused.
    deadline = time.monotonic() + 4
    while True:
        mpd = requests.get(edge.url + MPD, timeout=10)
        if mpd.headers.get("X-Cache") != "HIT" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert mpd.status_code == 200 and mpd.headers["X-Cache"] in ("STALE", "UPDATING")
    assert requests.get(edge.url + SEG.format(20), timeout=20).status_code in (502, 504)
    assert requests.get(edge.url + "/healthz", timeout=5).json()["role"] == "edge"
    time.sleep(2.5)  # the log is flushed and read each second
    text = requests.get(edge.url + "/metrics", timeout=5).text
    assert _metric(text, 'kind="segment",status="2xx",tier="cache"') >= 2
    assert _metric(text, 'kind="manifest",status="2xx",tier="stale"') >= 1


def test_only_the_edges_own_prefetcher_refreshes_a_cached_manifest(server_factory,
                                                                    edges) -> None:
    """The refresh header (edge/prefetch.py) skips the cached manifest from loopback only:
    from any other address it is ignored, so viewers cannot send their polls past the
    cache to the origin."""
    import psutil

    from edge.prefetch import REFRESH

    outside = next((a.address for addrs in psutil.net_if_addrs().values() for a in addrs
                    if a.family.name == "AF_INET" and not a.address.startswith("127.")), None)
    if outside is None:
        pytest.skip("this host has no address besides loopback")
    origin = server_factory("--workers", "1", "--threads", "4")
    edge = edges([origin.url], free_port(), "--host", "0.0.0.0")
    url = edge.url + MPD
    assert requests.get(url, timeout=10).headers["X-Cache"] == "MISS"
    assert requests.get(url, timeout=10).headers["X-Cache"] == "HIT"
    assert requests.get(url, headers=REFRESH, timeout=10).headers["X-Cache"] == "BYPASS"
    r = requests.get(url.replace("127.0.0.1", outside), headers=REFRESH, timeout=10)
    assert r.status_code == 200 and r.headers["X-Cache"] == "HIT"


@pytest.fixture
def live_root(vod_root: Path, tmp_path: Path) -> Path:
    return live_copy(vod_root, tmp_path, "edgelive")


def test_the_newest_seconds_of_a_watched_live_stream_are_on_the_edge_before_viewers_ask(
        live_root: Path, edges) -> None:
    from servetools import start_server

    origin = start_server(live_root, free_port(), "--workers", "1", "--threads", "4")
    try:
        edge = edges([origin.url], free_port(), "--cache-seconds", "10")
        # a viewer polls the manifest; nobody has asked for a segment yet
        assert requests.get(f"{edge.url}/streams/edgelive/manifest.mpd",
                            timeout=10).status_code == 200
        newest = [f"/streams/edgelive/out/{r}/{n:08d}.m4s" for r in ("360p", "240p")
                  for n in range(25, 30)] + ["/streams/edgelive/out/360p/init.mp4"]
        deadline = time.monotonic() + 10
        while True:
            time.sleep(1)
            text = requests.get(edge.url + "/metrics", timeout=5).text
            if _metric(text, 'kind="prefetch",status="2xx",tier="origin"') >= len(newest) \
                    or time.monotonic() > deadline:
                break
        hits = [requests.get(edge.url + url, timeout=10).headers.get("X-Cache") for url in newest]
        assert hits == ["HIT"] * len(newest)
        # an older segment was not fetched ahead: the viewer's request goes to the origin
        old = requests.get(f"{edge.url}/streams/edgelive/out/360p/00000003.m4s", timeout=10)
        assert old.status_code == 200 and old.headers["X-Cache"] == "MISS"
    finally:
        origin.stop()


def test_https_and_http2_on_the_edge(server_factory, edges, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    origin = server_factory("--workers", "1", "--threads", "4")
    edge = edges([origin.url], free_port(), scheme="https",
                 env={"SPARKCAST_TLS_CERTIFICATE": str(cert), "SPARKCAST_TLS_KEY": str(key)})
    out = subprocess.run(["curl", "-s", "--http2", "--cacert", str(cert), "-o", "/dev/null",
                          "-w", "%{http_version} %{http_code} %{size_download}",
                          edge.url + SEG.format(1)], capture_output=True, text=True, timeout=30)
    version, status, size = out.stdout.split()
    assert (version, status) == ("2", "200") and int(size) > 10_000, out.stdout + out.stderr
    # plain HTTP on the TLS port is refused, not served
    assert requests.get(edge.url.replace("https", "http") + MPD, timeout=5).status_code == 400


def _gst_video_frames(url: str) -> int:
    """Video frames GStreamer's playbin (a set-top box's player, not a browser) decodes
    from `url` to its end: distinct timestamps reaching the video sink."""
    proc = subprocess.run(
        ["gst-launch-1.0", "-v", "playbin", f"uri={url}",
         "video-sink=fakesink sync=false silent=false name=v",
         "audio-sink=fakesink sync=false name=a"],
        capture_output=True, text=True, timeout=300)
    assert "Got EOS" in proc.stdout, (proc.stdout[-2000:], proc.stderr[-2000:])
    return len(set(re.findall(r"chain +\*+ \(v:sink\).*?pts: ([\d:.]+)", proc.stdout)))


@pytest.mark.heavy
@pytest.mark.parametrize("manifest", ["manifest.mpd", "master.m3u8"])
def test_gstreamer_plays_dash_and_hls_through_the_edge_to_the_end(server_factory, edges,
                                                                   manifest: str) -> None:
    from servetools import VOD_SOURCE

    origin = server_factory("--workers", "1", "--threads", "4")
    edge = edges([origin.url], free_port())
    frames = _gst_video_frames(f"{edge.url}/streams/{VOD_ID}/{manifest}")
    assert frames == round(VOD_SOURCE.seconds * int(VOD_SOURCE.rate)), manifest


def test_viewers_behind_a_trusted_edge_are_told_apart(server_factory) -> None:
    """An origin that trusts the proxy in front of it (here every request comes from
    127.0.0.1, as from an edge on this host) takes the viewer's address from its
    X-Forwarded-For: two viewers behind one edge are two viewers, not one."""
    server = server_factory("--workers", "1", env={"SPARKCAST_TRUSTED_PROXIES": "127.0.0.1"})
    for viewer in ("203.0.113.7", "203.0.113.8"):
        r = requests.get(server.url + SEG.format(2), timeout=10,
                         headers={"X-Forwarded-For": viewer, "User-Agent": "same-tv"})
        assert r.status_code == 200
    deadline = time.monotonic() + 10
    while True:
        text = requests.get(server.url + "/metrics", timeout=5).text
        m = re.search(rf'^sparkcast_active_viewers{{stream="{VOD_ID}"}} (\S+)$', text,
                      re.MULTILINE)
        if (m and float(m.group(1)) == 2) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert m and float(m.group(1)) == 2, text[-1500:]
