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
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sched=$(port)
"$bin/swlaunch-scheduler" --listen "127.0.0.1:$sched" 2>"$work/scheduler.log" & pids+=($!)
for h in helper1 helper2; do
  "$bin/swlaunchd" --name $h --listen "127.0.0.1:$(port)" --scheduler "127.0.0.1:$sched" \
    --socket "$work/$h.sock" --state-dir "$work/state-$h" 2>"$work/$h.log" & pids+=($!)
done
export SWLAUNCH_SOCKET=$work/client.sock
"$bin/swlaunchd" --name client --no-remote --scheduler "127.0.0.1:$sched" --socket "$SWLAUNCH_SOCKET" \
  --state-dir "$work/state-client" 2>"$work/client.log" & pids+=($!)
for _ in $(seq 100); do
  "$bin/swlaunch" status --json 2>/dev/null | grep -q helper2 && break
  sleep 0.1
done
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
