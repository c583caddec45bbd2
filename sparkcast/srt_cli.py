"""CLI group `sparkcast srt`: run the SRT front in the foreground (ingest/srt_front.py).
Added to the main group in sparkcast/cli.py.
(Imports inside commands keep start-up short: see sparkcast/cli_common.py.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from sparkcast.cli_common import handle_errors


@click.group()
def srt() -> None:
    """The SRT front encoders on lossy links publish to (libsrt)."""


@srt.command()
@click.option("--run-dir", type=click.Path(path_type=Path),
              help="recordings and chunker logs (default: <data dir>/srt)")
@click.option("--host", help="listen address (default $SPARKCAST_SRT_HOST, 127.0.0.1)")
@click.option("--port", type=int, help="SRT port (default $SPARKCAST_SRT_PORT, 9000)")
@handle_errors
def run(run_dir: Path | None, host: str | None, port: int | None) -> None:
    """Run the SRT front until Ctrl-C or TERM. Encoders publish MPEG-TS to
    srt://HOST:PORT?streamid=<stream key> (or streamid=#!::r=<key>,m=publish)."""
    from platformdirs import user_data_dir

    from core.config import load_settings
    from ingest.srt_front import SrtFront
    from sparkcast.stop_signal import stop_on_signals

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    stop = stop_on_signals()
    settings = load_settings(srt_host=host, srt_port=port)
    front = SrtFront(settings, run_dir or Path(user_data_dir("sparkcast")) / "srt")
    with front:
        click.echo(f"SRT front: publish to {front.url}?streamid=<stream key>", err=True)
        stop.wait()
