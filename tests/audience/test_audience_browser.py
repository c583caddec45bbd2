"""The audience panel in the real /watch page, in headless Chromium: comment payloads are
shown as text and run nothing; notices and reactions appear over the video; with MariaDB
down the video keeps playing, the panel says comments are unavailable, and a comment
typed meanwhile is stored once when the database is back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from audience_ids import VOD
from flask import Flask
from sqlalchemy import Engine, select

from browser_tools import wait_js
from clusters.mariadb import MariaDB
from core.config import Settings
from serve import create_app
from store.db import session_scope
from store.models import Comment

pytestmark = pytest.mark.browser

PAYLOADS = ["<script>window.__pwned = 'script'</script>",
            "<img src=x onerror=\"window.__pwned = 'img'\">",
            "\"><svg onload=\"window.__pwned = 'svg'\">",
            "<iframe src=\"javascript:window.top.__pwned='iframe'\"></iframe>"]
VIDEO_T = "() => document.getElementById('video').currentTime"


@pytest.fixture
def app(database_url: str, vod_root: Path, engine: Engine, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("SPARKCAST_CONFIG", str(tmp_path / "no-config.toml"))
    return create_app(Settings(database_url=database_url, root=vod_root.as_uri(),
                               comments_per_minute=0),
                      {"TESTING": True, "EDGE_FILLER": False})


def wait(page, predicate: str, timeout: float, what: str) -> None:
    wait_js(page, predicate, timeout, what,
            "() => [window.sparkcastAudience, window.sparkcastPlayer && "
            "window.sparkcastPlayer.errors]")


def test_comment_payloads_are_shown_as_text_and_run_nothing(live_url: str, page) -> None:
    api = f"{live_url}/api/streams/{VOD}/comments"
    for text in PAYLOADS:
        assert requests.post(api, json={"author": "<b>mallory</b>", "text": text},
                             timeout=10).status_code == 201
    page.goto(f"{live_url}/watch/{VOD}")
    wait(page, f"() => document.querySelectorAll('#comment-list li').length == {len(PAYLOADS)}",
         15, "comments not shown")
    # one typed into the page's own form takes the same path
    page.fill("#comment-form input[name=author]", "<i>eve</i>")
    page.fill("#comment-form textarea", PAYLOADS[1] + " again")
    page.click("#comment-form button[type=submit]")
    wait(page, f"() => document.querySelectorAll('#comment-list li').length == "
               f"{len(PAYLOADS) + 1}", 15, "own comment not shown")
    page.wait_for_timeout(1000)  # give any injected handler a chance to fire

    texts = page.eval_on_selector_all("#comment-list .comment-body", "els => els.map(e => "
                                      "e.textContent)")
    assert texts == PAYLOADS + [PAYLOADS[1] + " again"]
    authors = page.eval_on_selector_all("#comment-list .comment-author-name",
                                        "els => els.map(e => e.textContent)")
    assert authors == ["<b>mallory</b>"] * len(PAYLOADS) + ["<i>eve</i>"]
    injected = page.evaluate("""() => document.querySelectorAll(
        '#comments script, #comments img, #comments svg, #comments iframe, #comments b b,'
        + ' #comments i').length""")
    assert injected == 0
    assert page.evaluate("() => window.__pwned") is None
    assert page.dialogs == []


def test_notices_and_reactions_reach_the_screen(live_url: str, page, auth) -> None:
    admin = f"{live_url}/api/admin/notices"
    assert requests.post(admin, headers=auth, timeout=10, json={
        "stream_id": VOD, "kind": "disclaimer", "text": "Contains <flashing> lights"}
    ).status_code == 201
    page.goto(f"{live_url}/watch/{VOD}")
    wait(page, "() => [...document.querySelectorAll('#notices .notice-disclaimer')]"
               ".some(n => n.textContent.includes('Contains <flashing> lights'))", 10,
         "disclaimer not shown on joining")
    t0 = time.monotonic()
    assert requests.post(admin, headers=auth, timeout=10, json={
        "stream_id": VOD, "kind": "flash", "text": "Breaking: <b>news</b>", "duration": 30}
    ).status_code == 201
    wait(page, "() => [...document.querySelectorAll('#notices .notice-flash')]"
               ".some(n => n.textContent.includes('Breaking: <b>news</b>'))", 5,
         "news flash not on screen")
    assert time.monotonic() - t0 < 5
    for _ in range(3):
        page.click("#reactions button[data-kind=clap]")
    wait(page, "() => window.sparkcastAudience.totals.clap === 3", 10, "totals not updated")
    wait(page, "() => window.sparkcastAudience.floated >= 3", 5, "no floating reactions")
    assert page.evaluate("() => window.sparkcastAudience.feed") == "sse"


@pytest.mark.parametrize("database_url", ["mariadb"], indirect=True)
@pytest.mark.heavy
def test_database_down_video_plays_on_and_comments_come_back(
        live_url: str, page, engine: Engine, mariadb_server: MariaDB) -> None:
    page.goto(f"{live_url}/watch/{VOD}")
    wait(page, "() => window.sparkcastPlayer && sparkcastPlayer.everPlayed", 20, "no playback")
    wait(page, "() => window.sparkcastAudience.unavailable === false && "
               "document.querySelector('#comment-list') !== null", 5, "panel not ready")
    mariadb_server.kill()
    try:
        wait(page, "() => window.sparkcastAudience.unavailable", 10,
             "'comments unavailable' not shown")
        status = page.text_content("#comments-status") or ""
        assert "unavailable" in status.lower()
        page.fill("#comment-form input[name=author]", "ann")
        page.fill("#comment-form textarea", "typed while the database was down")
        page.click("#comment-form button[type=submit]")
        t1 = page.evaluate(VIDEO_T)
        page.wait_for_timeout(4000)
        t2 = page.evaluate(VIDEO_T)
        assert t2 - t1 > 2.5, f"video stalled while the database was down ({t1} -> {t2})"
        assert page.evaluate("() => sparkcastPlayer.errors") == []
    finally:
        mariadb_server.start()
    wait(page, "() => [...document.querySelectorAll('#comment-list .comment-body')]"
               ".some(e => e.textContent === 'typed while the database was down')", 20,
         "the comment typed during the outage never arrived")
    wait(page, "() => window.sparkcastAudience.unavailable === false", 10, "still unavailable")
    with session_scope(engine) as s:
        texts = list(s.scalars(select(Comment.text)))
    assert texts.count("typed while the database was down") == 1
