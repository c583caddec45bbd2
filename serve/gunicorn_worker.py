"""The gunicorn worker class `sparkcast serve` runs: uvicorn's, tuned for the origin."""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker

from serve.media_protocol import MediaProtocol


class OriginWorker(UvicornWorker):
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        # the C parser and libuv loop are what make the media path fast (docs/SERVING.md);
        # MediaProtocol is uvicorn's httptools protocol answering plain media inline
        "loop": "uvloop",
        "http": MediaProtocol,
        # serve.asgi.Origin starts the live-edge filler at startup
        "lifespan": "on",
        # An open SSE feed must not hold a stop for gunicorn's whole graceful timeout:
        # after this the request tasks are cancelled, which ends their feeds.
        "timeout_graceful_shutdown": 3,
        "server_header": False,
    }
