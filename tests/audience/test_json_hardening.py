"""The audience API tried as an attacker would (issue 15): a cross-site form cannot post,
a body nested too deeply is a 400 (not a 500), names are matched whole, stalled bodies
hold no thread. Both the fast POST path and the Flask views answer alike (the fast path
hands anything odd to them)."""

from __future__ import annotations

import json

import pytest
from audience_ids import STREAM
from flask.testing import FlaskClient

from hdfs_layout import LayoutError, validate_stream_id

COMMENTS = f"/api/streams/{STREAM}/comments"
REACTIONS = f"/api/streams/{STREAM}/reactions"
BODIES = {COMMENTS: {"author": "ann", "text": "hello"}, REACTIONS: {"kind": "like"}}


@pytest.mark.parametrize("url", [COMMENTS, REACTIONS])
@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", None])
def test_only_application_json_is_taken(client: FlaskClient, url: str,
                                        content_type: str | None) -> None:
    """What a form on another site can send without a CORS preflight is refused."""
    headers = {"Content-Type": content_type} if content_type else {}
    r = client.post(url, data=json.dumps(BODIES[url]), headers=headers)
    assert r.status_code == 415, (content_type, r.status_code, r.data)
    assert r.json["error"]["code"] == "unsupported_media_type"
    assert client.get(COMMENTS).json["comments"] == []


@pytest.mark.parametrize("url", [COMMENTS, REACTIONS])
def test_application_json_with_a_charset_is_taken(client: FlaskClient, url: str) -> None:
    r = client.post(url, data=json.dumps(BODIES[url]),
                    headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code in (201, 202), r.data


@pytest.mark.parametrize("url", [COMMENTS, REACTIONS])
def test_json_nested_too_deeply_is_400(client: FlaskClient, url: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    body = '{"text": ' + deep + ', "author": "x", "kind": "like"}'
    r = client.post(url, data=body, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 413), r.status_code  # never a 500
    if r.status_code == 400:
        assert r.json["error"]["field"] == "body" and "deep" in r.json["error"]["message"]


def test_json_nested_too_deeply_within_the_size_limit_is_400(client: FlaskClient) -> None:
    deep = "[" * 1500 + "]" * 1500  # 3 kB: under the comment body limit, over the parser's
    r = client.post(COMMENTS, data='{"author": "x", "text": ' + deep + "}",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.status_code
    assert r.json["error"]["field"] == "body"


@pytest.mark.parametrize("url", [f"/api/streams/{STREAM}%0A/comments",
                                 f"/api/streams/{STREAM}%0A/reactions"])
def test_a_stream_id_with_a_trailing_newline_is_not_the_stream(client: FlaskClient,
                                                               url: str) -> None:
    r = client.post(url, json=BODIES[COMMENTS if "comments" in url else REACTIONS])
    assert r.status_code == 404, (url, r.status_code)


def test_validate_stream_id_matches_whole() -> None:
    for bad in (f"{STREAM}\n", f"{STREAM}\r\n", f"\n{STREAM}"):
        with pytest.raises(LayoutError):
            validate_stream_id(bad)
    assert validate_stream_id(STREAM) == STREAM


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"])
def test_rate_limits_count_the_address_a_trusted_proxy_names(settings, engine,
                                                             trusted: str) -> None:
    """Behind the nginx front door every request comes from 127.0.0.1: with it trusted,
    each viewer has their own budget; without, a viewer cannot buy a new one by writing
    X-Forwarded-For."""
    from serve import create_app

    app = create_app(settings.model_copy(update={"comments_per_minute": 1,
                                                 "trusted_proxies": trusted}),
                     {"TESTING": True, "EDGE_FILLER": False})
    client = app.test_client()

    def post(address: str) -> int:
        return client.post(COMMENTS, json=BODIES[COMMENTS],
                           headers={"X-Forwarded-For": address}).status_code

    assert post("198.51.100.1") == 201
    if trusted:
        assert (post("198.51.100.2"), post("198.51.100.1")) == (201, 429)
    else:
        assert post("198.51.100.2") == 429


def test_one_client_cannot_take_every_live_event_slot(settings, engine) -> None:
    """With 4 feeds a worker, one address holds at most 2: a script opening feeds leaves
    room for the viewers (who would otherwise be told to poll)."""
    from serve import create_app

    app = create_app(settings.model_copy(update={"sse_clients_per_worker": 4}),
                     {"TESTING": True, "EDGE_FILLER": False})
    client = app.test_client()
    url = f"/api/streams/{STREAM}/events"

    def feed(address: str):
        return client.get(url, buffered=False, environ_base={"REMOTE_ADDR": address})

    mine = [feed("203.0.113.9") for _ in range(3)]
    assert [r.status_code for r in mine] == [200, 200, 503]
    others = [feed("198.51.100.1"), feed("198.51.100.2"), feed("198.51.100.3")]
    assert [r.status_code for r in others] == [200, 200, 503]  # the worker is full now
    for r in mine + others:
        r.close()
    assert feed("203.0.113.9").status_code == 200  # closed feeds give their slots back


def test_stalled_request_bodies_hold_no_thread_of_the_origin(settings, root, engine,
                                                             tmp_path) -> None:
    """Through `sparkcast serve` (one origin worker, 4 threads): 12 connections announce a
    200-byte body and never send it; /healthz and a real comment still answer at once
    (nginx holds the bodies, the origin never sees them), and each stalled request ends
    when nginx's client_body_timeout (10 s) runs out."""
    import os
    import signal
    import socket
    import subprocess
    import time

    import requests

    from core.config import settings_env
    from ingest.rtmp import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **settings_env(settings)}
    with open(tmp_path / "serve.log", "w") as log:
        proc = subprocess.Popen(["sparkcast", "serve", "--port", str(port), "--workers", "1",
                                 "--threads", "4"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/healthz", timeout=1)
                break
            except requests.RequestException:
                assert proc.poll() is None and time.monotonic() < deadline, \
                    (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        stalled = []
        for _ in range(12):
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            s.sendall(f"POST {COMMENTS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      "\r\nContent-Length: 200\r\n\r\n".encode())
            stalled.append(s)
        time.sleep(0.3)
        started = time.monotonic()
        assert requests.get(f"{url}/healthz", timeout=3).status_code == 200
        posted = requests.post(f"{url}{COMMENTS}", json=BODIES[COMMENTS], timeout=3)
        assert posted.status_code == 201, posted.text
        assert time.monotonic() - started < 2
        for s in stalled:
            with s:
                answer = s.recv(4096)  # nginx closes a timed-out request (408, unsent)
            assert answer in (b"",) or answer.split(b" ", 2)[1] == b"408", answer[:80]
        assert time.monotonic() - started < 15
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
