"""Helpers of the serve tests: the test VOD, starting `sparkcast serve`, Chromium options."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from a2wsgi import ASGIMiddleware
from werkzeug.test import Client

from media_tools import SourceSpec

VOD_ID = "servevod"
# 60 s so the ABR test has room to go down and back up; two rungs keep the transcode short.
VOD_SOURCE = SourceSpec(name="serve-vod", width=640, height=360, seconds=60.0, gop_seconds=2.0)
VOD_LADDER = "360:800k,240:400k:baseline"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SPARKCAST_ROOT=root.as_uri(), SPARK_LOCAL_IP="127.0.0.1",
               PYSPARK_PYTHON=sys.executable, SPARKCAST_CONFIG=str(root / "no-config.toml"))
    return env


@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen

    def kill(self) -> None:
        """Hard stop of the whole gunicorn process group (a crashed origin)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(root: Path, port: int, *args: str) -> Server:
    """`sparkcast serve` (gunicorn) on loopback; fails the test if it does not come up."""
    log = open(ARTIFACTS / f"serve-{port}.log", "w")  # noqa: SIM115 - kept for the run
    proc = subprocess.Popen(
        ["sparkcast", "serve", "--root", root.as_uri(), "--host", "127.0.0.1",
         "--port", str(port), *args],
        env=serve_env(root), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sparkcast serve exited with {proc.returncode}; see {log.name}")
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return Server(url, port, proc)
        except requests.RequestException:
            time.sleep(0.2)
    Server(url, port, proc).kill()
    pytest.fail(f"sparkcast serve did not answer /healthz within 30 s; see {log.name}")


class AsgiTestApp:
    """serve.asgi.Origin behind werkzeug's test client: a2wsgi's ASGIMiddleware turns it
    back into WSGI, so the media tests ask the ASGI path the same questions as Flask's."""

    def __init__(self, origin: Any) -> None:
        self.origin = origin
        self.flask_app = origin.flask_app

    async def _with_raw_path(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # a2wsgi's scope lacks the target as sent; a real server (uvicorn) sets it
        environ = scope.get("wsgi_environ", {})
        if "RAW_URI" in environ:
            scope = {**scope, "raw_path": environ["RAW_URI"].split("?", 1)[0].encode("latin-1")}
        await self.origin(scope, receive, send)

    def test_client(self) -> Client:
        return Client(ASGIMiddleware(self._with_raw_path))
