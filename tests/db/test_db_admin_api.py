"""/api/admin/keys and the /rtmp callbacks over HTTP (Flask test client), on SQLite and
MariaDB."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from core.config import Settings
from serve.admin_auth import bearer_token
from store.db import session_scope
from store.keys import create_key, revoke_key
from store.models import Stream, StreamKey
from store.tokens import create_token, revoke_token


@pytest.fixture
def token(engine: Engine) -> str:
    with session_scope(engine) as s:
        return create_token(s, "tests")[1]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("header,expected", [
    (None, None), ("", None), ("Bearer", None), ("Basic abc", None), ("Bearer a b", None),
    ("Bearer sca_x", "sca_x"), ("bearer  sca_x ", "sca_x"),
])
def test_bearer_token_parsing(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


def test_admin_api_refuses_missing_wrong_and_revoked_tokens(
        client: FlaskClient, engine: Engine, token: str) -> None:
    missing = client.get("/api/admin/keys")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.json["error"]["code"] == "unauthorized"
    assert client.get("/api/admin/keys", headers=_auth(token + "x")).status_code == 403
    assert client.get("/api/admin/keys", headers={"Authorization": token}).status_code == 401
    with session_scope(engine) as s:
        row, other = create_token(s)
        revoke_token(s, row.id)
    assert client.get("/api/admin/keys", headers=_auth(other)).status_code == 403
    assert client.get("/api/admin/keys", headers=_auth(token)).status_code == 200


def test_token_is_checked_before_the_body(client: FlaskClient) -> None:
    # Malformed and oversized bodies without a token get 401, not 400/413: the body was
    # never looked at.
    bad_json = client.post("/api/admin/keys", data="{not json",
                           content_type="application/json")
    assert bad_json.status_code == 401
    huge = client.post("/api/admin/keys", data="x" * 1_000_000,
                       content_type="application/json")
    assert huge.status_code == 401
    assert client.delete("/api/admin/keys/1").status_code == 401


def test_create_list_revoke_over_http(client: FlaskClient, engine: Engine, token: str) -> None:
    created = client.post("/api/admin/keys", json={"stream_id": "show", "label": "cam"},
                          headers=_auth(token))
    assert created.status_code == 201
    body = created.json
    assert body["key"].startswith("sk_") and body["stream_id"] == "show"
    listed = client.get("/api/admin/keys?stream_id=show", headers=_auth(token)).json["keys"]
    assert [(k["id"], k["label"], k["revoked_at"]) for k in listed] == [(body["id"], "cam", None)]
    assert "key" not in listed[0]
    revoked = client.delete(f"/api/admin/keys/{body['id']}", headers=_auth(token))
    assert revoked.status_code == 200 and revoked.json["revoked_at"] is not None
    missing = client.delete("/api/admin/keys/999", headers=_auth(token))
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"


@pytest.mark.parametrize("body,field", [
    ({}, "stream_id"), ({"stream_id": ""}, "stream_id"), ({"stream_id": 5}, "stream_id"),
    ({"stream_id": "../x"}, "stream_id"), ({"stream_id": "a", "label": ["x"]}, "label"),
    ({"stream_id": "a", "label": "x" * 201}, "label"),
])
def test_bad_fields_are_named(client: FlaskClient, token: str, body: dict, field: str) -> None:
    resp = client.post("/api/admin/keys", json=body, headers=_auth(token))
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == f"invalid_{field}"


def test_malformed_and_oversized_bodies(client: FlaskClient, token: str) -> None:
    bad = client.post("/api/admin/keys", data="{not json", content_type="application/json",
                      headers=_auth(token))
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_body"
    huge = client.post("/api/admin/keys", data="x" * 10_000, content_type="application/json",
                       headers=_auth(token))
    assert huge.status_code == 413


def _publish(client: FlaskClient, key: str, app: str = "live",
             remote: str = "127.0.0.1", url: str = "/rtmp/on_publish",
             headers: dict[str, str] | None = None):
    return client.post(url, data={"name": key, "app": app, "addr": "198.51.100.4",
                                  "call": "publish", "tcurl": "rtmp://x/live"},
                       environ_base={"REMOTE_ADDR": remote}, headers=headers or {})


def test_on_publish_answers_200_or_403_and_logs_no_key(
        client: FlaskClient, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sparkcast.rtmp")
    with session_scope(engine) as s:
        row, key = create_key(s, "show")
        revoked_row, revoked = create_key(s, "other")
        revoke_key(s, revoked_row.id)

    assert _publish(client, key).status_code == 200
    with session_scope(engine) as s:
        assert s.get(Stream, "show").state == "live"
        assert s.get(StreamKey, row.id).publishing_since is not None
    assert _publish(client, "sk_wrong").status_code == 403
    assert _publish(client, revoked).status_code == 403
    assert _publish(client, key, app="other").status_code == 403
    # Not from nginx on this host: refused before the key is looked at.
    assert _publish(client, key, remote="203.0.113.9").status_code == 403
    # Relayed by an HTTP proxy the settings do not trust: from loopback, but not the RTMP
    # front, whatever the forwarded address says.
    for header in ({"X-Forwarded-For": "127.0.0.1"}, {"Forwarded": "for=127.0.0.1"}):
        assert _publish(client, key, headers=header).status_code == 403

    text = caplog.text
    assert f"publish accepted: key id {row.id}, stream show" in text
    assert "publish refused: unknown key (key fingerprint" in text
    assert f"publish refused: revoked key (key id {revoked_row.id}" in text
    assert key not in text and revoked not in text and "sk_wrong" not in text

    done = _publish(client, key, url="/rtmp/on_publish_done")
    assert done.status_code == 200
    with session_scope(engine) as s:
        assert s.scalars(select(StreamKey.publishing_since).where(
            StreamKey.id == row.id)).one() is None


def test_on_publish_through_the_front_door_is_judged_by_the_address_nginx_saw(
        settings: Settings, engine: Engine) -> None:
    """Behind `sparkcast serve`'s nginx (a trusted proxy at 127.0.0.1) the caller is what
    nginx wrote into X-Forwarded-For: the RTMP front on loopback passes, a remote caller
    does not, and a remote caller's own X-Forwarded-For never reaches the origin (nginx
    replaces it), so claiming loopback there gets it nowhere either."""
    from serve import create_app

    app = create_app(settings.model_copy(update={"trusted_proxies": "127.0.0.1"}),
                     {"TESTING": True})
    client = app.test_client()
    with session_scope(engine) as s:
        key = create_key(s, "fronted")[1]
    assert _publish(client, key, headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
    assert _publish(client, key, headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    # an untrusted peer relaying is refused however it is relayed
    assert _publish(client, key, remote="203.0.113.9",
                    headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 403
