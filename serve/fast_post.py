"""The audience API's WSGI fast paths: POSTs to /api/streams/<id>/<what> answered
without Flask's dispatch (comments and reactions are a live show's most frequent
requests; Flask's per-request machinery was most of their CPU).

A subclass answers only the plain cases of a stream this process already knows: a small
body that parses. Anything else (an unknown stream, a bad or missing body, every other
method and path) goes on, body intact, to the Flask view, which owns validation and
names the field at fault; both paths must answer alike (tested).

    class ReactionFastPath(KnownStreamPost):
        resource, max_body, endpoint = "reactions", 256, "reactions.post"
        def answer(self, ctx, body): ...   # an answer, or None to hand over to Flask

    app.wsgi_app = ReactionFastPath(app, app.wsgi_app)
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import Flask

from hdfs_layout import urls
from serve import audience, context, metrics
from serve.client_addr import client_address
from serve.jsonapi import is_json_type, retry_after

StartResponse = Callable[..., Any]
Headers = list[tuple[str, str]]
JSON_HEADERS: Headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


@dataclass(frozen=True)
class PostContext:
    """One fast-path request: what `answer` needs to answer it."""

    environ: dict[str, Any]
    start_response: StartResponse
    stream_id: str
    audience: audience.Audience
    client: str  # its address (serve/client_addr.py)


class KnownStreamPost:
    resource = ""  # the last path segment: /api/streams/<id>/<resource>
    max_body = 0
    endpoint = ""  # the Flask endpoint it stands in for (metrics label)

    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app, self.next = app, wsgi_app
        self.path = urls.rule_regex(f"{urls.STREAM_API}/{self.resource}")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        m = self.path.match(environ.get("PATH_INFO", ""))
        if m is None or environ["REQUEST_METHOD"] != "POST":
            return self.next(environ, start_response)
        aud = audience.get(self.app)
        raw = _small_body(environ, self.max_body) \
            if m.group(1) in aud.known and is_json_type(environ.get("CONTENT_TYPE")) else None
        if raw is None:
            return self.next(environ, start_response)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # the view names what is wrong
            body = None
        answer = None if body is None else self.answer(
            PostContext(environ, start_response, m.group(1), aud, client_address(
                environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"),
                context.get(self.app).trusted_proxies)), body)
        if answer is None:
            environ["wsgi.input"] = io.BytesIO(raw)  # the view reads the body again
            return self.next(environ, start_response)
        return answer

    def answer(self, ctx: PostContext, body: Any) -> Iterable[bytes] | None:
        """The response, or None to let the Flask view answer (it names what is wrong)."""
        raise NotImplementedError

    # --- answers ---------------------------------------------------------------------

    def json(self, ctx: PostContext, status: int, payload: object,
             extra: Headers | None = None) -> list[bytes]:
        """Answer with JSON `payload` (never cached) and count it in metrics."""
        data = json.dumps(payload).encode()
        ctx.start_response(f"{status} {HTTPStatus(status).phrase}",
                           [*JSON_HEADERS, ("Content-Length", str(len(data))), *(extra or [])])
        metrics.count_request(self.endpoint, str(status), self.resource, len(data))
        return [data]

    def error(self, ctx: PostContext, status: int, code: str, message: str,
              extra: Headers | None = None) -> list[bytes]:
        """The one error shape, `{"error": {"code", "message"}}`."""
        return self.json(ctx, status, {"error": {"code": code, "message": message}}, extra)

    def too_many(self, ctx: PostContext, wait: float) -> list[bytes]:
        return self.error(ctx, 429, "rate_limited",
                          f"too many {self.resource}; retry later",
                          [("Retry-After", retry_after(wait))])


def _small_body(environ: dict[str, Any], max_bytes: int) -> bytes | None:
    """The body, read when its declared length is 1..max_bytes; else None and nothing is
    read (the view then answers 411/413 itself)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= max_bytes:
        return None
    return environ["wsgi.input"].read(length)
