"""Running Debian's nginx as a child process with a generated config, in its own run dir.

Both fronts sparkcast runs are nginx: the RTMP front (ingest/rtmp.py) and the HTTP front
door and edges (edge/). Each writes its config text; this runs it:

    proc = NginxProcess(run_dir)
    proc.write_config(text)
    proc.start(ready=lambda: ..., what="HTTP on 127.0.0.1:8080")
    ...
    proc.stop()
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from core.processes import stop_process


class NginxError(RuntimeError):
    """nginx could not be configured or started; the message says why."""


def nginx_quote(value: str) -> str:
    """`value` as one nginx config token (double-quoted, escaped). Pure."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def temp_path_lines(prefix: Path, indent: str = "    ") -> str:
    """The *_temp_path directives of an http block, inside `prefix`/tmp (Debian's build
    points them at /var/lib/nginx, root only). Pure."""
    dirs = {"client_body": "body", "proxy": "proxy", "fastcgi": "fastcgi", "uwsgi": "uwsgi",
            "scgi": "scgi"}
    return "".join(f"{indent}{name}_temp_path {prefix}/tmp/{sub};\n"
                   for name, sub in dirs.items())


def worker_identity() -> tuple[str, str] | None:
    """(user, group) for nginx's `user` line when started as root, else None.

    As root, nginx would drop its workers to nobody, who cannot read a storage root under
    a private directory nor write one; keep the invoking identity instead."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name


def user_line(identity: tuple[str, str] | None) -> str:
    return f"user {identity[0]} {identity[1]};\n" if identity else ""


class NginxProcess:
    """nginx in the foreground (`daemon off`), as a child of this process and in its
    process group, so a signal to the group reaches it too."""

    def __init__(self, run_dir: Path, nginx: str | None = None) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.nginx = nginx or shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def conf_path(self) -> Path:
        return self.run_dir / "nginx.conf"

    @property
    def error_log(self) -> Path:
        return self.run_dir / "logs" / "error.log"

    def write_config(self, text: str, subdirs: tuple[str, ...] = ()) -> Path:
        for sub in ("logs", "tmp", *subdirs):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        # 0600: environment lines may hold the database password.
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when an older, wider file was there
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return self.conf_path

    def argv(self) -> list[str]:
        return [self.nginx, "-p", f"{self.run_dir}/", "-c", str(self.conf_path),
                "-e", str(self.error_log)]

    def start(self, ready: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        """Start nginx on the written config and wait until `ready()`. Raises NginxError
        with the tail of nginx's error log when it exits or is not ready in time."""
        if self.proc is not None:
            raise NginxError(f"nginx ({what}) already started")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except FileNotFoundError as exc:
            raise NginxError(f"{self.nginx} not found: apt-get install nginx") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.proc = None
                raise NginxError(f"nginx exited at start: {self.log_tail(err)}")
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        raise NginxError(f"nginx did not serve {what} within {timeout:g} s: {self.log_tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (TERM); KILL if nginx has not exited after `timeout` s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        stop_process(proc, timeout)
        if proc.stderr:
            proc.stderr.close()

    def log_tail(self, stderr: str = "", lines: int = 5) -> str:
        log = self.error_log
        text = stderr + (log.read_text(errors="replace") if log.exists() else "")
        wanted = [ln for ln in text.splitlines() if "[emerg]" in ln or "[alert]" in ln
                  or "[crit]" in ln or "nginx:" in ln]
        return " | ".join((wanted or text.splitlines())[-lines:]) or "no error logged"
