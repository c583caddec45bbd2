"""The live system of tests that publish over RTMP: one LiveStack on a fresh root."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.config import Settings
from jobs.live import READY
from sparkcast.stack import LiveStack


@contextmanager
def running_stack(tmp: Path, live_job: list[str] | None = None, live_ready: str = READY,
                  **overrides: object) -> Iterator[LiveStack]:
    """A started LiveStack under `tmp` (SQLite, 2 s chunks, a small ladder, ultrafast x264,
    free ports; `overrides` are Settings fields; `live_job`, `live_ready` as LiveStack's),
    stopped on exit."""
    fields: dict[str, object] = dict(
        root=(tmp / "root").as_uri(), database_url=f"sqlite:///{tmp / 'db.sqlite'}",
        chunk_seconds=2, ladder="240:300k,180:200k", port=0, rtmp_port=0,
        x264_preset="ultrafast")
    fields.update(overrides)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARKCAST_CONFIG", str(tmp / "no-config.toml"))
        stack = LiveStack(Settings(**fields), tmp / "run", live_job=live_job,
                          live_ready=live_ready)
        stack.start()  # returns once the live job's streaming query runs
        try:
            yield stack
        finally:
            stack.stop()
