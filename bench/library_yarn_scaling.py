"""Scaling on the mini YARN: the same library job with 1 executor x 1 core and with 2
executors x 1 core, same run; prints the speed-up, the efficiency (speed-up / 2) and, from
the Spark event log, the task seconds by step (the inputs of bench/scaling_model.py).

    python bench/library_yarn_scaling.py [--clips 8] [--min 10] [--max 30] [--out FILE]

Starts its own MiniDFS + MiniYARN (deploy/hadoop), writes the clips (as
bench/library_vs_ffmpeg.py makes them, 480p/360p/240p here so that one core per
executor is not swamped) to HDFS and submits `./spark-submit.sh --master yarn
--deploy-mode cluster transcode hdfs://.../library/` twice, to fresh roots.
`--out` writes the measured figures as JSON for bench/scaling_model.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

from batch_vs_ffmpeg import make_source  # noqa: E402

from clusters.hadoop import MiniHadoop  # noqa: E402
from clusters.spark_standalone import SPARK_HOME  # noqa: E402

LADDER = "360:800k,240:400k"
SMALL_JVM = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k"


def events(folder: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(p for p in folder.rglob("*") if p.is_file())
            for line in f.read_text().splitlines() if line.strip()]


def step_seconds(log: list[dict]) -> dict[str, list[float]]:
    """Task run times (s) by the step their Spark job describes (ingest, transcode)."""
    described = {e["Stage Info"]["Stage ID"]:
                 (e.get("Properties") or {}).get("spark.job.description", "")
                 for e in log if e["Event"] == "SparkListenerStageSubmitted"}
    out: dict[str, list[float]] = {"ingest": [], "transcode": []}
    for e in log:
        if e["Event"] == "SparkListenerTaskEnd":
            step = described.get(e["Stage ID"], "").split(" ", 1)[0]
            info = e["Task Info"]
            if step in out:
                out[step].append((info["Finish Time"] - info["Launch Time"]) / 1000)
    return out


def app_times(log: list[dict]) -> tuple[float, float, float]:
    """(application start, first task launch, application end), epoch seconds."""
    start = next(e["Timestamp"] for e in log if e["Event"] == "SparkListenerApplicationStart")
    end = next(e["Timestamp"] for e in log if e["Event"] == "SparkListenerApplicationEnd")
    first = min(e["Task Info"]["Launch Time"] for e in log
                if e["Event"] == "SparkListenerTaskEnd")
    return start / 1000, first / 1000, end / 1000


def submit(cluster_env: dict[str, str], nn: str, root: str, executors: int,
           event_dir: Path) -> float:
    event_dir.mkdir(parents=True)
    opts = ["--master", "yarn", "--deploy-mode", "cluster", "--num-executors",
            str(executors), "--executor-cores", "1", "--executor-memory", "512m",
            "--driver-memory", "512m",
            "--conf", f"spark.executor.extraJavaOptions={SMALL_JVM}",
            "--conf", f"spark.yarn.jars=local:{SPARK_HOME}/jars/*",
            "--conf", "spark.eventLog.enabled=true",
            "--conf", f"spark.eventLog.dir={event_dir.as_uri()}",
            "--conf", "spark.eventLog.compress=false",
            "--conf", "spark.eventLog.rolling.enabled=false",
            "--conf", "spark.dynamicAllocation.enabled=false"]
    t = time.monotonic()
    subprocess.run([str(REPO / "spark-submit.sh"), *opts, "transcode", f"{nn}/library/",
                    "--root", root, "--ladder", LADDER], env=cluster_env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    return time.monotonic() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--min", type=int, default=10)
    ap.add_argument("--max", type=int, default=30)
    ap.add_argument("--out", help="write the measured figures here (JSON)")
    args = ap.parse_args()
    import random

    from hdfs import InsecureClient

    work = Path(tempfile.mkdtemp(prefix="sparkcast-yarn-bench-"))
    rng = random.Random(7)
    sizes = ["854x480", "640x360", "426x240"]
    clips = []
    for i in range(args.clips):
        path = work / f"clip{i:02d}.mp4"
        seconds = rng.randint(args.min, args.max)
        make_source(path, seconds, gop=60, size=sizes[i % 3], rate="30")
        clips.append((path, seconds))
    cluster = MiniHadoop(log_level="WARN")
    info = cluster.start(work / "conf", timeout=300)
    try:
        client = InsecureClient(info.webhdfs, user="root")
        for path, _ in clips:
            client.upload(f"/library/{path.name}", str(path))
        env = {**os.environ, **cluster.env(), "HADOOP_USER_NAME": "root",
               "SPARKCAST_HDFS_USER": "root", "SPARKCAST_WEBHDFS_URL": info.webhdfs,
               "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
               "SPARKCAST_CONFIG": str(work / "none.toml")}
        walls, logs = {}, {}
        for n in (1, 2):
            client.makedirs(f"/root-{n}")
            walls[n] = submit(env, info.namenode_rpc, f"{info.namenode_rpc}/root-{n}", n,
                              work / f"events-{n}")
            logs[n] = events(work / f"events-{n}")
    finally:
        cluster.stop()
    media = sum(s for _, s in clips)
    speedup = walls[1] / walls[2]
    print(f"library: {len(clips)} clips, {media} s (480p/360p/240p 30 fps), ladder {LADDER}")
    print(f"{'executors x cores':18} {'wall s':>8} {'app start s':>11} {'tasks s':>8}")
    for n in (1, 2):
        start, first, end = app_times(logs[n])
        steps = step_seconds(logs[n])
        print(f"{f'{n} x 1':18} {walls[n]:8.1f} {first - start:11.1f} "
              f"{sum(map(sum, steps.values())):8.1f}")
    print(f"speed-up {speedup:.2f}, efficiency {speedup / 2:.2f}")
    steps = step_seconds(logs[2])
    start, first, _ = app_times(logs[2])
    measured = {
        "note": "measured by bench/library_yarn_scaling.py on the mini YARN (2 cores)",
        "app_start_s": round(first - start, 2),
        "media_seconds": media,
        "ingest_task_s_median": round(statistics.median(steps["ingest"]), 3),
        "ingest_s_per_media_s": round(sum(steps["ingest"]) / media, 4),
        "map_s_per_media_s": round(sum(steps["transcode"]) / media, 4),
        "map_tasks": len(steps["transcode"]),
        "wall_1x1": round(walls[1], 1), "wall_2x1": round(walls[2], 1),
    }
    print(json.dumps(measured, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(measured, indent=1) + "\n")


if __name__ == "__main__":
    main()
