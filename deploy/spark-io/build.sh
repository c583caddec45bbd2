#!/usr/bin/env bash
# Build build/sparkcast-spark-io.jar: the Hadoop OutputFormat through which Spark tasks write
# named files to HDFS (deploy/spark-io/src). Compiled against the Hadoop client that pyspark
# bundles, so it needs only a JDK (javac, jar) and the installed pyspark.
#   deploy/spark-io/build.sh              build if missing or older than its sources
#   deploy/spark-io/build.sh --print      ... and print the jar's path
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
jar="$root/build/sparkcast-spark-io.jar"
python="${PYSPARK_PYTHON:-python3}"

if [[ ! -f "$jar" || -n "$(find "$here/src" -newer "$jar" -type f -print -quit)" ]]; then
  command -v javac >/dev/null || { echo "spark-io/build.sh: javac not found (apt-get install openjdk-17-jdk-headless)" >&2; exit 1; }
  jars="$("$python" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/sparkcast-io.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  javac --release 17 -nowarn -cp "$jars/*" -d "$tmp/classes" $(find "$here/src" -name '*.java')
  mkdir -p "$(dirname "$jar")"
  jar cf "$jar.$$.tmp" -C "$tmp/classes" .
  mv "$jar.$$.tmp" "$jar"
fi
if [[ "${1:-}" == --print ]]; then echo "$jar"; fi
