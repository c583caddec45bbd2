"""Ad impressions: the player's beacon when an ad break starts and when it completes.

    POST /api/streams/<id>/ads/<break id>/impressions  {"event": "start"|"complete"}  204

The player knows a break by its DASH Period id ("ad-<break id>", manifest/splice.py).
Each beacon is one atomic `UPDATE ... SET n = n + 1`, so concurrent viewers never lose a
count; the totals are in the admin API (GET /api/admin/ads/breaks).
"""

from __future__ import annotations

from flask import Blueprint, Response

from hdfs_layout import urls
from serve.db import get_session
from serve.errors import json_error
from serve.jsonapi import BadRequest, api_errors, id_rule, read_json
from store.ads import IMPRESSION_EVENTS, count_impression

bp = api_errors(Blueprint("ads", __name__, url_prefix=urls.STREAM_ADS_API))

MAX_BODY = 256


@bp.post("/" + id_rule("break_id") + "/impressions")
def impression(stream_id: str, break_id: int) -> Response:
    data = read_json(MAX_BODY)
    event = data.get("event")
    if event not in IMPRESSION_EVENTS:
        raise BadRequest("event", f"field 'event' must be one of {', '.join(IMPRESSION_EVENTS)}")
    session = get_session()
    counted = count_impression(session, stream_id, break_id, event)
    session.commit()
    if not counted:
        return json_error(404, "not_found", f"stream {stream_id!r} has no ad break {break_id}")
    return Response(status=204)
