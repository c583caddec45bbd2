#!/usr/bin/env bash
# Run the sparkcast Hadoop test cluster: HDFS (1 NameNode, 2 DataNodes,
# replication 2, WebHDFS) + YARN (1 ResourceManager, 1 NodeManager) in one
# small JVM on 127.0.0.1. Builds the launcher first if needed (build.sh).
#
#   deploy/hadoop/run.sh CONF_DIR [options]
#
# Writes CONF_DIR/{core,hdfs,yarn}-site.xml (HADOOP_CONF_DIR for spark-submit
# --master yarn and the hdfs client) and CONF_DIR/cluster.json (addresses),
# then prints READY on stdout and reads commands on stdin:
#   stop-datanode I | mark-dead I | start-datanode I | status | shutdown
# End of stdin also shuts it down (pass --no-stdin to run until SIGTERM).
#
# Options (passed to the launcher): --datanodes N --replication R
#   --nodemanagers M | --no-yarn  --nn-port P --webhdfs-port P --rm-port P
#   --rm-web-port P  --conf KEY=VALUE  --info FILE  --no-stdin
# Environment:
#   MINIHADOOP_WORK_DIR   where HDFS blocks and YARN dirs go (kept); default a
#                         fresh temporary directory, deleted on shutdown
#   MINIHADOOP_HEAP       -Xmx (default 128m)
#   MINIHADOOP_LOG_LEVEL  Hadoop log level on stderr (default INFO)
#   MINIHADOOP_JAVA_OPTS  more JVM options
#   JAVA_HOME             the JDK (17); exported, YARN containers need it
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 1 || "$1" == -* ]]; then
  sed -n '2,26p' "$0" >&2
  exit 2
fi
CONF_DIR="$1"
shift

"$HERE/build.sh" --if-needed --no-cds >&2

if [[ -z "${JAVA_HOME:-}" ]]; then
  JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
fi
export JAVA_HOME   # the NodeManager passes it on to containers ($JAVA_HOME/bin/java)
JAVA="$JAVA_HOME/bin/java"

mkdir -p "$CONF_DIR"
CONF_DIR="$(cd "$CONF_DIR" && pwd)"

work_args=()
if [[ -n "${MINIHADOOP_WORK_DIR:-}" ]]; then
  mkdir -p "$MINIHADOOP_WORK_DIR"
  WORK_DIR="$(cd "$MINIHADOOP_WORK_DIR" && pwd)"
else
  WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/minihadoop.XXXXXX")"
  work_args+=(--delete-work-dir)
fi

jvm=(
  # Live heap is ~40 MB after start-up and ~66 MB after a Spark job and some
  # WebHDFS traffic; 64m works but spends its time in full GCs. Most of the
  # RSS is not heap: ~70 MB metaspace, ~25 MB for ~210 thread stacks.
  "-Xmx${MINIHADOOP_HEAP:-128m}"
  -Xms64m
  -XX:MetaspaceSize=96m         # no metadata-triggered full GCs while starting
  -XX:+ExitOnOutOfMemoryError   # die loudly rather than limp on
  -Xss512k
  -XX:+UseSerialGC              # one small heap, no GC threads to speak of
  -XX:TieredStopAtLevel=1       # C1 only: faster start, smaller code cache
  -XX:ReservedCodeCacheSize=64m
  -XX:MaxDirectMemorySize=128m
  -Djava.net.preferIPv4Stack=true
  "-Dminihadoop.log.level=${MINIHADOOP_LOG_LEVEL:-INFO}"
  # Java 17: Guice (cglib) in the YARN web apps defines classes through
  # ClassLoader.defineClass; the rest of Hadoop 3.4 runs without further opens.
  --add-opens=java.base/java.lang=ALL-UNNAMED
  # JVM log lines (CDS and others) go to stderr, never to the stdout protocol.
  -Xlog:disable -Xlog:all=warning:stderr
)
if [[ -n "${MINIHADOOP_CDS_DUMP:-}" ]]; then
  jvm+=("-XX:ArchiveClassesAtExit=$MINIHADOOP_CDS_DUMP")
elif [[ -f "$HERE/target/minihadoop.jsa" ]]; then
  jvm+=("-XX:SharedArchiveFile=$HERE/target/minihadoop.jsa")
fi
# shellcheck disable=SC2206
jvm+=(${MINIHADOOP_JAVA_OPTS:-})

cd "$WORK_DIR"
exec "$JAVA" "${jvm[@]}" -cp "$(cat "$HERE/target/classpath.txt")" \
  sparkcast.hadoop.MiniHadoop "$CONF_DIR" --work-dir "$WORK_DIR" "${work_args[@]}" "$@"
