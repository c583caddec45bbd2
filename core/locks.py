"""Exclusive `flock` locks on files: held by an open file, dropped by the kernel when the
process holding them dies (even by SIGKILL)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def try_lock(f: IO[str]) -> bool:
    """Take the exclusive lock of open file `f` if free; True when taken."""
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock(f: IO[str]) -> None:
    fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def file_lock(path: str | Path) -> Iterator[IO[str]]:
    """Hold the exclusive lock of `path` (created if missing) for the block, waiting for it."""
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield f
        finally:
            unlock(f)
