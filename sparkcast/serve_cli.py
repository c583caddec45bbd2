"""`sparkcast serve`: nginx in front of the Flask origin (docs/SERVING.md).

    viewers -> nginx (host:port)  -- segments of a local root, from disk
                                  -- live manifests of a local root, from the files this
                                     process renders (serve/manifest_render.py)
                                  -- everything else -> gunicorn (127.0.0.1:<free port>)

This process starts both, prints where to go, and stops both on TERM or Ctrl-C; when
either dies the other is stopped and the command fails, so a service manager restarts
the pair. `--dev` runs Flask's development server alone instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from core.config import Settings, networks, settings_env
from core.nginx import NginxError, worker_identity
from core.processes import stop_process
from edge.front_conf import front_door_config
from edge.http_front import HttpFront
from hdfs_layout import open_storage
from sparkcast.cli_common import handle_errors, root_option, settings_from
from sparkcast.stop_signal import StopRequest

log = logging.getLogger("sparkcast.serve")
ORIGIN_HOST = "127.0.0.1"


class ServeError(RuntimeError):
    """A part of `sparkcast serve` did not start or died; the message says which."""


def origin_settings(settings: Settings, local_root: bool) -> Settings:
    """The origin's settings behind its front door. Pure.

    The front door (on loopback) is a trusted proxy. With a local root nginx answers every
    segment from disk, so the origin keeps no last-seconds cache of its own: it would only
    make the manifests it answers older (the front door already keeps them for a while)."""
    trusted = [t for t in settings.trusted_proxies.split(",") if t.strip()]
    if ORIGIN_HOST not in trusted:
        trusted.append(ORIGIN_HOST)
    update: dict[str, object] = {"trusted_proxies": ",".join(trusted)}
    if local_root:
        update["cache_seconds"] = 0
    return settings.model_copy(update=update)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (a 503 names storage trouble, which /healthz reports)
    except OSError:
        return False


class ServeStack:
    """gunicorn (the origin) and nginx (its front door), as child processes."""

    def __init__(self, settings: Settings, workers: int, threads: int) -> None:
        from ingest.rtmp import free_port
        from serve.gunicorn_run import gunicorn_argv

        self.settings = settings
        self.run_dir = Path(tempfile.mkdtemp(prefix="sparkcast-serve-"))
        self.origin_port = free_port(ORIGIN_HOST)
        self.argv = gunicorn_argv(f"{ORIGIN_HOST}:{self.origin_port}", workers, threads)
        media_root = open_storage(settings.root, settings.webhdfs_url,
                                  settings.hdfs_user).local_path("")
        self.local_root = media_root is not None
        rendered = self.run_dir / "rendered" if self.local_root else None
        self.front = HttpFront(front_door_config(
            self.run_dir / "nginx", settings.host, settings.port, free_port(),
            f"{ORIGIN_HOST}:{self.origin_port}", Path(media_root) if media_root else None,
            max(settings.ad_upload_max_bytes, 1 << 20), worker_identity(),
            settings.segment_seconds, tuple(str(n) for n in networks(settings.trusted_proxies)),
            rendered))
        self.gunicorn: subprocess.Popen[bytes] | None = None
        self.renderer: Any = None  # serve.manifest_render.ManifestRenderer, with a local root
        self.metrics: Any = None  # edge.front_metrics.FrontMetrics, once started

    def start(self, timeout: float = 60.0) -> ServeStack:
        metrics_dir = self.run_dir / "metrics"
        metrics_dir.mkdir()
        # Every process that counts (each gunicorn worker, and this one for nginx's log)
        # writes here; the origin's /metrics sums them. Set before prometheus_client loads.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        env = {**os.environ, **settings_env(origin_settings(self.settings, self.local_root))}
        self.gunicorn = subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not _answers(f"http://{ORIGIN_HOST}:{self.origin_port}/healthz"):
            if self.gunicorn.poll() is not None:
                raise ServeError(f"the origin (gunicorn) exited with {self.gunicorn.returncode}"
                                 " at start; its log is above")
            if time.monotonic() > deadline:
                raise ServeError(f"the origin (gunicorn) did not answer within {timeout:g} s")
            time.sleep(0.1)
        if self.front.config.rendered_root is not None:
            self.renderer = _renderer(origin_settings(self.settings, self.local_root),
                                      self.front.config.rendered_root)
        try:
            self.front.start()
        except NginxError as exc:
            raise ServeError(f"the front door (nginx) on {self.settings.host}:"
                             f"{self.settings.port}: {exc}") from exc
        from edge.access_log import LogTail
        from edge.front_metrics import FrontMetrics

        self.metrics = FrontMetrics(LogTail(self.front.access_log), self.front.status).start()
        return self

    def failed(self) -> str | None:
        """Which part has died, if one has."""
        if self.gunicorn is not None and self.gunicorn.poll() is not None:
            return f"the origin (gunicorn) exited with {self.gunicorn.returncode}"
        if not self.front.running():
            return f"the front door (nginx) exited; see {self.front.nginx.error_log}"
        return None

    def stop(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()
        self.front.stop()
        if self.renderer is not None:
            self.renderer.stop()
        if self.gunicorn is not None:
            # gunicorn's graceful stop waits for open requests; live-event feeds end at once
            stop_process(self.gunicorn, 15)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _renderer(settings: Settings, out_dir: Path) -> Any:
    """This process's ManifestRenderer, started: the origin's own context (storage, ad
    schedule, settings), so what it renders is what the origin would answer."""
    from serve import context, create_app
    from serve.manifest_render import ManifestRenderer

    return ManifestRenderer(context.get(create_app(settings)), out_dir).start()


def run_serve(settings: Settings, workers: int, threads: int) -> None:
    stop = StopRequest()
    stack = ServeStack(settings, workers, threads)
    try:
        stack.start()
        click.echo(f"serving {settings.root} at {stack.front.url}/  (nginx in front of "
                   f"{workers} gunicorn worker(s); Ctrl-C stops)", err=True)
        while not stop.wait(0.5):
            if (why := stack.failed()) is not None:
                raise ServeError(why)
    finally:
        stack.stop()


@click.command("serve")
@click.option("--host", help="address to listen on (default 127.0.0.1)")
@click.option("--port", type=int, help="port (default 8080)")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="gunicorn worker processes of the origin")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True,
              help="threads per worker (API, pages, manifests, live-event feeds)")
@click.option("--cache-seconds", type=click.IntRange(0, 300),
              help="newest seconds of each live rendition kept in RAM (default 30)")
@click.option("--origins", help="comma-separated origin base URLs listed in manifests")
@root_option
@click.option("--dev", is_flag=True,
              help="Flask's development server alone (no nginx, no gunicorn)")
@handle_errors
def serve_command(host: str | None, port: int | None, workers: int, threads: int,
                  cache_seconds: int | None, origins: str | None, root: str | None,
                  dev: bool) -> None:
    """Serve DASH/HLS, the player page and the API: nginx in front of gunicorn."""
    settings = settings_from(root=root, host=host, port=port, cache_seconds=cache_seconds,
                             origins=origins)
    if dev:
        from serve import create_app

        create_app(settings).run(host=settings.host, port=settings.port, threaded=True)
        return
    run_serve(settings, workers, threads)
