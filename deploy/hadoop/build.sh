#!/usr/bin/env bash
# Build the Hadoop test cluster launcher (deploy/hadoop) from nothing.
#
#   deploy/hadoop/build.sh              build (mvn package), write target/classpath.txt and
#                                       make target/minihadoop.jsa, a class-data-sharing
#                                       archive (one cluster start, ~15 s; later starts
#                                       then take ~25 % less CPU)
#   deploy/hadoop/build.sh --if-needed  only what is missing or older than its sources
#   deploy/hadoop/build.sh --no-cds     without the archive (run.sh works either way)
#
# Needs: Java 17 (javac) and Maven 3; everything else comes from Maven Central.
# Environment:
#   MAVEN_REPO      Maven local repository to use (e.g. deploy/hadoop/.m2); default ~/.m2
#   HADOOP_VERSION  org.apache.hadoop version to build against (default: the pom's, 3.4.1)
#   MVN             Maven command (default: mvn)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET="$HERE/target"
JAR="$TARGET/sparkcast-minihadoop-1.0.jar"
CLASSPATH_FILE="$TARGET/classpath.txt"

if_needed=0
cds=1
for a in "$@"; do
  case "$a" in
    --if-needed) if_needed=1 ;;
    --no-cds) cds=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

up_to_date() {
  [[ -f "$JAR" && -f "$CLASSPATH_FILE" ]] || return 1
  # A built version differing from the requested one means rebuild.
  if [[ -n "${HADOOP_VERSION:-}" ]] && ! grep -q "hadoop-client-minicluster-${HADOOP_VERSION}.jar" "$CLASSPATH_FILE"; then
    return 1
  fi
  [[ -z "$(find "$HERE/pom.xml" "$HERE/src" -newer "$CLASSPATH_FILE" -type f -print -quit)" ]] || return 1
  local f
  while IFS= read -r f; do [[ -f "$f" ]] || return 1; done < <(tr ':' '\n' < "$CLASSPATH_FILE")
  return 0
}

if [[ $if_needed == 1 ]] && up_to_date && { [[ $cds == 0 ]] || [[ -f "$TARGET/minihadoop.jsa" ]]; }; then
  exit 0
fi

command -v java >/dev/null || { echo "build.sh: java (17) not found on PATH" >&2; exit 1; }
MVN="${MVN:-mvn}"
command -v "${MVN%% *}" >/dev/null || { echo "build.sh: $MVN not found (apt-get install maven)" >&2; exit 1; }

mvn_args=(-B -q -f "$HERE/pom.xml")
if [[ -n "${MAVEN_REPO:-}" ]]; then
  mkdir -p "$MAVEN_REPO"
  mvn_args+=("-Dmaven.repo.local=$(cd "$MAVEN_REPO" && pwd)")
fi
if [[ -n "${HADOOP_VERSION:-}" ]]; then
  mvn_args+=("-Dhadoop.version=$HADOOP_VERSION")
fi

if ! up_to_date; then
  echo "build.sh: building the MiniHadoop launcher (mvn package)..." >&2
  rm -rf "$TARGET/lib" "$TARGET/minihadoop.jsa" "$CLASSPATH_FILE"
  $MVN "${mvn_args[@]}" package -DskipTests >&2
  # Explicit, sorted class path (a CDS archive needs the same one every run).
  { echo -n "$JAR"; for j in $(ls "$TARGET"/lib/*.jar | LC_ALL=C sort); do echo -n ":$j"; done; echo; } \
    > "$CLASSPATH_FILE.tmp"
  mv "$CLASSPATH_FILE.tmp" "$CLASSPATH_FILE"
fi

if [[ $cds == 1 && ! -f "$TARGET/minihadoop.jsa" ]]; then
  # Start the cluster once and dump the classes it loaded; run.sh then maps the
  # archive instead of loading and verifying those classes again.
  echo "build.sh: making the class-data-sharing archive (one cluster start)..." >&2
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/minihadoop-cds.XXXXXX")"
  if echo shutdown | MINIHADOOP_CDS_DUMP="$TARGET/minihadoop.jsa.tmp" MINIHADOOP_LOG_LEVEL=WARN \
       "$HERE/run.sh" "$tmp/conf" > "$tmp/out" 2> "$tmp/err" \
     && grep -q '^READY' "$tmp/out" && [[ -s "$TARGET/minihadoop.jsa.tmp" ]]; then
    mv "$TARGET/minihadoop.jsa.tmp" "$TARGET/minihadoop.jsa"
  else
    echo "build.sh: could not make the CDS archive (runs without it):" >&2
    tail -20 "$tmp/err" >&2 || true
    rm -f "$TARGET/minihadoop.jsa.tmp"
  fi
  rm -rf "$tmp"
fi
