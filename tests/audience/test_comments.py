"""Comments over HTTP on SQLite and MariaDB: posting, polling, paging, limits, retries,
rate limit, blocks, moderation."""

from __future__ import annotations

import io

import pytest
from audience_ids import STREAM
from flask.testing import FlaskClient

from serve import audience

URL = f"/api/streams/{STREAM}/comments"
XSS = ['<script>window.__pwned = 1</script>', '<img src=x onerror="window.__pwned=2">',
       "\"'><svg/onload=alert(1)>", "emoji \U0001F389 and ünïcödé & <b>bold</b>"]


def post(client: FlaskClient, text: str, author: str = "ann", **extra: str):
    return client.post(URL, json={"author": author, "text": text, **extra})


def test_post_and_read_back_exactly_as_written(client: FlaskClient) -> None:
    ids = []
    for text in XSS:
        resp = post(client, text)
        assert resp.status_code == 201, resp.json
        assert resp.json["text"] == text
        assert resp.json["stream_id"] == STREAM and resp.json["created_at"].endswith("+00:00")
        assert "viewer_id" not in resp.json
        ids.append(resp.json["id"])
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    page = client.get(URL).json
    assert [c["text"] for c in page["comments"]] == XSS
    assert page["since"] == ids[-1] and page["before"] is None


def test_polling_with_since_and_paging_back(client: FlaskClient, app) -> None:
    app.config["SPARKCAST"].comments_per_minute = 0
    audience.get(app).comment_limiter.rate_per_s = 0  # this test posts 25 at once
    ids = [post(client, f"c{i}").json["id"] for i in range(25)]
    newest = client.get(URL + "?limit=10").json
    assert [c["id"] for c in newest["comments"]] == ids[-10:]
    older = client.get(URL + f"?limit=10&before={newest['before']}").json
    assert [c["id"] for c in older["comments"]] == ids[5:15]
    oldest = client.get(URL + f"?limit=10&before={older['before']}").json
    assert [c["id"] for c in oldest["comments"]] == ids[:5] and oldest["before"] is None
    poll = client.get(URL + f"?since={ids[20]}").json
    assert [c["id"] for c in poll["comments"]] == ids[21:] and poll["since"] == ids[-1]
    empty = client.get(URL + f"?since={ids[-1]}").json
    assert empty["comments"] == [] and empty["since"] == ids[-1]


def test_retry_with_the_same_client_ref_is_not_doubled(client: FlaskClient) -> None:
    first = post(client, "once", client_ref="ref-1")
    again = post(client, "once", client_ref="ref-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json == first.json
    assert [c["text"] for c in client.get(URL).json["comments"]] == ["once"]


@pytest.mark.parametrize("body,field", [
    ({"text": "hi"}, "author"),
    ({"author": "", "text": "hi"}, "author"),
    ({"author": "a" * 41, "text": "hi"}, "author"),
    ({"author": "ann"}, "text"),
    ({"author": "ann", "text": "   "}, "text"),
    ({"author": "ann", "text": "x" * 501}, "text"),
    ({"author": "ann", "text": 5}, "text"),
    ({"author": "ann", "text": "nul\x00"}, "text"),
    ({"author": "ann", "text": "\ud800"}, "text"),
    ({"author": "ann", "text": "hi", "client_ref": "no spaces"}, "client_ref"),
    ([1, 2], "body"),
])
def test_invalid_fields_are_named(client: FlaskClient, body: object, field: str) -> None:
    resp = client.post(URL, json=body)
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == f"invalid_{field}"
    assert resp.json["error"]["field"] == field


def test_malformed_json_names_the_body_and_the_position(client: FlaskClient) -> None:
    resp = client.post(URL, data='{"author": "ann", "text": ', content_type="application/json")
    assert resp.status_code == 400
    err = resp.json["error"]
    assert err["code"] == "invalid_body" and err["field"] == "body"
    assert "line 1 column" in err["message"]


def test_oversized_body_is_413_declared_or_chunked(client: FlaskClient) -> None:
    big = '{"author": "a", "text": "' + "x" * 10_000 + '"}'
    resp = client.post(URL, data=big, content_type="application/json")
    assert resp.status_code == 413 and resp.json["error"]["code"] == "payload_too_large"

    # No Content-Length (as with chunked encoding): the limit still holds while reading.
    resp = client.post(URL, input_stream=io.BytesIO(big.encode()),
                       content_type="application/json")
    assert resp.status_code == 413


def test_unknown_stream_is_404_and_a_storage_stream_gets_a_row(client: FlaskClient) -> None:
    assert post_to(client, "nope").status_code == 404
    assert post_to(client, "../etc").status_code in (400, 404)  # never a file path
    assert post_to(client, STREAM).status_code == 201


def post_to(client: FlaskClient, stream_id: str):
    return client.post(f"/api/streams/{stream_id}/comments", json={"author": "a", "text": "t"})


def test_rate_limit_is_429_with_retry_after(client: FlaskClient) -> None:
    codes = [post(client, f"n{i}").status_code for i in range(7)]
    assert codes[:5] == [201] * 5  # the burst
    assert codes[5] == 429
    resp = post(client, "more")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert resp.json["error"]["code"] == "rate_limited"
    assert client.get(URL).status_code == 200  # reading is not limited


def test_blocked_viewer_is_refused_and_moderation_hides(client: FlaskClient, auth) -> None:
    first = post(client, "spam")
    assert first.status_code == 201
    viewer = client.get_cookie("sparkcast_viewer").value
    listed = client.get(f"/api/admin/comments?stream_id={STREAM}", headers=auth).json
    assert listed["comments"][0]["viewer_id"] == viewer
    block = client.post("/api/admin/blocks", json={"viewer_id": viewer, "stream_id": STREAM},
                        headers=auth)
    assert block.status_code == 201
    refused = post(client, "more spam")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "viewer_blocked"
    other = client.application.test_client()  # another viewer (no cookie)
    assert post(other, "hello").status_code == 201

    cid = first.json["id"]
    hidden = client.patch(f"/api/admin/comments/{cid}", json={"status": "hidden"}, headers=auth)
    assert hidden.status_code == 200 and hidden.json["status"] == "hidden"
    assert [c["text"] for c in client.get(URL).json["comments"]] == ["hello"]
    assert client.delete(f"/api/admin/comments/{cid}", headers=auth).json["status"] == "deleted"
    assert client.delete(f"/api/admin/blocks/{block.json['id']}", headers=auth).status_code == 200
    assert post(client, "sorry").status_code == 201
    assert client.delete("/api/admin/comments/999999", headers=auth).status_code == 404


def test_removed_ids_window(client: FlaskClient, auth, engine) -> None:
    from store.comments import removed_ids
    from store.db import session_scope

    ids = [post(client, f"r{i}").json["id"] for i in range(3)]
    client.patch(f"/api/admin/comments/{ids[1]}", json={"status": "hidden"}, headers=auth)
    with session_scope(engine) as s:
        assert removed_ids(s, STREAM, ids[-1]) == [ids[1]]
        assert removed_ids(s, STREAM, ids[-1], window=1) == []
