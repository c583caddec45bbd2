"""Admin API for ads (token-guarded): creatives, their upload and transcode, and breaks.
The transcode is the pipeline's (sparkcast/ads_cli.py, run as a child process); the
splicing of breaks into manifests is manifest/splice.py.

    GET    /api/admin/ads/creatives
    POST   /api/admin/ads/creatives {"name", "source_uri", "duration_s"?}          201
    PATCH  /api/admin/ads/creatives/<id> {"name"?, "duration_s"?, "state"?,
                                          "media_stream_id"?}
    DELETE /api/admin/ads/creatives/<id>      deletes it and its breaks
    PUT    /api/admin/ads/creatives/<id>/source  the video file as the body    200
    POST   /api/admin/ads/creatives/<id>/transcode   starts `sparkcast ads transcode`  202
    GET    /api/admin/ads/breaks[?stream_id=S]
    POST   /api/admin/ads/breaks {"stream_id", "creative_id",
                                  "position": "preroll"|"midroll"|"live",
                                  "offset_s" (midroll), "starts_at"? (live, Unix s; default now)}
    DELETE /api/admin/ads/breaks/<id>         cancel (kept, with its impression counts)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import ClientDisconnected

from core.config import settings_env
from hdfs_layout import LayoutError, StorageError, urls, validate_stream_id
from hdfs_layout.layout import ad_source
from serve import audience, context
from serve.admin_auth import require_admin
from serve.db import get_session
from serve.errors import json_error
from serve.jsonapi import (
    BadRequest,
    api_errors,
    id_rule,
    iso,
    number_field,
    read_json,
    string_field,
)
from store import ads
from store.listing import list_rows
from store.models import AdBreak, AdCreative
from store.sqltypes import from_unix, utcnow

bp = api_errors(require_admin(Blueprint("admin_ads", __name__, url_prefix=urls.ADMIN_API + "/ads")))

UPLOAD_CHUNK = 1 << 20
MAX_BODY = 8192
STATES = ("uploaded", "transcoding", "ready", "failed")
POSITIONS = ("preroll", "midroll", "live")
MAX_MEDIA_SECONDS = 7 * 86400.0


def creative_json(row: AdCreative) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "source_uri": row.source_uri,
            "media_stream_id": row.media_stream_id, "duration_s": row.duration_s,
            "state": row.state, "error": row.error, "created_at": iso(row.created_at)}


def break_json(row: AdBreak) -> dict[str, Any]:
    return {"id": row.id, "stream_id": row.stream_id, "creative_id": row.creative_id,
            "position": row.position, "offset_s": row.offset_s,
            "starts_at": row.starts_at.timestamp() if row.starts_at else None,
            "created_at": iso(row.created_at), "cancelled_at": iso(row.cancelled_at),
            "impressions_started": row.impressions_started,
            "impressions_completed": row.impressions_completed}


@bp.get("/creatives")
def list_creatives() -> Response:
    rows = list_rows(get_session(), AdCreative)
    return jsonify({"creatives": [creative_json(r) for r in rows]})


@bp.post("/creatives")
def create_creative() -> tuple[Response, int]:
    data = read_json(MAX_BODY)
    row = AdCreative(name=string_field(data, "name", required=True, max_len=200),
                     source_uri=string_field(data, "source_uri", required=True, max_len=1024),
                     duration_s=number_field(data, "duration_s", required=False, minimum=0.1,
                                             maximum=MAX_MEDIA_SECONDS),
                     state="uploaded", created_at=utcnow())
    session = get_session()
    session.add(row)
    session.commit()
    return jsonify(creative_json(row)), 201


@bp.patch("/creatives/" + id_rule("creative_id"))
def edit_creative(creative_id: int) -> Response:
    data = read_json(MAX_BODY)
    session = get_session()
    row = session.get(AdCreative, creative_id)
    if row is None:
        return json_error(404, "not_found", f"creative {creative_id} does not exist")
    if "name" in data:
        row.name = string_field(data, "name", required=True, max_len=200)
    if "duration_s" in data:
        row.duration_s = number_field(data, "duration_s", required=False, minimum=0.1,
                                      maximum=MAX_MEDIA_SECONDS)
    if "state" in data:
        if data["state"] not in STATES:
            raise BadRequest("state", f"field 'state' must be one of {', '.join(STATES)}")
        row.state = data["state"]
    if "media_stream_id" in data:
        media = string_field(data, "media_stream_id", required=False, max_len=64) or None
        if media is not None:
            try:
                validate_stream_id(media)
            except LayoutError as exc:
                raise BadRequest("media_stream_id", str(exc)) from None
            other = ads.media_stream_user(session, media, creative_id)
            if other is not None:
                return json_error(409, "conflict", f"creative {other.id} already uses "
                                                   f"media stream {media!r}")
        row.media_stream_id = media
    session.commit()
    return jsonify(creative_json(row))


@bp.delete("/creatives/" + id_rule("creative_id"))
def delete_creative(creative_id: int) -> Response:
    session = get_session()
    row = session.get(AdCreative, creative_id)
    if row is None:
        return json_error(404, "not_found", f"creative {creative_id} does not exist")
    out = creative_json(row)
    ads.delete_creative(session, row)
    session.commit()
    return jsonify(out)


@bp.get("/breaks")
def list_breaks() -> Response:
    rows = list_rows(get_session(), AdBreak, stream_id=request.args.get("stream_id") or None)
    return jsonify({"breaks": [break_json(r) for r in rows]})


@bp.post("/breaks")
def create_break() -> tuple[Response, int] | Response:
    data = read_json(MAX_BODY)
    stream_id = string_field(data, "stream_id", required=True, max_len=64)
    creative_id = data.get("creative_id")
    if isinstance(creative_id, bool) or not isinstance(creative_id, int):
        raise BadRequest("creative_id", "field 'creative_id' must be an integer")
    position = data.get("position")
    if position not in POSITIONS:
        raise BadRequest("position", f"field 'position' must be one of {', '.join(POSITIONS)}")
    offset = number_field(data, "offset_s", required=position == "midroll", minimum=0.0,
                          maximum=MAX_MEDIA_SECONDS)
    start = number_field(data, "starts_at", required=False, minimum=0.0, maximum=32503680000.0)
    session = get_session()
    audience.ensure_stream(session, stream_id)
    if not 0 < creative_id <= 2**53 or session.get(AdCreative, creative_id) is None:
        return json_error(404, "not_found", f"creative {creative_id} does not exist")
    row = AdBreak(stream_id=stream_id, creative_id=creative_id, position=position,
                  offset_s=0.0 if position == "preroll" else offset,
                  starts_at=(from_unix(start) if start is not None else utcnow())
                  if position == "live" else None,
                  created_at=utcnow())
    session.add(row)
    session.commit()
    return jsonify(break_json(row)), 201


@bp.delete("/breaks/" + id_rule("break_id"))
def cancel_break(break_id: int) -> Response:
    session = get_session()
    row = session.get(AdBreak, break_id)
    if row is None:
        return json_error(404, "not_found", f"ad break {break_id} does not exist")
    if row.cancelled_at is None:
        row.cancelled_at = utcnow()
    session.commit()
    return jsonify(break_json(row))


@bp.put("/creatives/" + id_rule("creative_id") + "/source")
def upload_source(creative_id: int) -> Response:
    """The creative's video, stored under the root (ads/<id>/source); its source_uri then
    names it, so the transcode reads what was uploaded."""
    session = get_session()
    row = session.get(AdCreative, creative_id)
    if row is None:
        return json_error(404, "not_found", f"creative {creative_id} does not exist")
    limit = context.get().settings.ad_upload_max_bytes
    too_big = json_error(413, "payload_too_large", f"an ad upload is limited to {limit} bytes")
    if (request.content_length or 0) > limit:
        return too_big
    storage = context.get().storage
    # Streamed to a local temporary file (never whole in memory), stored only when every
    # byte the client announced has arrived: an interrupted upload stores nothing.
    with tempfile.NamedTemporaryFile(prefix="sparkcast-upload-") as tmp:
        received = 0
        try:
            while chunk := request.stream.read(UPLOAD_CHUNK):
                received += len(chunk)
                if received > limit:
                    return too_big
                tmp.write(chunk)
        except ClientDisconnected:
            received = -1
        if request.content_length is not None and received != request.content_length:
            got = "part" if received < 0 else f"{received}"
            raise BadRequest("body", f"upload interrupted: {got} of {request.content_length} "
                                     "bytes arrived; nothing was stored")
        if received == 0:
            raise BadRequest("body", "the body must be the creative's video file")
        tmp.flush()
        try:
            storage.put_file(tmp.name, ad_source(creative_id))  # atomic: temp name + rename
        except StorageError as exc:
            return json_error(503, "storage_unavailable", f"upload not stored: {exc}")
    row.source_uri = storage.url(ad_source(creative_id))
    row.state = "uploaded"
    session.commit()
    return jsonify(creative_json(row))


@bp.post("/creatives/" + id_rule("creative_id") + "/transcode")
def start_transcode(creative_id: int) -> tuple[Response, int] | Response:
    """Run `sparkcast ads transcode <id>` in the background with this server's settings;
    poll the creative for its state (transcoding -> ready | failed)."""
    session = get_session()
    row = session.get(AdCreative, creative_id)
    if row is None:
        return json_error(404, "not_found", f"creative {creative_id} does not exist")
    if row.state == "transcoding":
        return json_error(409, "conflict", f"creative {creative_id} is already transcoding")
    row.state, row.error = "transcoding", None
    session.commit()
    settings = context.get().settings
    env = {**os.environ, **settings_env(settings)}
    subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-m", "sparkcast", "ads", "transcode", str(creative_id),
         "--quiet"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    return jsonify(creative_json(row)), 202
