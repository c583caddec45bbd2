"""The API contract: an OpenAPI 3.1 document of every HTTP endpoint, at /api/openapi.json.

Written by hand (the views validate by hand too) and kept honest by tests: every URL rule
of the app must appear here (tests/audience/test_openapi.py), and schemathesis calls the
app from this document and checks statuses, content types, headers and bodies.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, Response, jsonify

from hdfs_layout import urls
from serve import comments, reactions
from serve.admin_ads import POSITIONS, STATES
from serve.jsonapi import MAX_ID
from store import comments as comment_store
from store import notices

P = urls.openapi_path
STREAM = P(urls.STREAM_API)
ADMIN_PATH = P(urls.ADMIN_API)

bp = Blueprint("openapi", __name__)

J = "application/json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(props: dict[str, Schema], required: list[str] | None = None,
         extra: bool = False) -> Schema:
    out: Schema = {"type": "object", "properties": props,
                   "required": list(props) if required is None else required}
    if not extra:
        out["additionalProperties"] = False
    return out


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
TIME = {"type": "string", "format": "date-time"}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
STREAM_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"}
RETRY_AFTER = {"Retry-After": {"description": "seconds", "required": True,
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}

SCHEMAS: dict[str, Schema] = {
    "Error": _obj({"error": _obj({"code": STR, "message": STR, "field": STR},
                                 required=["code", "message"])}),
    "Comment": _obj({"id": INT, "stream_id": STR, "author": STR, "text": STR,
                     "created_at": TIME}),
    "CommentIn": _obj({"author": {"type": "string", "minLength": 1,
                                  "maxLength": comments.MAX_AUTHOR},
                       "text": {"type": "string", "minLength": 1,
                                "maxLength": comments.MAX_TEXT},
                       "client_ref": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}},
                      required=["author", "text"]),
    "CommentPage": _obj({"comments": {"type": "array", "items": _ref("Comment")},
                         "before": _nullable(INT), "since": INT}),
    "ImpressionIn": _obj({"event": {"enum": ["start", "complete"]}}),
    "ReactionIn": _obj({"kind": {"enum": list(reactions.KINDS)}}),
    "Totals": _obj({"totals": _obj({k: {"type": "integer", "minimum": 0}
                                    for k in reactions.KINDS})}),
    "Notice": _obj({"id": INT, "kind": {"enum": list(notices.KINDS)}, "text": STR,
                    "start": NUM, "duration": _nullable(NUM)}),
    "NoticeList": _obj({"now": NUM, "notices": {"type": "array", "items": _ref("Notice")}}),
    "AdminNotice": _obj({"id": INT, "kind": {"enum": list(notices.KINDS)}, "text": STR,
                         "start": NUM, "duration": _nullable(NUM), "stream_id": STR,
                         "created_at": TIME, "withdrawn_at": _nullable(TIME)}),
    "NoticeIn": _obj({"stream_id": STR, "kind": {"enum": list(notices.KINDS)},
                      "text": {"type": "string", "minLength": 1, "maxLength": notices.MAX_TEXT},
                      "start": NUM, "duration": _nullable(NUM)},
                     required=["stream_id", "kind", "text"]),
    "NoticePatch": _obj({"text": {"type": "string", "minLength": 1,
                                  "maxLength": notices.MAX_TEXT},
                         "start": NUM, "duration": _nullable(NUM)}, required=[]),
    "AdminComment": _obj({"id": INT, "stream_id": STR, "author": STR, "text": STR,
                          "created_at": TIME, "status": {"enum": list(comment_store.STATUSES)},
                          "viewer_id": _nullable(STR)}),
    "Block": _obj({"id": INT, "viewer_id": STR, "stream_id": _nullable(STR), "reason": STR,
                   "created_at": TIME}),
    "BlockIn": _obj({"viewer_id": {"type": "string", "minLength": 1, "maxLength": 64},
                     "stream_id": _nullable(STR), "reason": {"type": "string",
                                                             "maxLength": 200}},
                    required=["viewer_id"]),
    "Stream": _obj({"id": STR, "title": STR, "state": STR, "created_at": TIME,
                    "live_since": _nullable(TIME), "last_publish_end": _nullable(TIME)}),
    "StreamIn": _obj({"id": STREAM_ID, "title": {"type": "string", "maxLength": 200}},
                     required=["id"]),
    "Key": _obj({"id": INT, "stream_id": STR, "label": STR, "created_at": TIME,
                 "revoked_at": _nullable(TIME), "last_used_at": _nullable(TIME),
                 "publishing": {"type": "boolean"}, "key": STR},
                required=["id", "stream_id", "label", "created_at", "revoked_at",
                          "last_used_at", "publishing"]),
    "Creative": _obj({"id": INT, "name": STR, "source_uri": STR,
                      "media_stream_id": _nullable(STR), "duration_s": _nullable(NUM),
                      "state": {"enum": list(STATES)}, "error": _nullable(STR),
                      "created_at": TIME}),
    "CreativeIn": _obj({"name": {"type": "string", "minLength": 1, "maxLength": 200},
                        "source_uri": {"type": "string", "minLength": 1, "maxLength": 1024},
                        "duration_s": NUM}, required=["name", "source_uri"]),
    "AdBreak": _obj({"id": INT, "stream_id": STR, "creative_id": INT,
                     "position": {"enum": list(POSITIONS)}, "offset_s": _nullable(NUM),
                     "starts_at": _nullable(NUM), "created_at": TIME,
                     "cancelled_at": _nullable(TIME), "impressions_started": INT,
                     "impressions_completed": INT}),
    "AdBreakIn": _obj({"stream_id": STR, "creative_id": ID,
                       "position": {"enum": list(POSITIONS)}, "offset_s": NUM,
                       "starts_at": NUM}, required=["stream_id", "creative_id", "position"]),
    "Health": _obj({"status": STR, "pid": INT}),
}

# --- response helpers --------------------------------------------------------------------

def _json(schema: Schema, description: str = "OK", headers: dict[str, Any] | None = None
          ) -> Schema:
    out: Schema = {"description": description, "content": {J: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _err(description: str, headers: dict[str, Any] | None = None) -> Schema:
    return _json(_ref("Error"), description, headers)


def _body(*content_types: str, description: str = "OK") -> Schema:
    return {"description": description, "content": {t: {"schema": STR} for t in content_types}}


ASSET_TYPES = ("text/javascript", "application/javascript", "text/css")


ERRORS = {
    "400": _err("malformed request; `error.field` names the member at fault"),
    "401": _err("no admin token", {"WWW-Authenticate": {"schema": STR, "required": True}}),
    "403": _err("invalid or revoked admin token"),
    "404": _err("no such resource"),
    "409": _err("conflict"),
    "413": _err("request body too large"),
    "415": _err("body not sent as application/json"),
    "429": _err("rate limited", RETRY_AFTER),
    "503": _err("database unavailable: retry", RETRY_AFTER),
}


def _errors(*codes: str) -> dict[str, Schema]:
    return {c: ERRORS[c] for c in codes}


def _path_param(name: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema or STR}


def _query(name: str, schema: Schema, description: str = "") -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _json_body(name: str) -> Schema:
    return {"required": True, "content": {J: {"schema": _ref(name)}}}


SID = _path_param("stream_id")
ADMIN = [{"bearer": []}]
ADMIN_ERRORS = ("400", "401", "403", "404", "503")


def _admin(op: Schema, *extra: str) -> Schema:
    op["security"] = ADMIN
    op["tags"] = ["admin"]
    op["responses"].update(_errors(*ADMIN_ERRORS, *extra))
    return op


def _paths() -> dict[str, Any]:
    media_errors = _errors("400", "404")
    media = {
        P(urls.MANIFEST): {"get": {
            "summary": "DASH manifest (origins added as BaseURLs)", "tags": ["media"],
            "parameters": [SID], "responses": {
                "200": _body("application/dash+xml"), "304": {"description": "not modified"},
                **media_errors, "500": _err("stored manifest is malformed")}}},
        P(urls.PLAYLIST): {"get": {
            "summary": "HLS master or media playlist", "tags": ["media"],
            "parameters": [SID, _path_param("name")], "responses": {
                "200": _body("application/vnd.apple.mpegurl"),
                "304": {"description": "not modified"}, **media_errors}}},
        P(urls.SEGMENT): {"get": {
            "summary": "CMAF init (init.mp4) or media segment (NNNNNNNN.m4s)",
            "tags": ["media"],
            "parameters": [SID, _path_param("rendition"), _path_param("name")],
            "responses": {"200": _body("video/mp4", "audio/mp4"),
                          "206": _body("video/mp4", "audio/mp4", description="a byte range"),
                          "304": {"description": "not modified"}, **media_errors,
                          "416": _err("range not satisfiable")}}},
        P(urls.CLOCK): {"get": {"summary": "server time for DASH UTCTiming (ISO 8601)",
                           "tags": ["media"], "responses": {"200": _body("text/plain")}}},
        P(urls.HEALTH): {"get": {"summary": "200 while storage is reachable", "tags": ["ops"],
                             "responses": {"200": _json(_ref("Health")),
                                           "503": _json(_ref("Health"), "storage down")}}},
        P(urls.METRICS): {"get": {"summary": "Prometheus metrics", "tags": ["ops"],
                             "responses": {"200": _body("text/plain")}}},
    }
    form = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": {"name": STR, "app": STR, "addr": STR, "tcurl": STR},
        "required": ["name", "app"]}}}}
    rtmp = {f"{P(urls.RTMP_CALLBACKS)}/{hook}": {"post": {
        "summary": summary, "tags": ["rtmp"], "requestBody": form,
        "description": "nginx-rtmp callback, loopback callers only",
        "responses": {"200": _body("text/plain", description="accepted"),
                      "403": _body("text/plain", description="refused")}}}
        for hook, summary in (("on_publish", "accept or refuse a stream key"),
                              ("on_publish_done", "a publisher disconnected"))}
    pages = {
        P(urls.WATCH): {"get": {"summary": "player page", "tags": ["player"],
                                       "parameters": [SID, _query("engine", STR)],
                                       "responses": {"200": _body("text/html"),
                                                     **media_errors}}},
        "/player/{name}": {"get": {"summary": "the player's own JS/CSS", "tags": ["player"],
                                   "parameters": [_path_param("name")],
                                   "responses": {"200": _body(*ASSET_TYPES),
                                                 "304": {"description": "not modified"},
                                                 **media_errors, "503": _err("not built")}}},
        "/player/vendor/{name}": {"get": {"summary": "dash.js / hls.js from npm",
                                          "tags": ["player"],
                                          "parameters": [_path_param("name")],
                                          "responses": {"200": _body(*ASSET_TYPES),
                                                        "304": {"description": "not modified"},
                                                        **media_errors,
                                                        "503": _err("npm ci not run")}}},
        "/admin": {"get": {"summary": "admin page (token typed in, kept in sessionStorage)",
                           "tags": ["admin"], "responses": {"200": _body("text/html")}}},
        "/admin/{name}": {"get": {"summary": "the admin page's JS/CSS", "tags": ["admin"],
                                  "parameters": [_path_param("name")],
                                  "responses": {"200": _body(*ASSET_TYPES),
                                                "304": {"description": "not modified"},
                                                **media_errors}}},
        P(urls.OPENAPI): {"get": {"summary": "this document", "tags": ["api"],
                                      "responses": {"200": _json({"type": "object"})}}},
    }
    audience = {
        STREAM + "/comments": {
            "get": {"summary": "visible comments, ascending ids", "tags": ["audience"],
                    "parameters": [SID, _query("since", {"type": "integer", "minimum": 0},
                                               "newer than this id (polling)"),
                                   _query("before", ID, "older than this id (paging back)"),
                                   _query("limit", {"type": "integer", "minimum": 1,
                                                    "maximum": comment_store.MAX_PAGE})],
                    "responses": {"200": _json(_ref("CommentPage")),
                                  **_errors("400", "404", "503")}},
            "post": {"summary": "post a comment (201 only once stored)", "tags": ["audience"],
                     "parameters": [SID], "requestBody": _json_body("CommentIn"),
                     "responses": {"201": _json(_ref("Comment"), "stored"),
                                   "200": _json(_ref("Comment"),
                                                "already stored under this client_ref"),
                                   **_errors("400", "403", "404", "413", "429", "503")}}},
        STREAM + "/reactions": {
            "get": {"summary": "reaction totals", "tags": ["audience"], "parameters": [SID],
                    "responses": {"200": _json(_ref("Totals")), **_errors("400", "404", "503")}},
            "post": {"summary": "react (counted in memory, stored in batches)",
                     "tags": ["audience"], "parameters": [SID],
                     "requestBody": _json_body("ReactionIn"),
                     "responses": {"202": _json(_obj({"accepted": STR}), "counted"),
                                   **_errors("400", "404", "413", "429", "503")}}},
        STREAM + "/ads/{break_id}/impressions": {"post": {
            "summary": "ad impression beacon (the player, at an ad Period's start and end)",
            "tags": ["audience"], "parameters": [SID, _path_param("break_id", ID)],
            "requestBody": _json_body("ImpressionIn"),
            "responses": {"204": {"description": "counted (or a repeat, not counted)"},
                          **_errors("400", "404", "413", "429", "503")}}},
        STREAM + "/notices": {"get": {
            "summary": "notices active now or later", "tags": ["audience"],
            "parameters": [SID], "responses": {"200": _json(_ref("NoticeList")),
                                               **_errors("400", "404", "503")}}},
        STREAM + "/events": {"get": {
            "summary": "Server-Sent Events: hello, reactions, notices, moderation",
            "tags": ["audience"], "parameters": [SID],
            "responses": {"200": {"description": "one JSON `data` per event", "content": {
                "text/event-stream": {"schema": {
                    "type": "object", "required": ["data"],
                    "properties": {"event": {"enum": ["hello", "reactions", "notices",
                                                      "moderation"]},
                                   "data": {"type": "string", "contentMediaType": J},
                                   "retry": INT, "id": STR}}}}},
                          **_errors("400", "404"),
                          "503": _err("this worker's feeds are full or the database is "
                                      "down: poll", RETRY_AFTER)}}},
    }
    return {**media, **rtmp, **pages, **audience, **_admin_paths()}


def _admin_paths() -> dict[str, Any]:
    def ok(schema: Schema, code: str = "200") -> dict[str, Schema]:
        return {code: _json(schema)}

    def lst(key: str, item: str) -> Schema:
        return _obj({key: {"type": "array", "items": _ref(item)}})

    sid_q = _query("stream_id", STR)
    return {
        ADMIN_PATH + "/keys": {
            "get": _admin({"summary": "stream keys", "parameters": [sid_q],
                           "responses": ok(lst("keys", "Key"))}),
            "post": _admin({"summary": "create a stream key (shown once)",
                            "requestBody": {"required": True, "content": {J: {"schema": _obj(
                                {"stream_id": STREAM_ID, "label": STR}, ["stream_id"])}}},
                            "responses": ok(_ref("Key"), "201")}, "413")},
        ADMIN_PATH + "/keys/{key_id}": {
            "delete": _admin({"summary": "revoke a key", "parameters": [_path_param(
                "key_id", ID)], "responses": ok(_ref("Key"))})},
        ADMIN_PATH + "/streams": {
            "get": _admin({"summary": "streams", "responses": ok(lst("streams", "Stream"))}),
            "post": _admin({"summary": "add a stream", "requestBody": _json_body("StreamIn"),
                            "responses": ok(_ref("Stream"), "201")}, "409", "413")},
        ADMIN_PATH + "/streams/{stream_id}": {
            "get": _admin({"summary": "a stream with counts", "parameters": [SID],
                           "responses": ok(_obj({**SCHEMAS["Stream"]["properties"],
                                                 "comments": INT, "notices": INT}))}),
            "patch": _admin({"summary": "retitle", "parameters": [SID],
                             "requestBody": {"required": True, "content": {J: {
                                 "schema": _obj({"title": STR})}}},
                             "responses": ok(_ref("Stream"))}, "413")},
        ADMIN_PATH + "/comments": {
            "get": _admin({"summary": "comments of a stream, every status, with viewer ids",
                           "parameters": [
                               {**sid_q, "required": True},
                               _query("status", {"enum": list(comment_store.STATUSES)}),
                               _query("before", ID),
                               _query("limit", {"type": "integer", "minimum": 1,
                                                "maximum": comment_store.MAX_PAGE})],
                           "responses": ok(_obj({"comments": {
                               "type": "array", "items": _ref("AdminComment")},
                               "before": _nullable(INT)}))})},
        ADMIN_PATH + "/comments/{comment_id}": {
            "patch": _admin({"summary": "hide, delete or restore",
                             "parameters": [_path_param("comment_id", ID)],
                             "requestBody": {"required": True, "content": {J: {"schema": _obj(
                                 {"status": {"enum": list(comment_store.STATUSES)}})}}},
                             "responses": ok(_ref("AdminComment"))}, "413"),
            "delete": _admin({"summary": "delete (status deleted; the row is kept)",
                              "parameters": [_path_param("comment_id", ID)],
                              "responses": ok(_ref("AdminComment"))})},
        ADMIN_PATH + "/blocks": {
            "get": _admin({"summary": "viewer blocks",
                           "parameters": [_query("viewer_id", STR)],
                           "responses": ok(lst("blocks", "Block"))}),
            "post": _admin({"summary": "block a viewer (on a stream, or everywhere)",
                            "requestBody": _json_body("BlockIn"),
                            "responses": ok(_ref("Block"), "201")}, "413")},
        ADMIN_PATH + "/blocks/{block_id}": {
            "delete": _admin({"summary": "unblock", "parameters": [_path_param("block_id", ID)],
                              "responses": ok(_ref("Block"))})},
        ADMIN_PATH + "/notices": {
            "get": _admin({"summary": "notices, withdrawn ones too", "parameters": [sid_q],
                           "responses": ok(lst("notices", "AdminNotice"))}),
            "post": _admin({"summary": "create a disclaimer or a news flash",
                            "requestBody": _json_body("NoticeIn"),
                            "responses": ok(_ref("AdminNotice"), "201")}, "413")},
        ADMIN_PATH + "/notices/{notice_id}": {
            "patch": _admin({"summary": "edit", "parameters": [_path_param("notice_id", ID)],
                             "requestBody": _json_body("NoticePatch"),
                             "responses": ok(_ref("AdminNotice"))}, "413"),
            "delete": _admin({"summary": "withdraw",
                              "parameters": [_path_param("notice_id", ID)],
                              "responses": ok(_ref("AdminNotice"))})},
        ADMIN_PATH + "/ads/creatives": {
            "get": _admin({"summary": "ad creatives",
                           "responses": ok(lst("creatives", "Creative"))}),
            "post": _admin({"summary": "register a creative",
                            "requestBody": _json_body("CreativeIn"),
                            "responses": ok(_ref("Creative"), "201")}, "413")},
        ADMIN_PATH + "/ads/creatives/{creative_id}": {
            "patch": _admin({"summary": "edit metadata",
                             "parameters": [_path_param("creative_id", ID)],
                             "requestBody": {"required": True, "content": {J: {"schema": _obj(
                                 {"name": STR, "duration_s": _nullable(NUM),
                                  "state": {"enum": list(STATES)},
                                  "media_stream_id": _nullable(STR)}, required=[])}}},
                             "responses": ok(_ref("Creative"))}, "409", "413"),
            "delete": _admin({"summary": "delete with its breaks",
                              "parameters": [_path_param("creative_id", ID)],
                              "responses": ok(_ref("Creative"))})},
        ADMIN_PATH + "/ads/creatives/{creative_id}/source": {
            "put": _admin({"summary": "upload the creative's video (the body is the file)",
                           "parameters": [_path_param("creative_id", ID)],
                           "requestBody": {"required": True, "content": {
                               "application/octet-stream": {"schema": {
                                   "type": "string", "format": "binary"}}}},
                           "responses": ok(_ref("Creative"))}, "413")},
        ADMIN_PATH + "/ads/creatives/{creative_id}/transcode": {
            "post": _admin({"summary": "transcode the creative in the background "
                                       "(poll its state)",
                            "parameters": [_path_param("creative_id", ID)],
                            "responses": ok(_ref("Creative"), "202")}, "409")},
        ADMIN_PATH + "/ads/breaks": {
            "get": _admin({"summary": "ad breaks", "parameters": [sid_q],
                           "responses": ok(lst("breaks", "AdBreak"))}),
            "post": _admin({"summary": "schedule a break", "requestBody": _json_body("AdBreakIn"),
                            "responses": ok(_ref("AdBreak"), "201")}, "413")},
        ADMIN_PATH + "/ads/breaks/{break_id}": {
            "delete": _admin({"summary": "cancel", "parameters": [_path_param("break_id", ID)],
                              "responses": ok(_ref("AdBreak"))})},
    }


def _with_415(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation taking a JSON body also answers 415 (serve/jsonapi.read_json)."""
    for operations in paths.values():
        for op in operations.values():
            if J in op.get("requestBody", {}).get("content", {}):
                op["responses"].setdefault("415", ERRORS["415"])
    return paths


def document() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy). Pure."""
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "sparkcast", "version": "1",
                 "description": "DASH/HLS origin, player, audience features and admin API. "
                                "Errors are JSON {\"error\": {\"code\", \"message\"}}."},
        "paths": _with_415(_paths()),
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "admin token from `sparkcast admin create-token`"}}},
    })


@bp.get(urls.OPENAPI)
def openapi_json() -> Response:
    resp = jsonify(document())
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp
