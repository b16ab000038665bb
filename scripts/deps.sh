#!/usr/bin/env bash
# Installs the Debian packages swlaunch builds and tests with (needs root or sudo).
# libsqlite3-dev: the scheduler's history (GRDB); chromium, python3-websocket: the dashboard test
# (scripts/dashboard-check.py); python3-prometheus-client: the /metrics test's parser; tmux: the monitor test.
set -euo pipefail
packages=(libzstd-dev libarchive-dev libsqlite3-dev pkg-config bubblewrap gcc g++ make cmake ninja-build python3 colcon python3-colcon-cmake ccache
          g++-arm-linux-gnueabihf g++-arm-linux-gnueabi chromium python3-websocket python3-prometheus-client tmux)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
