"""The `sparkcast` command. Commands collect options and hand off; errors become one line."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from sparkcast.config import Settings, load_settings
from sparkcast.errors import one_line


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
    stem = os.path.splitext(os.path.basename(path.rstrip("/")))[0]
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:64]
    return cleaned or "stream"


def _settings(**overrides: Any) -> Settings:
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


@click.group()
@click.version_option(package_name="sparkcast")
def main() -> None:
    """sparkcast: chunked video transcoding on Apache Spark, served as DASH and HLS."""


@main.command()
@click.argument("input_path", metavar="INPUT")
@stream_option
@chunk_option
@segment_option
@root_option
@handle_errors
def ingest(input_path: str, stream_id: str | None, chunk_seconds: float | None,
           segment_seconds: float | None, root: str | None) -> None:
    """Cut INPUT into raw chunks and chunk-index records under the storage root."""
    from sparkcast.pipeline import run_ingest

    settings = _settings(root=root, chunk_seconds=chunk_seconds, segment_seconds=segment_seconds)
    sid = stream_id or default_stream_id(input_path)
    with ProgressBar("ingest", "chunk") as bar:
        source, chunks = run_ingest(settings, input_path, sid, bar)
    click.echo(f"{sid}: {len(chunks)} chunks of {settings.chunk_seconds:g} s "
               f"({source.frames} frames, {source.duration:.2f} s)")


def _transcode_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([ladder_option, master_option, root_option, grouping_option]):
        fn = option(fn)
    return fn


@main.command()
@click.argument("stream_id")
@_transcode_options
@handle_errors
def transcode(stream_id: str, ladder: str | None, master: str | None, root: str | None,
              task_grouping: str | None) -> None:
    """Transcode an already ingested stream (its chunks) to the ladder."""
    from sparkcast.pipeline import run_transcode

    settings = _settings(root=root, ladder=ladder, spark_master=master,
                         task_grouping=task_grouping)
    with ProgressBar("transcode chunk x rendition", "rendition") as bar:
        summary = run_transcode(settings, stream_id, bar)
    _print_summary(settings, summary)


@main.command()
@click.argument("input_path", metavar="INPUT")
@stream_option
@chunk_option
@segment_option
@_transcode_options
@handle_errors
def submit(input_path: str, stream_id: str | None, chunk_seconds: float | None,
           segment_seconds: float | None, ladder: str | None, master: str | None,
           root: str | None, task_grouping: str | None) -> None:
    """Ingest INPUT and transcode it on Spark; print the manifest paths."""
    from sparkcast.pipeline import run_ingest, run_transcode

    settings = _settings(root=root, chunk_seconds=chunk_seconds, segment_seconds=segment_seconds,
                         ladder=ladder, spark_master=master, task_grouping=task_grouping)
    sid = stream_id or default_stream_id(input_path)
    with ProgressBar("ingest", "chunk") as bar:
        run_ingest(settings, input_path, sid, bar)
    with ProgressBar("transcode chunk x rendition", "rendition") as bar:
        summary = run_transcode(settings, sid, bar)
    _print_summary(settings, summary)


def _print_summary(settings: Settings, summary: Any) -> None:
    from hdfs_layout import StreamLayout, open_storage

    storage = open_storage(settings.root, settings.webhdfs_url, settings.hdfs_user)
    layout = StreamLayout(summary.stream_id)
    rungs = ", ".join(f"{r.name} ({r.width}x{r.height} @ {r.bitrate // 1000}k)"
                      for r in summary.renditions)
    click.echo(f"stream      {summary.stream_id}")
    click.echo(f"duration    {summary.duration:.2f} s")
    click.echo(f"renditions  {rungs}")
    click.echo(f"segments    {summary.segments} ({summary.bytes / 1e6:.1f} MB)")
    click.echo(f"wall time   {summary.wall_seconds:.1f} s ({summary.speed:.2f}x real time)")
    click.echo(f"DASH        {storage.url(layout.manifest)}")
    click.echo(f"HLS         {storage.url(layout.master_playlist)}")


@main.command("serve")
@click.option("--host", help="address to listen on (default 127.0.0.1)")
@click.option("--port", type=int, help="port (default 8080)")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="gunicorn worker processes")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True,
              help="threads per worker (for the Flask side: API, pages, live events)")
@click.option("--worker", type=click.Choice(["asgi", "gthread"]), default="asgi",
              show_default=True, help="asgi: media on uvicorn's event loop; gthread: "
              "gunicorn's threaded worker (docs/SERVING.md)")
@click.option("--cache-seconds", type=click.IntRange(0, 300),
              help="newest seconds of each live rendition kept in RAM (default 30)")
@click.option("--origins", help="comma-separated origin base URLs listed in manifests")
@root_option
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn")
@handle_errors
def serve_command(host: str | None, port: int | None, workers: int, threads: int, worker: str,
                  cache_seconds: int | None, origins: str | None, root: str | None,
                  dev: bool) -> None:
    """Serve DASH/HLS, the player page and the API (gunicorn)."""
    from serve.gunicorn_run import run_server

    settings = _settings(root=root, host=host, port=port, cache_seconds=cache_seconds,
                         origins=origins)
    run_server(settings, workers=workers, threads=threads, dev=dev, worker=worker)


# Command groups defined in their own modules.
from ingest.rtmp_commands import rtmp  # noqa: E402
from serve.db_commands import admin, db, keys  # noqa: E402

main.add_command(db)
main.add_command(keys)
main.add_command(admin)
main.add_command(rtmp)

from sparkcast.live_cli import demo, live, live_ingest  # noqa: E402

main.add_command(live_ingest)
main.add_command(live)
main.add_command(demo)

from sparkcast.ads_cli import ads  # noqa: E402

main.add_command(ads)


if __name__ == "__main__":
    main()
