#!/usr/bin/env bash
# Builds a real CMake project through swlaunch on a 3-host lab cluster (scripts/lab.sh): a slow client
# (--no-remote, CPU-capped) and two helpers that cannot see the client's source and build folders.
# Compares every object with a plain local build of the same tree, runs ctest, and prints the share
# of compiles that ran remote. With --kill-after S, helper h2's daemon gets SIGKILL S seconds into the build.
#
#   scripts/cluster-build.sh [--project DIR] [--cmake-args "..."] [--jobs N] [--client-cpu F] [--kill-after S] [--lab TOOL]
# --work DIR is the scratch folder (default /tmp/swlaunch-cluster); --run CMD runs CMD (on the client) after ctest.
# Cross compiling for a Pi from x86_64 helpers, for example:
#   scripts/cluster-build.sh --work /tmp/swlaunch-cross --cmake-args "-Dgtest_build_samples=ON -DCMAKE_SYSTEM_NAME=Linux
#     -DCMAKE_SYSTEM_PROCESSOR=arm -DCMAKE_C_COMPILER=arm-linux-gnueabihf-gcc -DCMAKE_CXX_COMPILER=arm-linux-gnueabihf-g++
#     -DCMAKE_CROSSCOMPILING_EMULATOR=qemu-arm;-L;/usr/arm-linux-gnueabihf"
# --config FILE is copied to WORK/swlaunch.toml, the project file the client's compiles read (for example a
# [toolchains] map; give archive paths absolute).
# --reuse-reference keeps the plain build's objects from the previous run of the same project.
# --tune checks `swlaunch ninjalog` on the build: its critical path against scripts/critical-path.py; then, after
# `ninja -t clean`, a second build at the same -j (helpers now hold the environment and the files) whose log and
# job journal predict the wall time per -j, and a third build at the recommended -j to compare with the prediction.
# --helper-jobs N sets each helper's slots (default 2); --pin-helpers pins helper hN to CPU N-1 (netlab's --cpus),
# so that on a small machine each helper slot has a processor of its own, as it would on real helpers.
# --lab names another host tool with the same commands as scripts/lab.sh (up, down, ip, run --cpu --hide).
# Default project: Debian's googletest (/usr/src/googletest, -Dgtest_build_tests=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
project=/usr/src/googletest
cmake_args="-Dgtest_build_tests=ON"
jobs=8
client_cpu=0.25
kill_after=""
reuse=0
work=/tmp/swlaunch-cluster
run_after=""
tune=0
config=""
helper_jobs=2
pin=0
lab=$repo/scripts/lab.sh
source "$repo/scripts/lab-lib.sh"
while [[ $# -gt 0 ]]; do
  case $1 in
    --project) project=$2; shift 2 ;;
    --cmake-args) cmake_args=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --client-cpu) client_cpu=$2; shift 2 ;;
    --kill-after) kill_after=$2; shift 2 ;;
    --reuse-reference) reuse=1; shift ;;
    --tune) tune=1; shift ;;
    --config) config=$(readlink -f "$2"); shift 2 ;;
    --helper-jobs) helper_jobs=$2; shift 2 ;;
    --pin-helpers) pin=1; shift ;;
    --work) work=$2; shift 2 ;;
    --run) run_after=$2; shift 2 ;;
    --lab) lab=$(readlink -f "$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -d $project ]] || { echo "no project at $project (apt-get install googletest)" >&2; exit 2; }
bin=$repo/.build/release
[[ -x $bin/swlaunch ]] || swift build -c release --static-swift-stdlib
if [[ $reuse == 1 && -f $work/reference.done && $(cat "$work/reference.done") == "$project $cmake_args" ]]; then
  rm -rf "$work/build" "$work"/state-* "$work"/*.log; mkdir -p "$work/build"
else
  reuse=0
  rm -rf "$work"; mkdir -p "$work/src" "$work/build" "$work/reference"
  cp -a "$project/." "$work/src/"
fi
src=$work/src build=$work/build
rm -f "$work/swlaunch.toml"
[[ -z $config ]] || install -m 644 "$config" "$work/swlaunch.toml"

"$lab" down >/dev/null 2>&1 || true
trap '"$lab" down >/dev/null 2>&1 || true' EXIT
"$lab" up client h1 h2 >/dev/null
h1=$("$lab" ip h1)

# Every process of the lab cluster holds one cluster key: connections are mutual TLS.
key=$work/cluster.key
rm -f "$key"; "$bin/swlaunch" key generate "$key" >/dev/null
"$lab" run h1 -- "$bin/swlaunch-scheduler" --listen 0.0.0.0:8775 --key-file "$key" >"$work/scheduler.log" 2>&1 &
for h in h1 h2; do
  pinning=(); [[ $pin == 0 ]] || pinning=(--cpus "$(( ${h#h} - 1 ))")
  "$lab" run $h "${pinning[@]}" --hide "$src" --hide "$build" -- "$bin/swlaunchd" --name $h --listen 0.0.0.0:8776 \
    --scheduler "$h1:8775" --state-dir "$work/state-$h" --max-jobs "$helper_jobs" --key-file "$key" >"$work/$h.log" 2>&1 &
  echo $! > "$work/$h.pid"
done
"$lab" run client --cpu "$client_cpu" -- "$bin/swlaunchd" --name client --no-remote --local-jobs 1 \
  --scheduler "$h1:8775" --state-dir "$work/state-client" --key-file "$key" >"$work/client.log" 2>&1 &
on_client() { "$lab" run client -- "$@"; }
wait_for_hosts client 3

if [[ $reuse == 0 ]]; then
  echo "== reference: plain local build"
  on_client cmake -S "$src" -B "$build" -G Ninja $cmake_args >"$work/reference-configure.log"
  t0=$(date +%s.%N)
  on_client ninja -C "$build" -j2 >"$work/reference-build.log"
  t1=$(date +%s.%N)
  (cd "$build" && find . -name "*.o" -exec cp --parents {} "$work/reference/" \;)
  # ninja reads each compile's dependency file into .ninja_deps and deletes it: keep what it recorded.
  on_client ninja -C "$build" -t deps | sed 's/deps mtime [0-9]*/deps mtime/' > "$work/reference.deps"
  echo "plain build: $(python3 -c "print(round($t1 - $t0, 1))") s (2 cores, no cap)" > "$work/reference.time"
  echo "$project $cmake_args" > "$work/reference.done"
  rm -rf "$build"; mkdir -p "$build"
fi
objects=$(cd "$work/reference" && find . -name '*.o' | wc -l)
echo "$(cat "$work/reference.time"), $objects objects"

echo "== distributed build: client capped at $client_cpu cores, ninja -j$jobs"
on_client cmake -S "$src" -B "$build" -G Ninja $cmake_args \
  -DCMAKE_C_COMPILER_LAUNCHER="$bin/swlaunch" -DCMAKE_CXX_COMPILER_LAUNCHER="$bin/swlaunch" >"$work/configure.log"
on_client "$bin/swlaunch" stats --reset >/dev/null
killer=""
if [[ -n $kill_after ]]; then
  ( sleep "$kill_after"; pid=$(cat "$work/h2.pid"); echo "== kill -9 helper h2 (pid $pid) at ${kill_after}s"; kill -9 "$pid" ) &
  killer=$!
fi
t0=$(date +%s.%N)
"$lab" run client --cpu "$client_cpu" -- ninja -C "$build" -j"$jobs" >"$work/build.log"
t1=$(date +%s.%N)
echo "distributed build: $(python3 -c "print(round($t1 - $t0, 1))") s"
[[ -z $killer ]] || wait "$killer"
on_client "$bin/swlaunch" stats --json | tee "$work/stats.json"; echo

echo "== comparing objects"
differ=0
while IFS= read -r o; do
  cmp -s "$work/reference/$o" "$build/$o" || { echo "DIFFERS: $o"; differ=$((differ + 1)); }
done < <(cd "$work/reference" && find . -name '*.o')
built=$(cd "$build" && find . -name '*.o' | wc -l)
echo "objects: $built built, $objects in the reference, $differ differ"
if [[ -s $work/reference.deps ]]; then
  on_client ninja -C "$build" -t deps | sed 's/deps mtime [0-9]*/deps mtime/' > "$work/build.deps"
  # ninja lists targets in the order they were built: compare target by target.
  sorted_deps() { python3 -c 'import sys; print("\n\n".join(sorted(b.strip() for b in open(sys.argv[1]).read().split("\n\n") if b.strip())))' "$1"; }
  if [[ "$(sorted_deps "$work/reference.deps")" == "$(sorted_deps "$work/build.deps")" ]]; then
    echo "dependencies (ninja -t deps, from the compiles' dependency files): $(grep -c '#deps' "$work/build.deps") targets, identical"
  else
    echo "dependencies (ninja -t deps) DIFFER:"
    diff <(sorted_deps "$work/reference.deps") <(sorted_deps "$work/build.deps") > "$work/deps.diff" || true
    sed -n 1,20p "$work/deps.diff"
    differ=$((differ + 1))
  fi
fi
remote=$(python3 -c 'import json; print(json.load(open("'"$work/stats.json"'"))["remote"])')
echo "remote compiles: $remote of $built ($(python3 -c "print(round(100*$remote/$built, 1))")%)"
echo "== ctest"
on_client ctest --test-dir "$build" -j2 --output-on-failure | tail -n 3
if [[ -n $run_after ]]; then
  echo "== $run_after"
  (cd "$build" && on_client sh -c "$run_after")
fi
ok=0; [[ $differ == 0 && $built == "$objects" ]] || ok=1
if [[ $tune == 1 ]]; then
  echo "== swlaunch ninjalog (remote slots from the scheduler, the client has $client_cpu processors)"
  ninjalog() { on_client "$bin/swlaunch" ninjalog "$build" --client-cpus "$client_cpu" --journal "$work/state-client/jobs.jsonl" "$@"; }
  ninjalog | head -n 6
  ninjalog --json > "$work/ninjalog-1.json"
  python3 scripts/critical-path.py "$build" > "$work/critical-path.json"
  python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
ours, theirs = json.load(open(f"{w}/ninjalog-1.json")), json.load(open(f"{w}/critical-path.json"))
print(f"critical path: swlaunch ninjalog {ours['critical_path_ms']} ms {' -> '.join(ours['critical_path'])}")
print(f"critical path: critical-path.py  {theirs['critical_path_ms']} ms {' -> '.join(theirs['chain'])}")
print("critical paths", "agree" if ours["critical_path_ms"] == theirs["critical_path_ms"] and ours["critical_path"] == theirs["chain"] else "DIFFER")
PY
  on_client ninja -C "$build" -t clean >/dev/null
  echo "== second build at -j$jobs, with warm helpers: the basis of the prediction"
  : > "$work/state-client/jobs.jsonl"
  "$lab" run client --cpu "$client_cpu" -- ninja -C "$build" -j"$jobs" >"$work/build-2.log"
  ninjalog | sed -n 2,6p
  ninjalog --json > "$work/ninjalog-2.json"
  recommended=$(python3 -c 'import json; print(json.load(open("'"$work/ninjalog-2.json"'"))["recommended_jobs"])')
  predicted=$(python3 -c 'import json; d=json.load(open("'"$work/ninjalog-2.json"'")); print(d["predicted_wall_ms"][str(d["recommended_jobs"])])')
  on_client ninja -C "$build" -t clean >/dev/null
  echo "== third build at the recommended -j$recommended"
  "$lab" run client --cpu "$client_cpu" -- ninja -C "$build" -j"$recommended" >"$work/build-3.log"
  ninjalog --json > "$work/ninjalog-3.json"
  python3 - "$work" "$recommended" "$predicted" "$jobs" <<'PY'
import json, sys
w, j, predicted, j1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
basis, third = json.load(open(f"{w}/ninjalog-2.json")), json.load(open(f"{w}/ninjalog-3.json"))
measured = third["wall_ms"]
print(f"basis: -j{j1} wall {basis['wall_ms']} ms (its replay at -j{j1}: {basis['predicted_wall_ms'].get(j1)} ms); "
      f"predicted at -j{j}: {predicted} ms; measured at -j{j}: {measured} ms; error {100 * (predicted - measured) / measured:+.1f}%")
PY
fi
exit $ok
