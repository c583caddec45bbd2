"""The origin's gunicorn command (`sparkcast serve` runs it behind nginx). Pure.

gthread: a pool of `threads` threads per worker process, each answering one request at a
time. nginx in front buffers request bodies and slow clients, so a thread is held only
for the time the origin itself works (docs/SERVING.md).
"""

from __future__ import annotations

import sys


def gunicorn_argv(bind: str, workers: int, threads: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", bind,
        "--workers", str(workers),
        "--worker-class", "gthread",
        "--threads", str(threads),
        # nginx keeps its upstream connections open (keepalive in its upstream block)
        "--keep-alive", "75",
        # nginx bounds request heads (large_client_header_buffers 4 16k); pass what it passes
        "--limit-request-field_size", "16384",
        # Several instances on one host (origins, tests) must not fight over one socket path.
        "--no-control-socket",
        "--config", "python:serve.gunicorn_conf",
        "serve:create_app()",
    ]
