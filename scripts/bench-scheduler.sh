#!/usr/bin/env bash
# A scheduler for a thousand hosts: starts a release swlaunch-scheduler pinned to one core (taskset -c 0) and
# swlaunch-scheduler-bench on the other, with 1000 simulated daemons (registered, heartbeats every 2 s, each from
# its own loopback address) and clients whose every grant is followed by jobStarted and jobDone, as a real job's.
# Closed loop (clients x requests in flight): the most grants a second the core gives. Open loop (--rate): grant
# latency below saturation. Each configuration runs --runs times (default 3); the table has the medians.
#   scripts/bench-scheduler.sh [--runs N] [--hosts N] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3 hosts=1000 seconds=8
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --hosts) hosts=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--hosts N] [--seconds S]" >&2; exit 2 ;;
  esac
done
swift build -c release --product swlaunch-scheduler >/dev/null
swift build -c release --product swlaunch-scheduler-bench >/dev/null
bin=.build/release
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$(mktemp -d /tmp/swlaunch-bench-scheduler.XXXXXX)
sched=""
trap '[[ -n $sched ]] && kill $sched 2>/dev/null; true' EXIT
one() { # ARGS...: one run against a fresh scheduler; prints the bench's two result lines
  taskset -c 0 "$bin/swlaunch-scheduler" --listen "127.0.0.1:$port" --history none --log-level warning 2>>"$out/scheduler.log" &
  sched=$!
  sleep 1
  taskset -c 1 "$bin/swlaunch-scheduler-bench" --scheduler "127.0.0.1:$port" --hosts "$hosts" --warmup 3 --seconds "$seconds" \
    --scheduler-pid "$sched" "$@" | tail -2
  kill "$sched"; wait "$sched" 2>/dev/null || true; sched=""
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf "%-28s %10s %12s %8s %8s %8s %8s\n" "load ($hosts hosts)" "grants/s" "per CPU-s" "p50 ms" "p90 ms" "p99 ms" "p99.9"
for config in "--clients 32 --window 4" "--clients 16 --window 1" "--clients 16 --rate 2000" "--clients 16 --rate 8000" "--clients 16 --rate 12000" "--clients 16 --rate 16000" "--clients 16 --rate 20000"; do
  : > "$out/runs"
  for _ in $(seq "$runs"); do
    # shellcheck disable=SC2086
    one $config >> "$out/runs"
  done
  field() { grep "$1" "$out/runs" | sed -E "s|.*$2.*|\\1|" | median; }
  rate=$(field "^grants" 'grants: [0-9]+ in [0-9.]+ s = ([0-9]+)/s')
  per=$(field "^grants" '= ([0-9]+) grants per CPU second')
  printf "%-28s %10s %12s %8s %8s %8s %8s\n" "$config" "$rate" "$per" "$(field latency 'p50 ([0-9.]+) ms')" \
    "$(field latency 'p90 ([0-9.]+) ms')" "$(field latency 'p99 ([0-9.]+) ms')" "$(field latency 'p99.9 ([0-9.]+) ms')"
done
echo "(runs: $runs each, medians; raw lines in $out/runs for the last configuration)"
