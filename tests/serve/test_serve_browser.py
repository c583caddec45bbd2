"""The player in headless Chromium against real `sparkcast serve` (gunicorn) instances.

Proves that a viewer sees the video: playback starts and advances, frames are real
pictures, HLS works through hls.js, the page is usable from phone to TV, ABR reacts
to a throttled network, and losing the origin in use costs no long stall.
"""

from __future__ import annotations

import io
import re
import time
from urllib.parse import urlparse

import pytest
import requests
from PIL import Image, ImageStat
from servetools import ARTIFACTS, VOD_ID, free_port, start_server

from live_sim import LiveSimulator

pytestmark = pytest.mark.browser

STATE = "() => window.sparkcastPlayer"
NOW = """() => ({t: document.getElementById('video').currentTime,
               paused: document.getElementById('video').paused,
               errors: sparkcastPlayer.errors, stalls: sparkcastPlayer.stalls,
               waiting: sparkcastPlayer.waitingSince === null ? 0
                        : performance.now() - sparkcastPlayer.waitingSince,
               height: sparkcastPlayer.height, engine: sparkcastPlayer.engine,
               requests: sparkcastPlayer.requests})"""


def segment_ports(page) -> list[int]:
    """The port of every segment the page fetched, in order (which origin or edge)."""
    return [urlparse(u).port for u in page.evaluate(
        """() => performance.getEntriesByType('resource')
            .filter(e => e.name.includes('/out/')).map(e => e.name)""")]


def _wait(page, predicate: str, timeout: float, what: str) -> None:
    try:
        page.wait_for_function(predicate, timeout=timeout * 1000, polling=200)
    except Exception as exc:  # noqa: BLE001 - report the player's state, not Playwright's
        pytest.fail(f"{what} within {timeout} s; player state: {page.evaluate(NOW)} ({exc})")


def plays_on_after(page, kill, what: str, seconds: float = 12) -> float:
    """Call `kill` (a server dies), wait until playback has gone `seconds` further and
    return the worst stall (ms) from the kill on: a stall while joining a live stream,
    before the kill, is not the kill's."""
    stalls_before = len(page.evaluate(NOW)["stalls"])
    kill()
    t_kill = page.evaluate(NOW)["t"]
    _wait(page, f"() => document.getElementById('video').currentTime >= {t_kill + seconds}",
          30, f"playback did not carry on for {seconds:g} s after {what}")
    state = page.evaluate(NOW)
    earlier = state["stalls"][:stalls_before]
    if earlier:
        print(f"stalls before {what} (not counted): {[round(s) for s in earlier]} ms")
    return max(state["stalls"][stalls_before:] + [state["waiting"]], default=0)


def _start(page, url: str) -> dict:
    page.goto(url)
    _wait(page, "() => window.sparkcastPlayer && sparkcastPlayer.everPlayed", 15,
          "player did not reach playing")
    return page.evaluate(NOW)


def _picture_spread(png: bytes) -> float:
    """Standard deviation of the grey levels: ~0 for a uniform (e.g. black) frame."""
    return ImageStat.Stat(Image.open(io.BytesIO(png)).convert("L")).stddev[0]


def _plays_for_five_seconds(page, name: str) -> dict:
    t0 = page.evaluate(NOW)["t"]
    _wait(page, f"() => document.getElementById('video').currentTime >= {t0 + 5}", 15,
          "currentTime did not advance by 5 s")
    state = page.evaluate(NOW)
    png = page.locator("#video").screenshot(path=str(ARTIFACTS / f"{name}.png"))
    assert _picture_spread(png) > 20, "the video element shows a uniform picture"
    assert state["errors"] == []
    return state


def test_vod_plays_with_dash(server, page_factory):
    page = page_factory()
    _start(page, f"{server.url}/watch/{VOD_ID}")
    state = _plays_for_five_seconds(page, "vod-dash")
    assert state["engine"] == "dash"
    assert state["height"] in (240, 360)


def test_vod_plays_with_hls_js(server, page_factory):
    page = page_factory()
    _start(page, f"{server.url}/watch/{VOD_ID}?engine=hls")
    state = _plays_for_five_seconds(page, "vod-hls")
    assert state["engine"] == "hls.js"


@pytest.mark.parametrize(("name", "size", "touch"), [
    ("phone", (390, 844), True),
    ("tv", (1920, 1080), False),
])
def test_player_and_controls_fit_the_screen(server, page_factory, name, size, touch):
    page = page_factory(size, touch)
    _start(page, f"{server.url}/watch/{VOD_ID}")
    width, height = size
    for sel in ("#play", "#mute", "#seek", "#quality", "#fullscreen"):
        box = page.locator(sel).bounding_box()
        assert box is not None, sel
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, sel
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, sel
        if sel != "#seek":
            assert box["width"] >= 44 and box["height"] >= 44, f"{sel} is too small to hit"
    video = page.locator("#video").bounding_box()
    assert video["width"] >= (0.95 * width if touch else 0.6 * width)
    for region in ("#comments", "#reactions", "#notices"):
        assert page.locator(region).count() == 1
    options = page.locator("#quality option").all_text_contents()
    assert options == ["Auto", "360p", "240p"]
    page.screenshot(path=str(ARTIFACTS / f"player-{name}.png"))
    if touch:
        page.tap("#play")
        _wait(page, "() => document.getElementById('video').paused", 5, "tap did not pause")
    page.locator("#quality").select_option("240p")
    _wait(page, "() => sparkcastPlayer.requests.some(r => r.height === 240)", 10,
          "choosing 240p in the menu did not switch")


def _throttle(cdp, kbps: float | None) -> None:
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0 if kbps is None else 20,
        "downloadThroughput": -1 if kbps is None else kbps * 1000 / 8,
        "uploadThroughput": -1})


def test_abr_switches_down_under_throttle_and_back_up(server, page_factory):
    page = page_factory()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    _start(page, f"{server.url}/watch/{VOD_ID}")
    _wait(page, "() => sparkcastPlayer.requests.length && "
                "sparkcastPlayer.requests[sparkcastPlayer.requests.length - 1].height === 360",
          20, "the player never chose 360p on a free network")
    # Below the second-lowest rung (360p video 800k + audio 130k), above 240p + audio (530k).
    _throttle(cdp, 600)
    mark = page.evaluate("() => performance.now()")
    _wait(page, f"() => sparkcastPlayer.requests.some(r => r.t > {mark} && r.height === 240)",
          20, "no switch down to 240p within 20 s of throttling")
    down_after = (page.evaluate("() => sparkcastPlayer.requests.find(r => r.t > "
                                f"{mark} && r.height === 240).t") - mark) / 1000
    time.sleep(4)
    _throttle(cdp, None)
    mark = page.evaluate("() => performance.now()")
    _wait(page, f"() => sparkcastPlayer.requests.some(r => r.t > {mark} && r.height === 360)",
          25, "no switch back up to 360p within 25 s of lifting the throttle")
    state = page.evaluate(NOW)
    assert state["errors"] == []
    assert max(state["stalls"] + [state["waiting"]], default=0) <= 2000, state["stalls"]
    print(f"ABR: switched down {down_after:.1f} s after throttling; stalls {state['stalls']}")


def test_failover_to_the_other_origin(server_factory, page_factory):
    ports = [free_port(), free_port()]
    origins = ",".join(f"http://127.0.0.1:{p}" for p in ports)
    servers = {p: server_factory("--workers", "1", "--threads", "4", "--origins", origins,
                                 port=p) for p in ports}
    page = page_factory()
    _start(page, f"{servers[ports[0]].url}/watch/{VOD_ID}")
    _wait(page, "() => document.getElementById('video').currentTime > 2", 10, "no progress")
    in_use = segment_ports(page)[-1]
    other = next(p for p in ports if p != in_use)
    worst = plays_on_after(page, servers[in_use].kill, "the origin in use died")
    assert worst <= 3000, f"stalled {worst:.0f} ms after the origin died"
    assert segment_ports(page)[-1] == other
    print(f"failover: origin {in_use} killed, playing from {other}; worst stall {worst:.0f} ms")


def _metric_sum(text: str, name: str, labels: str) -> float:
    return sum(float(v) for v in re.findall(
        rf"^{name}\{{[^}}]*{re.escape(labels)}[^}}]*\}} (\S+)$", text, re.MULTILINE))


def test_simulated_live_starts_fast_near_the_edge(vod_root, tmp_path, page_factory):
    """Live, before the live job exists: tests/live_sim.py publishes the VOD in real
    time. Playback starts within 5 s, stays within 2 segments + suggestedPresentationDelay
    of the live edge, nginx answers every segment from disk, DVR and LIVE button work."""
    root = tmp_path / "live-root"
    root.mkdir()
    sim = LiveSimulator(vod_root, VOD_ID, root, "live1", preroll_segments=3,
                        segment_seconds=2.0, presentation_delay=4.0)
    sim.start()
    server = start_server(root, free_port(), "--workers", "2", "--threads", "4",
                          "--cache-seconds", "10")
    try:
        time.sleep(2.5)  # the stream has been on for a while when the viewer comes
        page = page_factory()
        page.goto(f"{server.url}/watch/live1")
        _wait(page, "() => window.sparkcastPlayer && sparkcastPlayer.everPlayed", 10,
              "live playback did not start")
        startup = page.evaluate("() => sparkcastPlayer.startupMs")
        assert startup <= 5000, f"live playback took {startup:.0f} ms to start"
        assert page.evaluate("() => sparkcastPlayer.live") is True
        assert page.locator("#live").is_visible()
        bound = 2 * 2.0 + 4.0
        latencies = []
        for _ in range(10):
            time.sleep(1)
            latencies.append(page.evaluate("() => sparkcastPlayer.liveLatency()"))
        assert max(latencies) <= bound, latencies
        # DVR: go 10 s back, then the LIVE button brings the player back to the edge.
        page.evaluate("() => { const v = document.getElementById('video'); "
                      "v.currentTime = v.currentTime - 10; }")
        _wait(page, f"() => sparkcastPlayer.liveLatency() > {bound + 4}", 10, "DVR seek failed")
        page.click("#live")
        _wait(page, f"() => sparkcastPlayer.liveLatency() <= {bound}", 10,
              "the LIVE button did not return to the edge")
        state = page.evaluate(NOW)
        assert state["errors"] == []
        time.sleep(2.5)  # nginx flushes its log each second, serve reads it each second
        text = requests.get(server.url + "/metrics", timeout=5).text
        seg = 'kind="segment",status="2xx"'
        from_disk = _metric_sum(text, "sparkcast_front_requests_total", f'{seg},tier="disk"')
        from_origin = _metric_sum(text, "sparkcast_front_requests_total",
                                  f'{seg},tier="origin"')
        print(f"live: startup {startup:.0f} ms, latency {min(latencies):.1f}-"
              f"{max(latencies):.1f} s, segments from the front's disk {from_disk:.0f}, "
              f"through the origin {from_origin:.0f}")
        # A local root's segments, live edge and DVR alike, never cost the origin a request.
        assert from_disk >= 10
        assert from_origin == 0
    finally:
        sim.stop()
        server.stop()
