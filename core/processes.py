"""Stopping a child process: ask, wait, then insist."""

from __future__ import annotations

import signal
import subprocess


def stop_process(proc: subprocess.Popen[bytes], timeout: float,
                 sig: signal.Signals | None = signal.SIGTERM) -> int:
    """Send `sig` to `proc` if it still runs (None: send nothing, only wait), wait up to
    `timeout` s for it to exit, then SIGKILL it. Returns its exit code."""
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
