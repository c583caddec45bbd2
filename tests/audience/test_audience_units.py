"""Pure pieces of the audience features: the token bucket, notice values, the fast path
answering like the view."""

from __future__ import annotations

import pytest
from audience_ids import STREAM
from flask import Flask

from serve.ratelimit import RateLimiter
from store.notices import Notice, current


def test_token_bucket_burst_refill_and_retry_after() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=6, per=60, burst=3, clock=lambda: now[0])  # one per 10 s
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(10.0)
    assert limiter.take("b") == 0.0  # per client
    now[0] = 10.0
    assert limiter.take("a") == 0.0 and limiter.take("a") == pytest.approx(10.0)
    assert RateLimiter(rate=0, per=1, burst=1).take("x") == 0.0  # 0 = no limit


def test_token_bucket_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1, per=1, burst=1, max_keys=10)
    for i in range(100):
        limiter.take(str(i))
    assert len(limiter._buckets) == 10


def test_notice_activity_windows() -> None:
    flash = Notice(1, "flash", "x", start=100.0, duration=10.0)
    disclaimer = Notice(2, "disclaimer", "d", start=50.0, duration=None)
    assert flash.end == 110.0 and disclaimer.end is None
    assert [flash.active_at(t) for t in (99.9, 100, 109.9, 110)] == [False, True, True, False]
    assert current([disclaimer, flash], 105) == [disclaimer, flash]
    assert current([disclaimer, flash], 110) == [disclaimer]
    assert flash.to_json() == {"id": 1, "kind": "flash", "text": "x", "start": 100.0,
                               "duration": 10.0}


def app_with(settings, **flags: bool) -> Flask:
    from serve import create_app

    return create_app(settings, {"TESTING": True, "EDGE_FILLER": False, **flags})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("fast", [True, False])
def test_reaction_answers_are_the_same_with_and_without_the_fast_path(
        settings, engine, fast: bool) -> None:
    client = app_with(settings, REACTIONS_FAST_PATH=fast).test_client()
    url = f"/api/streams/{STREAM}/reactions"
    assert client.post(url, json={"kind": "sad"}).status_code == 202  # learns the stream
    ok = client.post(url, json={"kind": "sad"})
    assert (ok.status_code, ok.json) == (202, {"accepted": "sad"})
    bad = client.post(url, json={"kind": "meh"})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "kind"
    assert client.post(url, data="{", content_type="application/json").json["error"][
        "code"] == "invalid_body"
    codes = [client.post(url, json={"kind": "sad"}).status_code for _ in range(30)]
    limited = client.post(url, json={"kind": "sad"})
    assert 429 in codes and limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("fast", [True, False])
def test_comment_answers_are_the_same_with_and_without_the_fast_path(
        settings, engine, fast: bool) -> None:
    app = app_with(settings, COMMENTS_FAST_PATH=fast)
    client = app.test_client()
    url = f"/api/streams/{STREAM}/comments"
    assert app.test_client().post(url, json={"author": "a", "text": "1"}).status_code == 201
    ok = client.post(url, json={"author": " bo ", "text": "<b>x</b>", "client_ref": "r1"})
    assert ok.status_code == 201 and ok.headers["Cache-Control"] == "no-store"
    assert {k: ok.json[k] for k in ("author", "text", "stream_id")} == {
        "author": "bo", "text": "<b>x</b>", "stream_id": STREAM}
    assert "sparkcast_viewer=" in ok.headers["Set-Cookie"]
    assert "HttpOnly" in ok.headers["Set-Cookie"]
    again = client.post(url, json={"author": "bo", "text": "<b>x</b>", "client_ref": "r1"})
    assert (again.status_code, again.json) == (200, ok.json)
    assert "Set-Cookie" not in again.headers  # the test client sent the cookie back
    bad = client.post(url, json={"author": "a", "text": " "})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "text"
    assert client.post(url, data="{", content_type="application/json").json["error"][
        "code"] == "invalid_body"
    codes = [client.post(url, json={"author": "a", "text": "t"}).status_code
             for _ in range(10)]
    limited = client.post(url, json={"author": "a", "text": "t"})
    assert 429 in codes and limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json["error"]["code"] == "rate_limited"
