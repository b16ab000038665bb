#!/usr/bin/env bash
# Installs the Debian packages swlaunch builds and tests with (needs root or sudo).
# libsqlite3-dev: the scheduler's history (GRDB); chromium, python3-websocket: the dashboard test
# (scripts/dashboard-check.py); python3-prometheus-client: the /metrics test's parser; tmux: the monitor test;
# postgresql: BuildGrid's database for the REAPI tests (BuildGrid itself comes from PyPI: scripts/buildgrid.sh install).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
packages=(libzstd-dev libarchive-dev libsqlite3-dev pkg-config bubblewrap gcc g++ make cmake ninja-build python3 colcon python3-colcon-cmake ccache
          g++-arm-linux-gnueabihf g++-arm-linux-gnueabi chromium python3-websocket python3-prometheus-client tmux postgresql)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
"$here/buildgrid.sh" install
