"""Migrations, on SQLite and MariaDB: head matches the models, up/down work, types hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from store.db import (
    SchemaError,
    _alembic_config,
    current_revision,
    ensure_schema,
    head_revision,
    make_engine,
    session_scope,
    upgrade,
)
from store.models import Base, Comment, Stream

TABLES = {"streams", "stream_keys", "admin_tokens", "comments", "viewer_blocks",
          "reaction_counts", "notices", "ad_creatives", "ad_breaks", "ad_impressions",
          "alembic_version"}


def test_upgrade_builds_every_table_at_head(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) == TABLES
    engine.dispose()


def test_migrations_match_the_models(engine: Engine) -> None:
    # A model change without its migration shows up here as a non-empty diff.
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    with engine.begin() as conn:
        command.downgrade(_alembic_config(connection=conn), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_ensure_schema_migrates_sqlite_but_only_checks_a_server(database_url: str) -> None:
    engine = make_engine(database_url)
    if engine.dialect.name == "sqlite":
        ensure_schema(engine)
        assert current_revision(engine) == head_revision()
    else:
        with pytest.raises(SchemaError, match="sparkcast db upgrade"):
            ensure_schema(engine)
        upgrade(engine)
        ensure_schema(engine)  # at head: no error
    engine.dispose()


def test_times_round_trip_as_aware_utc_with_microseconds(session: Session) -> None:
    paris = timezone(timedelta(hours=1))
    when = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=paris)
    session.add(Stream(id="s1", created_at=when))
    session.flush()
    session.expire_all()
    got = session.get(Stream, "s1")
    assert got is not None
    assert got.created_at == when
    assert got.created_at.tzinfo is UTC
    assert got.created_at.hour == 11  # stored in UTC


def test_naive_datetime_is_refused(session: Session) -> None:
    session.add(Stream(id="s1", created_at=datetime(2024, 3, 1, 12, 0)))
    with pytest.raises(Exception, match="naive datetime"):
        session.flush()


def test_text_keeps_emoji_and_markup_exactly(engine: Engine) -> None:
    text = "<script>alert(1)</script> 🎉 naïve ✓"
    with session_scope(engine) as s:
        s.add(Stream(id="s1"))
        s.flush()
        s.add(Comment(stream_id="s1", author="Zoë 🙂", text=text))
    with session_scope(engine) as s:
        row = s.scalars(select(Comment)).one()
        assert (row.author, row.text) == ("Zoë 🙂", text)


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(Comment(stream_id="no-such-stream", author="a", text="t"))
    with pytest.raises(Exception, match="(?i)foreign key"):
        session.flush()


def test_upgrade_sql_for_a_dba_needs_no_server() -> None:
    from store.db import upgrade_sql

    sql = upgrade_sql("mysql+mysqldb://u:p@db.invalid/sparkcast")
    assert sql.count("CREATE TABLE") == len(TABLES)
    assert "key_hash VARCHAR(64) NOT NULL" in sql and "created_at DATETIME(6) NOT NULL" in sql
    assert "CHARSET=utf8mb4" in sql
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001')" in sql
    # the script leaves the database at head, whichever revision that is
    assert (f"INSERT INTO alembic_version (version_num) VALUES ('{head_revision()}')" in sql
            or f"SET version_num='{head_revision()}'" in sql.strip().splitlines()[-1])


def test_new_revision_numbers_and_chains(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import store.db
    from store.db import new_revision

    scripts = tmp_path / "migrations"
    shutil.copytree(store.db.MIGRATIONS, scripts)
    monkeypatch.setattr(store.db, "MIGRATIONS", scripts)
    head = head_revision()
    following = f"{int(head) + 1:04d}"
    path = new_revision("nothing changed")
    assert path.parent == scripts / "versions"
    assert path.name == f"{following}_nothing_changed.py"
    text = path.read_text()
    assert f'revision: str = "{following}"' in text
    assert f'down_revision: str | None = "{head}"' in text
