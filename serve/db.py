"""The web app's database handle: one engine per Flask app, one session per request.

    init_app(app)         the app's engine (settings.database_url); sessions closed on teardown
    get_engine()          the current app's Engine
    get_session()         the request's Session (closed on teardown)

Everything else about the database (engines, migrations, models, queries) is in store/.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from store.db import ENGINE_KEY as _EXT
from store.db import ensure_schema, is_sqlite, make_engine


def init_app(app: Flask) -> None:
    """Give `app` its engine (from settings.database_url) and close sessions on teardown.

    A SQLite database is migrated to head here, so `sparkcast serve` needs no setup; a
    server database is left alone (run `sparkcast db upgrade`) and not even connected to.
    """
    engine = make_engine(app.config["SPARKCAST"].database_url)
    app.extensions[_EXT] = engine
    if is_sqlite(engine):
        ensure_schema(engine)
    app.teardown_appcontext(close_session)


def get_engine() -> Engine:
    return current_app.extensions[_EXT]


def get_session() -> Session:
    """The Session of the current app context (one per request), created on first use."""
    if "db_session" not in g:
        g.db_session = Session(get_engine(), expire_on_commit=False)
    return g.db_session


def close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
