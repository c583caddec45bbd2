"""Per-app resources the blueprints share: settings, storage, the segment cache, the filler.

Built lazily on first use and kept in `app.extensions`, so `create_app` stays
cheap and each gunicorn worker (a forked process) builds its own after the fork.
"""

from __future__ import annotations

import functools
import threading

from flask import Flask

from core.config import Settings, networks
from hdfs_layout import Storage, open_storage
from serve.cache import SegmentCache
from serve.extensions import app_singleton
from serve.live_fill import EdgeFiller
from store.ad_schedule import AdSchedule
from store.db import ENGINE_KEY

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024  # ~30 s of a 5-rung 1080p ladder is about 40 MB
_KEY = "sparkcast.serve"
_lock = threading.Lock()


class ServeContext:
    def __init__(self, app: Flask) -> None:
        self.settings: Settings = app.config["SPARKCAST"]
        s = self.settings
        self.storage: Storage = open_storage(s.root, s.webhdfs_url, s.hdfs_user)
        self.cache = SegmentCache(max_age=s.cache_seconds,
                                  max_bytes=int(app.config.get("CACHE_MAX_BYTES",
                                                               DEFAULT_CACHE_BYTES)))
        # Root-relative path -> local file (or None): pure, and resolving it through pathlib
        # costs more than the rest of a segment request, so remember it.
        self.local_path = functools.lru_cache(maxsize=65536)(self.storage.local_path)
        self.origins = [o.strip().rstrip("/") for o in s.origins.split(",") if o.strip()]
        self.clock_url = clock_url(s)
        self.trusted_proxies = networks(s.trusted_proxies)
        self.filler: EdgeFiller | None = None  # see start_filler
        self.ads = AdSchedule(app.extensions.get(ENGINE_KEY))


def clock_url(settings: Settings) -> str:
    """The clock URL live MPDs name (UTCTiming): configured, never from a request's Host
    (a cache in front would keep an MPD naming whatever host one client sent). Pure."""
    if settings.clock_url:
        return settings.clock_url
    origins = [o.strip().rstrip("/") for o in settings.origins.split(",") if o.strip()]
    if origins:
        return origins[0] + "/clock"
    if settings.host in ("0.0.0.0", "::", ""):
        return "/clock"  # the player resolves it against its page, served from here
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}/clock"


def start_filler(app: Flask) -> None:
    """Start this process's live-edge filler (once; a no-op with the cache off or in tests).

    Called from gunicorn's post_worker_init (each worker after the fork) and, for the
    development server, on the first request.
    """
    if not app.config.get("EDGE_FILLER", True):
        return
    ctx = get(app)
    with _lock:
        if ctx.filler is None and ctx.cache.enabled:
            ctx.filler = EdgeFiller(ctx.storage, ctx.cache).start()


def get(app: Flask | None = None) -> ServeContext:
    return app_singleton(_KEY, ServeContext, app)
