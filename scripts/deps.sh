#!/usr/bin/env bash
# Installs the Debian packages swlaunch builds and tests with (needs root or sudo).
set -euo pipefail
packages=(libzstd-dev libarchive-dev pkg-config bubblewrap gcc g++ make cmake ninja-build python3 colcon python3-colcon-cmake ccache g++-arm-linux-gnueabihf g++-arm-linux-gnueabi)
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
