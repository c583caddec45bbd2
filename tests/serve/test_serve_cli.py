"""`sparkcast serve`: the gunicorn command line and the settings handed to the origin."""

from __future__ import annotations

import sys

from click.testing import CliRunner

from core.config import Settings, settings_env
from serve.gunicorn_run import gunicorn_argv
from sparkcast.cli import main
from sparkcast.serve_cli import origin_settings


def test_gunicorn_argv():
    assert gunicorn_argv("127.0.0.1:40000", 4, 8) == [
        sys.executable, "-m", "gunicorn",
        "--bind", "127.0.0.1:40000",
        "--workers", "4",
        "--worker-class", "gthread",
        "--threads", "8",
        "--keep-alive", "75",
        "--limit-request-field_size", "16384",
        "--no-control-socket",
        "--config", "python:serve.gunicorn_conf",
        "serve:create_app()",
    ]


def test_the_origin_trusts_its_front_door_and_what_the_settings_trust():
    assert origin_settings(Settings(), True).trusted_proxies == "127.0.0.1"
    assert origin_settings(Settings(trusted_proxies="10.0.0.0/8"), True).trusted_proxies == \
        "10.0.0.0/8,127.0.0.1"
    assert origin_settings(Settings(trusted_proxies="127.0.0.1"), True).trusted_proxies == \
        "127.0.0.1"


def test_the_origin_keeps_no_segment_cache_when_nginx_serves_the_root_from_disk():
    assert origin_settings(Settings(cache_seconds=30), True).cache_seconds == 0
    assert origin_settings(Settings(cache_seconds=30), False).cache_seconds == 30


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
                   "--root", "--dev"):
        assert option in out


def test_bad_cache_seconds_is_one_line_error():
    result = CliRunner().invoke(main, ["serve", "--cache-seconds", "999"])
    assert result.exit_code == 2 and "999" in result.output
