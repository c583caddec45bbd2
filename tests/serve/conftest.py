"""Fixtures for serve tests: one real VOD (made once by `sparkcast submit`), real gunicorn
instances of `sparkcast serve`, and headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servetools import (
    ARTIFACTS,
    VOD_ID,
    VOD_LADDER,
    VOD_SOURCE,
    FrontDoorApp,
    Server,
    free_port,
    serve_env,
    start_edge,
    start_server,
)

from core.config import Settings
from serve import create_app


@pytest.fixture(scope="session")
def vod_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A storage root holding one VOD transcoded by the real pipeline (once per run).

    SPARKCAST_TEST_VOD_ROOT reuses a root made by an earlier run (local iteration only).
    """
    reuse = os.environ.get("SPARKCAST_TEST_VOD_ROOT")
    if reuse and (Path(reuse) / "streams" / VOD_ID / "manifest.mpd").exists():
        return Path(reuse)
    work = tmp_path_factory.mktemp("serve-vod")
    source = VOD_SOURCE.make(work)
    root = work / "root"
    proc = subprocess.run(
        ["sparkcast", "submit", str(source), "--stream-id", VOD_ID, "--root", root.as_uri(),
         "--ladder", VOD_LADDER, "--master", "local[2]"],
        env=serve_env(root), capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"sparkcast submit failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return root


@pytest.fixture(params=["flask", "front-door"])
def app_factory(vod_root: Path, tmp_path: Path, request: pytest.FixtureRequest):
    """Apps over the VOD two ways: Flask alone, and behind the nginx front door that
    `sparkcast serve` runs (segments from disk, the rest proxied). Both must answer alike."""
    fronts: list[FrontDoorApp] = []

    def make(**settings: object):
        opts = {"root": vod_root.as_uri(), **settings}
        app = create_app(Settings(**opts), {"TESTING": True, "EDGE_FILLER": False})
        if request.param == "flask":
            return app
        fronts.append(FrontDoorApp(app, vod_root, tmp_path / f"front-{len(fronts)}"))
        return fronts[-1]

    yield make
    for front in fronts:
        front.close()


@pytest.fixture
def client(app_factory):
    return app_factory().test_client()


@pytest.fixture(scope="session")
def server_factory(vod_root: Path) -> Iterator[Callable[..., Server]]:
    ARTIFACTS.mkdir(exist_ok=True)
    started: list[Server] = []

    def make(*args: str, port: int | None = None, env: dict[str, str] | None = None
             ) -> Server:
        server = start_server(vod_root, port or free_port(), *args, env=env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(server_factory) -> Server:
    """One gunicorn instance shared by the tests that only read."""
    return server_factory("--workers", "2", "--threads", "4")


@pytest.fixture
def page_factory(browser):
    contexts = []

    def make(viewport=(1280, 720), touch=False):
        ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                  has_touch=touch, is_mobile=touch)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def edges() -> Iterator[Callable[..., Server]]:
    """`sparkcast edge` instances (servetools.start_edge), stopped after the test."""
    started: list[Server] = []

    def make(*args: Any, **kwargs: Any) -> Server:
        started.append(start_edge(*args, **kwargs))
        return started[-1]

    yield make
    for edge in started:
        edge.stop()
