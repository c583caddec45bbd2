"""`sparkcast submit`'s progress and report, and `sparkcast jobs` (the job table)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from core.config import Settings
from core.ladder import Rendition
from sparkcast.cli_common import ProgressBar, handle_errors, root_option, settings_from


def run_with_progress(settings: Settings, inputs: Sequence[str], stream_id: str | None,
                      fail_fast: bool, job_id: str | None):
    """The library job with two bars on stderr: videos done / total, and chunk x rendition
    units done / total."""
    from sparkcast.pipeline import run_library_job

    with ProgressBar("videos", "video") as videos, \
            ProgressBar("transcode chunk x rendition", "rendition") as units:
        def progress(v_done: int, v_total: int, u_done: int, u_total: int) -> None:
            videos(v_done, v_total)
            units(u_done, u_total)

        return run_library_job(settings, inputs, stream_id, fail_fast, job_id, progress)


def print_stream(settings: Settings, stream_id: str, duration: float,
                 renditions: Sequence[Rendition], segments: int, size: int,
                 wall_seconds: float) -> None:
    from hdfs_layout import StreamLayout, open_storage

    storage = open_storage(settings.root, settings.webhdfs_url, settings.hdfs_user)
    layout = StreamLayout(stream_id)
    rungs = ", ".join(f"{r.name} ({r.width}x{r.height} @ {r.bitrate // 1000}k)"
                      for r in renditions)
    speed = duration / wall_seconds if wall_seconds else 0.0
    click.echo(f"stream      {stream_id}")
    click.echo(f"duration    {duration:.2f} s")
    click.echo(f"renditions  {rungs}")
    click.echo(f"segments    {segments} ({size / 1e6:.1f} MB)")
    click.echo(f"wall time   {wall_seconds:.1f} s ({speed:.2f}x real time)")
    click.echo(f"DASH        {storage.url(layout.manifest)}")
    click.echo(f"HLS         {storage.url(layout.master_playlist)}")


def report_library(settings: Settings, report) -> None:
    """Print the job's outcome; one `sparkcast: error:` line per failed video; exit 1 when
    any video failed."""
    from jobs.job_table import COMPLETE, counts

    rows = report.rows
    if len(rows) == 1 and rows[0].status == COMPLETE:
        r = rows[0]
        print_stream(settings, r.stream_id, r.duration, report.ladders.get(r.stream_id, ()),
                     r.segments, r.bytes, report.wall_seconds)
    else:
        _table(rows)
    n = counts(rows)
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in report.phases.items())
    click.echo(f"job         {report.job_id}: {n['complete']} complete, {n['skipped']} "
               f"skipped, {len(report.failed)} failed of {len(rows)} videos ({phases})")
    if report.table_error:
        click.echo(f"sparkcast: warning: the job table was not written: {report.table_error}",
                   err=True)
    for r in report.failed:
        click.echo(f"sparkcast: error: {r.error}", err=True)
    if report.failed:
        sys.exit(1)


def _table(rows) -> None:
    click.echo(f"{'stream':24} {'status':9} {'duration':>9} {'segments':>8} {'MB':>7}  input")
    for r in rows:
        click.echo(f"{r.stream_id[:24]:24} {r.status:9} {r.duration:8.1f}s {r.segments:8d} "
                   f"{r.bytes / 1e6:7.1f}  {r.input}")


@click.group(invoke_without_command=True)
@root_option
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.pass_context
@handle_errors
def jobs(ctx: click.Context, root: str | None, limit: int) -> None:
    """Batch jobs and their videos (the job table under the storage root)."""
    ctx.obj = settings_from(root=root)
    if ctx.invoked_subcommand is not None:
        return
    from sparkcast.job_list import list_jobs

    found = list_jobs(ctx.obj)[-limit:]
    if not found:
        click.echo("no jobs yet")
        return
    click.echo(f"{'job':28} {'finished (UTC)':20} {'videos':>6} {'complete':>8} "
               f"{'skipped':>7} {'failed':>6}")
    for job_id, finished, n in found:
        click.echo(f"{job_id:28} {finished:20} {sum(n.values()):6d} {n['complete']:8d} "
                   f"{n['skipped']:7d} {n['failed'] + n.get('cancelled', 0):6d}")


@jobs.command("show")
@click.argument("job_id")
@click.pass_obj
@handle_errors
def show(settings: Settings, job_id: str) -> None:
    """The videos of job JOB_ID, with their status and errors."""
    from sparkcast.job_list import read_job

    rows = read_job(settings, job_id)
    _table(rows)
    for r in rows:
        if r.error:
            click.echo(f"{r.stream_id}: {r.error}")
