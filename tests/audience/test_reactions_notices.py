"""Reactions (batched, never one write per reaction), notices (the notices_for contract and
the admin API) and the SSE feed that carries both, on SQLite and MariaDB."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from audience_ids import STREAM
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select

from serve import events
from store import reactions
from store.db import make_engine, session_scope, upgrade
from store.models import ReactionCount, Stream
from store.notices import Notice, current, notices_for

R_URL = f"/api/streams/{STREAM}/reactions"


def test_counter_aggregates_per_second_and_keeps_failed_batches() -> None:
    c = reactions.ReactionCounter()
    for t in (100.1, 100.9, 101.0):
        c.add("s", "like", now=t)
    c.add("s", "wow", now=100.5)
    c.add("t", "like", now=100.5)
    assert c.pending("s") == Counter(like=3, wow=1)
    batch = c.take()
    assert batch == Counter({("s", "like", 100): 2, ("s", "like", 101): 1,
                             ("s", "wow", 100): 1, ("t", "like", 100): 1})
    assert c.take() == Counter()
    c.put_back(batch)
    assert c.pending("s") == Counter(like=3, wow=1)


def test_reactions_are_written_in_batches(client: FlaskClient, app: Flask,
                                          engine: Engine) -> None:
    app.config["SPARKCAST"].reactions_per_second = 0
    from serve import audience

    audience.get(app).reaction_limiter.rate_per_s = 0
    hub = events.get(app)
    for kind in ["like"] * 50 + ["clap"] * 7:
        assert client.post(R_URL, json={"kind": kind}).status_code == 202

    def stored() -> tuple[int, int]:
        with session_scope(engine) as s:
            return (s.scalar(select(func.count()).select_from(ReactionCount)) or 0,
                    s.scalar(select(func.sum(ReactionCount.count))) or 0)

    # Nothing written yet (one write per reaction would show rows here) ...
    hub.counter, pending = reactions.ReactionCounter(), hub.counter  # hold the hub's thread off
    assert stored() == (0, 0)
    # ... then one batch: one row per (kind, second), counts summed.
    assert hub.flush() is True
    reactions.flush(hub.engine, pending.take())
    rows, total = stored()
    assert total == 57 and rows <= 4
    assert client.get(R_URL).json["totals"] == {"like": 50, "love": 0, "laugh": 0, "wow": 0,
                                               "sad": 0, "clap": 7}
    # Upserts add up across batches (same second, same key).
    reactions.flush(hub.engine, Counter({(STREAM, "like", 5): 2}))
    reactions.flush(hub.engine, Counter({(STREAM, "like", 5): 3}))
    assert client.get(R_URL).json["totals"]["like"] == 55


@pytest.mark.parametrize("body", [{"kind": "angry"}, {"kind": 1}, {}, ["like"]])
def test_unknown_reaction_is_400(client: FlaskClient, body: object) -> None:
    resp = client.post(R_URL, json=body)
    assert resp.status_code == 400 and resp.json["error"]["field"] in ("kind", "body")


def test_reaction_rate_limit(client: FlaskClient) -> None:
    codes = [client.post(R_URL, json={"kind": "wow"}).status_code for _ in range(40)]
    assert 202 in codes and codes[-1] == 429


def test_flush_keeps_counts_while_the_database_is_down(tmp_path) -> None:
    # A database without the table fails like a dead one (OperationalError).
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    hub = events.Hub(engine, max_clients=1)
    for _ in range(3):
        hub.counter.add("s", "like", now=10)
    assert hub.flush() is False and hub.db_ok is False
    hub.counter.add("s", "like", now=11)
    assert hub.counter.pending("s") == Counter(like=4)
    upgrade(engine)
    with session_scope(engine) as s:
        s.add(Stream(id="s"))
    assert hub.flush() is True
    with session_scope(engine) as s:
        assert reactions.totals(s, "s") == Counter(like=4)
    assert hub.counter.pending("s") == Counter()


# --- notices ------------------------------------------------------------------------------

def test_notices_for_contract(client: FlaskClient, auth, engine: Engine) -> None:
    now = time.time()
    later = client.post("/api/admin/notices", headers=auth, json={
        "stream_id": STREAM, "kind": "flash", "text": "later <b>", "start": now + 60,
        "duration": 5}).json
    disclaimer = client.post("/api/admin/notices", headers=auth, json={
        "stream_id": STREAM, "kind": "disclaimer", "text": "Sponsored"}).json
    flash = client.post("/api/admin/notices", headers=auth, json={
        "stream_id": STREAM, "kind": "flash", "text": "now"}).json
    gone = client.post("/api/admin/notices", headers=auth, json={
        "stream_id": STREAM, "kind": "flash", "text": "withdrawn"}).json
    assert client.delete(f"/api/admin/notices/{gone['id']}", headers=auth).status_code == 200
    with session_scope(engine) as s:
        items = notices_for(s, STREAM)
    assert [n.id for n in items] == [disclaimer["id"], flash["id"], later["id"]]
    d, f, lt = items
    assert isinstance(d, Notice) and d.kind == "disclaimer" and d.duration is None
    assert f.kind == "flash" and f.duration == 10.0 and abs(f.start - now) < 30
    assert lt.text == "later <b>" and lt.start == pytest.approx(now + 60, abs=1e-3)
    assert lt.end == pytest.approx(now + 65, abs=1e-3)
    assert [n.id for n in current(items, now + 30)] == [d.id, lt.id]
    assert f.active_at(f.start) and not f.active_at(f.start + 10)
    # edit keeps the id; the public list shows what is active now or later
    edited = client.patch(f"/api/admin/notices/{later['id']}", headers=auth,
                          json={"text": "edited", "start": now - 1, "duration": 120})
    assert edited.status_code == 200 and edited.json["id"] == later["id"]
    public = client.get(f"/api/streams/{STREAM}/notices").json
    assert {n["text"] for n in public["notices"]} == {"Sponsored", "now", "edited"}


@pytest.mark.parametrize("body,field", [
    ({"kind": "flash", "text": "x"}, "stream_id"),
    ({"stream_id": STREAM, "kind": "popup", "text": "x"}, "kind"),
    ({"stream_id": STREAM, "kind": "flash", "text": ""}, "text"),
    ({"stream_id": STREAM, "kind": "flash", "text": "x", "duration": -1}, "duration"),
    ({"stream_id": STREAM, "kind": "flash", "text": "x", "start": "soon"}, "start"),
])
def test_notice_validation(client: FlaskClient, auth, body: dict, field: str) -> None:
    resp = client.post("/api/admin/notices", headers=auth, json=body)
    assert resp.status_code == 400 and resp.json["error"]["field"] == field


# --- SSE ----------------------------------------------------------------------------------

def sse_lines(resp: requests.Response) -> Iterator[str]:
    # chunk_size=1: a bigger chunk would wait for that many bytes before yielding a line
    return resp.iter_lines(chunk_size=1, decode_unicode=True)


def read_events(lines: Iterator[str], want: set[str], timeout: float) -> dict[str, dict]:
    """Events by name until every name in `want` was seen (latest payload wins)."""
    seen: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name:
            seen[name] = json.loads(line[6:])
            if want <= set(seen) and all(_ready(n, seen[n]) for n in want):
                return seen
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"events seen {sorted(seen)}, wanted {sorted(want)}: {seen}")


_READY: dict[str, object] = {}


def _ready(name: str, payload: dict) -> bool:
    check = _READY.get(name)
    return check is None or bool(check(payload))  # type: ignore[operator]


def test_sse_pushes_reactions_notices_and_moderation(live_url: str, auth) -> None:
    base = f"{live_url}/api/streams/{STREAM}"
    ev = requests.get(base + "/events", stream=True, timeout=10)
    assert ev.status_code == 200
    assert ev.headers["Content-Type"].startswith("text/event-stream")
    lines = sse_lines(ev)
    first = read_events(lines, {"hello", "reactions", "notices"}, 10)
    assert first["hello"]["kinds"] == list(reactions.KINDS)
    assert first["notices"]["notices"] == []

    t0 = time.monotonic()
    requests.post(base + "/reactions", json={"kind": "love"}, timeout=5)
    requests.post(base + "/reactions", json={"kind": "love"}, timeout=5)
    requests.post(f"{live_url}/api/admin/notices", headers=auth, timeout=5,
                  json={"stream_id": STREAM, "kind": "flash", "text": "Breaking"})
    c = requests.post(base + "/comments", json={"author": "a", "text": "bad"}, timeout=5).json()
    requests.patch(f"{live_url}/api/admin/comments/{c['id']}", json={"status": "hidden"},
                   headers=auth, timeout=5)
    _READY.update(reactions=lambda p: p["totals"]["love"] == 2,
                  notices=lambda p: bool(p["notices"]),
                  moderation=lambda p: c["id"] in p["removed"])
    try:
        got = read_events(lines, {"reactions", "notices", "moderation"}, 15)
    finally:
        _READY.clear()
        ev.close()
    assert got["notices"]["notices"][0]["text"] == "Breaking"
    assert time.monotonic() - t0 < 10  # a flash reaches viewers within seconds


def test_sse_is_capped_per_worker(live_url: str, app: Flask) -> None:
    app.config["SPARKCAST"].sse_clients_per_worker = 1
    events.get(app).max_clients = 1
    url = f"{live_url}/api/streams/{STREAM}/events"
    one = requests.get(url, stream=True, timeout=10)
    assert one.status_code == 200
    two = requests.get(url, stream=True, timeout=10)
    assert two.status_code == 503 and int(two.headers["Retry-After"]) > 0
    assert two.json()["error"]["code"] == "feeds_full"
    one.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the slot frees once the server sees the close
        again = requests.get(url, stream=True, timeout=10)
        again.close()
        if again.status_code == 200:
            break
        time.sleep(0.5)
    assert again.status_code == 200
    assert requests.get(f"{live_url}/api/streams/nope/events", timeout=5).status_code == 404
