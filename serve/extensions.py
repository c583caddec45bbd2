"""One lazily made object per Flask app (the serve context, the audience state, the SSE hub)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app

T = TypeVar("T")
_lock = threading.Lock()


def app_singleton(key: str, make: Callable[[Flask], T], app: Flask | None = None) -> T:
    """`app.extensions[key]`, made by `make(app)` on first use, once even under threads
    (the current app when `app` is None)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get(key)
    if found is None:
        with _lock:
            found = app.extensions.get(key)
            if found is None:
                found = app.extensions[key] = make(app)
    return found
