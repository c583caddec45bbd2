"""`sparkcast live-ingest`, `sparkcast live` and `sparkcast demo`: the live path's commands."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click

from sparkcast.cli import _settings, handle_errors, master_option, root_option


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


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
    from ingest.live import LiveChunker
    from jobs.encode import AudioCodec
    from sparkcast.pipeline import open_root

    _log_to_stderr()
    settings = _settings(root=root, chunk_seconds=chunk_seconds)
    chunker = LiveChunker(open_root(settings), stream_id, url, settings.chunk_seconds,
                          settings.segment_seconds, AudioCodec(bitrate=settings.audio_bitrate),
                          realtime=realtime)
    stop = _stop_on_signals()
    threading.Thread(target=lambda: (stop.wait(), chunker.stop.set()), daemon=True).start()
    chunks = chunker.run()
    click.echo(f"{stream_id}: {len(chunks)} chunks written", err=True)


def _mark_ended(settings: Any):
    def mark(stream_id: str) -> None:
        from serve.db import make_engine, session_scope
        from serve.keys import mark_stream_ended

        try:
            engine = make_engine(settings.database_url)
            with session_scope(engine) as session:
                mark_stream_ended(session, stream_id)
            engine.dispose()
        except Exception as exc:  # noqa: BLE001 - the database is optional for video
            logging.getLogger("sparkcast.live").warning(
                "stream %s ended; could not record it in the database: %s", stream_id, exc)

    return mark


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
    settings = _settings(root=root, spark_master=master, chunk_seconds=chunk_seconds)
    options = LiveOptions(job_options(settings), chunk_seconds=settings.chunk_seconds,
                          dvr_seconds=settings.dvr_seconds,
                          end_timeout=settings.live_end_timeout)
    stop = _stop_on_signals()
    spark = get_session("sparkcast-live", settings.spark_master)
    job = LiveJob(spark, open_root(settings), storage_config(settings), options,
                  on_end=_mark_ended(settings))
    click.echo(f"live job running on {spark.sparkContext.master}; storage {settings.root}",
               err=True)
    try:
        job.run(stop)
    finally:
        spark.stop()
