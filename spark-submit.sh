#!/usr/bin/env bash
# Submit a sparkcast job to any Spark master, shipping the project's code.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: ./spark-submit.sh [SPARK OPTIONS] transcode|live [JOB ARGUMENTS]

Submits a sparkcast job with spark-submit, shipping the project's Python packages
(sparkcast, hdfs_layout, ingest, jobs) as a zip through --py-files.

  transcode INPUT [--stream-id ID] [--chunk-seconds N] [--ladder SPEC] [--root URL] ...
      ingest INPUT and transcode it: the same arguments as `sparkcast submit`
  live ...
      the live job: the same arguments as `sparkcast live`

SPARK OPTIONS are passed to spark-submit unchanged, for example
  --master local[2] | spark://HOST:7077 | yarn     (default: local[*])
  --deploy-mode client                               (cluster mode is not supported: the
                                                      driver reads INPUT from this machine)
  --conf KEY=VALUE   --num-executors N   --executor-memory 2g   --executor-cores 1

Environment
  HADOOP_CONF_DIR    Hadoop client configuration (needed for --master yarn and hdfs:// roots)
  SPARKCAST_ROOT     storage root (file:///path or hdfs://namenode:8020/path)
  SPARK_SUBMIT       spark-submit to use (default: the one on PATH, from pyspark)

Executors need Python 3.11 with ffmpeg-python, hdfs and pyarrow, and ffmpeg on PATH.
USAGE
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
spark_opts=()
job=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    transcode|live) job="$1"; shift; break ;;
    --*=*) spark_opts+=("$1"); shift ;;
    --verbose|--supervise) spark_opts+=("$1"); shift ;;
    --*) [[ $# -ge 2 ]] || { echo "spark-submit.sh: $1 needs a value" >&2; exit 2; }
         spark_opts+=("$1" "$2"); shift 2 ;;
    *) echo "spark-submit.sh: expected a job name (transcode or live), got '$1'" >&2
       usage >&2; exit 2 ;;
  esac
done
[[ -n "$job" ]] || { usage >&2; exit 2; }

has_master=0
for opt in "${spark_opts[@]+"${spark_opts[@]}"}"; do
  [[ "$opt" == "--master" || "$opt" == --master=* ]] && has_master=1
done
[[ $has_master -eq 1 ]] || spark_opts+=(--master "local[*]")

# Ship the packages as one zip, rebuilt each time so executors run this very code.
build="$here/build"
mkdir -p "$build"
zip="$build/sparkcast-py.zip"
rm -f "$zip"
python3 - "$here" "$zip" <<'PY'
import os, sys, zipfile
root, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for pkg in ("sparkcast", "hdfs_layout", "ingest", "jobs"):
        for d, _, files in os.walk(os.path.join(root, pkg)):
            for f in files:
                if f.endswith(".py"):
                    p = os.path.join(d, f)
                    z.write(p, os.path.relpath(p, root))
PY

python="${PYSPARK_PYTHON:-$(command -v python3)}"
export PYSPARK_PYTHON="$python" PYSPARK_DRIVER_PYTHON="$python"
exec "${SPARK_SUBMIT:-spark-submit}" \
  --conf "spark.pyspark.python=$python" \
  --conf spark.ui.showConsoleProgress=false \
  --conf spark.log.level=WARN \
  "${spark_opts[@]}" \
  --py-files "$zip" \
  "$here/jobs/spark_entry.py" "$job" "$@"
