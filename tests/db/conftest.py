"""Fixtures for database tests: every test runs on SQLite and on a real MariaDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from clusters.db_fixtures import *  # noqa: F403
from core.config import Settings
from serve import create_app
from store.db import session_scope


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_scope(engine) as s:
        yield s


@pytest.fixture
def settings(database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SPARKCAST_CONFIG", str(tmp_path / "no-config.toml"))
    return Settings(database_url=database_url, root=(tmp_path / "root").as_uri())


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Flask:
    return create_app(settings, {"TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
