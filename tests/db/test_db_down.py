"""MariaDB down: serve still starts, publishes are refused (403, fast), the admin API
answers 503 with Retry-After, and everything works again once the server is back."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from clusters.mariadb import MariaDB
from core.config import Settings
from serve import create_app
from store.db import make_engine, session_scope, upgrade
from store.keys import create_key
from store.tokens import create_token


def test_database_down(mariadb_server: MariaDB, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARKCAST_CONFIG", str(tmp_path / "no-config.toml"))
    url = mariadb_server.create_database(f"down_{uuid.uuid4().hex[:8]}")
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as s:
        _, key = create_key(s, "show")
        _, token = create_token(s)
    engine.dispose()
    auth = {"Authorization": f"Bearer {token}"}
    form = {"name": key, "app": "live", "addr": "192.0.2.1"}

    mariadb_server.stop()
    try:
        # serve starts without touching a server database.
        client = create_app(Settings(database_url=url, root=(tmp_path / "r").as_uri()),
                            {"TESTING": True}).test_client()
        t0 = time.monotonic()
        assert client.post("/rtmp/on_publish", data=form).status_code == 403
        resp = client.get("/api/admin/keys", headers=auth)
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
        assert resp.json["error"]["code"] == "database_unavailable"
        assert client.post("/rtmp/on_publish_done", data=form).status_code == 200
        assert time.monotonic() - t0 < 10
    finally:
        mariadb_server.start()

    assert client.post("/rtmp/on_publish", data=form).status_code == 200
    assert client.get("/api/admin/keys", headers=auth).status_code == 200
