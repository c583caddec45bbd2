"""Database fixtures, the same tests on SQLite and on a real MariaDB server.

Use from a conftest.py:  `from clusters.db_fixtures import *  # noqa: F403`
(or list "clusters.db_fixtures" in the root conftest's pytest_plugins, so one MariaDB
server serves the whole run).

    mariadb_server   session: a throwaway MariaDB (started on first use; a failure to
                     start fails the test with the reason, it never skips)
    database_url     each test: a fresh empty database, parametrised sqlite | mariadb
    engine           each test: an Engine on database_url, migrated to head
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from clusters.mariadb import MariaDB, MariaDBUnavailable

__all__ = ["database_url", "engine", "mariadb_server"]


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    server = MariaDB(Path(tmp_path_factory.mktemp("mariadb")))
    try:
        server.start()
    except MariaDBUnavailable as exc:
        pytest.fail(f"MariaDB is required for this test and could not start: {exc}",
                    pytrace=False)
    yield server
    server.destroy()


@pytest.fixture(params=["sqlite", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sparkcast.db'}"
        return
    server: MariaDB = request.getfixturevalue("mariadb_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    yield url
    if server.proc is not None:
        server.drop_database(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    from store.db import make_engine, upgrade

    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()
