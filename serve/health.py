"""/healthz for load balancers and /metrics for Prometheus; counts every request."""

from __future__ import annotations

import os

from flask import Blueprint, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from hdfs_layout import urls
from serve import context, metrics

bp = Blueprint("health", __name__)


@bp.get(urls.HEALTH)
def healthz() -> Response:
    """200 while this instance can reach its storage root, else 503 (take it out of rotation)."""
    ctx = context.get()
    try:
        ok = ctx.storage.exists("")
    except Exception:  # noqa: BLE001 - any storage failure means "unhealthy", not a 500
        ok = False
    resp = jsonify({"status": "ok" if ok else "storage unreachable", "pid": os.getpid()})
    resp.status_code = 200 if ok else 503
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get(urls.METRICS)
def prometheus() -> Response:
    stats = context.get().cache.stats()
    metrics.CACHE_BYTES.set(stats.bytes)
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
    else:
        data = generate_latest()
    resp = Response(data, mimetype=CONTENT_TYPE_LATEST)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.after_app_request
def _count(resp: Response) -> Response:
    kind = request.endpoint.split(".")[-1] if request.endpoint else "other"
    metrics.count_request(request.endpoint or "unmatched", str(resp.status_code), kind,
                          resp.content_length or 0)
    return resp
