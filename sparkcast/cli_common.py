"""What every `sparkcast` command module shares: the error handler that turns failures into
one line, settings from options, options used by several commands, a progress bar.

The command modules import what a command uses inside that command: `sparkcast --help`
and a key or database command then do not load Spark (0.6 s), SQLAlchemy (1.3 s) or the
web app (1.4 s) that they do not use (each `python3 -c "import X"` on this machine).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from core.config import Settings, load_settings
from core.errors import one_line
from hdfs_layout.layout import stream_id_from_name


def _fail(message: str) -> None:
    click.echo(f"sparkcast: error: {message}", err=True)
    sys.exit(1)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            _fail("interrupted")
        except Exception as exc:  # noqa: BLE001 - the CLI's one place to report any failure
            if os.environ.get("SPARKCAST_DEBUG"):
                raise
            _fail(one_line(exc))

    return wrapper


def default_stream_id(path: str) -> str:
    return stream_id_from_name(path)


def settings_from(**overrides: Any) -> Settings:
    """Settings from file and environment, with the command's options on top."""
    return load_settings(**overrides)


class ProgressBar:
    """A tqdm bar on stderr fed by (done, total) callbacks; closed even when the step fails."""

    def __init__(self, desc: str, unit: str, disable: bool = False):
        self.desc, self.unit, self.disable = desc, unit, disable
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr,
                            dynamic_ncols=True, disable=self.disable)
        if done != self.bar.n or total != self.bar.total:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


stream_option = click.option("--stream-id", help="stream id (default: from the file name)")
chunk_option = click.option("--chunk-seconds", type=float, help="raw chunk length (default 10)")
segment_option = click.option("--segment-seconds", type=float, help="segment length (default 2)")
ladder_option = click.option("--ladder",
                             help="HEIGHT:BITRATE[:PROFILE],... e.g. 720:2800k,360:800k")
master_option = click.option("--master", help="Spark master (default local[*])")
root_option = click.option("--root", help="storage root URL (default $SPARKCAST_ROOT)")
grouping_option = click.option("--task-grouping", type=click.Choice(["chunk", "rendition"]),
                               help="one map task per chunk (default) or per chunk x rendition")
