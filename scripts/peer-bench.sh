#!/usr/bin/env bash
# Side by side with the peers, where a Pi spends its time: the same real CMake library (Debian's source package,
# default libebml) built cleanly on a lab cluster (scripts/lab.sh: network namespaces) by plain local ninja,
# distcc 3.4, icecream 1.4 and swlaunch, from a client held to a CPU budget (cgroup quota; default 0.25 and
# 0.125 cores) with two helpers pinned to one processor each (taskset, and a 1-core quota for their CPU
# accounting) that cannot see the client's files. Then the edit-compile loop: one source edited in a built
# tree, `ninja` timed, for each.
#
# Each build: wall time and the client's CPU seconds (its cgroup's cpu.stat: ninja, launchers, compilers,
# preprocessors, the client daemons of icecream and swlaunch), both taken inside the client's cgroup around ninja
# alone (entering the lab's namespaces costs about 0.07 CPU-s and 0.5 s at an eighth of a core, which is the lab's,
# not the build's), what that CPU takes at the budget (`client s`: CPU seconds / budget, the client's own floor),
# bytes the client sent per compile (its interface's counter), and the physical limit: the helpers' CPU seconds
# over their two processors plus the client's serial work, which nothing can overlap: the link steps (from
# .ninja_log) and ninja's own start (a no-op ninja run in the finished build folder, timed the same way). Each run
# builds a fresh copy of the sources at a new path (a cold tree for every tool); swlaunch then builds the same copy
# into a new build folder (warm). --runs builds each; the tables have medians. This machine has no processor for
# the client besides the helpers' two, so the table's last column (`shared`) also divides each run's wall by the
# limit that counts the client's CPU outside its serial steps as work on those processors (the helpers' CPU plus
# that, over two, plus the serial steps). Every tool gets the same -j5 (two slots on each helper plus the client's one;
# swlaunch's helpers take a third job each, waiting for the processor with its inputs there: see below);
# icecream gets an environment made beforehand (ICECC_VERSION), as its users do, so that no run pays for making it.
#
# --client-room: this machine has no processor for the client besides the helpers' two, so the client's CPU is time
# the helpers lose, which the limit does not count; with this option each helper is capped at 1 - budget/2 of its
# processor, the room left for the client, and the limit divides the helpers' CPU by what they may use.
#
#   scripts/peer-bench.sh [--runs N] [--budgets "0.25 0.125"] [--package NAME] [--edits N] [--work DIR] [--no-local]
#                         [--tools "distcc icecream swlaunch"] [--client-room]
# The edit-compile loop runs at the last budget, in the build folders its last builds left.
# Needs root (network namespaces, cgroups) and a deb-src line for Debian's archive; installs distcc, icecc, dpkg-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
runs=3 budgets="0.25 0.125" package=libebml edits=3 work=/tmp/swlaunch-peer local_builds=1 tools="distcc icecream swlaunch" client_room=0 share=1
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --budgets) budgets=$2; shift 2 ;;
    --package) package=$2; shift 2 ;;
    --edits) edits=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --no-local) local_builds=0; shift ;;
    --tools) tools=$2; shift 2 ;;
    --client-room) client_room=1; shift ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
uses() { [[ " $tools " == *" $1 "* ]]; }
export LAB_PREFIX=swpeer LAB_SUBNET=198.18.9
lab=$repo/scripts/lab.sh
scripts/deps.sh
for p in distcc icecc dpkg-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done
# PEER_BIN=DIR: swlaunch's executables from DIR (an A/B against another build) instead of building them here.
if [[ -n ${PEER_BIN:-} ]]; then bin=$PEER_BIN; else swift build -c release >/dev/null; bin=$repo/.build/release; fi

rm -rf "$work"; mkdir -p "$work/client" "$work/ice" "$work/dl" "$work/logs"
chmod 777 "$work/ice" "$work/logs"
if [[ ! -d $work/client/src ]]; then
  (cd "$work/dl" && apt-get source --download-only -qq "$package" >/dev/null 2>&1) \
    || { echo "cannot download the source of $package (add a deb-src line for Debian's archive, apt-get update)" >&2; exit 2; }
  (cd "$work/dl" && dpkg-source -x --no-check ./*.dsc src >/dev/null)
  mv "$work/dl/src" "$work/client/src"
fi
src=$work/client/src

"$lab" down >/dev/null 2>&1 || true
trap '"$lab" down >/dev/null 2>&1 || true' EXIT
"$lab" up client h1 h2 >/dev/null
h1=$("$lab" ip h1) h2=$("$lab" ip h2)
# A helper: pinned to its own processor, in its host's 1-core cgroup (for its CPU seconds), blind to the client's files.
helper() { local h=$1; shift; "$lab" run "$h" --cpu 1 --hide "$work/client" -- taskset -c $(( ${h#h} - 1 )) "$@"; }
# The client, in its cgroup at the budget under test.
on_client() { "$lab" run client --cpu "$budget" -- "$@"; }
budget=${budgets%% *}

# swlaunch: scheduler on h1 (outside the helpers' cgroups), the client --no-remote, helpers with 3 slots on their one
# processor (PEER_HELPER_JOBS): one compiles, the others wait for the processor with their inputs there, and the one
# with the most input starts first, so that a build's long compiles do not start last (with 2, one waits: no choice).
key=$work/cluster.key
"$bin/swlaunch" key generate "$key" >/dev/null
"$lab" run h1 -- "$bin/swlaunch-scheduler" --listen 0.0.0.0:8775 --key-file "$key" --history none >"$work/logs/swl-scheduler.log" 2>&1 &
for h in h1 h2; do
  helper $h "$bin/swlaunchd" --name $h --listen 0.0.0.0:8776 --scheduler "$h1:8775" --state-dir "$work/state-$h" \
    --max-jobs "${PEER_HELPER_JOBS:-3}" --key-file "$key" >"$work/logs/swl-$h.log" 2>&1 &
done
swl_client_pid=""
start_swl_client() {
  on_client "$bin/swlaunchd" --name client --no-remote --local-jobs 1 --scheduler "$h1:8775" --state-dir "$work/state-client" \
    --key-file "$key" >>"$work/logs/swl-client.log" 2>&1 &
  swl_client_pid=$!
  for _ in $(seq 100); do
    n=$("$lab" run client -- "$bin/swlaunch" status --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hosts"]))' 2>/dev/null || echo 0)
    [[ $n -ge 3 ]] && break
    sleep 0.2
  done
}
stop_swl_client() {
  # The daemon itself, not only the lab's wrapper around it (which would leave it serving beside the next one).
  local p; for p in $(client_daemon_pid); do kill "$p" 2>/dev/null || true; done
  if [[ -n $swl_client_pid ]]; then kill "$swl_client_pid" 2>/dev/null || true; wait "$swl_client_pid" 2>/dev/null || true; fi
  swl_client_pid=""
}
# icecream: scheduler on h1, daemons with 2 slots, the client's daemon --no-remote; an environment made beforehand.
"$lab" run h1 -- icecc-scheduler -l "$work/ice/scheduler.log" &
for h in h1 h2; do
  helper $h iceccd -s "$h1" -N "ice-$h" -b "$work/ice/env-$h" -l "$work/ice/iceccd-$h.log" -m 2 &
done
ice_client_pid=""
# ice_client_daemon_pid: the client's iceccd itself (the lab's wrapper around it aside), as client_daemon_pid below.
ice_client_daemon_pid() { pgrep -f -- "iceccd -s .* -N ice-client" || true; }
stop_ice_client() {
  # The daemon itself, not only the lab's wrapper: two daemons named ice-client take the scheduler connection
  # from each other ("scheduler dead ?!" in its log), and icecream's compiles then fall back to local ones.
  local p; for p in $(ice_client_daemon_pid); do kill "$p" 2>/dev/null || true; done
  if [[ -n $ice_client_pid ]]; then kill "$ice_client_pid" 2>/dev/null || true; wait "$ice_client_pid" 2>/dev/null || true; fi
  ice_client_pid=""
  for _ in $(seq 50); do [[ -n $(ice_client_daemon_pid) ]] || break; sleep 0.1; done
}
start_ice_client() {
  on_client iceccd -s "$h1" -N ice-client --no-remote -m 1 -l "$work/ice/iceccd-client.log" &
  ice_client_pid=$!
}
(cd "$work/ice" && icecc-create-env --gcc /usr/bin/gcc /usr/bin/g++ >create-env.log 2>&1)
ice_env=$(ls "$work"/ice/*.tar.gz | head -1)
# distcc: distccd on each helper with 2 slots; the client preprocesses and sends (distcc's default mode).
for h in h1 h2; do
  ip=$("$lab" ip $h)
  helper $h distccd --no-detach --daemon --allow "$LAB_SUBNET.0/24" --listen "$ip" --jobs 2 --enable-tcp-insecure \
    --log-file "$work/logs/distccd-$h.log" &
done
jobs=5
sleep 2

# daemon_cpu: CPU seconds of the client's swlaunchd so far (0 when none runs).
client_daemon_pid() {
  local p
  for p in $(pgrep -x swlaunchd); do tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q -- "--name client " && echo "$p"; done
  return 0
}
daemon_cpu() {
  local pid; pid=$(client_daemon_pid | head -1)
  [[ -n $pid ]] && awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$pid/stat" || echo 0
}
# timed OUT CMD...: runs CMD on the client at the budget; OUT gets "wall_seconds client_cpu_seconds" around CMD alone.
timed() {
  local out=$1; shift
  on_client python3 "$work/timed.py" "$("$lab" cpu-file client)" "$out" "$@"
}
cat > "$work/timed.py" <<'PY'
# timed.py COUNTER OUT CMD...: runs CMD and writes the wall seconds and the cgroup's CPU seconds around it to OUT.
import subprocess, sys, time
counter, out, command = sys.argv[1], sys.argv[2], sys.argv[3:]
def cpu():
    text = open(counter).read()
    if counter.endswith("cpu.stat"):
        return next(int(l.split()[1]) for l in text.splitlines() if l.startswith("usage_usec ")) / 1e6
    return int(text) / 1e9
c0, t0 = cpu(), time.monotonic()
status = subprocess.call(command)
t1, c1 = time.monotonic(), cpu()
with open(out, "w") as f:
    f.write(f"{t1 - t0:.3f} {c1 - c0:.3f}\n")
sys.exit(status)
PY
counter() { ip netns exec "$LAB_PREFIX-client" cat /sys/class/net/eth0/statistics/tx_bytes; }
calc() { python3 -c "print(round($1, ${2:-2}))"; }
# link_time BUILD: seconds of the build's link steps (.ninja_log; targets that are no object file).
link_time() { awk 'NR > 1 && $4 !~ /\.o$/ { t += ($2 - $1) } END { printf "%.2f", t / 1000 }' "$1/.ninja_log"; }

# build TOOL FOLDER: configures (unmeasured, unbudgeted) and builds $src into FOLDER with TOOL; appends a result line
# "tool budget wall client_cpu bytes_per_compile limit compiles helpers_cpu serial_seconds" to $work/results.
build() {
  local tool=$1 folder=$2 record=${3:-yes} launcher=() env=() j=$jobs
  case $tool in
    local) j=2 ;;
    distcc) launcher=(-DCMAKE_C_COMPILER_LAUNCHER=distcc -DCMAKE_CXX_COMPILER_LAUNCHER=distcc); env=(DISTCC_HOSTS="$h1/2 $h2/2") ;;
    icecream) launcher=(-DCMAKE_C_COMPILER_LAUNCHER=icecc -DCMAKE_CXX_COMPILER_LAUNCHER=icecc); env=(ICECC_VERSION="$ice_env") ;;
    swlaunch*) launcher=(-DCMAKE_C_COMPILER_LAUNCHER="$bin/swlaunch" -DCMAKE_CXX_COMPILER_LAUNCHER="$bin/swlaunch") ;;
  esac
  rm -rf "$folder"
  "$lab" run client -- env "${env[@]}" cmake -S "$src" -B "$folder" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
    >"$work/logs/configure.log" 2>&1
  local b0 h10 h20 d0
  d0=$(daemon_cpu)
  b0=$(counter) h10=$("$lab" cpu h1) h20=$("$lab" cpu h2)
  # PEER_PERF=1: perf records the whole machine during swlaunch's builds (call graphs, for `perf report`), at
  # PEER_PERF_FREQ samples a second (999). -N: no build-id cache, whose hard links to the programs sampled change
  # the compiler's inode (its link count), after which swlaunchd finds its toolchain again (about 1 s at an eighth
  # of a core at the next build's start).
  local perf_pid=""
  if [[ ${PEER_PERF:-} == 1 && $tool == swlaunch* && $record == yes ]]; then
    perf record -q -N -a -g -F "${PEER_PERF_FREQ:-999}" -e cpu-clock -o "$work/perf-$tool-$budget-${run:-0}.data" >/dev/null 2>&1 &
    perf_pid=$!; sleep 1
    client_daemon_pid > "$work/perf-$tool-$budget-${run:-0}.pid"
  fi
  timed "$work/timed" env "${env[@]}" ninja -C "$folder" -j"$j" >"$work/logs/ninja-$tool.log" 2>&1 || { echo "$tool build failed:"; tail -20 "$work/logs/ninja-$tool.log"; exit 1; }
  if [[ -n $perf_pid ]]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  local wall cpu bytes helpers compiles limit start
  read -r wall cpu < "$work/timed"
  bytes=$(( $(counter) - b0 ))
  helpers=$(calc "$("$lab" cpu h1) - $h10 + $("$lab" cpu h2) - $h20")
  compiles=$(find "$folder" -name '*.o' | wc -l)
  # The link steps ran on the client at its budget: their time in .ninja_log is already wall time.
  # ninja's own start: a no-op run of the finished build, timed the same way.
  timed "$work/timed" env "${env[@]}" ninja -C "$folder" -j"$j" >/dev/null 2>&1
  read -r start _ < "$work/timed"
  local serial; serial=$(calc "$(link_time "$folder") + $start")
  if [[ $tool == local ]]; then limit=$(calc "$cpu / $budget"); else limit=$(calc "$helpers / (2 * $share) + $serial"); fi
  local line="$tool $budget $wall $cpu $(( bytes / compiles )) $limit $compiles $helpers $serial"
  if [[ $record == yes ]]; then echo "$line" >> "$work/results"; else echo -n "(priming) "; fi
  echo "$line   (client daemon: $(calc "$(daemon_cpu) - $d0") CPU-s)"
}

# fresh_tree DIR: a copy of the sources at DIR, new paths and new inodes (a tree no daemon has seen).
fresh_tree() { rm -rf "$1"; cp -a "$work/client/src" "$1"; }

: > "$work/results"
# Priming, not measured: each tool's first build ships its compiler environment to the helpers (icecream and
# swlaunch), which a cluster in use has done long before.
start_swl_client; start_ice_client; sleep 2
uses icecream && build icecream "$work/client/build-prime" no
uses swlaunch && build swlaunch-cold "$work/client/build-prime" no
for budget in $budgets; do
  # Each helper's share of its processor: all of it, or with --client-room what the client's budget leaves.
  if [[ $client_room == 1 ]]; then
    share=$(calc "1 - $budget / 2" 4)
    for h in h1 h2; do "$lab" run $h --cpu "$share" -- true; done
  fi
  # The client daemons start again inside the cgroup at this budget; a build of a tree of its own (not measured)
  # gives them back what a machine in use has before the cold trees: connections to the helpers, and the system
  # headers' directives and folder listings, which swlaunchd keeps in memory only (a warm tree, which needs no scan,
  # would leave those empty, and the first cold jobs would parse every system header again).
  stop_swl_client; start_swl_client
  stop_ice_client; start_ice_client
  sleep 2
  src=$work/client/src-prime-$budget
  fresh_tree "$src"
  uses icecream && build icecream "$work/client/build-prime" no
  uses swlaunch && build swlaunch-cold "$work/client/build-prime" no
  "$lab" run client -- "$bin/swlaunch" stats --reset >/dev/null
  if [[ $local_builds == 1 ]]; then build local "$work/client/build-local"; fi
  for run in $(seq "$runs"); do
    # A cold tree: a fresh copy of the sources at a new path, which no tool has seen (new paths, new inodes;
    # the daemons keep what a machine in use has, its compilers' environments and the system headers).
    src=$work/client/src-$budget-$run
    fresh_tree "$src"
    uses distcc && build distcc "$work/client/build-distcc"
    uses icecream && build icecream "$work/client/build-icecream"
    uses swlaunch || continue
    build swlaunch-cold "$work/client/build-swl"
    "$lab" run client -- "$bin/swlaunch" stats --json > "$work/logs/stats-cold-$budget-$run.json"
    "$lab" run client -- "$bin/swlaunch" stats --reset >/dev/null
    # Warm: the same sources into a new build folder.
    build swlaunch-warm "$work/client/build-swl-$run"
    "$lab" run client -- "$bin/swlaunch" stats --json > "$work/logs/stats-warm-$budget-$run.json"
    "$lab" run client -- "$bin/swlaunch" stats --reset >/dev/null
  done
done

# The edit-compile loop at the last budget, in the trees its last builds left: one source edited, `ninja` timed.
edited=$(cd "$src" && find . -name '*.cpp' | sort | sed -n '5p')
: > "$work/edits"
for tool in local distcc icecream swlaunch; do
  case $tool in
    local) [[ $local_builds == 1 ]] || continue; folder=$work/client/build-local ;;
    distcc|icecream) uses $tool || continue; folder=$work/client/build-$tool ;;
    swlaunch) uses swlaunch || continue; folder=$work/client/build-swl-$runs ;;
    *) folder=$work/client/build-$tool ;;
  esac
  env=()
  case $tool in distcc) env=(DISTCC_HOSTS="$h1/2 $h2/2") ;; icecream) env=(ICECC_VERSION="$ice_env") ;; esac
  # The source tree this folder was configured from.
  tree=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$folder/CMakeCache.txt")
  for e in $(seq "$edits"); do
    echo "// edit $tool $e" >> "$tree/$edited"
    timed "$work/timed" env "${env[@]}" ninja -C "$folder" -j"$jobs" >"$work/logs/edit-$tool.log" 2>&1
    read -r wall _ < "$work/timed"
    compile=$(awk -v f="${edited#./}" 'NR > 1 && index($4, f) { d = $2 - $1 } END { print d / 1000 }' "$folder/.ninja_log")
    echo "$tool $wall $compile" | tee -a "$work/edits"
  done
done
# The helper's own compile time of the edited file, from swlaunch's job journal (the last edits').
helper_compile=$(python3 - "$work/state-client/jobs.jsonl" "$edits" <<'PY'
import json, sys, statistics
lines = [json.loads(l) for l in open(sys.argv[1])][-int(sys.argv[2]):]
print(round(statistics.median(l["compile_us"] for l in lines) / 1e6, 3))
PY
)

echo
room=""; [[ $client_room == 1 ]] && room=", each helper capped at 1 - budget/2 of its processor (--client-room), the helpers' CPU over what they may use"
echo "== $(date -u +%Y-%m-%d) $package, clean builds, medians of $runs (client budget in cores; limit: helpers' CPU / 2 + link steps + ninja's start$room; wall/limit: the median of the runs' own; shared: wall over the limit that also counts the client's CPU outside its serial steps as work on the same two processors)"
python3 - "$work/results" "$client_room" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, budget, wall, cpu, bytes_, limit, compiles, helpers, serial = line.split()
    # The two processors, the client's too on this machine, run the helpers' CPU and the client's outside its serial
    # steps (during those it runs alone, at its budget): the limit counting the client's CPU where it ran.
    shared = float(limit) if tool == "local" else (float(helpers) + max(0.0, float(cpu) - float(budget) * float(serial))) / 2 + float(serial)
    rows[(budget, tool)].append((float(wall), float(cpu), int(bytes_), float(limit), int(compiles), shared))
room = sys.argv[2] == "1"
print(f"{'budget':>6} {'tool':<14} {'wall s':>8} {'client CPU s':>13} {'client s':>9} {'bytes/compile':>14} {'limit s':>8} {'wall/limit':>10} {'shared':>7}")
for (budget, tool), values in sorted(rows.items(), key=lambda kv: (-float(kv[0][0]), kv[0][1])):
    wall = statistics.median(v[0] for v in values); cpu = statistics.median(v[1] for v in values)
    b = statistics.median(v[2] for v in values); limit = statistics.median(v[3] for v in values)
    # Each run's wall over its own limit (the helpers' speed varies from run to run on a shared machine), the median of those.
    ratio = statistics.median(v[0] / v[3] for v in values)
    # With --client-room the helpers leave the client its room, and the limit already counts it.
    shared = "-" if room else f"{statistics.median(v[0] / v[5] for v in values):.2f}"
    print(f"{budget:>6} {tool:<14} {wall:8.1f} {cpu:13.2f} {cpu / float(budget):9.1f} {b:14.0f} {limit:8.1f} {ratio:10.2f} {shared:>7}   (runs: {', '.join(f'{v[0]:.1f}' for v in values)}; wall/limit {', '.join(f'{v[0] / v[3]:.2f}' for v in values)})")
PY
echo
echo "== edit-compile loop at $budget cores: one .cpp edited, ninja to done (medians of $edits); the helper compiles it in ${helper_compile} s"
python3 - "$work/edits" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, wall, compile_ = line.split()
    rows[tool].append(float(wall))
for tool, walls in rows.items():
    print(f"{tool:<10} {statistics.median(walls):7.3f} s   (runs: {', '.join(f'{w:.3f}' for w in walls)})")
PY
echo "swlaunch's input scans: cold $(cat "$work"/logs/stats-cold-*.json | python3 -c 'import json,sys; print([json.loads(l)["input_scans"] for l in sys.stdin])'), warm $(cat "$work"/logs/stats-warm-*.json | python3 -c 'import json,sys; print([json.loads(l)["input_scans"] for l in sys.stdin])')"
if uses swlaunch && [[ -f $work/state-client/jobs.jsonl ]]; then
  # Where swlaunch's helpers sat idle (at the start, and at the end while the other ran the last compile), build by
  # build, from the client daemon's job journal.
  "$repo/scripts/job-timeline.py" "$work/state-client/jobs.jsonl" --skip prime > "$work/logs/job-timeline.txt"
  echo "swlaunch's helpers: $(tail -1 "$work/logs/job-timeline.txt") (per build: $work/logs/job-timeline.txt)"
fi
echo "(results in $work/results and $work/edits, logs in $work/logs)"
