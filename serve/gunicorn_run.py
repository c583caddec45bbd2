"""Running the origin: gunicorn in production, Flask's server with --dev.

`gunicorn_argv` builds the command (pure, tested as a list); `run_server` is the
one place that starts it. Settings reach the workers as SPARKCAST_* variables,
so every worker resolves exactly what the CLI resolved.
"""

from __future__ import annotations

import os
import sys
import tempfile

from core.config import Settings, settings_env

# What each worker runs (docs/SERVING.md):
#   asgi     uvicorn's worker; media on the event loop, Flask on `threads` threads
#            (serve/asgi.py). The default: 3-4x the segment requests/s of gthread.
#   gthread  gunicorn's threaded WSGI worker running the Flask app alone (the fallback).
WORKERS: dict[str, tuple[str, str]] = {
    "asgi": ("serve.gunicorn_worker.OriginWorker", "serve.asgi:create_origin(threads={threads})"),
    "gthread": ("gthread", "serve:create_app()"),
}
DEFAULT_WORKER = "asgi"


def gunicorn_argv(host: str, port: int, workers: int, threads: int,
                  worker: str = DEFAULT_WORKER) -> list[str]:
    worker_class, app = WORKERS[worker]
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--worker-class", worker_class,
        "--threads", str(threads),
        # Players keep connections open between segment fetches (every ~2 s).
        "--keep-alive", "5",
        # Several instances on one host (origins, tests) must not fight over one socket path.
        "--no-control-socket",
        "--config", "python:serve.gunicorn_conf",
        app.format(threads=threads),
    ]


def run_server(settings: Settings, workers: int, threads: int, dev: bool,
               worker: str = DEFAULT_WORKER) -> None:
    """Replace this process with the server (never returns)."""
    if dev:
        # Only the development server builds the app in this process; gunicorn's workers
        # import it themselves after the exec.
        from serve import create_app

        create_app(settings).run(host=settings.host, port=settings.port, threaded=True)
        return
    env = {**os.environ, **settings_env(settings)}
    if workers > 1:
        # Each worker writes its metrics here; /metrics sums them (prometheus multiprocess).
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sparkcast-metrics-")
    argv = gunicorn_argv(settings.host, settings.port, workers, threads, worker)
    sys.stdout.flush()
    os.execve(argv[0], argv, env)
