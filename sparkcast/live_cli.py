"""`sparkcast live-ingest`, `sparkcast live` and `sparkcast demo`: the live path's commands.
(Imports inside commands keep start-up short: see sparkcast/cli_common.py.)
"""

from __future__ import annotations

import logging
from typing import Any

import click

from core.config import DEMO_CHUNK_SECONDS, demo_settings
from sparkcast.cli_common import handle_errors, master_option, root_option, settings_from
from sparkcast.stop_signal import stop_on_signals


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")


@click.command("live-ingest")
@click.argument("url")
@click.option("--stream-id", required=True, help="the stream the publish belongs to")
@click.option("--chunk-seconds", type=float, help="raw chunk length (default 10, 2 for low "
                                                  "latency)")
@click.option("--realtime", is_flag=True, help="read a file input at its own pace (-re)")
@root_option
@handle_errors
def live_ingest(url: str, stream_id: str, chunk_seconds: float | None, realtime: bool,
                root: str | None) -> None:
    """Cut one live publish (URL) into raw chunks of STREAM as they complete."""
    from core.codecs import AudioCodec
    from ingest.live import LiveChunker
    from sparkcast.pipeline import open_root

    _log_to_stderr()
    settings = settings_from(root=root, chunk_seconds=chunk_seconds)
    chunker = LiveChunker(open_root(settings), stream_id, url, settings.chunk_seconds,
                          settings.segment_seconds, AudioCodec(bitrate=settings.audio_bitrate),
                          realtime=realtime, stop=stop_on_signals(),
                          pipeline=settings.ingest_pipeline)
    chunks = chunker.run()
    click.echo(f"{stream_id}: {len(chunks)} chunks written", err=True)


def _mark_ended(settings: Any):
    def mark(stream_id: str) -> None:
        from store.db import make_engine, session_scope
        from store.keys import mark_stream_ended

        try:
            engine = make_engine(settings.database_url)
            with session_scope(engine) as session:
                mark_stream_ended(session, stream_id)
            engine.dispose()
        except Exception as exc:  # noqa: BLE001 - the database is optional for video
            logging.getLogger("sparkcast.live").warning(
                "stream %s ended; could not record it in the database: %s", stream_id, exc)

    return mark


def _notices_source(settings: Any):
    """A stream's notices from the database, as manifest events (raises when it is down)."""
    from manifest.presentation import Event
    from store.db import make_engine, session_scope
    from store.notices import notices_for

    engine = make_engine(settings.database_url)

    def notices(stream_id: str) -> tuple[Event, ...]:
        with session_scope(engine) as session:
            return tuple(Event(n.id, n.kind, n.text, n.start, n.duration)
                         for n in notices_for(session, stream_id))

    return notices


@click.command("live")
@master_option
@root_option
@click.option("--chunk-seconds", type=float, help="the chunk length publishers are cut to")
@handle_errors
def live(master: str | None, root: str | None, chunk_seconds: float | None) -> None:
    """Run the live job: transcode every live stream's chunks as they land (Ctrl-C stops)."""
    from jobs.live import LiveJob, LiveOptions
    from jobs.spark_session import get_session
    from sparkcast.pipeline import job_options, open_root, storage_config

    _log_to_stderr()
    settings = settings_from(root=root, spark_master=master, chunk_seconds=chunk_seconds)
    options = LiveOptions(job_options(settings, settings.live_preset()),
                          chunk_seconds=settings.chunk_seconds,
                          dvr_seconds=settings.dvr_seconds,
                          delay_seconds=settings.live_delay_seconds,
                          end_timeout=settings.live_end_timeout,
                          notices=_notices_source(settings))
    spark = get_session("sparkcast-live", settings.spark_master)
    # After the session: PySpark installs its own SIGINT handler (cancel jobs, raise).
    stop = stop_on_signals()
    job = LiveJob(spark, open_root(settings), storage_config(settings), options,
                  on_end=_mark_ended(settings))
    click.echo(f"live job running on {spark.sparkContext.master}; storage {settings.root}",
               err=True)
    try:
        job.run(stop)
    finally:
        spark.stop()


@click.command("demo")
@click.option("--stream-id", default="demo", show_default=True)
@click.option("--chunk-seconds", type=float,
              help="live chunk length (default $SPARKCAST_CHUNK_SECONDS, else "
                   f"{DEMO_CHUNK_SECONDS:g}; shorter: lower latency)")
@click.option("--port", type=int, help="serve's HTTP port (default 8080)")
@click.option("--size", default="1280x720", show_default=True, help="test stream size")
@root_option
@handle_errors
def demo(stream_id: str, chunk_seconds: float | None, port: int | None, size: str,
         root: str | None) -> None:
    """Run everything on the embedded defaults and publish a live test stream.

    Starts serve, the RTMP front and the live job, creates a stream key, publishes
    ffmpeg's testsrc2 (with the clock burnt in) and a tone over RTMP, and prints the
    player URL. Ctrl-C stops everything it started.
    """
    from pathlib import Path

    from platformdirs import user_data_dir

    from hdfs_layout import StreamLayout
    from sparkcast.pipeline import open_root
    from sparkcast.stack import LiveStack, lists_chunk, next_chunk

    settings = demo_settings(settings_from(root=root, port=port, chunk_seconds=chunk_seconds))
    run_dir = Path(user_data_dir("sparkcast")) / "demo-run"
    stop = stop_on_signals()
    stack = LiveStack(settings, run_dir)
    click.echo("starting serve, the RTMP front and the live job (logs in "
               f"{run_dir}) ...", err=True)
    with stack:
        key = stack.create_key(stream_id)
        storage = open_root(settings)
        first_seq = next_chunk(storage, stream_id)
        publisher = stack.publish(key, size=size, timecode=True)
        layout = StreamLayout(stream_id)
        base = stack.base_url
        click.echo(f"publishing a test stream to {stack.rtmp.publish_url}/<key> "
                   f"(stream '{stream_id}')", err=True)
        click.echo("waiting for the first chunk to be transcoded ...", err=True)
        shown = False
        while not stop.wait(1.0):
            if not shown and lists_chunk(storage, stream_id, first_seq):
                click.echo(f"\n  player  {base}/watch/{stream_id}\n"
                           f"  DASH    {base}/{layout.manifest}\n"
                           f"  HLS     {base}/{layout.master_playlist}\n\n"
                           "Ctrl-C stops the demo.")
                shown = True
            if publisher.poll() is not None:
                err = publisher.stderr.read().decode(errors="replace") if publisher.stderr else ""
                raise click.ClickException(f"the test publisher stopped: {err.strip()}")
            for name in ("serve", "live"):
                proc = stack.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    raise click.ClickException(f"{name} exited: {stack.log_tail(name)}")
        click.echo("stopping ...", err=True)
