"""The `sparkcast` command. Commands collect options and hand off; errors become one line.
(Imports inside commands keep start-up short: see sparkcast/cli_common.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from core.config import Settings
from sparkcast.ads_cli import ads
from sparkcast.cli_common import (
    ProgressBar,
    chunk_option,
    default_stream_id,
    grouping_option,
    handle_errors,
    ladder_option,
    master_option,
    root_option,
    segment_option,
    settings_from,
    stream_option,
)
from sparkcast.db_cli import admin, db, keys
from sparkcast.edge_cli import edge_command
from sparkcast.library_cli import jobs
from sparkcast.live_cli import demo, live, live_ingest
from sparkcast.rtmp_cli import rtmp
from sparkcast.serve_cli import serve_command
from sparkcast.srt_cli import srt


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

    settings = settings_from(root=root, chunk_seconds=chunk_seconds,
                             segment_seconds=segment_seconds)
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

    settings = settings_from(root=root, ladder=ladder, spark_master=master,
                         task_grouping=task_grouping)
    with ProgressBar("transcode chunk x rendition", "rendition") as bar:
        summary = run_transcode(settings, stream_id, bar)
    _print_summary(settings, summary)


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@stream_option
@chunk_option
@segment_option
@_transcode_options
@click.option("--fail-fast", is_flag=True, help="stop at the first video that fails")
@click.option("--job-id", help="the job's id in the job table (default: time + random)")
@handle_errors
def submit(inputs: tuple[str, ...], stream_id: str | None, chunk_seconds: float | None,
           segment_seconds: float | None, ladder: str | None, master: str | None,
           root: str | None, task_grouping: str | None, fail_fast: bool,
           job_id: str | None) -> None:
    """Transcode videos on Spark: INPUTs are files, directories, globs or lists of paths
    (.txt, .csv, .parquet), local or hdfs://. Exits 1 when any video failed."""
    from sparkcast.library_cli import report_library, run_with_progress

    settings = settings_from(root=root, chunk_seconds=chunk_seconds,
                             segment_seconds=segment_seconds, ladder=ladder,
                             spark_master=master, task_grouping=task_grouping)
    report = run_with_progress(settings, inputs, stream_id, fail_fast, job_id)
    report_library(settings, report)


def _print_summary(settings: Settings, summary: Any) -> None:
    from sparkcast.library_cli import print_stream

    print_stream(settings, summary.stream_id, summary.duration, summary.renditions,
                 summary.segments, summary.bytes, summary.wall_seconds)


# Command groups defined in their own modules.
for command in (serve_command, edge_command, db, keys, admin, rtmp, srt, live_ingest, live,
                demo, ads, jobs):
    main.add_command(command)
