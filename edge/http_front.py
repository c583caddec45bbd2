"""nginx as sparkcast's HTTP front: the config of edge/front_conf.py, run as a child.

    with HttpFront(config) as front:
        print(front.url)
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from types import TracebackType

from core.nginx import NginxError, NginxProcess
from edge.front_conf import STATUS_PATH, HttpFrontConfig, build_config


class HttpFront:
    def __init__(self, config: HttpFrontConfig, nginx: str | None = None) -> None:
        self.config = config
        self.nginx = NginxProcess(config.prefix, nginx)

    @property
    def url(self) -> str:
        c = self.config
        host = "127.0.0.1" if c.host in ("", "*", "0.0.0.0") else c.host
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if c.tls else 'http'}://{host}:{c.port}"

    @property
    def access_log(self) -> Path:
        return self.config.prefix / "logs" / "access.log"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.config.status_port}{STATUS_PATH}"

    def start(self, timeout: float = 10.0) -> HttpFront:
        """Write the config, start nginx, and wait until it answers. Raises NginxError."""
        self.nginx.write_config(build_config(self.config), subdirs=("cache",))
        self.nginx.start(self._answering, f"HTTP on {self.config.host}:{self.config.port}",
                         timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.nginx.stop(timeout)

    def running(self) -> bool:
        return self.nginx.running()

    def status(self) -> dict[str, int]:
        """stub_status as numbers: active, accepts, handled, requests, reading, writing,
        waiting. Raises OSError when nginx does not answer."""
        with urllib.request.urlopen(self.status_url, timeout=2) as resp:
            return parse_stub_status(resp.read().decode("ascii", "replace"))

    def _answering(self) -> bool:
        # The status listener answers only once the master has bound every listen socket
        # and started its workers.
        try:
            self.status()
        except (OSError, ValueError):
            return False
        return True

    def __enter__(self) -> HttpFront:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def parse_stub_status(text: str) -> dict[str, int]:
    """nginx's stub_status page as numbers. Raises ValueError on anything else. Pure.

        Active connections: 2
        server accepts handled requests
         10 10 31
        Reading: 0 Writing: 1 Waiting: 1
    """
    lines = text.split("\n")
    try:
        active = int(lines[0].split(":")[1])
        accepts, handled, requests = (int(v) for v in lines[2].split())
        words = lines[3].split()
        reading, writing, waiting = int(words[1]), int(words[3]), int(words[5])
    except (IndexError, ValueError) as exc:
        raise ValueError(f"not an nginx stub_status page: {text[:80]!r}") from exc
    return {"active": active, "accepts": accepts, "handled": handled, "requests": requests,
            "reading": reading, "writing": writing, "waiting": waiting}


__all__ = ["HttpFront", "NginxError", "parse_stub_status"]
