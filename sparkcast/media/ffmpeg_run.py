"""The one place ffmpeg and ffprobe processes are started.

Argument lists are built elsewhere (pure functions, mostly with ffmpeg-python);
this module runs them and turns failures into `MediaError`, which carries the
command and the tail of ffmpeg's stderr so the file at fault is named.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"


class MediaError(RuntimeError):
    """A media file could not be read or written.

    `source` names the file or stream at fault; `detail` is the cause in a line.
    """

    def __init__(self, source: str, detail: str, cmd: Sequence[str] = (), stderr: str = ""):
        self.source = source
        self.detail = detail
        self.cmd = list(cmd)
        self.stderr = stderr
        super().__init__(f"{source}: {detail}")


def _last_lines(text: str, n: int = 3) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


def run(args: Sequence[str], source: str, timeout: float | None = None) -> bytes:
    """Run an ffmpeg/ffprobe argv; return stdout.

    Raises MediaError naming `source` when the tool exits non-zero, times out
    or is not installed.
    """
    try:
        proc = subprocess.run(list(args), capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise MediaError(source, f"{args[0]} is not installed (apt-get install ffmpeg)") from exc
    except subprocess.TimeoutExpired as exc:
        raise MediaError(source, f"{args[0]} timed out after {timeout} s", args) from exc
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace")
        raise MediaError(source, _last_lines(err) or f"exit code {proc.returncode}", args, err)
    return proc.stdout
