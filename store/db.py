"""The one module that owns the database: engine, sessions, migrations.

    make_engine(url)      an Engine for SQLite or MySQL/MariaDB (mysql+mysqldb://)
    session_scope(engine) a Session in a transaction, for the CLI and the RTMP hook
    upgrade(engine)       Alembic `upgrade head` (what `sparkcast db upgrade` runs)
    ensure_schema(engine) bring a SQLite database to head automatically

Nothing connects at import or in `init_app` for a server database: a MariaDB that is
down must not stop serve from starting (video never depends on the database).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from core.locks import file_lock

MIGRATIONS = Path(__file__).parent / "migrations"
ENGINE_KEY = "sparkcast.db"  # app.extensions key of the Engine


class SchemaError(RuntimeError):
    """The database schema is not at the code's migration head."""


def make_engine(url: str | URL) -> Engine:
    """An Engine for `url`; SQLite gets foreign keys, WAL and a busy timeout.

    Raises sqlalchemy.exc.ArgumentError for a malformed URL and ModuleNotFoundError when
    the driver (mysqlclient for mysql+mysqldb) is not installed.
    """
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if url.get_backend_name() in ("mysql", "mariadb"):
        query = dict(url.query)
        query.setdefault("charset", "utf8mb4")  # else mysqlclient may talk latin1
        # A dead server must fail fast (comment endpoints answer 503), not hang a worker.
        return create_engine(url.set(query=query), pool_pre_ping=True, pool_recycle=3600,
                             connect_args={"connect_timeout": 5})
    return create_engine(url, pool_pre_ping=True)


def _sqlite_engine(url: URL) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.database in (None, "", ":memory:"):
        # One shared connection, else every checkout would see a new empty database.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        # WAL: serve, the CLI and the RTMP hook read while one of them writes.
        if url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()

    return engine


def describe_error(exc: BaseException, url: str | URL) -> str:
    """A database failure in one line, naming the database (password hidden)."""
    where = make_url(url).render_as_string(hide_password=True)
    cause = getattr(exc, "orig", None) or exc
    text = " ".join(str(cause).split("\n")[0].split())
    return f"database {where}: {text}"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A Session in a transaction: committed on success, rolled back on an exception."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


# --- migrations --------------------------------------------------------------------------

def _alembic_config(**attributes: Any) -> Any:
    from alembic.config import Config

    # Offline SQL goes to output_buffer; messages go to stdout (silenced).
    cfg = Config(output_buffer=attributes.pop("output_buffer", None), stdout=io.StringIO())
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes.update(attributes)  # env.py reads "connection" or "url" from here
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to `revision`. Raises sqlalchemy errors (e.g. OperationalError
    when the server is unreachable)."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(_alembic_config(connection=conn), revision)


def upgrade_sql(url: str, revision: str = "head") -> str:
    """The SQL `upgrade` would run, for a DBA to review (Alembic offline mode)."""
    from alembic import command

    out = io.StringIO()
    command.upgrade(_alembic_config(url=url, output_buffer=out), revision, sql=True)
    return out.getvalue()


def ensure_schema(engine: Engine) -> None:
    """Bring a SQLite database to head (safe when several processes start at once);
    for any other database only check it. Raises SchemaError when a server database is
    behind."""
    head = head_revision()
    if not is_sqlite(engine):
        current = current_revision(engine)
        if current != head:
            raise SchemaError(f"database {engine.url.render_as_string(hide_password=True)} "
                              f"is at revision {current}, code needs {head}: "
                              "run `sparkcast db upgrade`")
        return
    with _migration_lock(engine):
        if current_revision(engine) != head:
            upgrade(engine)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    # gunicorn workers start together; a file lock makes exactly one of them migrate.
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with file_lock(f"{database}.migrate-lock"):
        yield


def new_revision(message: str) -> Path:
    """Autogenerate a migration (models vs. head, diffed on a scratch SQLite database) and
    return its path. Review it: autogenerate misses renames and server defaults."""
    from alembic import command
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_alembic_config())
    rev_id = f"{len(list(scripts.walk_revisions())) + 1:04d}"
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{os.path.join(tmp, 'scratch.db')}")
        upgrade(engine)
        with engine.begin() as conn:
            script = command.revision(_alembic_config(connection=conn), message,
                                      autogenerate=True, rev_id=rev_id)
        engine.dispose()
    assert script is not None and not isinstance(script, list)
    if shutil.which("ruff"):  # autogenerate writes long lines; keep the tree ruff-clean
        subprocess.run(["ruff", "format", "--quiet", script.path], check=False)
    return Path(script.path)
