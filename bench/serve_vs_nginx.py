"""`sparkcast serve` (nginx in front of gunicorn) vs bare nginx on the same files, same
machine, same run.

    python bench/serve_vs_nginx.py                      # makes a 720p+360p VOD first
    python bench/serve_vs_nginx.py --root /tmp/r --stream-id s --rendition 720p

What it measures, all on loopback, all bounded in time:
  - wrk, 200 connections, closed loop: requests/s and p99 for one media segment of
    the rendition and for a live (type="dynamic") MPD;
  - a paced load of 200 clients that each poll the live MPD once a second over a
    keep-alive connection (what 200 live viewers do): p99 latency;
  - the same through `sparkcast edge` in front of serve (its cache in the way);
  - 1,000 such viewers polling the live MPD through the edge: the requests per second
    that reach serve, from the edge's metrics.
Rounds alternate nginx and serve so that load from other processes hits both alike;
the median round is reported. Needs: nginx, wrk, ffmpeg (apt), and sparkcast installed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdfs_layout import StreamLayout  # noqa: E402

LIVE_ID_SUFFIX = "-live"
SERVERS = ("nginx", "serve", "edge")  # bare nginx; sparkcast serve; an edge in front of it


@dataclass
class WrkResult:
    rps: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if m is None:
        raise ValueError(f"wrk printed a latency of {text!r}")
    value, unit = m.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]


def run_wrk(url: str, connections: int, seconds: int) -> WrkResult:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "--timeout", "10s", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    try:
        p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))
    except (AttributeError, ValueError) as exc:
        raise SystemExit(f"cannot read wrk's output for {url} ({exc}):\n{out}") from exc
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|"
                                            r"timeout)[: ]+(\d+)", out))
    return WrkResult(rps, p99, errors)


async def _poller(host: str, port: int, path: str, until: float, period: float,
                  latencies: list[float], offset: float) -> None:
    await asyncio.sleep(offset)
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    try:
        while time.monotonic() < until:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(max(0.0, period - (time.perf_counter() - t0)))
    finally:
        writer.close()


def paced_p99(port: int, path: str, clients: int, seconds: float, period: float = 1.0
              ) -> tuple[float, int]:
    """p99 latency (ms) and request count of `clients` keep-alive pollers, one GET per period."""
    latencies: list[float] = []

    async def main() -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(_poller("127.0.0.1", port, path, until, period, latencies,
                                       period * i / clients) for i in range(clients)))

    asyncio.run(main())
    latencies.sort()
    return latencies[int(0.99 * (len(latencies) - 1))], len(latencies)


def make_vod(work: Path, stream_id: str) -> Path:
    src = work / "src.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
                    "-t", "12", "-c:v", "libx264", "-preset", "ultrafast", "-g", "60",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(src)], check=True)
    root = work / "root"
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    subprocess.run(["sparkcast", "submit", str(src), "--stream-id", stream_id, "--root",
                    root.as_uri(), "--ladder", "720:2800k,360:800k", "--master", "local[2]"],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return root


def add_live_copy(root: Path, stream_id: str) -> str:
    """A dynamic (live) MPD over the same segments, as the live job would write it."""
    live_id = stream_id + LIVE_ID_SUFFIX
    src, dst = StreamLayout(stream_id), StreamLayout(live_id)
    if not (root / dst.manifest).exists():
        shutil.copytree(root / src.out_dir, root / dst.out_dir)
        mpd = (root / src.manifest).read_text().replace(
            'type="static"', 'type="dynamic" availabilityStartTime="2026-01-01T00:00:00Z" '
            'minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT60S"')
        (root / dst.manifest).write_text(mpd)
    return live_id


NGINX_CONF = """{user}worker_processes {workers};
daemon off;
pid {run}/nginx.pid;
error_log {run}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; keepalive_requests 1000000;
  types {{ application/dash+xml mpd; video/mp4 m4s mp4; application/vnd.apple.mpegurl m3u8; }}
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
"""


def start(argv: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"{argv[0]} did not listen on {port}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:  # the whole group: gunicorn's or nginx's workers too
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, help="storage root holding --stream-id (default: make "
                    "one); a live copy <stream-id>-live is added to it")
    ap.add_argument("--stream-id", default="bench")
    ap.add_argument("--renditions", default="720p,360p", help="one segment target per rendition")
    ap.add_argument("--segment", type=int, default=3)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=5, help="per wrk run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers = nginx workers")
    ap.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    ap.add_argument("--viewers", type=int, default=1000,
                    help="live viewers polling the MPD once a second (origin requests/s)")
    args = ap.parse_args()
    for tool in ("nginx", "wrk", "sparkcast"):
        if not (shutil.which(tool) or Path("/usr/sbin", tool).exists()):
            raise SystemExit(f"{tool} is not installed")

    work = Path(tempfile.mkdtemp(prefix="sparkcast-bench-"))
    try:
        root = args.root or make_vod(work, args.stream_id)
        live_id = add_live_copy(root, args.stream_id)
        targets: dict[str, str] = {}
        for rendition in args.renditions.split(","):
            seg = StreamLayout(args.stream_id).media_segment(rendition, args.segment)
            size = (root / seg).stat().st_size
            targets[f"{rendition} {size / 1e6:.2f} MB"] = "/" + seg
        targets["live MPD"] = "/" + StreamLayout(live_id).manifest

        nport, sport = free_port(), free_port()
        (work / "nginx.conf").write_text(NGINX_CONF.format(
            workers=args.workers, run=work, port=nport, root=root,
            # as root, nginx workers would drop to "nobody" and could not read a 0700 temp dir
            user="user root;\n" if os.geteuid() == 0 else ""))
        nginx = start([shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(work), "-c",
                       str(work / "nginx.conf")], nport)
        env = {**os.environ, "SPARKCAST_CONFIG": str(work / "none.toml")}
        serve = start(["sparkcast", "serve", "--root", root.as_uri(), "--port", str(sport),
                       "--workers", str(args.workers), "--threads", str(args.threads)],
                      sport, env)
        eport = free_port()
        edge = start(["sparkcast", "edge", "--origin", f"http://127.0.0.1:{sport}", "--port",
                      str(eport)], eport, env)
        try:
            ports = {"nginx": nport, "serve": sport, "edge": eport}
            for port in ports.values():  # warm up: workers import the app on first use
                for path in targets.values():
                    run_wrk(f"http://127.0.0.1:{port}{path}", args.connections, 2)
            rows = _measure(args, targets, ports)
            origin_rps = _origin_rps(eport, targets["live MPD"], args.viewers)
        finally:
            stop(edge)
            stop(serve)
            stop(nginx)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _report(args, rows)
    print(f"live MPD polled once a second by {args.viewers} viewers through an edge: "
          f"{origin_rps:.2f} origin requests/s (the edge refreshes a watched live MPD every "
          "0.5 s)")


def _origin_requests(port: int) -> float:
    text = subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/metrics"],
                          capture_output=True, text=True, check=True).stdout
    return sum(float(v) for v in re.findall(
        # viewers' polls and the edge prefetcher's refreshes (edge/prefetch.py)
        r'^sparkcast_front_requests_total\{kind="(?:manifest|refresh)",status="[23]xx",'
        r'tier="(?:origin|revalidated)"\} (\S+)$',
        text, re.MULTILINE))


def _origin_rps(port: int, path: str, viewers: int, seconds: float = 20) -> float:
    """Requests/s that reach the origin while `viewers` poll `path` once a second."""
    time.sleep(2.5)  # the metrics of what came before are in (log flushed, read each second)
    before = _origin_requests(port)
    _, answered = paced_p99(port, path, viewers, seconds)
    time.sleep(2.5)
    if answered < viewers * seconds * 0.9:
        raise SystemExit(f"only {answered} of ~{viewers * seconds:.0f} polls were answered")
    return (_origin_requests(port) - before) / seconds


def _measure(args: argparse.Namespace, targets: dict[str, str], ports: dict[str, int]
             ) -> dict[tuple[str, str], list[WrkResult]]:
    rows: dict[tuple[str, str], list[WrkResult]] = {}
    for _ in range(args.rounds):
        for name, path in targets.items():
            for server, port in ports.items():  # alternate, so outside load hits both alike
                url = f"http://127.0.0.1:{port}{path}"
                rows.setdefault((name, server), []).append(
                    run_wrk(url, args.connections, args.seconds))
    for server, port in ports.items():
        p99, n = paced_p99(port, targets["live MPD"], args.connections, seconds=10)
        rows[("live MPD, paced", server)] = [WrkResult(n / 10, p99, 0)]
    return rows


def _report(args: argparse.Namespace, rows: dict[tuple[str, str], list[WrkResult]]) -> None:
    print(f"cores={os.cpu_count()} load={os.getloadavg()[0]:.1f} connections={args.connections} "
          f"workers={args.workers} threads={args.threads} "
          f"rounds={args.rounds}x{args.seconds}s")
    print(f"{'target':<18}{'server':<8}{'req/s':>10}{'p99 ms':>10}{'errors':>8}{'ratio':>8}")
    for name in dict.fromkeys(n for n, _ in rows):
        med = {}
        for server in SERVERS:
            results = rows[(name, server)]
            med[server] = WrkResult(statistics.median(r.rps for r in results),
                                    statistics.median(r.p99_ms for r in results),
                                    sum(r.errors for r in results))
        for server in SERVERS:
            r = med[server]
            ratio = f"{r.rps / med['nginx'].rps:.2f}x" if server != "nginx" else ""
            print(f"{name:<18}{server:<8}{r.rps:>10.0f}{r.p99_ms:>10.1f}{r.errors:>8}{ratio:>8}")


if __name__ == "__main__":
    main()
