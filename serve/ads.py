"""Ad impressions: the player's beacon when an ad break starts and when it completes.

    POST /api/streams/<id>/ads/<break id>/impressions  {"event": "start"|"complete"}  204

The player knows a break by its DASH Period id ("ad-<break id>", manifest/splice.py).
Each viewer counts once per break and event (store/ads.py keeps who was counted: the
viewer cookie, else address and browser), and beacons are rate-limited per client
address, so a script replaying them cannot inflate the counts. A count is one atomic
`UPDATE ... SET n = n + 1`, so concurrent viewers never lose one; the totals are in the
admin API (GET /api/admin/ads/breaks).
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from hdfs_layout import urls
from serve import audience
from serve.comments import VIEWER_COOKIE, viewer_id
from serve.db import get_session
from serve.errors import json_error
from serve.jsonapi import BadRequest, api_errors, client_key, id_rule, read_json, too_many
from store.ads import IMPRESSION_EVENTS, NO_BREAK, count_impression

bp = api_errors(Blueprint("ads", __name__, url_prefix=urls.STREAM_ADS_API))

MAX_BODY = 256


@bp.post("/" + id_rule("break_id") + "/impressions")
def impression(stream_id: str, break_id: int) -> Response:
    wait = audience.get().beacon_limiter.take(client_key())
    if wait:
        return too_many(wait, "ad beacons")
    data = read_json(MAX_BODY)
    event = data.get("event")
    if event not in IMPRESSION_EVENTS:
        raise BadRequest("event", f"field 'event' must be one of {', '.join(IMPRESSION_EVENTS)}")
    # The viewer cookie the player carries (set by the watch page), else the address and
    # browser: either way one viewer counts once per break and event.
    viewer, unknown = viewer_id(request.cookies.get(VIEWER_COOKIE))
    if unknown:
        viewer = f"{client_key()}|{request.user_agent.string}"
    session = get_session()
    result = count_impression(session, stream_id, break_id, event, viewer)
    session.commit()
    if result == NO_BREAK:
        return json_error(404, "not_found", f"stream {stream_id!r} has no ad break {break_id}")
    return Response(status=204)  # a repeat too: the player has nothing to do about it
