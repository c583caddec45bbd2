#!/usr/bin/env bash
# Submit a sparkcast job to any Spark master, shipping the project's code.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: ./spark-submit.sh [SPARK OPTIONS] transcode|live [JOB ARGUMENTS]

Submits a sparkcast job with spark-submit, shipping the project's Python packages
(everything but serve/) as a zip through --py-files.

  transcode INPUT... [--chunk-seconds N] [--ladder SPEC] [--root URL] [--fail-fast] ...
      transcode videos: files, directories, globs or lists of paths (.txt/.csv/.parquet),
      local or hdfs://; the same arguments as `sparkcast submit`. The exit status is
      non-zero when any video failed; the job table (sparkcast jobs) says which and why.
  live ...
      the live job: the same arguments as `sparkcast live`; in cluster mode its root
      must be hdfs://, and YARN retries a driver that dies (4 attempts an hour), which
      resumes from its checkpoint

SPARK OPTIONS are passed to spark-submit unchanged, for example
  --master local[2] | spark://HOST:7077 | yarn     (default: local[*])
  --deploy-mode client | cluster      (cluster: transcode with hdfs:// INPUTs, live on an
                     hdfs:// root;
                     the driver runs in YARN and every SPARKCAST_* variable set here is
                     passed to it; nothing on this host is needed after submission)
  --num-executors N   --executor-memory 2g   --executor-cores 1   --conf KEY=VALUE
  --queue NAME  --principal P --keytab FILE           (YARN)
The job's own --master is used when no --master comes before the job name.

Environment
  HADOOP_CONF_DIR    Hadoop client configuration: needed for --master yarn; also gives
                     the WebHDFS address of an hdfs:// root (dfs.namenode.http-address,
                     or an HA nameservice's NameNodes)
  SPARKCAST_ROOT     storage root (file:///path or hdfs://namenode:8020/path); an HDFS
                     root must exist and be writable by the submitting user
  SPARKCAST_WEBHDFS_URL  WebHDFS address when HADOOP_CONF_DIR does not give it
                     (default http://NAMENODE:9870)
  SPARK_SUBMIT       spark-submit to use (default: the one on PATH, from pyspark)
  PYSPARK_PYTHON     Python for the driver and executors (default: python3 on PATH); it
                     must exist at the same path on every executor host

Executors need Python 3.11 with ffmpeg-python, hdfs and pyarrow, and ffmpeg on PATH.
Tasks write to HDFS through Spark's Hadoop client with build/sparkcast-spark-io.jar,
built here on first use (deploy/spark-io/build.sh: needs javac) and shipped with --jars.

Examples (docs/HADOOP.md)
  ./spark-submit.sh --master spark://master:7077 --executor-memory 1g \
      transcode talk.mp4 --root hdfs://nn:8020/sparkcast --ladder 720:2800k,360:800k
  HADOOP_CONF_DIR=/etc/hadoop/conf ./spark-submit.sh --master yarn --num-executors 4 \
      --executor-cores 2 --executor-memory 2g transcode talk.mp4 --root hdfs://nn:8020/sparkcast
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
cluster=0
prev=""
# Tasks write HDFS files through this jar (jobs/task_output.py): add it to any --jars.
io_jar="$("$here/deploy/spark-io/build.sh" --print)"
jars="$io_jar"
kept=()
for ((i = 0; i < ${#spark_opts[@]}; i++)); do
  case "${spark_opts[i]}" in
    --jars=*) jars="${spark_opts[i]#--jars=},$jars" ;;
    --jars) jars="${spark_opts[i + 1]},$jars"; i=$((i + 1)) ;;
    *) kept+=("${spark_opts[i]}") ;;
  esac
done
spark_opts=(${kept[@]+"${kept[@]}"} --jars "$jars")
for opt in "${spark_opts[@]+"${spark_opts[@]}"}"; do
  [[ "$opt" == "--master" || "$opt" == --master=* ]] && has_master=1
  if [[ "$opt" == --deploy-mode=cluster || ( "$prev" == --deploy-mode && "$opt" == cluster ) ]]; then
    cluster=1
  fi
  prev="$opt"
done
if [[ $cluster -eq 1 && "$job" == live ]]; then
  # The driver runs in a YARN container, somewhere: it finds the chunks only on HDFS.
  root="${SPARKCAST_ROOT:-}"
  for ((i = 1; i <= $#; i++)); do
    case "${!i}" in
      --root=*) root="${!i#--root=}" ;;
      --root) j=$((i + 1)); root="${!j:-}" ;;
    esac
  done
  if [[ "$root" != hdfs://* ]]; then
    echo "spark-submit.sh: the live job in cluster mode needs an hdfs:// root (--root or" \
         "SPARKCAST_ROOT; got '${root:-none}'): its driver runs in a YARN container" >&2
    exit 2
  fi
fi
if [[ $has_master -eq 0 ]]; then
  # `transcode ... --master M` (the sparkcast option) also picks the master.
  master="local[*]"
  args=("$@")
  for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
      --master=*) master="${args[i]#--master=}" ;;
      --master) [[ $((i + 1)) -lt ${#args[@]} ]] && master="${args[i + 1]}" ;;
    esac
  done
  spark_opts+=(--master "$master")
fi

# Ship the packages as one zip, rebuilt each time so executors run this very code.
build="$here/build"
mkdir -p "$build"
zip="$build/sparkcast-py.zip"
# Written under a temporary name and renamed: a job submitted at the same time keeps
# reading a whole zip.
python3 - "$here" "$zip" <<'PY'
import os, sys, zipfile
root, out = sys.argv[1], sys.argv[2]
tmp = f"{out}.{os.getpid()}.tmp"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for pkg in ("core", "manifest", "hdfs_layout", "store", "ingest", "jobs", "sparkcast"):
        for d, _, files in os.walk(os.path.join(root, pkg)):
            for f in files:
                if f.endswith(".py"):
                    p = os.path.join(d, f)
                    z.write(p, os.path.relpath(p, root))
os.replace(tmp, out)
PY

# The interpreter itself, not a wrapper such as a pyenv shim: executors run this path.
python="${PYSPARK_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}"
export PYSPARK_PYTHON="$python" PYSPARK_DRIVER_PYTHON="$python"
defaults=()
if [[ "$job" == transcode ]]; then
  # A failed video fails the application (non-zero exit) but another attempt would only
  # fail it again; a re-submit resumes instead. (Options given here come later and win.)
  defaults+=(--conf spark.yarn.maxAppAttempts=1)
fi
if [[ "$job" == live ]]; then
  # A live job that dies is started again by YARN and resumes from its checkpoint; the
  # window keeps a long-running job from using its attempts up over weeks (the
  # ResourceManager's yarn.resourcemanager.am.max-attempts caps the count).
  defaults+=(--conf spark.yarn.maxAppAttempts=4
             --conf spark.yarn.am.attemptFailuresValidityInterval=1h)
fi
if [[ $cluster -eq 1 ]]; then
  # The driver runs in a YARN container: give it this shell's sparkcast settings.
  while IFS= read -r var; do
    defaults+=(--conf "spark.yarn.appMasterEnv.$var=${!var}")
  done < <(compgen -e | grep '^SPARKCAST_' || true)
  [[ -n "${HADOOP_USER_NAME:-}" ]] && \
    defaults+=(--conf "spark.yarn.appMasterEnv.HADOOP_USER_NAME=$HADOOP_USER_NAME")
fi
exec "${SPARK_SUBMIT:-spark-submit}" \
  --conf "spark.pyspark.python=$python" \
  --conf spark.ui.showConsoleProgress=false \
  --conf spark.log.level=WARN \
  "${defaults[@]+"${defaults[@]}"}" \
  "${spark_opts[@]}" \
  --py-files "$zip" \
  "$here/sparkcast/spark_entry.py" "$job" "$@"
