"""Live on the mini YARN vs local[2], same machine, same run: chunk closed -> listed.

    python bench/live_yarn_vs_local.py [--seconds 60] [--chunk 2]

Starts its own MiniDFS + MiniYARN (deploy/hadoop) and publishes the same synthetic show
(640x360 30 fps, 2 s GOP, a tone) over RTMP to three fresh live stacks in turn:
  local[2], local root       `sparkcast live --master local[2]` (the demo's shape)
  local[2], HDFS root        the same job; chunks, checkpoint and outputs on HDFS
  YARN client, HDFS root     `./spark-submit.sh --master yarn ... live`, 2 executors x 1 core
For each: (a) chunk closed at ingest -> all its segments listed in the live MPD, median
and p95, and the backlog when the publisher stopped; the ratios are to the first run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "hadoop"),
                str(REPO / "bench")]

from hadooptools import HADOOP_CONF, yarn_opts  # noqa: E402
from hdfs import InsecureClient  # noqa: E402
from live_latency import follow  # noqa: E402

from clusters.hadoop import MiniHadoop  # noqa: E402
from core.config import Settings  # noqa: E402
from hdfs_layout import open_storage  # noqa: E402
from sparkcast.stack import LiveStack  # noqa: E402

LADDER = "360:800k,240:400k"
USER = "root"


def run(name: str, settings: Settings, run_dir: Path, seconds: float,
        live_job: list[str] | None = None) -> dict[str, float]:
    storage = open_storage(settings.root, settings.webhdfs_url, settings.hdfs_user)
    with LiveStack(settings, run_dir, live_job=live_job) as stack:
        pub = stack.publish(stack.create_key("bench"), seconds, size="640x360", rate=30)
        stats = follow(storage, "bench", pub, seconds).stats()
    print(f"{name}: {stats}", file=sys.stderr, flush=True)  # kept if a later run fails
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--chunk", type=float, default=2)
    args = ap.parse_args()
    os.environ["SPARKCAST_CONFIG"] = "/nonexistent/sparkcast.toml"
    with tempfile.TemporaryDirectory(prefix="sparkcast-live-yarn-") as tmp:
        work = Path(tmp)
        cluster = MiniHadoop(extra_conf=HADOOP_CONF, log_level="WARN")
        info = cluster.start(work / "conf", timeout=300)
        try:
            os.environ.update(cluster.env(), HADOOP_USER_NAME=USER,
                              PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
            client = InsecureClient(info.webhdfs, user=USER)

            def settings(name: str, root: str) -> Settings:
                return Settings(root=root, database_url=f"sqlite:///{work / name}.sqlite",
                                chunk_seconds=args.chunk, ladder=LADDER, port=0,
                                rtmp_port=0, live_end_timeout=5, webhdfs_url=info.webhdfs,
                                hdfs_user=USER)

            def hdfs_root(name: str) -> str:
                client.makedirs(f"/{name}")
                return f"{info.namenode_rpc}/{name}"

            results = {
                "local[2], local root": run(
                    "local[2], local root",
                    settings("local", (work / "local-root").as_uri()), work / "run-local",
                    args.seconds),
                "local[2], HDFS root": run(
                    "local[2], HDFS root", settings("hdfs", hdfs_root("live-local")),
                    work / "run-hdfs", args.seconds),
                "YARN client, HDFS root": run(
                    "YARN client, HDFS root", settings("yarn", hdfs_root("live-yarn")),
                    work / "run-yarn", args.seconds,
                    [str(REPO / "spark-submit.sh"), *yarn_opts(), "live"]),
            }
        finally:
            cluster.stop()
    base = results["local[2], local root"]
    print(f"{args.seconds:g} s of 640x360 30 fps published per run; {args.chunk:g} s chunks; "
          f"ladder {LADDER}; {os.cpu_count()} cores")
    print(f"{'run':24} {'(a) med':>8} {'(a) p95':>8} {'backlog':>7} {'med ratio':>9}")
    for name, r in results.items():
        print(f"{name:24} {r['a_median']:8.2f} {r['a_p95']:8.2f} {r['backlog_at_end']:7.0f} "
              f"{r['a_median'] / base['a_median']:8.2f}x")


if __name__ == "__main__":
    main()
