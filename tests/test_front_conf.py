"""The nginx HTTP config of the front door and of edges (edge/front_conf.py): pure text,
checked here by nginx itself (`nginx -t`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edge.front_conf import (
    FrontConfigError,
    HttpFrontConfig,
    Tls,
    build_config,
    front_door_config,
    origin_address,
)
from edge.http_front import parse_stub_status


def _nginx_accepts(config: HttpFrontConfig) -> None:
    (config.prefix / "logs").mkdir(parents=True, exist_ok=True)
    (config.prefix / "tmp").mkdir(exist_ok=True)
    conf = config.prefix / "nginx.conf"
    conf.write_text(build_config(config))
    proc = subprocess.run(["nginx", "-t", "-p", f"{config.prefix}/", "-c", str(conf),
                           "-e", str(config.prefix / "logs" / "error.log")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_front_door_config_is_valid_nginx(tmp_path: Path) -> None:
    cfg = front_door_config(tmp_path, "127.0.0.1", 8080, 8081, "127.0.0.1:9000",
                            tmp_path / "root", 512 << 20, rendered_root=tmp_path / "rendered")
    _nginx_accepts(cfg)
    text = build_config(cfg)
    assert f'root "{tmp_path / "root"}";' in text  # segments from disk
    assert f'root "{tmp_path / "rendered"}";' in text  # live manifests from rendered files
    assert "error_page 404 = @origin_manifest;" in text
    assert "server 127.0.0.1:9000;" in text  # one origin: never marked down
    assert "client_max_body_size 536870912;" in text


def test_an_edge_fails_over_between_origins_and_speaks_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    cfg = HttpFrontConfig(role="an edge", prefix=tmp_path / "edge", host="0.0.0.0", port=8443,
                          status_port=8444, origins=("10.0.0.1:8080", "10.0.0.2:8080"),
                          tls=Tls(cert, key))
    _nginx_accepts(cfg)
    text = build_config(cfg)
    assert "listen 0.0.0.0:8443 ssl http2;" in text
    assert "server 10.0.0.1:8080 max_fails=1" in text and "server 10.0.0.2:8080 max_fails=1" in text
    assert "proxy_next_upstream_tries 2;" in text
    assert "root " not in text  # no storage on an edge


@pytest.mark.parametrize(("url", "address"), [
    ("http://o1:8080", "o1:8080"), ("http://o1:8080/", "o1:8080"), ("http://o1", "o1:80"),
    ("http://[::1]:81", "[::1]:81"),
])
def test_origin_urls_become_upstream_addresses(url: str, address: str) -> None:
    assert origin_address(url) == address


@pytest.mark.parametrize("url", ["https://o1", "o1:8080", "http://o1:8080/base", "http://:80",
                                 "http://o1:99999"])
def test_an_unusable_origin_url_is_named(url: str) -> None:
    with pytest.raises(FrontConfigError, match="origin"):
        origin_address(url)


def test_an_edge_needs_an_origin(tmp_path: Path) -> None:
    with pytest.raises(FrontConfigError, match="no origin"):
        build_config(HttpFrontConfig(role="an edge", prefix=tmp_path, host="::", port=1,
                                     status_port=2, origins=()))


def test_stub_status_is_parsed() -> None:
    text = ("Active connections: 2 \nserver accepts handled requests\n 10 10 31 \n"
            "Reading: 0 Writing: 1 Waiting: 1 \n")
    assert parse_stub_status(text) == {"active": 2, "accepts": 10, "handled": 10,
                                       "requests": 31, "reading": 0, "writing": 1, "waiting": 1}
    with pytest.raises(ValueError, match="stub_status"):
        parse_stub_status("<html>")
