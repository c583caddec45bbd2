"""Running the origin: gunicorn in production, Flask's server with --dev.

`gunicorn_argv` builds the command (pure, tested as a list); `run_server` is the
one place that starts it. Settings reach the workers as SPARKCAST_* variables,
so every worker resolves exactly what the CLI resolved.
"""

from __future__ import annotations

import os
import sys
import tempfile

from sparkcast.config import Settings, settings_env

# gthread: keep-alive connections (players fetch many segments over one connection) and
# threads that wait on storage without blocking the worker; see docs/SERVING.md.
WORKER_CLASS = "gthread"


def gunicorn_argv(host: str, port: int, workers: int, threads: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--worker-class", WORKER_CLASS,
        "--threads", str(threads),
        # Players keep connections open between segment fetches (every ~2 s).
        "--keep-alive", "5",
        # Several instances on one host (origins, tests) must not fight over one socket path.
        "--no-control-socket",
        "--config", "python:serve.gunicorn_conf",
        "serve:create_app()",
    ]


def run_server(settings: Settings, workers: int, threads: int, dev: bool) -> None:
    """Replace this process with the server (never returns)."""
    if dev:
        from serve import create_app

        create_app(settings).run(host=settings.host, port=settings.port, threaded=True)
        return
    env = {**os.environ, **settings_env(settings)}
    if workers > 1:
        # Each worker writes its metrics here; /metrics sums them (prometheus multiprocess).
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sparkcast-metrics-")
    argv = gunicorn_argv(settings.host, settings.port, workers, threads)
    sys.stdout.flush()
    os.execve(argv[0], argv, env)
