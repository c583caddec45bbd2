#!/usr/bin/env bash
# Install everything sparkcast needs, from nothing, idempotently (Debian 12, as root or with sudo).
#   apt:   ffmpeg, chromium, nginx + rtmp module, MariaDB, GStreamer, Java 17 + Maven, wrk
#   pip:   the project (editable) with its test and MySQL extras
#   npm:   the player's pinned front-end libraries (player/package-lock.json)
#   Maven: the Hadoop mini cluster used by the tests (deploy/hadoop)
#   javac: the Hadoop OutputFormat of the Spark jobs (deploy/spark-io)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"

APT_PACKAGES=(
  ffmpeg chromium nginx libnginx-mod-rtmp mariadb-server libmariadb-dev pkg-config
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-libav
  openjdk-17-jdk-headless maven wrk zip
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
# Debian enables and starts these on install; sparkcast runs its own instances.
for svc in nginx mariadb; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done

python3 -m pip install -q --upgrade pip >/dev/null
# compat mode: the source tree itself goes on sys.path, so Spark's Python workers import it too.
python3 -m pip install -q -e ".[test,mysql]" --config-settings editable_mode=compat

if [[ -f player/package-lock.json ]]; then
  (cd player && npm ci --no-audit --no-fund --loglevel=error)
fi

# The OutputFormat Spark tasks write HDFS files through (jobs/task_output.py).
deploy/spark-io/build.sh
if [[ -x deploy/hadoop/build.sh ]]; then
  deploy/hadoop/build.sh
fi
echo "setup: done"
