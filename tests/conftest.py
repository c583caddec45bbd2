"""Shared fixtures: generated media, a local[2] Spark session, a fresh storage root, and
the one headless Chromium of the run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from browser_tools import CHROMIUM, launch_chromium  # noqa: E402
from hdfs_layout import open_storage  # noqa: E402
from media_tools import SourceSpec  # noqa: E402


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def make_media(media_dir: Path):
    def make(spec: SourceSpec) -> Path:
        return spec.make(media_dir)

    return make


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for the whole run (starting one costs ~8 s)."""
    from jobs.spark_session import get_session

    session = get_session("sparkcast-tests", "local[2]")
    yield session
    session.stop()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def storage(root: Path):
    return open_storage(root.as_uri())


@pytest.fixture
def cli_env(root: Path) -> dict[str, str]:
    """Environment for running the real `sparkcast` command against the test's root."""
    env = dict(os.environ)
    env.update(SPARKCAST_ROOT=root.as_uri(), SPARK_LOCAL_IP="127.0.0.1",
               SPARKCAST_CONFIG=str(root / "no-config.toml"))
    return env




@pytest.fixture(scope="session")
def playwright_session():
    """Playwright's sync API, once per run (it allows one instance per thread): every
    Chromium of the run is launched from it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from serve.player import DEFAULT_PLAYER_DIR, VENDOR

    missing = [f for f in VENDOR.values() if not (DEFAULT_PLAYER_DIR / f).is_file()]
    if missing:
        pytest.fail(f"player libraries missing ({missing[0]}): run `npm ci --prefix player`")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_session):
    """One Chromium for the whole run (each test opens its own context)."""
    b = launch_chromium(playwright_session)
    yield b
    b.close()
