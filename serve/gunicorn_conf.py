"""gunicorn hooks for `sparkcast serve` (loaded with --config python:serve.gunicorn_conf)."""

from __future__ import annotations

import os
from typing import Any


def post_worker_init(worker: Any) -> None:
    # Each worker fills its own cache with the live edge from the moment it boots,
    # not from its first request. (Imported here: gunicorn reads this file in its master,
    # which must not load the app before it forks.)
    from serve.context import start_filler

    start_filler(worker.wsgi)  # the loaded Flask app


def child_exit(server: Any, worker: Any) -> None:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
