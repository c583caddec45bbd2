"""The one place ffmpeg and ffprobe processes are started.

Argument lists are built elsewhere (pure functions, mostly with ffmpeg-python);
this module runs them and turns failures into `MediaError`, which carries the
command and the tail of ffmpeg's stderr so the file at fault is named.
"""

from __future__ import annotations

import re
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


_CONTEXT = re.compile(r"\[[^\]]+ @ 0x[0-9a-f]+\]\s*")
# ffmpeg prefixes input errors with the path it opened (a local copy, for remote storage).
_PATH_PREFIX = re.compile(r"^(?:file:)?/[^\s:]*: ")


def summarize(stderr: str, source: str = "", n: int = 2) -> str:
    """ffmpeg's last error lines, without '[demuxer @ 0x...]' prefixes or the file name."""
    lines = []
    for raw in stderr.strip().splitlines():
        line = _PATH_PREFIX.sub("", _CONTEXT.sub("", raw).strip())
        if source and line.startswith(f"{source}: "):
            line = line[len(source) + 2:]
        if line and line not in lines:
            lines.append(line)
    return " | ".join(lines[-n:])


def run(args: Sequence[str], source: str, timeout: float | None = None) -> bytes:
    """Run an ffmpeg/ffprobe argv; return stdout.

    Raises MediaError naming `source` when the tool exits non-zero, times out
    or is not installed.
    """
    return run_capture(args, source, timeout)[0]


def run_capture(args: Sequence[str], source: str, timeout: float | None = None
                ) -> tuple[bytes, str]:
    """Like run, but also return stderr (for tools that report damage without failing)."""
    try:
        proc = subprocess.run(list(args), capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise MediaError(source, f"{args[0]} is not installed (apt-get install ffmpeg)") from exc
    except subprocess.TimeoutExpired as exc:
        raise MediaError(source, f"{args[0]} timed out after {timeout} s", args) from exc
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace")
        raise MediaError(source, summarize(err, source) or f"exit code {proc.returncode}",
                         args, err)
    return proc.stdout, proc.stderr.decode("utf-8", "replace")
