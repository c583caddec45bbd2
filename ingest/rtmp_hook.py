"""nginx-rtmp's exec_push target: start the chunker for one accepted publish.

    python -m ingest.rtmp_hook --pull-base rtmp://127.0.0.1:PORT/live --log-dir DIR -- KEY ADDR

nginx runs this (absolute interpreter path, environment from the `env` lines of the
generated config) after serve accepted KEY. It resolves KEY to its stream id, sends its
output to DIR/live-<stream id>.log and *execs* the command of settings.live_ingest_command,
so nginx's TERM at the end of the publish reaches the chunker itself (nginx only signals
the pid it started). Exits 2 when the key is unknown or revoked by now.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from core.config import Settings, load_settings
from ingest.rtmp import RtmpError, live_ingest_argv
from store import key_cache
from store.db import make_engine, session_scope
from store.keys import fingerprint, lookup_key


def resolve_stream(settings: Settings, key: str) -> str | None:
    """The stream id of a valid (unrevoked) key, else None; while the database is down,
    the stream of a key among the last known ones (store/key_cache.py)."""
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            row = lookup_key(session, key)
            return row.stream_id if row is not None and row.revoked_at is None else None
    except SQLAlchemyError:
        known = key_cache.lookup(settings.publish_keys_file, key)
        return known.stream_id if known is not None else None
    finally:
        engine.dispose()


def _redirect_output(log_dir: Path, stream_id: str) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_dir / f"live-{stream_id}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def recording(record_dir: Path, key: str, since: float, timeout: float = 10.0) -> Path | None:
    """nginx's recording of this publish (`<key>-<unix time>.flv`), once it exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = [p for p in record_dir.glob(f"{glob.escape(key)}-*.flv")
                 if p.stat().st_mtime >= since - 5]
        if files:
            return max(files, key=lambda p: p.stat().st_mtime)
        time.sleep(0.1)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest.rtmp_hook")
    parser.add_argument("--pull-base", required=True, help="rtmp://127.0.0.1:PORT/live")
    parser.add_argument("--log-dir", required=True, type=Path)
    parser.add_argument("--record-dir", type=Path,
                        help="nginx's record_path: the chunker reads the publish's recording")
    parser.add_argument("key")
    parser.add_argument("addr", nargs="?", default="")
    args = parser.parse_args(argv)

    started = time.time()
    settings = load_settings()
    stream_id = resolve_stream(settings, args.key)
    if stream_id is None:
        print(f"rtmp_hook: key {fingerprint(args.key)} is unknown or revoked; "
              "no chunker started", file=sys.stderr)
        return 2
    _redirect_output(args.log_dir, stream_id)
    url = f"{args.pull_base}/{args.key}"
    if args.record_dir:
        rec = recording(args.record_dir, args.key, started)
        if rec is None:
            print(f"rtmp_hook: stream {stream_id}: no recording of the publish appeared in "
                  f"{args.record_dir}; reading the live stream instead", file=sys.stderr)
        else:
            url = f"file:{rec}"
    try:
        cmd = live_ingest_argv(settings.live_ingest_command, stream_id=stream_id,
                               url=url, addr=args.addr,
                               chunk_seconds=settings.chunk_seconds)
    except RtmpError as exc:
        print(f"rtmp_hook: {exc}", file=sys.stderr)
        return 2
    shown = " ".join(cmd).replace(args.key, f"<key {fingerprint(args.key)}>")
    print(f"rtmp_hook: stream {stream_id} from {args.addr}: exec {shown}",
          file=sys.stderr, flush=True)
    try:
        os.execvp(cmd[0], cmd)
    except OSError as exc:
        print(f"rtmp_hook: cannot run {cmd[0]}: {exc}", file=sys.stderr)
        return 2
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
