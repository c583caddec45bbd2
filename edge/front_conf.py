"""The nginx HTTP config of the front door (`sparkcast serve`) and of edges (`sparkcast
edge`): one template, two roles. Pure: a value in, config text out.

    front door  listens where serve listens; init and media segments of a local root
                straight from disk; everything else proxied to the Flask origin (gunicorn
                on loopback), live manifests through a short-lived cache.
    edge        no storage, no database: everything proxied to one of several origins and
                cached (segments for good, manifests as the origin says); an origin that
                fails is skipped, and while every origin is down cached manifests and
                segments are served stale.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from core.nginx import nginx_quote, temp_path_lines, user_line
from hdfs_layout.layout import AUDIO

SEGMENT_CACHE = "public, max-age=31536000, immutable"  # as serve/media.py says it
CORS_EXPOSE = "Content-Length, Content-Range, ETag, Date"
STATUS_PATH = "/.sparkcast/nginx-status"
_SEGMENT_DIR = r"^/streams/[A-Za-z0-9][A-Za-z0-9_-]{0,63}/out/"
_SEGMENT_FILE = r"/(?:init\.mp4|[0-9]{8,12}\.m4s)\z"
_RENDITION = r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"
_MANIFEST = r"^/streams/[A-Za-z0-9][A-Za-z0-9_-]{0,63}/" + _RENDITION + r"\.(?:mpd|m3u8)\z"
_CORS_LINES = ('add_header Access-Control-Allow-Origin "*";\n'
               f'add_header Access-Control-Expose-Headers "{CORS_EXPOSE}";\n')


class FrontConfigError(ValueError):
    """A setting of the front door or edge is unusable; the message names it."""


class _Template(string.Template):
    delimiter = "@"  # nginx itself uses $ and braces


@dataclass(frozen=True)
class Tls:
    certificate: Path
    key: Path


@dataclass(frozen=True)
class HttpFrontConfig:
    role: str  # what the generated file says it configures
    prefix: Path  # run dir: config, pid, logs, temp dirs, cache
    host: str
    port: int
    status_port: int  # loopback only: stub_status for readiness and metrics
    origins: tuple[str, ...]  # "host:port" of each origin (requests spread round-robin)
    media_root: Path | None = None  # a local storage root: segments from disk
    tls: Tls | None = None  # HTTPS (and HTTP/2) on `port`
    max_body_bytes: int = 1 << 20
    manifest_cache_seconds: int = 1  # how long a manifest is answered from the cache
    cache_max_bytes: int = 1 << 30
    cache_inactive: str = "10m"  # a cached file nobody asked for this long is dropped
    connect_timeout: float = 5.0
    media_read_timeout: float = 30.0  # an origin silent this long on media is failed over
    api_read_timeout: float = 75.0  # API, pages, live-event feeds
    origin_fail_timeout: float = 10.0  # an origin that failed is left alone this long
    worker_processes: str = "auto"
    run_as: tuple[str, str] | None = None
    # An edge answers /healthz itself and /metrics from its own process on this loopback
    # port; the front door leaves both to its origin.
    metrics_port: int | None = None
    cache_dir: Path | None = None  # default: prefix/cache
    # Proxies in front of this one (edges, load balancers) whose X-Forwarded-For names
    # the viewer: nginx's realip module then logs, limits and forwards that address.
    real_ip_from: tuple[str, ...] = ()
    # An edge keeps live manifests too (its cache is what carries viewers through an
    # origin outage); the front door lets its origin say no (X-Accel-Expires).
    cache_live_manifests: bool = False
    # The front door with a local root: live manifests as serve renders them to files
    # (serve/manifest_render.py), answered from there while they exist.
    rendered_root: Path | None = None


def origin_address(url: str) -> str:
    """`http://host:port[/]` as an upstream `host:port`. Raises FrontConfigError. Pure."""
    parts = urlsplit(url.strip())
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment:
        raise FrontConfigError(f"origin {url!r}: expected http://HOST[:PORT] "
                               "(an origin's own base URL)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise FrontConfigError(f"origin {url!r}: {exc}") from exc
    return f"{host}:{port}"


def _seconds(value: float) -> str:
    return f"{max(1, round(value * 1000))}ms"


def _listen_host(host: str) -> str:
    if host in ("", "*", "0.0.0.0"):
        return "0.0.0.0"
    return f"[{host}]" if ":" in host else host


def _listen_lines(cfg: HttpFrontConfig) -> str:
    addr = f"{_listen_host(cfg.host)}:{cfg.port}"
    if cfg.tls is None:
        lines = [f"listen {addr};"]
    else:
        lines = [f"listen {addr} ssl http2;",
                 f"ssl_certificate {nginx_quote(str(cfg.tls.certificate))};",
                 f"ssl_certificate_key {nginx_quote(str(cfg.tls.key))};",
                 "ssl_protocols TLSv1.2 TLSv1.3;",
                 "ssl_session_cache shared:sparkcast_tls:10m;"]
    lines.append(f"listen 127.0.0.1:{cfg.status_port};")
    return "".join(f"        {line}\n" for line in lines)


def _upstream_servers(cfg: HttpFrontConfig) -> str:
    if not cfg.origins:
        raise FrontConfigError("no origin to proxy to")
    # Passive health: one failure takes an origin out for origin_fail_timeout (a single
    # origin is never taken out: there is nothing to fail over to).
    fail = f" max_fails=1 fail_timeout={max(1, round(cfg.origin_fail_timeout))}s" \
        if len(cfg.origins) > 1 else ""
    return "".join(f"        server {o}{fail};\n" for o in cfg.origins)


def _segment_location(rendition_pattern: str, content_type: str, cfg: HttpFrontConfig) -> str:
    pattern = _SEGMENT_DIR + rendition_pattern + _SEGMENT_FILE
    cors = _indent(_CORS_LINES, 16)
    if cfg.media_root is not None:
        # From disk with sendfile, headers and file go out in full packets (off at the
        # http level: cached answers stalled with it; not these: docs/BENCHMARKS.md).
        source = (f"            root {nginx_quote(str(cfg.media_root))};\n"
                  "            tcp_nopush on;\n"
                  f"            set $sparkcast_src disk;\n"
                  f'            add_header Cache-Control "{SEGMENT_CACHE}";\n'
                  + cors.replace("                ", "            ")
                  + "            try_files $uri @origin_segment;\n")
    else:
        source = ("            proxy_pass http://origin;\n"
                  "            proxy_cache sparkcast;\n"
                  "            proxy_cache_valid 200 206 365d;\n"
                  "            proxy_cache_valid 404 1s;\n"
                  f"            proxy_read_timeout {_seconds(cfg.media_read_timeout)};\n"
                  "            add_header X-Cache $upstream_cache_status always;\n"
                  + cors.replace("                ", "            "))
    return (f'        location ~ "{pattern}" {{\n'
            f"            types {{ {content_type} mp4 m4s; }}\n"
            "            if ($request_method = OPTIONS) {\n"
            + cors +
            '                add_header Access-Control-Allow-Methods "GET, HEAD, OPTIONS";\n'
            '                add_header Access-Control-Allow-Headers '
            '"Range, If-None-Match, If-Range, Origin, Accept";\n'
            "                add_header Access-Control-Max-Age 86400;\n"
            "                return 204;\n"
            "            }\n"
            # A target spelled otherwise than its plain path (percent-encoded, dotted,
            # doubled slashes: nginx would normalize it and serve the file) and a Range
            # with numbers past 64 bits (nginx calls it unsatisfiable; RFC 9110 a whole
            # file) are the origin's to answer, as it answers them on every other URL.
            "            if ($request_uri != $uri$is_args$args) { return 418; }\n"
            '            if ($http_range ~ "[0-9]{16}") { return 418; }\n'
            "            error_page 418 = @origin;\n"
            f"{source}"
            "        }\n")


def _indent(lines: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in lines.splitlines())


def _manifest_locations(cfg: HttpFrontConfig) -> str:
    cached = ("proxy_pass http://origin;\n"
              "proxy_cache sparkcast;\n"
              f"proxy_ignore_headers {_ignore_headers(cfg)};\n"
              f"proxy_cache_valid 200 {max(1, cfg.manifest_cache_seconds)}s;\n"
              "proxy_cache_valid 404 1s;\n"
              "proxy_cache_bypass $sparkcast_refresh;\n"
              f"proxy_read_timeout {_seconds(cfg.media_read_timeout)};\n"
              "proxy_hide_header X-Cache;  # an upstream front's own\n"
              "add_header X-Cache $upstream_cache_status always;\n")
    if cfg.rendered_root is None:
        return ('        location ~ "^/streams/[^/]+/[^/]+\\.(?:mpd|m3u8)\\z" {\n'
                + _indent(cached, 12) + "        }\n")
    # A rendered file is a live manifest exactly as the origin would answer it (its
    # Cache-Control: about half a segment); a stream without one (a VOD, a live stream
    # not seen yet, one that ended) and every odd request go on to the origin.
    max_age = max(1, cfg.manifest_cache_seconds)
    rendered = (f"root {nginx_quote(str(cfg.rendered_root))};\n"
                "tcp_nopush on;  # from disk, as segments (the http level keeps it off)\n"
                "set $sparkcast_src disk;\n"
                f'add_header Cache-Control "public, max-age={max_age}";\n'
                + _CORS_LINES
                # No `if`s here (they cost a tenth of the polls a second): a preflight gets
                # 405 from the static module and so goes to the origin; a target spelled
                # oddly is normalized by nginx to a name the pattern above still checks,
                # which can only be one of these public files. Not try_files: one more stat.
                + "error_page 405 = @origin;\n"
                "error_page 404 = @origin_manifest;\n"
                "log_not_found off;\n")
    return (f'        location ~ "{_MANIFEST}" {{\n' + _indent(rendered, 12) + "        }\n"
            "        location @origin_manifest {\n"
            '            set $sparkcast_src "";\n' + _indent(cached, 12) + "        }\n"
            '        location ~ "^/streams/[^/]+/[^/]+\\.(?:mpd|m3u8)\\z" {\n'
            + _indent(cached, 12) + "        }\n")


def _own_locations(cfg: HttpFrontConfig) -> str:
    if cfg.metrics_port is None:
        return ""
    return ("        location = /healthz {\n"
            "            default_type application/json;\n"
            '            add_header Cache-Control "no-store" always;\n'
            """            return 200 '{"status": "ok", "role": "edge"}';\n"""
            "        }\n"
            "        location = /metrics {\n"
            f"            proxy_pass http://127.0.0.1:{cfg.metrics_port};\n"
            "        }\n")


def build_config(cfg: HttpFrontConfig) -> str:
    """The nginx.conf text for `cfg`. Raises FrontConfigError. Pure."""
    template = (resources.files("edge") / "templates" / "nginx-http.conf").read_text()
    segments = (_segment_location(AUDIO, "audio/mp4", cfg)
                + _segment_location(_RENDITION, "video/mp4", cfg))
    return _Template(template).substitute(
        role=cfg.role, prefix=str(cfg.prefix), worker_processes=cfg.worker_processes,
        user_line=user_line(cfg.run_as), temp_paths=temp_path_lines(cfg.prefix),
        max_body_bytes=str(cfg.max_body_bytes), cache_max_bytes=str(cfg.cache_max_bytes),
        cache_inactive=cfg.cache_inactive, upstream_servers=_upstream_servers(cfg),
        connect_timeout=_seconds(cfg.connect_timeout),
        media_read_timeout=_seconds(cfg.media_read_timeout),
        api_read_timeout=_seconds(cfg.api_read_timeout),
        upstream_tries=str(len(cfg.origins)),
        next_upstream_timeout=_seconds(cfg.connect_timeout * len(cfg.origins)
                                       + cfg.media_read_timeout),
        listen_lines=_listen_lines(cfg), segment_locations=segments,
        own_locations=_own_locations(cfg), manifest_locations=_manifest_locations(cfg),
        real_ip_lines="".join(f"    set_real_ip_from {n};\n" for n in cfg.real_ip_from)
        + ("    real_ip_header X-Forwarded-For;\n    real_ip_recursive on;\n"
           if cfg.real_ip_from else ""),
        cache_dir=str(cfg.cache_dir or cfg.prefix / "cache"),
        use_stale_updating="updating " if cfg.cache_live_manifests else "")


def _ignore_headers(cfg: HttpFrontConfig) -> str:
    return "Cache-Control Expires" + (" X-Accel-Expires" if cfg.cache_live_manifests else "")


def manifest_seconds(segment_seconds: float) -> int:
    """How long a front keeps a manifest: about half a segment, at least 1 s. Pure."""
    return max(1, int(segment_seconds / 2))


def front_door_config(prefix: Path, host: str, port: int, status_port: int, origin: str,
                      media_root: Path | None, max_body_bytes: int,
                      run_as: tuple[str, str] | None = None,
                      segment_seconds: float = 2.0,
                      real_ip_from: tuple[str, ...] = (),
                      rendered_root: Path | None = None) -> HttpFrontConfig:
    """The front door of `sparkcast serve`: `origin` is its gunicorn ("127.0.0.1:PORT"),
    `media_root` the storage root's directory when it is local, `rendered_root` where
    serve renders live manifests (serve/manifest_render.py). Pure."""
    return HttpFrontConfig(
        role="the front door of sparkcast serve", prefix=prefix, host=host, port=port,
        status_port=status_port, origins=(origin,), media_root=media_root,
        # the largest body any endpoint takes (an ad creative's upload)
        max_body_bytes=max_body_bytes, run_as=run_as,
        manifest_cache_seconds=manifest_seconds(segment_seconds), real_ip_from=real_ip_from,
        rendered_root=rendered_root)


def edge_config(prefix: Path, host: str, port: int, status_port: int,
                origin_urls: list[str], metrics_port: int, tls: Tls | None = None,
                segment_seconds: float = 2.0, cache_max_bytes: int = 1 << 30,
                run_as: tuple[str, str] | None = None,
                cache_dir: Path | None = None) -> HttpFrontConfig:
    """An edge in front of `origin_urls` (http://HOST:PORT each). Raises FrontConfigError
    naming an unusable origin. Pure."""
    return HttpFrontConfig(
        role="an edge (sparkcast edge)", prefix=prefix, host=host, port=port,
        status_port=status_port, origins=tuple(origin_address(u) for u in origin_urls),
        tls=tls, cache_max_bytes=cache_max_bytes, run_as=run_as, metrics_port=metrics_port,
        cache_dir=cache_dir,
        manifest_cache_seconds=manifest_seconds(segment_seconds),
        # an origin that does not answer is given up on quickly: a player's buffer is a
        # few seconds, and the next origin (or the edge's stale copy) is right here; one
        # that failed is tried again 2 s later (at 5 s, players that had ridden out an
        # outage on their buffer stalled for the seconds the edge kept ignoring it)
        connect_timeout=1.0, media_read_timeout=4.0, origin_fail_timeout=2.0,
        cache_live_manifests=True,
        # media only: what edges do not cache is small (API, pages)
        max_body_bytes=1 << 20)
