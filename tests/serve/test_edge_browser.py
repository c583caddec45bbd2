"""Chromium watching through `sparkcast edge`: an origin behind the edge dies (dash.js and
hls.js), and an edge listed in the manifest dies (the player moves to the other)."""

from __future__ import annotations

import time

import pytest
from servetools import VOD_ID, free_port, start_server
from test_serve_browser import NOW, _start, _wait, plays_on_after, segment_ports

from live_sim import LiveSimulator

pytestmark = pytest.mark.browser


def _no_errors(page) -> None:
    """The player never saw a failure at all."""
    errors = page.evaluate(NOW)["errors"]
    assert errors == [], errors


@pytest.mark.parametrize("engine", ["dash", "hls"])
def test_an_origin_dying_behind_the_edge_costs_no_stall(server_factory, edges, page_factory,
                                                        engine):
    origins = [server_factory("--workers", "1", "--threads", "4") for _ in range(2)]
    edge = edges([o.url for o in origins], free_port())
    page = page_factory()
    _start(page, f"{edge.url}/watch/{VOD_ID}?engine={engine}")
    _wait(page, "() => document.getElementById('video').currentTime > 2", 10, "no progress")
    # the edge spreads misses over both origins: this one was in use
    worst = plays_on_after(page, origins[0].kill, "an origin died")
    _no_errors(page)
    print(f"{engine}: origin killed behind the edge; worst stall {worst:.0f} ms")
    assert worst <= 2000, f"stalled {worst:.0f} ms after an origin behind the edge died"


def test_an_edge_dying_moves_the_player_to_the_other_edge(server_factory, edges,
                                                          page_factory):
    ports = [free_port(), free_port()]
    listed = ",".join(f"http://127.0.0.1:{p}" for p in ports)
    # the origin lists the edges in its manifests (BaseURLs, redundant HLS variants)
    origin = server_factory("--workers", "1", "--threads", "4", "--origins", listed)
    by_port = {p: edges([origin.url], p) for p in ports}
    page = page_factory()
    _start(page, f"{by_port[ports[0]].url}/watch/{VOD_ID}")
    _wait(page, "() => document.getElementById('video').currentTime > 2", 10, "no progress")
    in_use = segment_ports(page)[-1]
    other = next(p for p in ports if p != in_use)
    # dash.js reports the segments it could not get from the dead edge, then takes them
    # from the other BaseURL
    worst = plays_on_after(page, by_port[in_use].kill, "the edge in use died")
    assert segment_ports(page)[-1] == other
    print(f"edge {in_use} killed, playing from {other}; worst stall {worst:.0f} ms")
    assert worst <= 3000, f"stalled {worst:.0f} ms after the edge in use died"


@pytest.fixture
def live_origins(vod_root, tmp_path):
    """A live stream (tests/live_sim.py publishes the VOD in real time, 2 s segments) and
    two origins over its root; stopped after the test."""
    root = tmp_path / "live-root"
    root.mkdir()
    sim = LiveSimulator(vod_root, VOD_ID, root, "live1", preroll_segments=3,
                        segment_seconds=2.0, presentation_delay=4.0)
    sim.start()
    origins = [start_server(root, free_port(), "--workers", "1", "--threads", "4")
               for _ in range(2)]
    yield root, origins
    sim.stop()
    for origin in origins:
        origin.stop()


@pytest.mark.parametrize("engine", ["dash"])  # tests/live_sim.py writes a DASH MPD only
def test_a_live_origin_dying_behind_the_edge_costs_no_stall(live_origins, edges, page_factory,
                                                             engine):
    _, origins = live_origins
    edge = edges([o.url for o in origins], free_port())
    page = page_factory()
    _start(page, f"{edge.url}/watch/live1?engine={engine}")
    _wait(page, "() => sparkcastPlayer.live === true", 10, "not live")
    t0 = page.evaluate(NOW)["t"]
    _wait(page, f"() => document.getElementById('video').currentTime > {t0 + 2}", 10,
          "no progress")
    worst = plays_on_after(page, origins[0].kill, "an origin died")
    _no_errors(page)
    print(f"live {engine}: origin killed behind the edge; worst stall {worst:.0f} ms")
    assert worst <= 2000, f"stalled {worst:.0f} ms after an origin behind the edge died"


def test_the_edge_carries_a_live_stream_while_every_origin_is_down(live_origins, edges,
                                                                    page_factory):
    """Both origins down for 10 s: the edge answers from its cache (manifests stale, the
    newest seconds prefetched), the player plays what it holds and raises no fatal error,
    and plays on once they are back. It does stop meanwhile: what a live player holds
    ahead is its buffer (here about 1.5 s), and nothing newer than the stale manifest can
    reach the edge without an origin (measured: the issue's "does not stop" is not met)."""
    root, origins = live_origins
    edge = edges([o.url for o in origins], free_port(), "--cache-seconds", "30")
    page = page_factory()
    _start(page, f"{edge.url}/watch/live1")
    _wait(page, "() => sparkcastPlayer.live === true", 10, "not live")
    t0 = page.evaluate(NOW)["t"]
    _wait(page, f"() => document.getElementById('video').currentTime > {t0 + 4}", 15,
          "no progress")
    ports = [o.port for o in origins]
    for origin in origins:
        origin.kill()
    t_down = page.evaluate(NOW)["t"]
    time.sleep(10)
    during = page.evaluate(NOW)
    back = [start_server(root, port, "--workers", "1", "--threads", "4") for port in ports]
    try:
        _wait(page, f"() => document.getElementById('video').currentTime >= {t_down + 20}",
              40, "live playback did not go on after the origins came back")
        state = page.evaluate(NOW)
        worst = max(state["stalls"] + [state["waiting"]], default=0)
        print(f"both origins down 10 s: played {during['t'] - t_down:.1f} s meanwhile; "
              f"worst stall {worst:.0f} ms")
        assert during["t"] > t_down, "the player did not play what it held"
        assert page.evaluate(NOW)["t"] >= t_down + 20
    finally:
        for origin in back:
            origin.stop()


def _self_signed(directory) -> tuple[str, str, str]:
    """A certificate for 127.0.0.1 made here: (certificate, key, base64 SHA-256 of its
    public key, which Chromium's --ignore-certificate-errors-spki-list trusts)."""
    import subprocess

    cert, key = directory / "edge-cert.pem", directory / "edge-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    spki = subprocess.run(
        f"openssl x509 -pubkey -noout -in {cert} | openssl pkey -pubin -outform der"
        " | openssl dgst -sha256 -binary | base64", shell=True, check=True,
        capture_output=True, text=True).stdout.strip()
    return str(cert), str(key), spki


def test_the_player_plays_through_the_edge_over_tls(server_factory, edges, playwright_session,
                                                     tmp_path):
    from browser_tools import launch_chromium

    cert, key, spki = _self_signed(tmp_path)
    origin = server_factory("--workers", "1", "--threads", "4")
    edge = edges([origin.url], free_port(), scheme="https",
                 env={"SPARKCAST_TLS_CERTIFICATE": cert, "SPARKCAST_TLS_KEY": key})
    browser = launch_chromium(playwright_session, f"--ignore-certificate-errors-spki-list={spki}")
    try:
        page = browser.new_page()
        _start(page, f"{edge.url}/watch/{VOD_ID}")
        t0 = page.evaluate(NOW)["t"]
        _wait(page, f"() => document.getElementById('video').currentTime >= {t0 + 5}", 15,
              "no progress over TLS")
        assert page.evaluate(NOW)["errors"] == []
        protocols = page.evaluate("""() => [...new Set(performance.getEntriesByType('resource')
            .filter(e => e.name.includes('/out/')).map(e => e.nextHopProtocol))]""")
        assert protocols == ["h2"], protocols
        assert page.url.startswith("https://")
    finally:
        browser.close()
