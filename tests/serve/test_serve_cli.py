"""`sparkcast serve`: the gunicorn command line and the settings handed to the workers."""

from __future__ import annotations

import sys

from click.testing import CliRunner

from core.config import Settings, settings_env
from serve.gunicorn_run import gunicorn_argv
from sparkcast.cli import main


def _argv(worker_class: str, app: str) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", "0.0.0.0:8080",
        "--workers", "4",
        "--worker-class", worker_class,
        "--threads", "8",
        "--keep-alive", "5",
        "--no-control-socket",
        "--config", "python:serve.gunicorn_conf",
        app,
    ]


def test_gunicorn_argv():
    assert gunicorn_argv("0.0.0.0", 8080, 4, 8) == _argv(
        "serve.gunicorn_worker.OriginWorker", "serve.asgi:create_origin(threads=8)")
    assert gunicorn_argv("0.0.0.0", 8080, 4, 8, "gthread") == _argv(
        "gthread", "serve:create_app()")


def test_settings_reach_workers_as_environment():
    env = settings_env(Settings(root="file:///srv/media", cache_seconds=20,
                                origins="http://a:1,http://b:2", webhdfs_url=None))
    assert env["SPARKCAST_ROOT"] == "file:///srv/media"
    assert env["SPARKCAST_CACHE_SECONDS"] == "20"
    assert env["SPARKCAST_ORIGINS"] == "http://a:1,http://b:2"
    assert "SPARKCAST_WEBHDFS_URL" not in env
    assert Settings(**{k[len("SPARKCAST_"):].lower(): v for k, v in env.items()}) == Settings(
        root="file:///srv/media", cache_seconds=20, origins="http://a:1,http://b:2")


def test_serve_help_lists_options():
    out = CliRunner().invoke(main, ["serve", "--help"]).output
    for option in ("--host", "--port", "--workers", "--threads", "--cache-seconds", "--origins",
                   "--root", "--dev", "--worker"):
        assert option in out


def test_bad_cache_seconds_is_one_line_error():
    result = CliRunner().invoke(main, ["serve", "--cache-seconds", "999"])
    assert result.exit_code == 2 and "999" in result.output
