"""The RTMP front end to end: real nginx-rtmp, serve's key callbacks over HTTP, real ffmpeg
publishers, and the exec_push hook starting (and stopping) the per-stream chunker."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import RtmpStack, publisher
from core.config import Settings
from ingest.rtmp import RtmpConfig, RtmpError, RtmpServer, build_config, live_ingest_argv
from store.db import session_scope
from store.keys import revoke_key
from store.models import StreamKey


def wait_for(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# --- pure parts ---------------------------------------------------------------------------

def test_live_ingest_argv_formats_each_word() -> None:
    argv = live_ingest_argv("{sparkcast} live-ingest --stream-id {stream_id} {url}",
                            stream_id="show", url="rtmp://127.0.0.1:1935/live/sk_a b",
                            sparkcast="/opt/venv/bin/sparkcast")
    # A value with a space stays one argument: words are split before formatting.
    assert argv == ["/opt/venv/bin/sparkcast", "live-ingest", "--stream-id", "show",
                    "rtmp://127.0.0.1:1935/live/sk_a b"]
    assert live_ingest_argv("{python} -m x --chunk {chunk_seconds}", stream_id="s", url="u",
                            chunk_seconds=2.0) == [sys.executable, "-m", "x", "--chunk", "2"]
    with pytest.raises(RtmpError, match="placeholders"):
        live_ingest_argv("run {stream}", stream_id="s", url="u")


def test_config_runs_self_contained(tmp_path: Path) -> None:
    text = build_config(RtmpConfig(
        prefix=tmp_path, listen="127.0.0.1:1935", stat_port=8999,
        callback_base="http://127.0.0.1:8080/",
        exec_push=("/usr/bin/python3", "-m", "ingest.rtmp_hook", "--", "$name", "$addr"),
        env=(("PATH", "/usr/bin:/bin"), ("SPARKCAST_DATABASE_URL", 'sqlite:///a "b".db')),
        run_as=("root", "root")))
    lines = {line.strip() for line in text.splitlines()}
    for expected in [
        "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;", "daemon off;",
        "worker_processes 1;", "user root root;", f"pid {tmp_path}/nginx.pid;",
        f"error_log {tmp_path}/logs/error.log notice;",
        f"access_log {tmp_path}/logs/rtmp-access.log nokey;", "listen 127.0.0.1:1935;",
        'env "PATH=/usr/bin:/bin";', 'env "SPARKCAST_DATABASE_URL=sqlite:///a \\"b\\".db";',
        "on_publish http://127.0.0.1:8080/rtmp/on_publish;",
        "on_publish_done http://127.0.0.1:8080/rtmp/on_publish_done;",
        'exec_push "/usr/bin/python3" "-m" "ingest.rtmp_hook" "--" $name $addr;',
        "exec_kill_signal term;", "allow play 127.0.0.1;", "deny play all;",
        "listen 127.0.0.1:8999;", f"client_body_temp_path {tmp_path}/tmp/body;",
    ]:
        assert expected in lines, expected
    assert "@{" not in text


def test_start_names_the_cause_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
        server = RtmpServer(settings, tmp_path / "run", "http://127.0.0.1:9", port=port)
        try:
            with pytest.raises(RtmpError, match="Address already in use"):
                server.start(timeout=5)
        finally:
            server.stop()


# --- real nginx, real publishers ---------------------------------------------------------

def test_valid_key_is_accepted_and_gets_its_chunker(rtmp_stack: RtmpStack) -> None:
    key_id, key = rtmp_stack.new_key("show")
    pub = publisher(rtmp_stack.url(key), seconds=10)
    out = rtmp_stack.chunker_out
    try:
        wait_for(lambda: key in rtmp_stack.rtmp.publishing(), 5, "nginx to list the stream")
        started = wait_for(lambda: read_json(out / "show.started.json"), 10, "the chunker")
        # The hook resolved the key to its stream id and handed over nginx's recording of
        # this publish (read from its first byte, see docs/LIVE.md).
        assert started["argv"][1:4] == ["--out", str(out), "--stream-id"]
        assert started["argv"][4] == "show"
        recording = rtmp_stack.rtmp.run_dir / "rec"
        assert re.fullmatch(rf"file:{re.escape(str(recording))}/{re.escape(key)}-\d+\.flv",
                            started["argv"][5])
        assert started["path"]  # nginx passed PATH through the env lines
        pulled = wait_for(lambda: read_json(out / "show.pulled.json"), 20, "the pull")
        assert (pulled["rc"], pulled["frames"]) == (0, 20), pulled["stderr"]
        with session_scope(rtmp_stack.engine) as s:
            assert s.get(StreamKey, key_id).publishing_since is not None
    finally:
        _, err = pub.communicate(timeout=30)
    assert pub.returncode == 0, err.decode()
    # The publish ended: nginx TERMs the chunker (the hook exec'd it, same pid) and
    # calls on_publish_done.
    wait_for(lambda: (out / "show.terminated").exists(), 10, "the chunker to get TERM")
    assert (out / "show.terminated").read_text() == str(started["pid"])

    def publishing_cleared() -> bool:
        with session_scope(rtmp_stack.engine) as s:
            return s.scalars(select(StreamKey.publishing_since).where(
                StreamKey.id == key_id)).one() is None

    wait_for(publishing_cleared, 5, "on_publish_done")


def test_wrong_and_revoked_keys_are_refused_at_connect(rtmp_stack: RtmpStack) -> None:
    revoked_id, revoked = rtmp_stack.new_key("revoked-show")
    with session_scope(rtmp_stack.engine) as s:
        revoke_key(s, revoked_id)
    t0 = time.monotonic()
    pubs = {name: publisher(rtmp_stack.url(key), seconds=10)
            for name, key in [("wrong", "sk_not-a-key"), ("revoked", revoked)]}
    for name, pub in pubs.items():
        try:
            _, err = pub.communicate(timeout=8)
        except subprocess.TimeoutExpired:
            pub.kill()
            pytest.fail(f"{name} key: ffmpeg still publishing after 8 s")
        assert pub.returncode != 0, f"{name} key was accepted"
        assert b"Input/output error" in err or b"error" in err.lower()
    assert time.monotonic() - t0 < 5
    assert rtmp_stack.rtmp.publishing() == {}
    assert not (rtmp_stack.chunker_out / "revoked-show.started.json").exists()
    logs = "".join(p.read_text() for p in (rtmp_stack.rtmp.run_dir / "logs").iterdir())
    assert "sk_not-a-key" not in logs and revoked not in logs  # no log names a key


def _rtmp_handshake(sock: socket.socket) -> None:
    """The plain RTMP handshake (C0 C1, read S0 S1 S2, C2 = S1), so what follows is read
    as RTMP chunks."""
    sock.sendall(b"\x03" + bytes(8) + os.urandom(1528))
    got = b""
    while len(got) < 1 + 1536 * 2:
        data = sock.recv(8192)
        assert data, "server closed during the handshake"
        got += data
    sock.sendall(got[1:1537])


def test_garbage_does_not_disturb_a_valid_publisher(rtmp_stack: RtmpStack) -> None:
    _, key = rtmp_stack.new_key("steady")
    pub = publisher(rtmp_stack.url(key), seconds=8)
    try:
        wait_for(lambda: key in rtmp_stack.rtmp.publishing(), 5, "the valid publisher")
        before = rtmp_stack.rtmp.publishing()[key]
        port = rtmp_stack.rtmp.port
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                raw.sendall(os.urandom(64 * 1024))  # garbage instead of a handshake
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                _rtmp_handshake(sock)
                try:
                    for _ in range(16):  # garbage RTMP chunks after a valid handshake
                        sock.sendall(os.urandom(4096))
                except OSError:
                    pass  # nginx dropped us: the right answer
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)  # connects, sends 0
        time.sleep(1.5)
        after = rtmp_stack.rtmp.publishing()
        assert key in after and after[key] > before, (before, after)
        idle.close()
    finally:
        _, err = pub.communicate(timeout=30)
    assert pub.returncode == 0, err.decode()
    assert rtmp_stack.rtmp.proc is not None and rtmp_stack.rtmp.proc.poll() is None
    pulled = read_json(rtmp_stack.chunker_out / "steady.pulled.json")
    assert pulled is not None and (pulled["rc"], pulled["frames"]) == (0, 20)


def test_hook_refuses_a_key_revoked_after_the_callback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from ingest import rtmp_hook
    from store.db import make_engine, upgrade
    from store.keys import create_key

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    monkeypatch.setenv("SPARKCAST_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("SPARKCAST_DATABASE_URL", url)
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as s:
        row, key = create_key(s, "show")
        revoke_key(s, row.id)
    engine.dispose()
    args = ["--pull-base", "rtmp://127.0.0.1:1/live", "--log-dir", str(tmp_path / "logs"), "--"]
    assert rtmp_hook.main([*args, key, "192.0.2.1"]) == 2
    assert rtmp_hook.main([*args, "sk_unknown", "192.0.2.1"]) == 2
    err = capsys.readouterr().err
    assert "unknown or revoked; no chunker started" in err
    assert key not in err and "sk_unknown" not in err


def test_a_dropped_publisher_can_reconnect_with_the_same_key(rtmp_stack: RtmpStack) -> None:
    _, key = rtmp_stack.new_key("again")
    out = rtmp_stack.chunker_out
    first = publisher(rtmp_stack.url(key), seconds=30)
    try:
        wait_for(lambda: key in rtmp_stack.rtmp.publishing(), 5, "the first publish")
        started = wait_for(lambda: read_json(out / "again.started.json"), 10, "chunker 1")
    finally:
        first.kill()  # the encoder dies: no RTMP goodbye, just a closed socket
        first.wait()
    wait_for(lambda: (out / "again.terminated").exists(), 10, "chunker 1 to get TERM")
    (out / "again.started.json").unlink()
    second = publisher(rtmp_stack.url(key), seconds=5)
    try:
        wait_for(lambda: key in rtmp_stack.rtmp.publishing(), 5, "the reconnect")
        again = wait_for(lambda: read_json(out / "again.started.json"), 10, "chunker 2")
        assert again["pid"] != started["pid"]
        assert again["argv"][:5] == started["argv"][:5]  # same stream, its new recording
        assert again["argv"][5] != started["argv"][5] and key in again["argv"][5]
    finally:
        _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err.decode()
