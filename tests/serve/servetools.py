"""Helpers of the serve tests: the test VOD, starting `sparkcast serve`, Chromium options."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from media_tools import SourceSpec

VOD_ID = "servevod"
# 60 s so the ABR test has room to go down and back up; two rungs keep the transcode short.
VOD_SOURCE = SourceSpec(name="serve-vod", width=640, height=360, seconds=60.0, gop_seconds=2.0)
VOD_LADDER = "360:800k,240:400k:baseline"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def live_copy(vod_root: Path, root: Path, live_id: str) -> Path:
    """The test VOD's outputs under `live_id` in `root`, its MPD made live (dynamic, as
    the live job writes it); returns `root`."""
    from hdfs_layout import StreamLayout

    src, dst = vod_root / StreamLayout(VOD_ID).base, root / StreamLayout(live_id).base
    shutil.copytree(src / "out", dst / "out")
    (dst / "manifest.mpd").write_text((src / "manifest.mpd").read_text().replace(
        'type="static"', 'type="dynamic" availabilityStartTime="2026-01-01T00:00:00Z" '
        'minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT60S"'))
    return root


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


def _wait_healthy(proc: subprocess.Popen, url: str, log_name: str, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}; see {log_name}")
        try:
            # verify=False: an edge's test certificate is self-signed
            if requests.get(url + "/healthz", timeout=1, verify=False).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"{what} did not answer /healthz within 30 s; see {log_name}")


def start_server(root: Path, port: int, *args: str, env: dict[str, str] | None = None
                 ) -> Server:
    """`sparkcast serve` (nginx + gunicorn) on loopback; fails the test if it does not
    come up."""
    log = open(ARTIFACTS / f"serve-{port}.log", "w")  # noqa: SIM115 - kept for the run
    proc = subprocess.Popen(
        ["sparkcast", "serve", "--root", root.as_uri(), "--host", "127.0.0.1",
         "--port", str(port), *args],
        env={**serve_env(root), **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(proc, url, log.name, "sparkcast serve")
    return Server(url, port, proc)


def start_edge(origins: list[str], port: int, *args: str, env: dict[str, str] | None = None,
               scheme: str = "http") -> Server:
    """`sparkcast edge` on loopback in front of `origins`."""
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"edge-{port}.log", "w")  # noqa: SIM115 - kept for the run
    argv = ["sparkcast", "edge", "--host", "127.0.0.1", "--port", str(port), *args]
    for origin in origins:
        argv += ["--origin", origin]
    proc = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"{scheme}://127.0.0.1:{port}"
    _wait_healthy(proc, url, log.name, "sparkcast edge")
    return Server(url, port, proc)


class HttpResponse:
    """The parts of werkzeug's TestResponse the media tests read."""

    def __init__(self, status: int, headers: Any, data: bytes) -> None:
        self.status_code, self.headers, self.data = status, headers, data

    @property
    def json(self) -> Any:
        return json.loads(self.data)

    def get_json(self) -> Any:
        return self.json


class HttpClient:
    """werkzeug's test-client calls (get, head, options, post), sent over a real socket
    with the request target exactly as written (http.client does not normalize it)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def open(self, method: str, path: str, headers: dict[str, str] | None = None,
             data: bytes | None = None, json_body: Any = None) -> HttpResponse:
        hdrs = dict(headers or {})
        if json_body is not None:
            data = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return HttpResponse(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def get(self, path: str, headers: dict[str, str] | None = None) -> HttpResponse:
        return self.open("GET", path, headers)

    def head(self, path: str, headers: dict[str, str] | None = None) -> HttpResponse:
        return self.open("HEAD", path, headers)

    def options(self, path: str, headers: dict[str, str] | None = None) -> HttpResponse:
        return self.open("OPTIONS", path, headers)

    def post(self, path: str, headers: dict[str, str] | None = None, data: bytes | None = None,
             json: Any = None) -> HttpResponse:
        return self.open("POST", path, headers, data, json)


class FrontDoorApp:
    """A Flask app behind the front door `sparkcast serve` runs (edge/front_conf.py):
    werkzeug's threaded server on loopback as the origin, nginx in front serving the
    root's segments from disk. `.test_client()` speaks HTTP to nginx."""

    def __init__(self, app: Any, root: Path, run_dir: Path) -> None:
        from werkzeug.serving import make_server

        from core.nginx import worker_identity
        from edge.front_conf import front_door_config
        from edge.http_front import HttpFront

        self.flask_app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.front = HttpFront(front_door_config(
            run_dir, "127.0.0.1", free_port(), free_port(),
            f"127.0.0.1:{self.server.server_port}", root, 1 << 20, worker_identity())).start()

    def test_client(self) -> HttpClient:
        return HttpClient("127.0.0.1", self.front.config.port)

    def close(self) -> None:
        self.front.stop()
        self.server.shutdown()
        self.thread.join(10)
