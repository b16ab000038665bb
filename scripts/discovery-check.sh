#!/usr/bin/env bash
# Checks UDP broadcast discovery inside lab namespaces only (never on the machine's own network):
# a scheduler answering for a netname on one host, daemons on two others started with --netname and no
# --scheduler, a daemon with another netname that must not join. Prints the cluster as the scheduler sees it.
set -euo pipefail
cd "$(dirname "$0")/.."
export LAB_PREFIX=swdisc LAB_SUBNET=198.18.2
lab=$(pwd)/scripts/lab.sh
bin=$(pwd)/.build/release
[[ -x $bin/swlaunchd ]] || swift build -c release --static-swift-stdlib
work=$(mktemp -d /tmp/swlaunch-discovery.XXXXXX)
"$lab" down >/dev/null 2>&1 || true
trap '"$lab" down >/dev/null 2>&1 || true' EXIT
"$lab" up sched a b other stranger >/dev/null
# Discovery answers are authenticated with the cluster key: "other" holds the key but another netname, and
# "stranger" the right netname but another key; neither may join.
"$bin/swlaunch" key generate "$work/cluster.key" >/dev/null
"$bin/swlaunch" key generate "$work/stranger.key" >/dev/null
"$lab" run sched -- "$bin/swlaunch-scheduler" --netname lab --listen 0.0.0.0:8775 --key-file "$work/cluster.key" 2>"$work/scheduler.log" &
for h in a b; do
  "$lab" run $h -- "$bin/swlaunchd" --name $h --netname lab --state-dir "$work/state-$h" --key-file "$work/cluster.key" 2>"$work/$h.log" &
done
"$lab" run other -- "$bin/swlaunchd" --name other --netname elsewhere --state-dir "$work/state-other" --key-file "$work/cluster.key" 2>"$work/other.log" &
"$lab" run stranger -- "$bin/swlaunchd" --name stranger --netname lab --state-dir "$work/state-stranger" --key-file "$work/stranger.key" 2>"$work/stranger.log" &
for _ in $(seq 50); do
  n=$("$lab" run a -- "$bin/swlaunch" status --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hosts"]))' 2>/dev/null || echo 0)
  [[ $n -ge 2 ]] && break
  sleep 0.2
done
"$lab" run a -- "$bin/swlaunch" status
hosts=$("$lab" run a -- "$bin/swlaunch" status --json | python3 -c 'import json,sys; print(" ".join(sorted(h["name"] for h in json.load(sys.stdin)["hosts"])))')
echo "joined: $hosts"
grep -h "found scheduler" "$work"/a.log "$work"/b.log
if grep -q "found scheduler" "$work/stranger.log"; then echo "stranger (another key) took a discovery answer" >&2; exit 1; fi
echo "stranger (another key): no authenticated answer, did not join"
[[ $hosts == "a b" ]]
