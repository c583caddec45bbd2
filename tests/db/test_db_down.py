"""MariaDB down: serve still starts, a key among the last known ones publishes and any
other is refused (fast), the admin API answers 503 with Retry-After, and everything
works again once the server is back (a key revoked then is refused at once)."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest

from clusters.mariadb import MariaDB
from core.config import Settings
from ingest.rtmp_hook import resolve_stream
from serve import create_app
from store import key_cache
from store.db import make_engine, session_scope, upgrade
from store.tokens import create_token


def _publishes_without_database(client) -> dict[str, float]:
    text = client.get("/metrics").data.decode()
    found = dict(re.findall(r'^sparkcast_publish_database_down_total\{result="(\w+)"\} (\S+)$',
                            text, re.MULTILINE))
    return {r: float(found.get(r, 0)) for r in ("accepted", "refused")}


def test_database_down(mariadb_server: MariaDB, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARKCAST_CONFIG", str(tmp_path / "no-config.toml"))
    url = mariadb_server.create_database(f"down_{uuid.uuid4().hex[:8]}")
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as s:
        _, token = create_token(s)
    engine.dispose()
    auth = {"Authorization": f"Bearer {token}"}
    settings = Settings(database_url=url, root=(tmp_path / "r").as_uri(),
                        publish_keys_file=str(tmp_path / "rtmp" / "publish-keys.json"))
    up = create_app(settings, {"TESTING": True}).test_client()
    made = up.post("/api/admin/keys", json={"stream_id": "show"}, headers=auth)
    assert made.status_code == 201  # saved among the known keys as it is made
    key, key_id = made.json["key"], made.json["id"]
    form = {"name": key, "app": "live", "addr": "192.0.2.1"}
    stranger = {**form, "name": "sk_" + "x" * 32}
    assert key not in (tmp_path / "rtmp" / "publish-keys.json").read_text()  # hashes only

    mariadb_server.stop()
    try:
        # serve starts without touching a server database.
        client = create_app(settings, {"TESTING": True}).test_client()
        t0 = time.monotonic()
        before = _publishes_without_database(client)
        assert client.post("/rtmp/on_publish", data=form).status_code == 200
        assert client.post("/rtmp/on_publish", data=stranger).status_code == 403
        after = _publishes_without_database(client)
        assert (after["accepted"] - before["accepted"], after["refused"] - before["refused"]) \
            == (1, 1)
        # The exec_push hook finds the stream the same way, to start the chunker.
        assert resolve_stream(settings, key) == "show"
        assert resolve_stream(settings, stranger["name"]) is None
        resp = client.get("/api/admin/keys", headers=auth)
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
        assert resp.json["error"]["code"] == "database_unavailable"
        assert client.post("/rtmp/on_publish_done", data=form).status_code == 200
        assert time.monotonic() - t0 < 10
    finally:
        mariadb_server.start()

    assert client.post("/rtmp/on_publish_done", data=form).status_code == 200
    assert client.post("/rtmp/on_publish", data=form).status_code == 200
    assert client.get("/api/admin/keys", headers=auth).status_code == 200
    # Revoked while the database is up: refused at once, and no longer known.
    assert client.delete(f"/api/admin/keys/{key_id}", headers=auth).status_code == 200
    assert client.post("/rtmp/on_publish", data=form).status_code == 403
    assert key_cache.lookup(settings.publish_keys_file, key) is None
