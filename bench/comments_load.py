"""Audience load: comment writes and reads plus 1000 reactions/s against `sparkcast serve`
(gunicorn) on MariaDB, and what that load does to video segment latency. Loopback only.

    python bench/comments_load.py [--seconds 15] [--write-connections 16] [--write-rate 200]
                                  [--workers 2]
                                  [--database-url mysql+mysqldb://...]

Phases, on one server (rate limits off: every client here is 127.0.0.1):
  1. idle:     a paced segment fetcher (20 GET/s of a 0.3 MB segment) -> p50/p99
  2. capacity: comment writes alone, closed loop (wrk, --write-connections, each with a
               unique client_ref) -> writes/s, p50/p99
  3. bounded:  at once, for --seconds: comment writes paced at --write-rate, comment reads
               paced at 100/s (200 viewers polling every 2 s), reactions paced at --reaction-rate
               (1000/s),
               and the segment fetcher -> p50/p99 of each, segment latency vs idle
Phase 3's clients are wrk (C) with a Lua delay per connection, so the load generator
leaves the CPU to the server; a paced wrk connection waits for each answer, so a server
that falls behind shows as an achieved rate under the target. Afterwards the database is
checked: every acknowledged comment and reaction must be stored.
Without --database-url a throwaway MariaDB is started (tests/clusters/mariadb.py).
Needs: wrk, mariadb-server (apt), sparkcast installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The repository first: tests/serve must not shadow the serve package.
sys.path[:0] = [str(REPO), str(REPO / "tests")]

STREAM = "bench"
SEGMENT = f"/streams/{STREAM}/out/360p/00000001.m4s"
# One wrk Lua script per request kind: {request} builds the request (n counts this thread's
# requests, id numbers the thread), {delay} paces each connection (0 = closed loop).
WRK_LUA = r"""
local next_id = 1
local kinds = {"like", "love", "laugh", "wow", "sad", "clap"}
function setup(thread) thread:set("id", next_id); next_id = next_id + 1 end
function init(args) n = 0 end
function delay() return %(delay)d end
function request()
  n = n + 1
  %(request)s
end
function done(summary, latency, requests)
  io.write(string.format(
    'RESULT {"requests":%%d,"seconds":%%f,"non2xx":%%d,"errors":%%d,"p50":%%f,"p99":%%f}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""
JSON_POST = 'return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, %s)'
WRITE = JSON_POST % ("string.format('{\"author\":\"bench\",\"text\":\"load comment %d\","
                     "\"client_ref\":\"%s-%d-%d\"}', n, prefix, id, n)")
REACT = JSON_POST % "'{\"kind\":\"' .. kinds[n % 6 + 1] .. '\"}'"
READ = ('return wrk.format("GET", "/api/streams/' + STREAM
        + '/comments?since=" .. math.max(0, n * 2 - 50))')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_root(root: Path) -> None:
    d = root / "streams" / STREAM
    (d / "out" / "360p").mkdir(parents=True, exist_ok=True)
    (d / "manifest.mpd").write_text("<MPD/>")
    (d / "out" / "360p" / "00000001.m4s").write_bytes(os.urandom(300_000))


# --- paced asyncio HTTP/1.1 client (keep-alive) -------------------------------------------

async def _response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    await reader.readexactly(int(m.group(1)) if m else 0)
    return status


async def paced(port: int, make: Callable[[int], bytes], rate: float, seconds: float,
                connections: int, latencies: list[float], statuses: Counter[int],
                elapsed: list[float]) -> None:
    """`rate` requests/s spread over `connections` keep-alive connections; a latency is
    counted from the request's scheduled time, so a stalled server is not hidden."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    end = start + seconds
    interval = connections / rate

    async def one(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        due, i = start + k * interval / connections, k
        try:
            while due < end:
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(make(i))
                statuses[await _response(reader)] += 1
                latencies.append((loop.time() - due) * 1000)
                due += interval
                i += connections
        finally:
            writer.close()

    await asyncio.gather(*(one(k) for k in range(connections)))
    elapsed.append(loop.time() - start)  # > seconds when the server fell behind


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def _post(path: str, body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[int(q * (len(values) - 1))] if values else float("nan")


# --- phases -------------------------------------------------------------------------------

def segment_phase(port: int, seconds: float) -> dict[str, float]:
    lat: list[float] = []
    st: Counter[int] = Counter()
    asyncio.run(paced(port, lambda i: _get(SEGMENT), 20, seconds, 4, lat, st, []))
    return {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "n": len(lat), "ok": st[200]}


def start_wrk(port: int, path: str, request: str, connections: int, seconds: float,
              rate: float | None, work: Path, prefix: str) -> subprocess.Popen[str]:
    """wrk with a Lua request; `rate` (requests/s over all connections) paces it, else it
    runs closed loop. Read the result with wrk_result()."""
    # wrk waits `delay` after each answer, so a cycle is delay + latency: aim ~5 ms early.
    delay = max(1, int(connections / rate * 1000) - 5) if rate else 0
    script = work / f"{prefix}.lua"
    script.write_text(f'prefix = "{prefix}"\n' + WRK_LUA % {"delay": delay, "request": request})
    threads = min(2, connections)
    return subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s",
         "-s", str(script), f"http://127.0.0.1:{port}{path}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_result(proc: subprocess.Popen[str], seconds: float) -> dict[str, float]:
    out, _ = proc.communicate(timeout=seconds + 60)
    m = re.search(r"RESULT (\{.*\})", out)
    if m is None:
        raise SystemExit(f"wrk failed: {out[-1000:]}")
    result = json.loads(m.group(1))
    result["rate"] = result["requests"] / result["seconds"]
    result["ok"] = result["requests"] - result["non2xx"] - result["errors"]
    return result


def capacity_phase(port: int, seconds: float, write_conns: int, work: Path) -> dict:
    """Comment writes alone, closed loop: what the server sustains."""
    api = f"/api/streams/{STREAM}/comments"
    return wrk_result(start_wrk(port, api, WRITE, write_conns, seconds, None, work, "cap"),
                      seconds)


def bounded_phase(port: int, seconds: float, write_rate: float, reaction_rate: float,
                  work: Path) -> dict[str, dict]:
    """Paced writes, reads and reactions (wrk: a C client leaves the CPU to the server)
    plus the paced segment fetcher, all at once."""
    api = f"/api/streams/{STREAM}"
    procs = {"writes": start_wrk(port, api + "/comments", WRITE, 16, seconds, write_rate,
                                 work, "paced"),
             "reads": start_wrk(port, api + "/comments", READ, 8, seconds, 100, work, "read"),
             "reactions": start_wrk(port, api + "/reactions", REACT, 32, seconds,
                                    reaction_rate, work, "react")}
    segment = segment_phase(port, seconds - 1)
    out = {name: wrk_result(p, seconds) for name, p in procs.items()}
    out["segment"] = segment
    return out


def check_database(url: str) -> tuple[int, int]:
    from sqlalchemy import func, select

    from store.db import make_engine, session_scope
    from store.models import Comment, ReactionCount

    engine = make_engine(url)
    with session_scope(engine) as s:
        comments = s.scalar(select(func.count()).select_from(Comment)) or 0
        reactions = s.scalar(select(func.sum(ReactionCount.count))) or 0
    engine.dispose()
    return int(comments), int(reactions)


def start_serve(root: Path, url: str, port: int, workers: int, threads: int,
                work: Path) -> subprocess.Popen:
    env = {**os.environ, "SPARKCAST_DATABASE_URL": url, "SPARKCAST_COMMENTS_PER_MINUTE": "0",
           "SPARKCAST_REACTIONS_PER_SECOND": "0", "SPARKCAST_CONFIG": str(work / "none.toml")}
    proc = subprocess.Popen(
        ["sparkcast", "serve", "--root", root.as_uri(), "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--threads", str(threads)],
        env=env, stdout=open(work / "serve.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
        start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"sparkcast serve did not start; see {work / 'serve.log'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--write-connections", type=int, default=16)
    ap.add_argument("--write-rate", type=float, default=200, help="paced writes/s, phase 3")
    ap.add_argument("--reaction-rate", type=float, default=1000, help="paced, phase 3")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--database-url", help="an existing MySQL/MariaDB (default: throwaway)")
    args = ap.parse_args()
    for tool in ("wrk", "sparkcast"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required")
    work = Path(tempfile.mkdtemp(prefix="sparkcast-comments-load-"))
    db = None
    url = args.database_url
    if url is None:
        from clusters.mariadb import MariaDB

        db = MariaDB(work / "mariadb").start()
        url = db.create_database("bench")
    from store.db import make_engine, upgrade

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    root = work / "root"
    make_root(root)
    port = free_port()
    serve = start_serve(root, url, port, args.workers, args.threads, work)
    try:
        # warm up: the stream row, connection pools, imports in every worker
        asyncio.run(paced(port, lambda i: _get(f"/api/streams/{STREAM}/comments"), 50, 2, 4,
                          [], Counter(), []))
        idle = segment_phase(port, 10)
        cap = capacity_phase(port, args.seconds, args.write_connections, work)
        bounded = bounded_phase(port, args.seconds, args.write_rate, args.reaction_rate, work)
        time.sleep(3)  # the last reaction batch is flushed within ~1 s
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(20)
    acked = cap["requests"] - cap["non2xx"] - cap["errors"] + bounded["writes"]["ok"]
    reactions_ok = bounded["reactions"]["ok"]
    stored_comments, stored_reactions = check_database(url)
    if db is not None:
        db.destroy()
    with open("/proc/loadavg") as f:
        loadavg = f.read().split()[0]
    print(json.dumps({"idle_segment": idle, "capacity": cap, "bounded": bounded,
                      "stored_comments": stored_comments, "stored_reactions": stored_reactions,
                      "loadavg": loadavg, "args": vars(args)}, indent=1, default=str))
    b = bounded
    rows = [
        (f"comment writes/s, closed loop ({args.write_connections} connections, alone)",
         f"{cap['requests'] / cap['seconds']:,.0f}"),
        ("comment write p50 / p99, closed loop", f"{cap['p50']:.1f} / {cap['p99']:.1f} ms"),
        (f"paced writes (target {args.write_rate:g}/s) achieved, p50 / p99",
         f"{b['writes']['rate']:,.0f}/s, {b['writes']['p50']:.1f} / {b['writes']['p99']:.1f} ms"),
        ("paced reads (target 100/s) achieved, p50 / p99",
         f"{b['reads']['rate']:,.0f}/s, {b['reads']['p50']:.1f} / {b['reads']['p99']:.1f} ms"),
        (f"paced reactions (target {args.reaction_rate:g}/s) achieved, p50 / p99",
         f"{b['reactions']['rate']:,.0f}/s, {b['reactions']['p50']:.1f} / "
         f"{b['reactions']['p99']:.1f} ms"),
        ("segment 0.3 MB p50 / p99, idle", f"{idle['p50']:.1f} / {idle['p99']:.1f} ms"),
        ("segment 0.3 MB p50 / p99, bounded load",
         f"{b['segment']['p50']:.1f} / {b['segment']['p99']:.1f} ms"),
        ("stored comments / acknowledged (2xx)", f"{stored_comments:,} / {acked:,}"),
        ("stored reactions / 202 answers", f"{stored_reactions:,} / {reactions_ok:,}"),
        ("load average at the end", loadavg),
    ]
    print("\n| measure | value |\n|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
