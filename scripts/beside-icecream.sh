#!/usr/bin/env bash
# beside-icecream.sh: an icecream cluster and a swlaunch cluster on the same lab hosts (scripts/lab.sh), as a site
# has while it migrates. Both find their scheduler by UDP broadcast on the lab bridge (netname "lab"): icecream on
# its ports (scheduler 8765 TCP+UDP, daemons 10245), swlaunch on its own (8775, 8776). Then the same project is
# built at the same time through both (two copies of the source), and a burst of foreign datagrams (icecream's
# own discovery broadcast, garbage) is sent to swlaunch's discovery port.
# Passes when both clusters see their three hosts, both builds succeed, swlaunch's objects are identical to a
# plain build's, and swlaunch's scheduler still answers discovery and logged no warning or error about the noise.
#
#   scripts/beside-icecream.sh [--project DIR] [--cmake-args "..."] [--jobs N] [--work DIR]
# Needs icecc (apt-get install icecc) and googletest (the default project).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
project=/usr/src/googletest
cmake_args="-Dgtest_build_samples=ON"
jobs=6
work=/tmp/swlaunch-beside-icecream
while [[ $# -gt 0 ]]; do
  case $1 in
    --project) project=$2; shift 2 ;;
    --cmake-args) cmake_args=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v iceccd >/dev/null || { echo "needs icecream (apt-get install icecc)" >&2; exit 2; }
[[ -d $project ]] || { echo "no project at $project (apt-get install googletest)" >&2; exit 2; }
bin=$repo/.build/release
[[ -x $bin/swlaunch ]] || swift build -c release --static-swift-stdlib
export LAB_PREFIX=swice LAB_SUBNET=198.18.4
lab=$repo/scripts/lab.sh
rm -rf "$work"; mkdir -p "$work"/{src-ice,src-swl,build-ice,build-swl,reference,ice}
cp -a "$project/." "$work/src-ice/"; cp -a "$project/." "$work/src-swl/"
# icecream's programs drop to the icecc user: their logs and environments go where it can write.
chmod 777 "$work/ice"
ice=$work/ice
"$lab" down >/dev/null 2>&1 || true
trap '"$lab" down >/dev/null 2>&1 || true' EXIT
"$lab" up client h1 h2 >/dev/null
on() { local h=$1; shift; "$lab" run "$h" -- "$@"; }

# icecream: scheduler on h1, a daemon on every host, all by broadcast.
"$lab" run h1 -- icecc-scheduler -n lab -l "$ice/scheduler.log" -vv &
for h in client h1 h2; do
  "$lab" run $h -- iceccd -n lab -N "ice-$h" -b "$ice/env-$h" -l "$ice/iceccd-$h.log" -m 2 -vv &
done
# swlaunch: scheduler on h1, daemons found by broadcast too; the client takes no remote jobs.
key=$work/cluster.key
"$bin/swlaunch" key generate "$key" >/dev/null
"$lab" run h1 -- "$bin/swlaunch-scheduler" --netname lab --listen 0.0.0.0:8775 --key-file "$key" --log-level debug \
  >"$work/swl-scheduler.log" 2>&1 &
for h in h1 h2; do
  "$lab" run $h --hide "$work/src-swl" --hide "$work/build-swl" -- "$bin/swlaunchd" --name $h --netname lab \
    --state-dir "$work/state-$h" --max-jobs 2 --key-file "$key" >"$work/swl-$h.log" 2>&1 &
done
"$lab" run client -- "$bin/swlaunchd" --name client --netname lab --no-remote --state-dir "$work/state-client" \
  --key-file "$key" >"$work/swl-client.log" 2>&1 &

swl_hosts() { on client "$bin/swlaunch" status --json 2>/dev/null | python3 -c 'import json,sys; print(" ".join(sorted(h["name"] for h in json.load(sys.stdin)["hosts"])))' 2>/dev/null || true; }
ice_connected() { grep -l "Connected to scheduler" "$ice"/iceccd-*.log 2>/dev/null | wc -l; }
for _ in $(seq 150); do
  [[ $(swl_hosts) == "client h1 h2" && $(ice_connected) == 3 ]] && break
  sleep 0.2
done
echo "swlaunch cluster: $(swl_hosts)"
echo "icecream daemons connected to their scheduler: $(ice_connected) of 3"

echo "== reference: plain build"
on client cmake -S "$work/src-swl" -B "$work/build-swl" -G Ninja $cmake_args >/dev/null
on client ninja -C "$work/build-swl" -j2 >/dev/null
(cd "$work/build-swl" && find . -name "*.o" -exec cp --parents {} "$work/reference/" \;)
rm -rf "$work/build-swl"; mkdir -p "$work/build-swl"

echo "== both builds at once: icecc as one launcher, swlaunch as the other"
on client cmake -S "$work/src-ice" -B "$work/build-ice" -G Ninja $cmake_args \
  -DCMAKE_C_COMPILER_LAUNCHER=icecc -DCMAKE_CXX_COMPILER_LAUNCHER=icecc >/dev/null
on client cmake -S "$work/src-swl" -B "$work/build-swl" -G Ninja $cmake_args \
  -DCMAKE_C_COMPILER_LAUNCHER="$bin/swlaunch" -DCMAKE_CXX_COMPILER_LAUNCHER="$bin/swlaunch" >/dev/null
on client "$bin/swlaunch" stats --reset >/dev/null
# The noise: icecream's scheduler discovery query, garbage and an oversized datagram, at swlaunch's port.
swl_discovery_noise() {
  on client python3 - "$("$lab" ip h1)" <<'PY'
import socket, sys, os
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for payload in [bytes([0x25]) + b"lab", b"SWLAUNCH-DISCOVER 1 lab nothex", b"SWLAUNCH-SCHEDULER 1 lab 1 x", os.urandom(64), b"x" * 1400]:
    for _ in range(50):
        s.sendto(payload, (sys.argv[1], 8775))
print("sent 250 foreign datagrams to swlaunch's discovery port")
PY
}
t0=$(date +%s.%N)
ice_rc=0; swl_rc=0
( on client ninja -C "$work/build-ice" -j"$jobs" >"$work/build-ice.log" 2>&1 ) & ice_build=$!
( on client ninja -C "$work/build-swl" -j"$jobs" >"$work/build-swl.log" 2>&1 ) & swl_build=$!
swl_discovery_noise
wait $ice_build || ice_rc=$?
wait $swl_build || swl_rc=$?
echo "both builds done in $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s: icecc build rc $ice_rc, swlaunch build rc $swl_rc"

differ=0
while IFS= read -r o; do cmp -s "$work/reference/$o" "$work/build-swl/$o" || { echo "DIFFERS: $o"; differ=$((differ + 1)); }; done \
  < <(cd "$work/reference" && find . -name '*.o')
objects=$(cd "$work/reference" && find . -name '*.o' | wc -l)
stats=$(on client "$bin/swlaunch" stats --json)
echo "swlaunch: $(echo "$stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["remote"], "remote,", d["fallback"], "fallback", d["fallback_reasons"])'); $differ of $objects objects differ from the plain build"
ice_jobs=$(grep -c " NEW " "$ice/scheduler.log" || true)
ice_remote=$(cat "$ice"/iceccd-h1.log "$ice"/iceccd-h2.log | grep -c "Remote compilation completed" || true)
echo "icecream: $ice_jobs jobs scheduled, $ice_remote compiled on h1 and h2"
# swlaunch's discovery still answers after the noise, and nothing above debug was logged about it.
answered=$(on client python3 - "$("$lab" ip h1)" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(b"SWLAUNCH-DISCOVER 1 lab " + b"0" * 32, (sys.argv[1], 8775))
try: print(s.recvfrom(512)[0].decode().split()[0])
except socket.timeout: print("no answer")
PY
)
echo "swlaunch discovery after the noise: $answered"
noisy=$(grep -ciE "warning|error|critical" "$work/swl-scheduler.log" || true)
echo "swlaunch scheduler warnings/errors: $noisy"
echo "swlaunch cluster at the end: $(swl_hosts)"
echo "icecream daemons still connected: $(( $(ice_connected) - $(grep -l "scheduler closed connection" "$ice"/iceccd-*.log 2>/dev/null | wc -l) )) of 3"
[[ $ice_rc == 0 && $swl_rc == 0 && $ice_remote -gt 0 && $differ == 0 && $answered == SWLAUNCH-SCHEDULER && $noisy == 0 && $(swl_hosts) == "client h1 h2" ]]
