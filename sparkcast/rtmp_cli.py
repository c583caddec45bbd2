"""CLI group `sparkcast rtmp`: run the RTMP front (nginx-rtmp) in the foreground, or print
its generated config. Added to the main group in sparkcast/cli.py.
(Imports inside commands keep start-up short: see sparkcast/cli_common.py.)
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sparkcast.cli_common import handle_errors


def default_run_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("sparkcast")) / "rtmp"


def default_callback_base(host: str, port: int) -> str:
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://{host}:{port}"


def _server(run_dir: Path | None, host: str | None, port: int | None,
            callback: str | None) -> Any:
    from core.config import load_settings
    from ingest.rtmp import RtmpServer

    settings = load_settings(rtmp_host=host, rtmp_port=port)
    return RtmpServer(settings, run_dir or default_run_dir(),
                      callback or default_callback_base(settings.host, settings.port))


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--run-dir", type=click.Path(path_type=Path),
                     help="config, pid and logs (default: <data dir>/rtmp)"),
        click.option("--host", help="listen address (default $SPARKCAST_RTMP_HOST, 127.0.0.1)"),
        click.option("--port", type=int, help="RTMP port (default $SPARKCAST_RTMP_PORT, 1935)"),
        click.option("--callback", help="serve's base URL for the key check "
                                        "(default http://$SPARKCAST_HOST:$SPARKCAST_PORT)"),
    ]):
        fn = option(fn)
    return fn


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


@click.group()
def rtmp() -> None:
    """The RTMP front publishers connect to (nginx + libnginx-mod-rtmp)."""


@rtmp.command()
@_options
@handle_errors
def run(run_dir: Path | None, host: str | None, port: int | None, callback: str | None) -> None:
    """Run the RTMP front in the foreground until Ctrl-C (needs `sparkcast serve` running
    for the key check)."""
    server = _server(run_dir, host, port, callback)
    # TERM (from a service manager) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    with server:
        click.echo(f"RTMP front: publish to {server.publish_url}/<stream key>; "
                   f"logs in {server.run_dir / 'logs'}", err=True)
        try:
            while server.proc is not None and server.proc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            return
    raise click.ClickException(f"nginx exited; see {server.run_dir / 'logs' / 'error.log'}")


@rtmp.command()
@_options
@handle_errors
def config(run_dir: Path | None, host: str | None, port: int | None,
           callback: str | None) -> None:
    """Print the nginx.conf the front would run with (it holds your settings)."""
    from ingest.rtmp import build_config

    click.echo(build_config(_server(run_dir, host, port, callback).config()), nl=False)
