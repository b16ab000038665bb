#!/usr/bin/env bash
# The main job on one machine: starts a scheduler and two helper daemons plus a client daemon on loopback,
# builds the bundled example project (examples/hello) with CMake and ninja through swlaunch, runs it,
# and prints where each compile ran. Everything it starts is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
scripts/deps.sh
swift build -c release --static-swift-stdlib
bin=$repo/.build/release
work=$(mktemp -d /tmp/swlaunch-demo.XXXXXX)
SCHEDULER_ARGS=(--history "$work/history.sqlite") HELPER_ARGS=()
source scripts/loopback-cluster.sh
"$bin/swlaunch" status
cmake -S examples/hello -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER_LAUNCHER="$bin/swlaunch" -DCMAKE_CXX_COMPILER_LAUNCHER="$bin/swlaunch" >/dev/null
"$bin/swlaunch" stats --reset >/dev/null
ninja -C "$work/build"
"$work/build/hello"
echo
echo "Where the compiles ran:"
"$bin/swlaunch" stats
echo "(logs in $work)"
