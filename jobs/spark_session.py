"""Building the SparkSession, in one place and never at import time."""

from __future__ import annotations

import logging
import os
import sys

from hdfs_layout import StorageError
from jobs.task_output import jar_conf

log = logging.getLogger(__name__)

LOCAL_DRIVER_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def get_session(app_name: str, master: str | None = None, extra_conf: dict[str, str] | None = None):
    """The job's SparkSession.

    Under spark-submit the master and options come from spark-submit; otherwise
    `master` (default local[*]) is used. Executors run this same Python.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if (master or "local").startswith("local"):
        # Loopback only: these machines have no routable name, and nothing else needs to reach us.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    if "PYSPARK_GATEWAY_PORT" in os.environ:
        # Under spark-submit: connect to its JVM first, or SparkConf() is an empty local
        # dict and the builder's master would override spark-submit's --master and --conf.
        SparkContext._ensure_initialized()
    conf = SparkConf()
    extra = dict(extra_conf or {})
    builder = SparkSession.builder.appName(app_name)
    if not conf.contains("spark.master"):
        builder = builder.master(master or "local[*]")
    defaults = {
        "spark.ui.showConsoleProgress": "false",  # sparkcast shows its own progress
        "spark.ui.enabled": "false",  # nothing to browse; saves start-up time and a port
        "spark.python.worker.reuse": "true",
        "spark.sql.shuffle.partitions": "4",
        # The library job runs several videos' Spark jobs at once, each from its own
        # thread and pool (jobs/library.py): fair sharing interleaves their tasks.
        "spark.scheduler.mode": "FAIR",
    }
    if not conf.contains("spark.master") and (master or "local").startswith("local"):
        # The local JVM only schedules: the work is ffmpeg's. Its C2 JIT and parallel GC
        # burned ~1.6 cores for the first ~30 s of a live job, while the first chunks
        # waited (docs/BENCHMARKS.md, "Live latency").
        defaults["spark.driver.extraJavaOptions"] = LOCAL_DRIVER_JVM
    if not conf.contains("spark.master"):
        # Tasks write HDFS files through this jar (jobs/task_output.py); spark-submit.sh
        # passes it with --jars.
        try:
            defaults["spark.jars"] = jar_conf(extra.pop("spark.jars", None))
        except StorageError as exc:
            log.warning("%s; jobs on an hdfs:// root cannot write", exc)
    for key, value in {**defaults, **extra}.items():
        if not conf.contains(key):
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
