"""`sparkcast ads`: put an ad creative through the transcode pipeline.

    sparkcast ads add FILE --name NAME   register a creative and transcode it (prints its id)
    sparkcast ads transcode ID           transcode a registered creative (the admin API's
                                         POST /api/admin/ads/creatives/<id>/transcode runs this)

A creative becomes the stream `ad-<id>`, transcoded by the same job and ladder as any
content (so its renditions and codecs match the streams it is spliced into: serve/
ad_splice.py). Its state goes uploaded -> transcoding -> ready (or failed, with the one-
line reason in `error`).
(Imports inside commands keep start-up short: see sparkcast/cli_common.py.)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from core.config import Settings, load_settings
from core.errors import one_line
from sparkcast.cli_common import ProgressBar, handle_errors


def ad_stream_id(creative_id: int) -> str:
    return f"ad-{creative_id}"


def _set(engine: Any, creative_id: int, **values: Any) -> Any:
    from store.db import session_scope
    from store.models import AdCreative

    with session_scope(engine) as session:
        row = session.get(AdCreative, creative_id)
        if row is None:
            raise click.ClickException(f"ad creative {creative_id} does not exist")
        for key, value in values.items():
            setattr(row, key, value)
        return row


@contextmanager
def _readable(settings: Settings, source_uri: str) -> Iterator[str]:
    """A name ffmpeg can open for `source_uri`: an upload under the storage root (on HDFS,
    copied to a temporary file first) or any path or URL ffmpeg reads itself."""
    from sparkcast.pipeline import open_root

    storage = open_root(settings)
    prefix = storage.url("").rstrip("/") + "/"
    if not source_uri.startswith(prefix):
        yield source_uri
        return
    rel = source_uri[len(prefix):]
    local = storage.local_path(rel)
    if local is not None:
        yield local
        return
    with tempfile.NamedTemporaryFile(prefix="sparkcast-ad-", suffix=".source") as tmp:
        tmp.write(storage.read(rel))
        tmp.flush()
        yield tmp.name


def transcode_creative(settings: Settings, creative_id: int, quiet: bool = False) -> float:
    """Transcode creative `creative_id` into its stream; returns its duration (s). The
    creative's state says how it went; a failure is also raised."""
    from sparkcast.pipeline import run_ingest, run_transcode
    from store.db import ensure_schema, make_engine

    engine = make_engine(settings.database_url)
    try:
        ensure_schema(engine)
        row = _set(engine, creative_id, state="transcoding", error=None)
        sid = ad_stream_id(creative_id)
        try:
            with (_readable(settings, row.source_uri) as source,
                  ProgressBar("ad ingest", "chunk", disable=quiet) as bar):
                run_ingest(settings, source, sid, bar)
            with ProgressBar("ad transcode", "rendition", disable=quiet) as bar:
                summary = run_transcode(settings, sid, bar)
        except Exception as exc:
            _set(engine, creative_id, state="failed", error=one_line(exc)[:500])
            raise
        _set(engine, creative_id, state="ready", media_stream_id=sid,
             duration_s=round(summary.duration, 3), error=None)
        return summary.duration
    finally:
        engine.dispose()


@click.group()
def ads() -> None:
    """Ad creatives: register and transcode (breaks are scheduled in the admin API)."""


@ads.command("add")
@click.argument("input_path", metavar="FILE")
@click.option("--name", required=True, help="a name admins recognise")
@handle_errors
def add(input_path: str, name: str) -> None:
    """Register FILE as an ad creative and transcode it; prints the creative id."""
    from store.db import ensure_schema, make_engine, session_scope
    from store.models import AdCreative

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        ensure_schema(engine)
        with session_scope(engine) as session:
            row = AdCreative(name=name, source_uri=input_path, state="uploaded")
            session.add(row)
            session.flush()
            creative_id = row.id
    finally:
        engine.dispose()
    duration = transcode_creative(settings, creative_id)
    click.echo(f"creative {creative_id} ready: stream {ad_stream_id(creative_id)}, "
               f"{duration:.2f} s", err=True)
    click.echo(creative_id)


@ads.command("transcode")
@click.argument("creative_id", type=click.IntRange(1))
@click.option("--quiet", is_flag=True, help="no progress bars (for background runs)")
@handle_errors
def transcode(creative_id: int, quiet: bool) -> None:
    """Transcode registered creative CREATIVE_ID into the stream ad-<id>."""
    duration = transcode_creative(load_settings(), creative_id, quiet)
    click.echo(f"creative {creative_id} ready: stream {ad_stream_id(creative_id)}, "
               f"{duration:.2f} s", err=True)
