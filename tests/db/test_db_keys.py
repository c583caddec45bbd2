"""Stream keys and admin tokens over a real database (SQLite and MariaDB)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from hdfs_layout import LayoutError
from sparkcast.cli import main
from store.db import session_scope
from store.keys import (
    KeyNotFound,
    check_publish,
    create_key,
    hash_secret,
    list_keys,
    mark_stream_ended,
    publish_done,
    revoke_key,
)
from store.models import Stream, StreamKey
from store.tokens import create_token, revoke_token, verify_token


def _all_cells(session: Session, table: str) -> list[str]:
    rows = session.execute(text(f"SELECT * FROM {table}")).all()
    return [str(cell) for row in rows for cell in row]


def test_create_stores_only_the_hash(session: Session) -> None:
    row, key = create_key(session, "demo", "studio A")
    assert key.startswith("sk_") and len(key) == 35
    assert row.key_hash == hash_secret(key) != key
    assert key not in _all_cells(session, "stream_keys")
    assert session.get(Stream, "demo") is not None
    assert [k.id for k in list_keys(session, "demo")] == [row.id]


def test_keys_are_unique_per_call(session: Session) -> None:
    keys = {create_key(session, "demo")[1] for _ in range(5)}
    assert len(keys) == 5


def test_invalid_stream_id_is_refused(session: Session) -> None:
    with pytest.raises(LayoutError):
        create_key(session, "../etc")


def test_publish_check_accepts_valid_and_refuses_wrong_or_revoked(session: Session) -> None:
    row, key = create_key(session, "demo")
    ok = check_publish(session, key, "192.0.2.7")
    assert (ok.allowed, ok.key_id, ok.stream_id) == (True, row.id, "demo")
    assert row.publishing_since is not None and row.last_addr == "192.0.2.7"
    assert session.get(Stream, "demo").state == "live"

    assert check_publish(session, key + "x", "a").reason == "unknown key"
    assert check_publish(session, "", "a").reason == "unknown key"
    assert check_publish(session, "k" * 10_000, "a").reason == "unknown key"

    publish_done(session, key)
    revoke_key(session, row.id)
    refused = check_publish(session, key, "a")
    assert (refused.allowed, refused.reason, refused.key_id) == (False, "revoked key", row.id)


def test_a_second_key_cannot_publish_to_a_busy_stream(session: Session) -> None:
    _, key1 = create_key(session, "demo")
    _, key2 = create_key(session, "demo")
    assert check_publish(session, key1, "a").allowed
    assert check_publish(session, key2, "b").reason == "stream busy"
    assert check_publish(session, key1, "a").allowed  # same key reconnecting
    publish_done(session, key1)
    assert check_publish(session, key2, "b").allowed


def test_stream_lifecycle(session: Session) -> None:
    _, key = create_key(session, "demo")
    assert session.get(Stream, "demo").state == "idle"
    check_publish(session, key, "a")
    publish_done(session, key)
    stream = session.get(Stream, "demo")
    assert stream.state == "live" and stream.last_publish_end is not None  # may reconnect
    assert mark_stream_ended(session, "demo")
    assert stream.state == "ended"
    assert not mark_stream_ended(session, "nope")


def test_revoke_is_idempotent_and_names_a_missing_key(session: Session) -> None:
    row, _ = create_key(session, "demo")
    first = revoke_key(session, row.id).revoked_at
    assert revoke_key(session, row.id).revoked_at == first
    with pytest.raises(KeyNotFound, match="stream key 999 does not exist"):
        revoke_key(session, 999)


def test_admin_tokens(session: Session) -> None:
    row, token = create_token(session, "ops")
    assert token.startswith("sca_") and token not in _all_cells(session, "admin_tokens")
    assert verify_token(session, token).id == row.id
    assert verify_token(session, token[:-1]) is None
    revoke_token(session, row.id)
    assert verify_token(session, token) is None


def test_cli_create_list_revoke(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "demo", "--label", "cam 1",
                                   "--database-url", url])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("sk_") and "\n" not in key  # stdout holds the key alone
    with session_scope(engine) as s:
        (row,) = s.scalars(select(StreamKey)).all()
        assert row.key_hash == hash_secret(key)

    listed = runner.invoke(main, ["keys", "list", "--database-url", url])
    assert listed.exit_code == 0
    assert f"{row.id}  demo" in listed.stdout and "active" in listed.stdout
    assert key not in listed.stdout

    revoked = runner.invoke(main, ["keys", "revoke", str(row.id), "--database-url", url])
    assert revoked.exit_code == 0
    assert "revoked" in runner.invoke(main, ["keys", "list", "--database-url", url]).stdout

    missing = runner.invoke(main, ["keys", "revoke", "999", "--database-url", url])
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "sparkcast: error: stream key 999 does not exist"


def test_cli_admin_token(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(main, ["admin", "create-token", "--database-url", url])
    assert result.exit_code == 0
    with session_scope(engine) as s:
        assert verify_token(s, result.stdout.strip()) is not None
