"""One live chunker per stream at a time, and never a lock held forever.

After a quick reconnect the new publish's chunker waits until the previous one has
written its last chunk, then continues after it. The lock is an `flock` on a file
per stream (the kernel releases it when its holder dies, even by SIGKILL). A holder
that is alive but stuck would block every later publish, so the holder writes its
pid into the file and touches it as it makes progress (`beat`); a waiter that sees
no progress for `stale_after` seconds kills the holder and takes the lock.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from core.locks import try_lock, unlock

log = logging.getLogger("sparkcast.live")

LOCK_STALE_S = 30.0  # longer than any wait of a working chunker between two beats
BEAT_EVERY_S = 1.0


def lock_path(stream_id: str, directory: Path | None = None) -> Path:
    return Path(directory or tempfile.gettempdir()) / f"sparkcast-live-{stream_id}.lock"


def lock_holders(path: Path, locks: str | None = None) -> list[int]:
    """Pids holding an flock on `path`, from /proc/locks (or `locks`, its text)."""
    try:
        st = path.stat()
        text = locks if locks is not None else Path("/proc/locks").read_text()
    except OSError:
        return []
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = []
    for line in text.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF" ("->" marks a blocked waiter)
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == ident:
            pids.append(int(fields[4]))
    return pids


class StreamLock:
    """`with StreamLock(stream_id) as lock: ... lock.beat() ...`"""

    def __init__(self, stream_id: str, stale_after: float = LOCK_STALE_S,
                 directory: Path | None = None) -> None:
        self.stream_id = stream_id
        self.path = lock_path(stream_id, directory)
        self.stale_after = stale_after
        self._file = None
        self._beat_at = 0.0

    def acquire(self) -> None:
        f = open(self.path, "a+")  # noqa: SIM115 - held until release()
        waited = False
        while True:
            if try_lock(f):
                break
            if not waited:
                log.info("stream %s: waiting for the previous publish's chunker",
                         self.stream_id)
                waited = True
            idle = time.time() - os.fstat(f.fileno()).st_mtime
            if idle > self.stale_after:
                self._kill_holders(idle)
            time.sleep(0.2)
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f

    def _kill_holders(self, idle: float) -> None:
        for pid in lock_holders(self.path):
            if pid == os.getpid():
                continue
            log.warning("stream %s: chunker %d has made no progress for %.0f s; killing it",
                        self.stream_id, pid, idle)
            # SIGKILL: a stuck process may not act on a TERM (that is how it got stuck).
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def beat(self) -> None:
        """The holder made progress (cheap: touches the file at most once a second)."""
        now = time.monotonic()
        if self._file is not None and now - self._beat_at >= BEAT_EVERY_S:
            os.utime(self._file.fileno())
            self._beat_at = now

    def release(self) -> None:
        if self._file is not None:
            unlock(self._file)
            self._file.close()
            self._file = None

    def __enter__(self) -> StreamLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
