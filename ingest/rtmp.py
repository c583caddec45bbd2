"""The RTMP front: Debian's nginx + libnginx-mod-rtmp, configured and run by sparkcast.

    build_config(cfg)    the nginx.conf text for an RtmpConfig (pure)
    live_ingest_argv()   the per-stream chunker command, from settings.live_ingest_command
    RtmpServer           writes the config into a run dir and runs nginx as a child process

Flow of a publish to rtmp://HOST:PORT/live/<key>:
  1. nginx POSTs on_publish to serve's /rtmp/on_publish (serve.rtmp_callbacks), which
     answers 200 (key valid) or 403 (refused: the publisher's connection is closed);
  2. on 200, nginx runs `exec_push`: `python -m ingest.rtmp_hook ... <key> <addr>`, which
     looks the key up again, and execs the live-ingest command (default
     `sparkcast live-ingest --stream-id ID rtmp://127.0.0.1:PORT/live/<key>`);
  3. when the publisher goes away nginx SIGTERMs that process and POSTs on_publish_done.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import socket
import string
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType

from sqlalchemy.exc import SQLAlchemyError

from core.config import Settings, settings_env
from core.nginx import (
    NginxError,
    NginxProcess,
    nginx_quote,
    temp_path_lines,
    user_line,
    worker_identity,
)
from store.db import ensure_schema, is_sqlite, make_engine, session_scope
from store.keys import clear_publishing

log = logging.getLogger("sparkcast.rtmp")

RTMP_APP = "live"
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
PASSED_ENV = ("HOME", "PYTHONPATH", "LANG", "TZ", "SPARKCAST_CONFIG")
LIVE_INGEST_FIELDS = ("sparkcast", "python", "stream_id", "url", "addr", "chunk_seconds")


class RtmpError(RuntimeError):
    """The RTMP front could not be configured or started; the message says why."""


class _Template(string.Template):
    delimiter = "@"  # nginx itself uses $ and braces


@dataclass(frozen=True)
class RtmpConfig:
    prefix: Path  # run dir: config, pid, logs, temp dirs
    listen: str  # host:port publishers connect to
    stat_port: int
    callback_base: str  # serve's base URL, e.g. http://127.0.0.1:8080
    exec_push: tuple[str, ...]  # argv nginx runs per accepted publish ($name, $addr expanded)
    env: tuple[tuple[str, str], ...]  # variables the exec children get
    play_from: tuple[str, ...] = ("127.0.0.1",)  # addresses allowed to play (the chunker)
    run_as: tuple[str, str] | None = None  # (user, group) for workers when started as root
    module_path: Path = RTMP_MODULE


def build_config(cfg: RtmpConfig) -> str:
    """The nginx.conf text for `cfg`. Pure."""
    template = (resources.files("ingest") / "templates" / "nginx-rtmp.conf").read_text()
    env_lines = "".join(f"env {nginx_quote(f'{k}={v}')};\n" for k, v in cfg.env)
    play_allow = "".join(f"            allow play {addr};\n" for addr in cfg.play_from)
    # $name/$addr must stay unquoted-expandable: nginx-rtmp expands them inside the token.
    exec_push = " ".join(a if a.startswith("$") else nginx_quote(a) for a in cfg.exec_push)
    base = cfg.callback_base.rstrip("/")
    return _Template(template).substitute(
        prefix=str(cfg.prefix), module_path=str(cfg.module_path),
        user_line=user_line(cfg.run_as), temp_paths=temp_path_lines(cfg.prefix),
        env_lines=env_lines, listen=cfg.listen, play_allow=play_allow,
        on_publish_url=f"{base}/rtmp/on_publish",
        on_publish_done_url=f"{base}/rtmp/on_publish_done",
        exec_push=exec_push, stat_port=cfg.stat_port)


def sparkcast_executable() -> str:
    """Absolute path of the `sparkcast` console script of this interpreter."""
    beside = Path(sys.executable).with_name("sparkcast")
    if beside.exists():
        return str(beside)
    found = shutil.which("sparkcast")
    if found is None:
        raise RtmpError("the `sparkcast` command is not installed (pip install -e .)")
    return str(Path(found).resolve())


def live_ingest_argv(template: str, *, stream_id: str, url: str, addr: str = "",
                     chunk_seconds: float = 10.0, sparkcast: str | None = None) -> list[str]:
    """The chunker command for one accepted publish, from `template` (shell-like words with
    {sparkcast} {python} {stream_id} {url} {addr} {chunk_seconds}). Each word is formatted
    after splitting, so no value can inject an argument. Raises RtmpError for an unknown
    placeholder."""
    values = {"sparkcast": sparkcast or "", "python": sys.executable, "stream_id": stream_id,
              "url": url, "addr": addr, "chunk_seconds": f"{chunk_seconds:g}"}
    if "{sparkcast}" in template and not sparkcast:
        values["sparkcast"] = sparkcast_executable()
    try:
        return [word.format(**values) for word in shlex.split(template)]
    except (KeyError, IndexError, ValueError) as exc:
        raise RtmpError(f"setting live_ingest_command {template!r}: {exc!r} "
                        f"(placeholders: {', '.join(LIVE_INGEST_FIELDS)})") from exc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _pull_host(listen_host: str) -> str:
    return "127.0.0.1" if listen_host in ("", "0.0.0.0", "*", "localhost") else listen_host


class RtmpServer:
    """nginx-rtmp as a child process, in its own run dir, on its own ports.

        with RtmpServer(settings, run_dir, "http://127.0.0.1:8080") as rtmp:
            print(rtmp.publish_url)   # rtmp://127.0.0.1:1935/live

    `port` 0 picks a free port. Publishes are checked by serve at `callback_base`.
    """

    def __init__(self, settings: Settings, run_dir: Path, callback_base: str, *,
                 host: str | None = None, port: int | None = None, stat_port: int = 0,
                 nginx: str | None = None):
        self.settings = settings
        self.run_dir = Path(run_dir).resolve()
        self.callback_base = callback_base
        self.host = host if host is not None else settings.rtmp_host
        port = settings.rtmp_port if port is None else port
        self.port = port or free_port(_pull_host(self.host))
        self.stat_port = stat_port or free_port()
        self.nginx = NginxProcess(self.run_dir, nginx)

    # --- configuration ---

    @property
    def pull_base(self) -> str:
        """Where the chunker plays an accepted stream from (a local address nginx allows)."""
        return f"rtmp://{_pull_host(self.host)}:{self.port}/{RTMP_APP}"

    @property
    def publish_url(self) -> str:
        """Where a publisher on this host sends to (append /<stream key>)."""
        return self.pull_base

    def config(self) -> RtmpConfig:
        hook = (sys.executable, "-m", "ingest.rtmp_hook", "--pull-base", self.pull_base,
                "--record-dir", str(self.run_dir / "rec"),
                "--log-dir", str(self.run_dir / "logs"), "--", "$name", "$addr")
        env = [("PATH", os.environ.get("PATH") or DEFAULT_PATH),
               *[(k, os.environ[k]) for k in PASSED_ENV if os.environ.get(k)],
               *settings_env(self.settings).items()]
        play_from = ("127.0.0.1",) if _pull_host(self.host).startswith("127.") else (
            "127.0.0.1", _pull_host(self.host))
        return RtmpConfig(prefix=self.run_dir, listen=f"{self.host}:{self.port}",
                          stat_port=self.stat_port, callback_base=self.callback_base,
                          exec_push=hook, env=tuple(env), play_from=play_from,
                          run_as=worker_identity())

    def write_config(self) -> Path:
        if not RTMP_MODULE.exists():
            raise RtmpError(f"{RTMP_MODULE} is missing: apt-get install nginx libnginx-mod-rtmp")
        return self.nginx.write_config(build_config(self.config()), subdirs=("rec",))

    def argv(self) -> list[str]:
        return self.nginx.argv()

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.nginx.proc

    # --- process ---

    def start(self, timeout: float = 10.0) -> RtmpServer:
        """Write the config, start nginx and wait until it accepts RTMP connections.
        Raises RtmpError with the tail of nginx's error log when it does not come up."""
        self.write_config()
        self._reset_publishing()
        try:
            self.nginx.start(self._accepting, f"RTMP on {self.host}:{self.port}", timeout)
        except NginxError as exc:
            raise RtmpError(str(exc)) from exc
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (TERM: publishers are cut, exec children get their TERM); KILL if
        nginx has not exited after `timeout` s."""
        self.nginx.stop(timeout)

    def __enter__(self) -> RtmpServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- observation ---

    def stat(self) -> ET.Element:
        """nginx-rtmp's /stat XML (live streams, clients, byte counters)."""
        url = f"http://127.0.0.1:{self.stat_port}/stat"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return ET.fromstring(resp.read())

    def publishing(self) -> dict[str, int]:
        """{stream name: bytes received} for every stream with a live publisher."""
        out = {}
        for stream in self.stat().iterfind(".//application/live/stream"):
            if stream.find("publishing") is not None:
                out[stream.findtext("name", "")] = int(stream.findtext("bytes_in", "0"))
        return out

    def _accepting(self) -> bool:
        # The stat page answers only once the master has bound every listen socket and
        # started its worker; a bare connect to the RTMP port could reach another process.
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.stat_port}/stat",
                                        timeout=0.5) as resp:
                return resp.status == 200
        except OSError:
            return False

    def _reset_publishing(self) -> None:
        # nginx sends no on_publish_done for publishers live at its shutdown; a fresh front
        # has no publisher, so stale marks must not block a stream's keys.
        engine = make_engine(self.settings.database_url)
        try:
            if is_sqlite(engine):
                ensure_schema(engine)
            with session_scope(engine) as session:
                clear_publishing(session)
        except SQLAlchemyError as exc:  # publishes are refused until it is back anyway
            log.warning("could not reset publishing marks: database unavailable (%s)",
                        type(exc).__name__)
        finally:
            engine.dispose()
