"""The admin API: every admin endpoint refuses a missing, wrong or revoked token before it
reads the body; streams, ads and blocks CRUD; the /admin page."""

from __future__ import annotations

import re

import pytest
from audience_ids import STREAM
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from store.db import session_scope
from store.tokens import create_token, revoke_token


def admin_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, concrete path) for every /api/admin rule of the app."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/admin"):
            continue
        path = re.sub(r"<[^>]+>", "1", rule.rule)  # every variable part, any converter
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((method, path))
    return out


def test_every_admin_endpoint_refuses_without_a_valid_token(
        app: Flask, client: FlaskClient, engine: Engine) -> None:
    routes = admin_routes(app)
    assert len(routes) >= 20
    with session_scope(engine) as s:
        row, revoked = create_token(s)
        revoke_token(s, row.id)
    for method, path in routes:
        # a body that is both malformed and too large: only the token may answer
        for headers, status in (({}, 401), ({"Authorization": "Bearer sca_wrong"}, 403),
                                ({"Authorization": f"Bearer {revoked}"}, 403),
                                ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401)):
            resp = client.open(path, method=method, headers=headers,
                               data="{" + "x" * 100_000, content_type="application/json")
            assert resp.status_code == status, (method, path, headers, resp.json)
            assert resp.json["error"]["code"] in ("unauthorized", "forbidden")


def test_streams_crud(client: FlaskClient, auth) -> None:
    made = client.post("/api/admin/streams", json={"id": "news", "title": "News"}, headers=auth)
    assert made.status_code == 201 and made.json["state"] == "idle"
    dup = client.post("/api/admin/streams", json={"id": "news"}, headers=auth)
    assert dup.status_code == 409
    bad = client.post("/api/admin/streams", json={"id": "../x"}, headers=auth)
    assert bad.status_code == 400 and bad.json["error"]["field"] == "id"
    assert client.patch("/api/admin/streams/news", json={"title": "World"},
                        headers=auth).json["title"] == "World"
    one = client.get("/api/admin/streams/news", headers=auth).json
    assert one["comments"] == 0 and one["notices"] == 0
    assert "news" in [s["id"] for s in client.get("/api/admin/streams", headers=auth).json[
        "streams"]]
    assert client.get("/api/admin/streams/none", headers=auth).status_code == 404
    # a stream added by an admin takes comments even before it has media
    assert client.post("/api/streams/news/comments",
                       json={"author": "a", "text": "first"}).status_code == 201


def test_ads_crud(client: FlaskClient, auth) -> None:
    c = client.post("/api/admin/ads/creatives", headers=auth,
                    json={"name": "Cola", "source_uri": "file:///ads/cola.mp4", "duration_s": 15})
    assert c.status_code == 201 and c.json["state"] == "uploaded"
    cid = c.json["id"]
    edited = client.patch(f"/api/admin/ads/creatives/{cid}", headers=auth,
                          json={"state": "ready", "media_stream_id": "ad-cola"})
    assert edited.json["state"] == "ready" and edited.json["media_stream_id"] == "ad-cola"
    assert client.patch(f"/api/admin/ads/creatives/{cid}", headers=auth,
                        json={"state": "bogus"}).json["error"]["field"] == "state"
    mid = client.post("/api/admin/ads/breaks", headers=auth, json={
        "stream_id": STREAM, "creative_id": cid, "position": "midroll", "offset_s": 30})
    assert mid.status_code == 201 and mid.json["offset_s"] == 30
    live = client.post("/api/admin/ads/breaks", headers=auth, json={
        "stream_id": STREAM, "creative_id": cid, "position": "live"})
    assert live.status_code == 201 and live.json["starts_at"] > 0
    no_offset = client.post("/api/admin/ads/breaks", headers=auth, json={
        "stream_id": STREAM, "creative_id": cid, "position": "midroll"})
    assert no_offset.json["error"]["field"] == "offset_s"
    assert client.post("/api/admin/ads/breaks", headers=auth, json={
        "stream_id": STREAM, "creative_id": 999, "position": "preroll"}).status_code == 404
    listed = client.get(f"/api/admin/ads/breaks?stream_id={STREAM}", headers=auth).json
    assert [b["position"] for b in listed["breaks"]] == ["midroll", "live"]
    cancelled = client.delete(f"/api/admin/ads/breaks/{mid.json['id']}", headers=auth)
    assert cancelled.json["cancelled_at"] is not None
    assert client.delete(f"/api/admin/ads/creatives/{cid}", headers=auth).status_code == 200
    assert client.get("/api/admin/ads/breaks", headers=auth).json["breaks"] == []


@pytest.mark.parametrize("path", ["/api/admin/comments/99999999999999999999",
                                  "/api/admin/notices/0x10", "/api/admin/blocks/-1"])
def test_odd_ids_never_reach_the_database(client: FlaskClient, auth, path: str) -> None:
    # refused in routing (werkzeug says 405 for an int over the rule's max)
    assert client.delete(path, headers=auth).status_code in (404, 405)


def test_admin_page_is_served_with_a_strict_policy(client: FlaskClient) -> None:
    page = client.get("/admin")
    assert page.status_code == 200 and b'id="token"' in page.data
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert client.get("/admin/admin.js").status_code == 200
    assert client.get("/admin/nope.js").status_code == 404
