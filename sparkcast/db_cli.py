"""CLI groups `sparkcast db`, `sparkcast keys`, `sparkcast admin` (added to the main group
in sparkcast/cli.py). Commands parse options and hand off to store.db / store.keys /
serve.admin_auth; secrets go to stdout alone (KEY=$(sparkcast keys create demo)), the rest
to stderr.
(Imports inside commands keep start-up short: see sparkcast/cli_common.py.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import wraps
from typing import Any

import click

from sparkcast.cli_common import handle_errors

url_option = click.option("--database-url", help="SQLAlchemy URL (default $SPARKCAST_DATABASE_URL)")


def _handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    return handle_errors(_named_db_errors(fn))


def _named_db_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    # SQLAlchemy's messages span lines and hide which database; say it in one line.
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import SQLAlchemyError

        from core.config import load_settings
        from store.db import describe_error

        try:
            return fn(*args, **kwargs)
        except SQLAlchemyError as exc:
            url = kwargs.get("database_url") or load_settings().database_url
            raise RuntimeError(describe_error(exc, url)) from exc

    return wrapper


def _engine(database_url: str | None, check_schema: bool = True) -> Any:
    from core.config import load_settings
    from store.db import ensure_schema, make_engine

    engine = make_engine(database_url or load_settings().database_url)
    if check_schema:
        ensure_schema(engine)  # migrates SQLite; for MySQL says to run `db upgrade`
    return engine


@contextmanager
def _session(database_url: str | None) -> Iterator[Any]:
    from store.db import session_scope

    engine = _engine(database_url)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


# --- db ----------------------------------------------------------------------------------

@click.group()
def db() -> None:
    """Database schema: migrations (Alembic)."""


@db.command()
@url_option
@click.option("--sql", is_flag=True, help="print the SQL instead of running it")
@_handle_errors
def upgrade(database_url: str | None, sql: bool) -> None:
    """Migrate the database to the newest schema."""
    from store.db import current_revision, head_revision, upgrade_sql
    from store.db import upgrade as run_upgrade

    if sql:
        from core.config import load_settings

        click.echo(upgrade_sql(database_url or load_settings().database_url))
        return
    engine = _engine(database_url, check_schema=False)
    try:
        before = current_revision(engine)
        run_upgrade(engine)
        click.echo(f"database {engine.url.render_as_string(hide_password=True)}: "
                   f"{before or 'empty'} -> {head_revision()}", err=True)
    finally:
        engine.dispose()


@db.command()
@url_option
@_handle_errors
def current(database_url: str | None) -> None:
    """Print the database's schema revision and the code's."""
    from store.db import current_revision, head_revision

    engine = _engine(database_url, check_schema=False)
    try:
        click.echo(f"database {current_revision(engine) or 'empty'}, code {head_revision()}")
    finally:
        engine.dispose()


@db.command()
@click.option("-m", "--message", required=True, help="what the migration changes")
@_handle_errors
def revision(message: str) -> None:
    """Write a new migration from the difference between store/models.py and the newest
    migration (review it before committing)."""
    from store.db import new_revision

    click.echo(str(new_revision(message)))


# --- keys --------------------------------------------------------------------------------

@click.group()
def keys() -> None:
    """RTMP stream keys: create, list, revoke."""


@keys.command("create")
@click.argument("stream_id")
@click.option("--label", default="", help="a note, e.g. who publishes with it")
@url_option
@_handle_errors
def keys_create(stream_id: str, label: str, database_url: str | None) -> None:
    """Create a stream key for STREAM_ID and print it (it is shown only this once)."""
    from core.config import load_settings
    from store.keys import create_key

    with _session(database_url) as session:
        row, key = create_key(session, stream_id, label)
    settings = load_settings()
    click.echo(key)
    click.echo(f"key {row.id} for stream {stream_id} (shown once, stored hashed); publish to "
               f"rtmp://{settings.rtmp_host}:{settings.rtmp_port}/live/<key>", err=True)


@keys.command("list")
@click.option("--stream-id", help="only this stream's keys")
@click.option("--json", "as_json", is_flag=True, help="JSON lines")
@url_option
@_handle_errors
def keys_list(stream_id: str | None, as_json: bool, database_url: str | None) -> None:
    """List stream keys (ids and state; the keys themselves are not stored)."""
    from serve.admin_keys import key_json
    from store.keys import list_keys

    with _session(database_url) as session:
        rows = list_keys(session, stream_id)
        if as_json:
            for row in rows:
                click.echo(json.dumps(key_json(row)))
            return
        click.echo(f"{'ID':>5}  {'STREAM':<24} {'STATE':<10} {'CREATED':<20} "
                   f"{'LAST USED':<20} LABEL")
        for row in rows:
            state = ("revoked" if row.revoked_at else
                     "publishing" if row.publishing_since else "active")
            click.echo(f"{row.id:>5}  {row.stream_id:<24} {state:<10} "
                       f"{_when(row.created_at):<20} {_when(row.last_used_at):<20} {row.label}")


@keys.command("revoke")
@click.argument("key_id", type=int)
@url_option
@_handle_errors
def keys_revoke(key_id: int, database_url: str | None) -> None:
    """Revoke key KEY_ID: its next connect is refused (a live publisher is not cut off)."""
    from store.keys import revoke_key

    with _session(database_url) as session:
        row = revoke_key(session, key_id)
        click.echo(f"key {row.id} (stream {row.stream_id}) revoked at "
                   f"{_when(row.revoked_at)}", err=True)


# --- admin -------------------------------------------------------------------------------

@click.group()
def admin() -> None:
    """Admin API tokens (Authorization: Bearer <token>)."""


@admin.command("create-token")
@click.option("--label", default="", help="a note, e.g. who holds it")
@url_option
@_handle_errors
def create_token_cmd(label: str, database_url: str | None) -> None:
    """Create an admin token and print it (it is shown only this once)."""
    from store.tokens import create_token

    with _session(database_url) as session:
        row, token = create_token(session, label)
    click.echo(token)
    click.echo(f"admin token {row.id} (shown once, stored hashed)", err=True)


@admin.command("list-tokens")
@url_option
@_handle_errors
def list_tokens_cmd(database_url: str | None) -> None:
    """List admin tokens (ids and state)."""
    from store.tokens import list_tokens

    with _session(database_url) as session:
        click.echo(f"{'ID':>5}  {'STATE':<8} {'CREATED':<20} LABEL")
        for row in list_tokens(session):
            state = "revoked" if row.revoked_at else "active"
            click.echo(f"{row.id:>5}  {state:<8} {_when(row.created_at):<20} {row.label}")


@admin.command("revoke-token")
@click.argument("token_id", type=int)
@url_option
@_handle_errors
def revoke_token_cmd(token_id: int, database_url: str | None) -> None:
    """Revoke admin token TOKEN_ID."""
    from store.tokens import revoke_token

    with _session(database_url) as session:
        row = revoke_token(session, token_id)
        click.echo(f"admin token {row.id} revoked", err=True)
