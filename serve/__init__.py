"""serve: the Flask origin (app factory + one blueprint per concern).

    media      MPD, HLS playlists, init and media segments, clock
    player     the /watch/<stream_id> page and its static assets
    health     /healthz and /metrics
    (audience: comments, reactions, notices, ads, admin — see their modules)

Production runs under gunicorn behind nginx (`sparkcast serve`, sparkcast/serve_cli.py);
`create_app` builds a fresh app and touches nothing at import time.
"""

from __future__ import annotations

import importlib
from typing import Any

from flask import Flask

from core.config import Settings, load_settings
from serve import db

# (module, blueprint attribute); each module owns one concern.
BLUEPRINTS: list[tuple[str, str]] = [
    ("serve.errors", "bp"),
    ("serve.media", "bp"),
    ("serve.health", "bp"),
    ("serve.rtmp_callbacks", "bp"),
    ("serve.admin_keys", "bp"),
    ("serve.player", "bp"),
    # audience (docs/AUDIENCE.md)
    ("serve.comments", "bp"),
    ("serve.reactions", "bp"),
    ("serve.notices", "bp"),
    ("serve.events", "bp"),
    ("serve.admin_streams", "bp"),
    ("serve.admin_comments", "bp"),
    ("serve.admin_notices", "bp"),
    ("serve.ads", "bp"),
    ("serve.admin_ads", "bp"),
    ("serve.admin_page", "bp"),
    ("serve.openapi", "bp"),
]


def create_app(settings: Settings | None = None, test_config: dict[str, Any] | None = None
               ) -> Flask:
    app = Flask(__name__)
    app.config["SPARKCAST"] = settings or load_settings()
    app.config.update(test_config or {})
    db.init_app(app)  # engine; a SQLite database is migrated to head here
    for module, attr in BLUEPRINTS:
        app.register_blueprint(getattr(importlib.import_module(module), attr))
    return app
