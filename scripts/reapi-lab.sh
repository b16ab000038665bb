#!/usr/bin/env bash
# The REAPI backend on a real BuildGrid (issue 14, docs/reapi.md): googletest (Debian's googletest package, its
# sources in /usr/src/googletest, with its own tests) built on a lab cluster (scripts/lab.sh: network namespaces)
# from a client held to a CPU budget, through BuildGrid 0.9.1 (PostgreSQL, on host "grid") with two swlaunchd
# workers (--reapi-worker, one processor each, blind to the client's files).
#
#   1. client1, a clean machine: every compile executed remotely; objects compared with a plain local build of the
#      same tree at the same paths, ctest.
#   2. client2, another clean machine, the same tree: served from the action cache; objects compared, ctest.
#   3. The native scheduler on the same hosts (swlaunch-scheduler on grid, swlaunchd helpers on the workers' hosts),
#      from client1, for the wall time beside it.
#   4. Faults, each with the action cache off (so every compile executes): BuildGrid stopped in the middle of a
#      build and started again; a worker SIGKILLed in the middle of its actions. The build must succeed with
#      identical objects, and no compile that succeeded once may have run again (workers' "action compiled"
#      lines with exit 0 plus the client's "compiling locally" lines, per object).
#
#   scripts/reapi-lab.sh [--budget CORES] [--jobs N] [--work DIR] [--no-faults | --only-faults]
# Needs root (network namespaces, cgroups). Prints a summary; the logs stay in --work (default /tmp/swlaunch-reapi).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
budget=0.25 jobs=8 work=/tmp/swlaunch-reapi faults=1 builds=1
while (($#)); do
  case $1 in
    --budget) budget=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --no-faults) faults=0; shift ;;
    --only-faults) builds=0; shift ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
export LAB_PREFIX=swreapi LAB_SUBNET=198.18.11
lab=$repo/scripts/lab.sh
scripts/deps.sh
dpkg-query -W -f='${Status}' googletest 2>/dev/null | grep -q "install ok installed" \
  || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq googletest >/dev/null
swift build -c release >/dev/null
bin=$repo/.build/release
port=50051

"$lab" down >/dev/null 2>&1 || true
if [[ -d $work/bg ]]; then scripts/buildgrid.sh down "$work/bg" || true; fi
rm -rf "$work"; mkdir -p "$work/logs"
cp -a /usr/src/googletest "$work/src"
src=$work/src build=$work/build

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  scripts/buildgrid.sh down "$work/bg" >/dev/null 2>&1 || true
  "$lab" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$lab" up client1 client2 grid w1 w2 >/dev/null
grid=$("$lab" ip grid)
"$lab" run grid -- env BUILDGRID_ADDRESS="$grid" "$repo/scripts/buildgrid.sh" up "$work/bg" $port

now() { date +%s.%N; }
calc() { python3 -c "print(round($1, ${2:-2}))"; }
# A worker host: pinned to its own processor, 1 core, with an empty folder over the client's tree.
on_worker() { local h=$1; shift; "$lab" run "$h" --cpu 1 --hide "$src" -- taskset -c $(( ${h#w} - 1 )) "$@"; }
start_worker() {
  on_worker "$1" "$bin/swlaunchd" --name "$1" --no-remote --socket "$work/$1.sock" --state-dir "$work/state-$1" --max-jobs 2 \
    --reapi-worker "$grid:$port" >>"$work/logs/$1.log" 2>&1 &
  pids+=($!)
}
start_worker w1; start_worker w2

# A client daemon: CLIENT BACKEND-OPTIONS...; its socket is $work/CLIENT.sock.
start_client() {
  local name=$1; shift
  "$lab" run "$name" --cpu "$budget" -- "$bin/swlaunchd" --name "$name" --no-remote --local-jobs 1 --socket "$work/$name.sock" \
    --state-dir "$work/state-$name" "$@" >>"$work/logs/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [[ -S $work/$name.sock ]] && break; sleep 0.1; done
  # The client packs its compiler's environment on first use (those compiles run locally): done before measuring.
  mkdir -p "$work/warm"; echo 'int warm(void) { return 1; }' > "$work/warm/w.c"; echo 'int warmxx() { return 2; }' > "$work/warm/w.cc"
  for _ in $(seq 120); do
    SWLAUNCH_SOCKET=$work/$name.sock "$bin/swlaunch" gcc -c "$work/warm/w.c" -o "$work/warm/w.o"
    SWLAUNCH_SOCKET=$work/$name.sock "$bin/swlaunch" g++ -c "$work/warm/w.cc" -o "$work/warm/wxx.o"
    remote=$(SWLAUNCH_SOCKET=$work/$name.sock "$bin/swlaunch" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["remote"])')
    [[ $remote -ge 2 ]] && break
    sleep 0.5
  done
  SWLAUNCH_SOCKET=$work/$name.sock "$bin/swlaunch" stats --reset >/dev/null
}
stop_client() { local pid=${pids[-1]}; kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; unset 'pids[-1]'; }

configure() { # configure FOLDER [launcher]: not measured
  local launcher=()
  [[ ${2:-} == launcher ]] && launcher=(-DCMAKE_C_COMPILER_LAUNCHER="$bin/swlaunch" -DCMAKE_CXX_COMPILER_LAUNCHER="$bin/swlaunch")
  rm -rf "$1"
  cmake -S "$src" -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -Dgtest_build_tests=ON "${launcher[@]}" >"$work/logs/configure.log" 2>&1
}
objects() { (cd "$1" && find . -name '*.o' | sort); }

# The reference: a plain local build of the same tree at the same paths, objects kept aside.
configure "$build"
t0=$(now); ninja -C "$build" -j2 >"$work/logs/ninja-plain.log" 2>&1; plain_wall=$(calc "$(now) - $t0")
rm -rf "$work/plain"; mkdir -p "$work/plain"
(cd "$build" && find . -name '*.o' -print0 | tar --null -T - -cf -) | tar -C "$work/plain" -xf -
plain_objects=$(objects "$build" | wc -l)

# compare: every object of the build identical to the plain build's.
compare() {
  local differ=0 missing=0
  while read -r o; do
    if [[ ! -f $build/$o ]]; then missing=$((missing + 1)); elif ! cmp -s "$build/$o" "$work/plain/$o"; then differ=$((differ + 1)); echo "differs: $o" >&2; fi
  done < <(objects "$work/plain")
  echo "$((plain_objects - differ - missing))/$plain_objects identical"
}
run_ctest() { (cd "$build" && ctest -j2 --output-on-failure >"$work/logs/ctest-$1.log" 2>&1) && grep -o '[0-9]*% tests passed.*' "$work/logs/ctest-$1.log" || { tail -20 "$work/logs/ctest-$1.log"; echo "ctest FAILED"; }; }
stat_of() { SWLAUNCH_SOCKET=$work/$1.sock "$bin/swlaunch" stats --json | python3 -c "import json,sys; s=json.load(sys.stdin); print(s.get('$2', 0))"; }
# build CLIENT LABEL: the measured ninja, on the client at its budget.
build_on() {
  local t0; t0=$(now)
  "$lab" run "$1" --cpu "$budget" -- env SWLAUNCH_SOCKET="$work/$1.sock" ninja -C "$build" -j"$jobs" >"$work/logs/ninja-$2.log" 2>&1 \
    || { echo "$2: build FAILED"; tail -20 "$work/logs/ninja-$2.log"; return 1; }
  calc "$(now) - $t0"
}
: > "$work/summary"
say() { echo "$*" | tee -a "$work/summary"; }
say "== $(date -u +%Y-%m-%d) googletest $(dpkg-query -W -f='${Version}' googletest), $plain_objects objects, client at $budget cores, -j$jobs; plain local build (2 cores, unbudgeted) $plain_wall s"

if [[ $builds == 1 ]]; then
# 1. client1 on a clean BuildGrid.
start_client client1 --reapi "$grid:$port" --cache read-write
configure "$build" launcher
wall=$(build_on client1 reapi-first)
say "client1 (clean): $wall s; remote $(stat_of client1 remote), cache hits $(stat_of client1 cache_hits), fallback $(stat_of client1 fallback); objects $(compare); ctest $(run_ctest first)"
SWLAUNCH_SOCKET=$work/client1.sock "$bin/swlaunch" stats --json > "$work/logs/stats-client1.json"
stop_client

# 2. client2, clean, the same tree: the action cache.
start_client client2 --reapi "$grid:$port" --cache read-write
configure "$build" launcher
wall=$(build_on client2 reapi-second)
say "client2 (clean, same tree): $wall s; remote $(stat_of client2 remote), cache hits $(stat_of client2 cache_hits), fallback $(stat_of client2 fallback); objects $(compare); ctest $(run_ctest second)"
SWLAUNCH_SOCKET=$work/client2.sock "$bin/swlaunch" stats --json > "$work/logs/stats-client2.json"
stop_client

# 3. The native scheduler on the same hosts.
key=$work/cluster.key
"$bin/swlaunch" key generate "$key" >/dev/null
"$lab" run grid -- "$bin/swlaunch-scheduler" --listen "$grid:8775" --history none --key-file "$key" >"$work/logs/scheduler.log" 2>&1 &
pids+=($!)
for h in w1 w2; do
  on_worker $h "$bin/swlaunchd" --name "helper-$h" --listen "$("$lab" ip $h):8776" --scheduler "$grid:8775" --socket "$work/helper-$h.sock" \
    --state-dir "$work/state-helper-$h" --max-jobs 2 --key-file "$key" >"$work/logs/helper-$h.log" 2>&1 &
  pids+=($!)
done
# The same attempt deadline as the REAPI backend's (180 s while a host's speed is unmeasured): the scheduler's hosts
# are measured on the warm-up's tiny compiles, and two gtest compiles sharing a helper's core outlast their 30 s floor.
start_client client1 --scheduler "$grid:8775" --key-file "$key" --deadline-floor 180
configure "$build" launcher
wall=$(build_on client1 native)
say "native scheduler, client1 (deadline floor 180 s): $wall s; remote $(stat_of client1 remote), fallback $(stat_of client1 fallback); objects $(compare)"
stop_client

fi

# 4. Faults. twice: objects compiled successfully more than once since the phase began.
twice() {
  python3 - "$work" "$1" <<'PY'
import collections, glob, os, re, sys
work, since = sys.argv[1], float(sys.argv[2])
counts = collections.Counter()
for log in glob.glob(work + "/logs/w[12].log") + glob.glob(work + "/logs/client1.log"):
    for line in open(log, errors="replace"):
        m = re.match(r"(\S+) ", line)
        if not m: continue
        import datetime
        try: t = datetime.datetime.fromisoformat(m.group(1)).timestamp()
        except ValueError: continue
        if t < since: continue
        if "action compiled" in line and "exit=0" in line or "compiling locally" in line:
            out = re.search(r"output=(\S+)", line)
            if out: counts[out.group(1)] += 1
twice = [o for o, n in counts.items() if n > 1]
print(f"{len(counts)} objects compiled, {len(twice)} twice" + (": " + " ".join(twice[:5]) if twice else ""))
PY
}
if [[ $faults == 1 ]]; then
  start_client client1 --reapi "$grid:$port" --cache off
  configure "$build" launcher
  since=$(date +%s)
  ( sleep 20; scripts/buildgrid.sh stop-server "$work/bg"; echo "$(date -u +%T) BuildGrid stopped" >> "$work/logs/faults.log"; sleep 10
    "$lab" run grid -- "$repo/scripts/buildgrid.sh" start-server "$work/bg"; echo "$(date -u +%T) BuildGrid started" >> "$work/logs/faults.log" ) &
  fault=$!
  wall=$(build_on client1 fault-buildgrid) || true
  wait "$fault"
  say "BuildGrid stopped 20 s into the build for 10 s: $wall s; remote $(stat_of client1 remote), fallback $(stat_of client1 fallback); objects $(compare); ctest $(run_ctest fault-buildgrid); $(twice "$since")"
  SWLAUNCH_SOCKET=$work/client1.sock "$bin/swlaunch" stats --reset >/dev/null

  configure "$build" launcher
  since=$(date +%s)
  ( sleep 15; pid=$(pgrep -f -- "^$bin/swlaunchd --name w1 " | head -1); kill -KILL "$pid"
    echo "$(date -u +%T) worker w1 ($pid) killed" >> "$work/logs/faults.log" ) &
  fault=$!
  wall=$(build_on client1 fault-worker) || true
  wait "$fault"
  say "worker w1 SIGKILLed 15 s into the build: $wall s; remote $(stat_of client1 remote), fallback $(stat_of client1 fallback); objects $(compare); ctest $(run_ctest fault-worker); $(twice "$since")"
  stop_client
fi
echo; cat "$work/summary"
