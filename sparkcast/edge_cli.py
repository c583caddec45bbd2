"""`sparkcast edge`: a caching edge in front of one or more origins (docs/SERVING.md).

    viewers -> nginx (edge)  -- cached segments and manifests
                             -- misses -> an origin (round-robin; a failed one skipped)

No storage and no database here: the edge knows its origins' URLs and nothing else.
This process runs nginx, counts its log into the metrics it serves at /metrics, and
prefetches the newest seconds of every live stream viewers are watching.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import click

from core.config import Settings
from core.nginx import NginxError, worker_identity
from sparkcast.cli_common import handle_errors, settings_from
from sparkcast.stop_signal import StopRequest


class EdgeError(RuntimeError):
    """The edge could not start or died; the message says why."""


class EdgeStack:
    """nginx as an edge, its metrics and its prefetcher."""

    def __init__(self, settings: Settings, origins: list[str], cache_dir: Path | None) -> None:
        from edge.front_conf import Tls, edge_config
        from edge.http_front import HttpFront
        from ingest.rtmp import free_port

        self.settings = settings
        self.run_dir = Path(tempfile.mkdtemp(prefix="sparkcast-edge-"))
        self.metrics_port = free_port()
        tls = None
        if settings.tls_certificate or settings.tls_key:
            if not (settings.tls_certificate and settings.tls_key):
                raise EdgeError("settings tls_certificate and tls_key: give both or neither")
            tls = Tls(Path(settings.tls_certificate), Path(settings.tls_key))
        self.front = HttpFront(edge_config(
            self.run_dir / "nginx", settings.host, settings.port, free_port(), origins,
            self.metrics_port, tls, settings.segment_seconds, run_as=worker_identity(),
            cache_dir=cache_dir))
        self.metrics = self.prefetcher = None

    def start(self) -> EdgeStack:
        # before prometheus_client loads: one registry file per process, as under serve
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(self.run_dir / "metrics"))
        Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        from edge.access_log import LogTail
        from edge.front_metrics import FrontMetrics
        from edge.prefetch import Prefetcher

        try:
            self.front.start()
        except NginxError as exc:
            raise EdgeError(f"nginx on {self.settings.host}:{self.settings.port}: {exc}") \
                from exc
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(self.metrics_port, addr="127.0.0.1", registry=registry)
        # The prefetcher asks the edge itself, over its status listener's address family.
        self.prefetcher = Prefetcher(self.front.url, self.settings.cache_seconds).start()
        self.metrics = FrontMetrics(LogTail(self.front.access_log), self.front.status,
                                    on_manifest=self.prefetcher.seen).start()
        return self

    def failed(self) -> str | None:
        if not self.front.running():
            return f"nginx exited; see {self.front.nginx.error_log}"
        return None

    def stop(self) -> None:
        if self.prefetcher is not None:
            self.prefetcher.stop()
        if self.metrics is not None:
            self.metrics.stop()
        self.front.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)


@click.command("edge")
@click.option("--origin", "origins", multiple=True, metavar="URL",
              help="an origin's base URL (http://HOST:PORT), repeatable: misses are "
                   "spread over them, one that fails is skipped (default: setting "
                   "edge_origins)")
@click.option("--host", help="address to listen on (default 127.0.0.1)")
@click.option("--port", type=int, help="port (default 8080; 443 with TLS is what firewalls "
                                       "let through)")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="where cached segments and manifests are kept (default: a run dir)")
@click.option("--cache-seconds", type=click.IntRange(0, 300),
              help="newest seconds of each watched live stream fetched ahead (default 30)")
@handle_errors
def edge_command(origins: tuple[str, ...], host: str | None, port: int | None,
                 cache_dir: Path | None, cache_seconds: int | None) -> None:
    """Run a caching edge in front of origins, failing over between them."""
    settings = settings_from(host=host, port=port, cache_seconds=cache_seconds)
    urls = list(origins) or [u.strip() for u in settings.edge_origins.split(",") if u.strip()]
    if not urls:
        raise click.UsageError("no origin: give --origin URL (or the setting edge_origins)")
    stop = StopRequest()
    stack = EdgeStack(settings, urls, cache_dir)
    try:
        stack.start()
        click.echo(f"edge at {stack.front.url}/ in front of {', '.join(urls)} "
                   "(Ctrl-C stops)", err=True)
        while not stop.wait(0.5):
            if (why := stack.failed()) is not None:
                raise EdgeError(why)
    finally:
        stack.stop()
