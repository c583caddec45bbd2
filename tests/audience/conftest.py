"""Fixtures for the audience tests: the same tests on SQLite and on a real MariaDB
(clusters.db_fixtures), an app over a storage root holding a stream, an admin token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from audience_ids import STREAM, VOD
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from clusters.db_fixtures import *  # noqa: F403
from core.config import Settings
from serve import create_app
from store.db import session_scope
from store.tokens import create_token


def make_stream(root: Path, stream_id: str = STREAM) -> None:
    """A stream as storage shows it (a manifest); enough for the audience API."""
    d = root / "streams" / stream_id
    d.mkdir(parents=True, exist_ok=True)
    (d / "manifest.mpd").write_text("<MPD/>")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    make_stream(path)
    return path


@pytest.fixture
def settings(database_url: str, root: Path, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SPARKCAST_CONFIG", str(tmp_path / "no-config.toml"))
    return Settings(database_url=database_url, root=root.as_uri())


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Iterator[Flask]:
    app = create_app(settings, {"TESTING": True, "EDGE_FILLER": False})
    yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def token(engine: Engine) -> str:
    with session_scope(engine) as s:
        return create_token(s, "tests")[1]


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["wsgi", "front-door"])
def live_url(app: Flask, root: Path, tmp_path: Path, request: pytest.FixtureRequest
             ) -> Iterator[str]:
    """`app` behind a real HTTP server (SSE needs a streaming connection): werkzeug's
    threaded one alone, and the same behind the nginx front door `sparkcast serve` runs."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    front = None
    try:
        if request.param == "front-door":
            from core.nginx import worker_identity
            from edge.front_conf import front_door_config
            from edge.http_front import HttpFront
            from ingest.rtmp import free_port

            front = HttpFront(front_door_config(
                tmp_path / "front", "127.0.0.1", free_port(), free_port(),
                f"127.0.0.1:{server.server_port}", root, 1 << 20, worker_identity())).start()
            yield front.url
        else:
            yield f"http://127.0.0.1:{server.server_port}"
    finally:
        if front is not None:
            front.stop()
        server.shutdown()
        thread.join(10)


# --- browser tests: a real VOD (the `browser` fixture is tests/conftest.py's) ---------

@pytest.fixture(scope="session")
def vod_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A storage root with one short VOD made by the real pipeline (`sparkcast submit`)."""
    import os
    import subprocess
    import sys

    from media_tools import SourceSpec

    work = tmp_path_factory.mktemp("audience-vod")
    source = SourceSpec(name="aud", width=320, height=180, seconds=30.0).make(work)
    root = work / "root"
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARKCAST_CONFIG": str(work / "no-config.toml")}
    proc = subprocess.run(
        ["sparkcast", "submit", str(source), "--stream-id", VOD, "--root", root.as_uri(),
         "--ladder", "180:300k:baseline", "--master", "local[2]"],
        env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"sparkcast submit failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return root


@pytest.fixture
def page(browser):
    """A fresh page that records the URLs it requests (`page.requested`) and dismisses
    dialogs, noting their text (`page.dialogs`: a payload that ran would open one)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    page = ctx.new_page()
    page.requested = []  # type: ignore[attr-defined]
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("request", lambda r: page.requested.append(r.url))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    ctx.close()
