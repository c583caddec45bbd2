"""Stop requests from SIGTERM and SIGINT, taken without ever blocking inside a handler.

A Python signal handler runs on the main thread between two bytecodes, possibly while
that thread is inside `threading` code that holds a lock. A handler that takes the
same lock deadlocks the process: `threading.Event.set()` does, so a second signal
arriving while the first handler was inside `set()` hung a chunker forever (nginx's
TERM at the end of a publish plus a Ctrl-C). Here the handler only counts and writes
one byte to a pipe; a watcher thread reads the pipe and sets the Event.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import suppress
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Set once any of `signals` arrives; `wait()` and `is_set()` as on an Event."""

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        self.event = threading.Event()
        self.received = 0  # signals seen so far (a plain int: safe to bump in a handler)
        read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)  # a full pipe must not block the handler
        threading.Thread(target=self._watch, args=(read_fd,), name="stop-signal",
                         daemon=True).start()
        for signum in signals:
            signal.signal(signum, self._handler)

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        self.received += 1
        with suppress(OSError):  # the pipe is full: a wake-up is already pending
            os.write(self._write_fd, b"\0")

    def _watch(self, read_fd: int) -> None:
        while os.read(read_fd, 64):
            self.event.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.event.wait(timeout)

    def is_set(self) -> bool:
        return self.event.is_set()


def stop_on_signals() -> threading.Event:
    """An Event set by the first SIGTERM or SIGINT (installs the handlers; main thread)."""
    return StopRequest().event
