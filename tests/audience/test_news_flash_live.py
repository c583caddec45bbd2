"""A news flash created during a real live stream reaches the manifests and the screen
within 5 s (issue 7).

The real live system (sparkcast.stack, as tests/serve/test_live_real_browser.py): an ffmpeg
publisher over RTMP -> nginx-rtmp -> the live chunker -> the Spark live job -> `sparkcast
serve`, and /watch/<id> playing in headless Chromium. Once the player plays, a flash is
created through the admin HTTP API (Bearer token) at T0; then, from T0:

- MPD: the served /streams/<id>/manifest.mpd is polled (through serve's HTTP, as a player
  would, not storage) until its Period carries an EventStream Event with the flash's id;
- HLS: every media playlist the served master.m3u8 lists is polled until it carries an
  EXT-X-DATERANGE with ID="notice-<id>" (reported: the first and the last of them);
- screen: an in-page probe stamps Date.now() when an overlay showing the flash text is
  visible in #notices; the Playwright locator then confirms it is visible and inside the
  video box, and test-artifacts/news-flash-live.png shows it.

Each must be <= 5 s after T0 (T0 is taken before the POST is sent). The values are checked
too, not only their presence: the Event's Period@start + presentationTime is the media time
captured at the flash's start (the stream's wall-clock anchor derived from the served HLS
EXT-X-PROGRAM-DATE-TIME and the MPD's segment timeline, and cross-checked with live.json),
its duration and text are the flash's; the DATERANGE START-DATE is the flash's start to the
millisecond, with its duration, class and text; the overlay is this flash (data-id). None of
them may show the flash before it is created.

Database: SQLite only. The audience fixtures would run this on MariaDB too, but here the
database is used by separate processes (serve, the live job) of a real stack whose start
(Spark) is most of the ~1.5 min this test takes; a second stack for MariaDB would double it.
The notice path through MariaDB (DATETIME(6) starts, SSE) is covered by the cheaper
tests/audience tests, which run on both backends.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from lxml import etree

from browser_tools import wait_js
from core.config import Settings
from hdfs_layout import StreamLayout, open_storage
from jobs.live_reduce import LiveState
from manifest.mpd import date_time
from manifest.presentation import EVENT_SCHEME
from sparkcast.stack import LiveStack, ffmpeg_available

pytestmark = [pytest.mark.browser, pytest.mark.heavy]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
STREAM = "flashlive"
PUBLISH_SECONDS = 90  # a cap: the stack stops the publisher when the test is done
LIMIT = 5.0  # seconds from T0 (issue 7)
# The production chunk length. With short chunks (2 s, as the other live browser tests use
# for speed) every batch rewrites the manifests within ~3 s anyway, and the test could not
# tell whether a flash waits for new media.
CHUNK_SECONDS = 10.0
# The flash is created once the listed media is at most this far behind the wall clock
# (a chunk plus a batch): a stream that runs, not one whose first batches the live job is
# still catching up with.
SETTLED_LAG = CHUNK_SECONDS + 6
FLASH_SECONDS = 30.0
POLL = 0.1

# Stamps (Date.now(), ms) the first moment an overlay showing window.__flash.text is visible.
PROBE = """
window.__flash = { text: null, seenAt: null, id: null };
setInterval(() => {
  const f = window.__flash;
  if (!f.text || f.seenAt !== null) return;
  for (const n of document.querySelectorAll('#notices .notice-flash')) {
    if (n.textContent.includes(f.text) && n.checkVisibility({opacityProperty: true,
                                                              visibilityProperty: true})) {
      f.seenAt = Date.now(); f.id = n.dataset.id; break;
    }
  }
}, 20);
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not ffmpeg_available():
        pytest.fail("ffmpeg is missing: apt-get install -y ffmpeg")
    tmp = tmp_path_factory.mktemp("news-flash-live")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARKCAST_CONFIG", str(tmp / "no-config.toml"))
        # The stack's processes run the `sparkcast` console script, which imports wherever
        # the editable install points (another checkout, e.g. a CI clone): make them run
        # this checkout's code, like the test itself.
        mp.setenv("PYTHONPATH", os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
        settings = Settings(root=(tmp / "root").as_uri(),
                            database_url=f"sqlite:///{tmp / 'db.sqlite'}",
                            chunk_seconds=CHUNK_SECONDS, ladder="240:300k,180:200k", port=0,
                            rtmp_port=0,
                            live_end_timeout=15, x264_preset="ultrafast")
        s = LiveStack(settings, tmp / "run")
        s.start()  # returns once the live job's streaming query runs
        try:
            yield s
        finally:
            s.stop()


def _admin_token(stack: LiveStack) -> str:
    from store.db import ensure_schema, make_engine, session_scope
    from store.tokens import create_token

    engine = make_engine(stack.settings.database_url)
    try:
        ensure_schema(engine)
        with session_scope(engine) as session:
            return create_token(session, "news flash test")[1]
    finally:
        engine.dispose()


# --- reading the served manifests ---------------------------------------------------------

def _seconds(value: str | None) -> float:
    m = re.fullmatch(r"PT(?:([\d.]+)H)?(?:([\d.]+)M)?([\d.]+)S", value or "")
    assert m, f"unexpected xs:duration {value!r}"
    return float(m.group(1) or 0) * 3600 + float(m.group(2) or 0) * 60 + float(m.group(3))


def _unix(xs_datetime: str) -> float:
    return datetime.fromisoformat(xs_datetime.replace("Z", "+00:00")).timestamp()


def _mpd_event(mpd: etree._Element, notice_id: int):
    """(Period, Event) carrying notice_id in a notice EventStream, or None."""
    for period in mpd.iterfind("d:Period", NS):
        for stream in period.iterfind("d:EventStream", NS):
            if stream.get("schemeIdUri") != EVENT_SCHEME:
                continue
            for ev in stream.iterfind("d:Event", NS):
                if ev.get("id") == str(notice_id):
                    return period, ev
    return None


def _segment_times(mpd: etree._Element) -> dict[int, tuple[float, float]]:
    """Video segment number -> presentation times (s) of its start and end, every period."""
    out = {}
    for period in mpd.iterfind("d:Period", NS):
        start = _seconds(period.get("start", "PT0S"))
        tpl = period.find("d:AdaptationSet[@contentType='video']/d:SegmentTemplate", NS)
        scale, pto = int(tpl.get("timescale")), int(tpl.get("presentationTimeOffset", 0))
        number, t = int(tpl.get("startNumber", 1)), 0
        for s in tpl.find("d:SegmentTimeline", NS):
            t = int(s.get("t", t))
            for _ in range(int(s.get("r", 0)) + 1):
                d = int(s.get("d"))
                out[number] = (start + (t - pto) / scale, start + (t + d - pto) / scale)
                number += 1
                t += d
    return out


def _first_pdt(playlist: str) -> tuple[int, float]:
    """(segment number, EXT-X-PROGRAM-DATE-TIME) of the first dated segment of a playlist."""
    lines = playlist.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            uri = next(x for x in lines[i + 1:] if x and not x.startswith("#"))
            m = re.search(r"/(\d+)\.m4s$", uri)
            assert m, f"unexpected segment URI {uri!r}"
            return int(m.group(1)), _unix(line.split(":", 1)[1])
    raise AssertionError(f"no EXT-X-PROGRAM-DATE-TIME in\n{playlist}")


def _dateranges(playlist: str) -> dict[str, dict[str, str]]:
    """ID -> attributes of every EXT-X-DATERANGE."""
    out = {}
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-DATERANGE:"):
            attrs = {k: (q if q else v) for k, q, v in re.findall(
                r'([A-Z0-9-]+)=(?:"([^"]*)"|([^",]*))', line.split(":", 1)[1])}
            out[attrs["ID"]] = attrs
    return out


def _media_playlists(http: requests.Session, base: str) -> tuple[list[str], list[str]]:
    """URLs of the media playlists the served master lists (variants and EXT-X-MEDIA), and
    of the video ones (the variants)."""
    url = f"{base}/streams/{STREAM}/master.m3u8"
    master = http.get(url, timeout=5)
    master.raise_for_status()
    media, variants = [], []
    for line in master.text.splitlines():
        if line.startswith("#EXT-X-MEDIA:"):
            media += re.findall(r'URI="([^"]+)"', line)
        elif line and not line.startswith("#"):
            variants.append(line)
    # serve repeats each variant per origin: one URL per playlist name is enough
    video = list({u.rsplit("/", 1)[-1]: urljoin(url, u) for u in variants}.values())
    other = list({u.rsplit("/", 1)[-1]: urljoin(url, u) for u in media}.values())
    assert video, master.text
    return video + other, video


def _edge(http: requests.Session, mpd_url: str, video_playlist: str
          ) -> tuple[float, float, dict[int, tuple[float, float]]]:
    """(wall-clock anchor, listed end, segment times) of the served MPD and playlist."""
    mpd = etree.fromstring(http.get(mpd_url, timeout=5).content)
    number, pdt = _first_pdt(http.get(video_playlist, timeout=5).text)
    times = _segment_times(mpd)
    assert number in times, f"segment {number} of the playlist is not in the MPD"
    return pdt - times[number][0], max(end for _, end in times.values()), times


class _Poller(threading.Thread):
    """Polls the served MPD and media playlists; records, per URL, the monotonic time a
    body first holds `marker` and that body."""

    def __init__(self, urls: list[str], marker: str):
        super().__init__(daemon=True)
        self.urls, self.marker = urls, marker
        self.first_body: dict[str, str] = {}  # each URL's first answer (before the flash)
        self.seen: dict[str, tuple[float, str]] = {}
        self.polls = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.primed = threading.Event()

    def run(self) -> None:
        http = requests.Session()
        while not self.stop.is_set() and len(self.seen) < len(self.urls):
            for url in self.urls:
                if url in self.seen:
                    continue
                try:
                    r = http.get(url, timeout=5, headers={"Cache-Control": "no-cache"})
                    r.raise_for_status()
                except requests.RequestException as exc:
                    self.errors.append(f"{url}: {exc}")
                    continue
                self.first_body.setdefault(url, r.text)
                if self.marker in r.text:
                    self.seen[url] = (time.monotonic(), r.text)
            self.polls += 1
            if len(self.first_body) == len(self.urls):
                self.primed.set()  # every URL answered once (before the flash)
            time.sleep(POLL)


# --- the test ----------------------------------------------------------------------------

def test_news_flash_reaches_manifests_and_screen_within_5s(stack, browser):
    try:
        _check(stack, browser)
    except (AssertionError, pytest.fail.Exception) as exc:
        raise AssertionError(f"{exc}\n--- live job log (tail) ---\n{stack.log_tail('live', 30)}"
                             f"\n--- serve log (tail) ---\n{stack.log_tail('serve', 10)}"
                             ) from None


def _check(stack: LiveStack, browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base = stack.base_url
    http = requests.Session()
    publisher = stack.publish(stack.create_key(STREAM), PUBLISH_SECONDS, size="320x240",
                              rate=15)
    token = _admin_token(stack)
    mpd_url = f"{base}/streams/{STREAM}/manifest.mpd"

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert publisher.poll() is None, (
            f"the publisher exited with {publisher.returncode}: "
            f"{publisher.stderr.read().decode(errors='replace')[-500:]}")
        if http.get(mpd_url, timeout=5).status_code == 200:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("no live MPD served 90 s after the publish began")

    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = ctx.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.add_init_script(PROBE)
        page.goto(f"{base}/watch/{STREAM}")
        wait_js(page, "() => window.sparkcastPlayer && sparkcastPlayer.everPlayed", 30,
                 "live playback did not start")
        t_play = page.evaluate("() => document.getElementById('video').currentTime")
        wait_js(page, f"() => document.getElementById('video').currentTime > {t_play} + 0.5",
                 15, "currentTime did not move")
        assert page.evaluate("() => sparkcastPlayer.live") is True
        wait_js(page, "() => window.sparkcastAudience && "
                       "['sse', 'poll'].includes(sparkcastAudience.feed)", 10,
                 "the audience feed did not connect")

        playlists, video_playlists = _media_playlists(http, base)
        # Create the flash just after a batch listed new media: the next batch is then about
        # a chunk away, so a flash that waited for new media could not make it in 5 s.
        _, before, _ = _edge(http, mpd_url, video_playlists[0])
        deadline = time.monotonic() + 60
        while True:
            anchor, listed_end, _ = _edge(http, mpd_url, video_playlists[0])
            lag = time.time() - anchor - listed_end
            if listed_end > before and lag <= SETTLED_LAG:
                break
            assert time.monotonic() < deadline, (
                f"no batch listed new media within 60 s of a settled stream (listed end "
                f"{listed_end:.1f} s, {lag:.1f} s behind the wall clock)")
            if lag > SETTLED_LAG:  # listed, but late: wait for the next batch
                before = max(before, listed_end)
            time.sleep(0.2)

        text = f"Breaking {uuid.uuid4().hex[:10]}: <b>rates</b> & \"quotes\""
        marker = text.split(":")[0].split()[1]  # the hex: alike in MPD, playlists, page
        poller = _Poller([mpd_url, *playlists], marker)
        poller.start()
        assert poller.primed.wait(10), f"the first manifest poll failed: {poller.errors}"
        page.evaluate("(t) => { window.__flash.text = t; }", text)

        t0, t0_wall = time.monotonic(), time.time()
        r = http.post(f"{base}/api/admin/notices", timeout=10,
                      headers={"Authorization": f"Bearer {token}"},
                      json={"stream_id": STREAM, "kind": "flash", "text": text,
                            "duration": FLASH_SECONDS})
        posted = time.monotonic() - t0
        assert r.status_code == 201, r.text
        flash = r.json()

        overlay = page.locator("#notices .notice-flash", has_text=text)
        overlay.wait_for(state="visible", timeout=15_000)
        locator_at = time.monotonic() - t0
        poller.join(15)
        poller.stop.set()
        seen_at = page.evaluate("() => window.__flash")
        box = overlay.bounding_box()
        video_box = page.locator("#video-box").bounding_box()
        overlay_id = overlay.get_attribute("data-id")
        page.locator("#video-box").screenshot(path=str(ARTIFACTS / "news-flash-live.png"))
        assert publisher.poll() is None, "the publish ended during the test"
        assert page_errors == [], page_errors
        assert page.evaluate("() => sparkcastPlayer.errors") == []
    finally:
        ctx.close()

    # when
    missing = [u for u in poller.urls if u not in poller.seen]
    assert not missing, (f"the flash never appeared (15 s) in {missing}; "
                         f"poll errors {poller.errors[-3:]}")
    mpd_s = poller.seen[mpd_url][0] - t0
    hls_s = {u.rsplit("/", 1)[-1]: poller.seen[u][0] - t0 for u in playlists}
    screen_s = seen_at["seenAt"] / 1000 - t0_wall
    print(f"\nnews flash {flash['id']} created at T0 (POST answered in {posted:.2f} s); "
          f"after T0: MPD EventStream {mpd_s:.2f} s, EXT-X-DATERANGE "
          f"{min(hls_s.values()):.2f}-{max(hls_s.values()):.2f} s "
          f"({', '.join(f'{k} {v:.2f}' for k, v in hls_s.items())}), on screen "
          f"{screen_s:.2f} s (locator saw it at {locator_at:.2f} s); "
          f"{poller.polls} polls of {len(poller.urls)} manifests; listed media {lag:.1f} s "
          "behind the wall clock before T0")

    # nothing showed the flash before it was created
    for url, body in poller.first_body.items():
        assert marker not in body, f"{url} held the flash before it was created"

    # the flash as created
    assert flash["kind"] == "flash" and flash["text"] == text
    assert flash["duration"] == FLASH_SECONDS
    assert t0_wall - 1 <= flash["start"] <= t0_wall + posted + 1, (flash["start"], t0_wall)

    # the MPD Event: id, text, duration, and placed at the media time captured at the start
    mpd = etree.fromstring(poller.seen[mpd_url][1].encode())
    assert mpd.get("type") == "dynamic"
    found = _mpd_event(mpd, flash["id"])
    assert found is not None, "the MPD names the flash but holds no Event with its id"
    period, ev = found
    stream = ev.getparent()
    assert stream.get("value") == "notice" and stream.get("timescale") == "1000"
    assert ev.text == f"flash: {text}"
    assert int(ev.get("duration")) == round(FLASH_SECONDS * 1000)
    media_time = _seconds(period.get("start", "PT0S")) + int(ev.get("presentationTime")) / 1000
    # The stream's wall-clock anchor (capture time of media time 0), as a player sees it:
    # a segment's EXT-X-PROGRAM-DATE-TIME minus its presentation time in the MPD.
    number, pdt = _first_pdt(poller.seen[video_playlists[0]][1])
    times = _segment_times(mpd)
    assert number in times, f"segment {number} of the playlist is not in the MPD"
    anchor = pdt - times[number][0]
    stored = LiveState.from_json(open_storage(stack.settings.root).read(
        StreamLayout(STREAM).live_state)).anchor
    assert abs(anchor - stored) < 0.002, (anchor, stored)
    assert abs(media_time - (flash["start"] - anchor)) < 0.002, (
        f"Event at media time {media_time:.3f} s; the flash started at "
        f"{flash['start'] - anchor:.3f} s of media time")
    # ... which is the live edge: the flash starts after the media listed before T0 (which
    # was captured before T0) and no later than the wall clock's lead over it then
    assert listed_end - 0.5 <= media_time <= listed_end + lag + posted + 0.5, (
        media_time, listed_end, lag)
    # the DATERANGEs: every media playlist, the same values
    for url in playlists:
        dr = _dateranges(poller.seen[url][1]).get(f"notice-{flash['id']}")
        assert dr is not None, f"{url} names the flash but has no DATERANGE with its id"
        assert dr["START-DATE"] == date_time(flash["start"]), (dr, flash["start"])
        assert abs(_unix(dr["START-DATE"]) - flash["start"]) < 0.001
        assert dr["CLASS"] == f"{EVENT_SCHEME}:flash"
        assert float(dr["DURATION"]) == FLASH_SECONDS
        assert dr["X-SPARKCAST-TEXT"] == text.replace('"', "'"), dr

    # on screen: this flash, over the video
    assert seen_at["id"] == str(flash["id"]) == overlay_id, (seen_at, overlay_id)
    assert box and video_box
    assert (video_box["x"] <= box["x"] and box["x"] + box["width"] <= video_box["x"]
            + video_box["width"] and video_box["y"] <= box["y"]
            and box["y"] + box["height"] <= video_box["y"] + video_box["height"]), (box, video_box)

    assert mpd_s <= LIMIT, f"the MPD carried the flash {mpd_s:.2f} s after it was created"
    assert max(hls_s.values()) <= LIMIT, f"playlists carried the flash after {hls_s} s"
    assert screen_s <= LIMIT, f"the flash was on screen {screen_s:.2f} s after it was created"
    assert locator_at <= LIMIT + 1, f"the locator saw the flash only after {locator_at:.2f} s"
    # The MPD that first carried the flash lists no more media than the one before T0: the
    # flash did not wait for the next batch (created just after one, see above).
    flash_listed_end = max(end for _, end in times.values())
    assert flash_listed_end == listed_end, (
        f"the flash reached the MPD only with new media (listed end {listed_end:.2f} s at T0, "
        f"{flash_listed_end:.2f} s then)")
