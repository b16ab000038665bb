#!/usr/bin/env bash
# chaos-run.sh: builds a real project again and again on a lab cluster (scripts/lab.sh) while faults are injected
# at random moments drawn from a seed it prints, then reports what the builds saw.
#
# Cluster: a client (--no-remote), three helpers (h1 h2 h3, 2 slots each, that cannot see the client's source and
# build folders), a primary scheduler (s1) and a standby (s2); every daemon has --scheduler s1,s2.
# Faults, one at a time at random moments (3 to 12 s apart), drawn from the seed:
#   kill    SIGKILL a helper's daemon, start it again 5 s later (its state folder is kept: start-up recovery)
#   sched   SIGKILL the primary scheduler, start it again 2 to 10 s later (daemons go to the standby and back)
#   cut     drop every packet of a helper (nftables) for 30 s
#   lossy   drop 5 % of a helper's packets at random and cap its link at 20 Mbit/s (tbf) for 40 s
#   stop    SIGSTOP a helper's daemon for 20 s, then SIGCONT
# (This kernel has no netem qdisc, so loss is nftables' `numgen random` and the slow link is tbf.)
# Each build: `ninja -t clean`, `ninja -jJOBS` through swlaunch; then three genuine errors (a syntax error,
# #error, -Wall -Werror) compiled through swlaunch and compared with plain compiles.
# Report: builds attempted and failed, objects compared with a plain build and how many differ, compiles that ran
# twice (a compile that ran to its end on a helper, and again on another helper or locally: helpers log one
# "job compiled" line per compile that ended), genuine errors run twice, the slowest single compile (ninja log).
#
#   scripts/chaos-run.sh [--builds N] [--seed S] [--jobs J] [--project DIR] [--cmake-args "..."] [--work DIR]
# Default project: Debian's googletest (/usr/src/googletest) with its samples.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
builds=20
seed=$(( (RANDOM << 15) | RANDOM ))
jobs=8
project=/usr/src/googletest
cmake_args="-Dgtest_build_samples=ON"
work=/tmp/swlaunch-chaos
while [[ $# -gt 0 ]]; do
  case $1 in
    --builds) builds=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --project) project=$2; shift 2 ;;
    --cmake-args) cmake_args=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -d $project ]] || { echo "no project at $project (apt-get install googletest)" >&2; exit 2; }
command -v nft >/dev/null || { echo "needs nftables (apt-get install nftables)" >&2; exit 2; }
echo "seed $seed ($builds builds, ninja -j$jobs): scripts/chaos-run.sh --seed $seed --builds $builds"
RANDOM=$seed
bin=$repo/.build/release
[[ -x $bin/swlaunch ]] || swift build -c release --static-swift-stdlib
export LAB_PREFIX=swchaos LAB_SUBNET=198.18.2
lab=$repo/scripts/lab.sh
source "$repo/scripts/lab-lib.sh"
rm -rf "$work"; mkdir -p "$work/src" "$work/build" "$work/reference" "$work/errors"
cp -a "$project/." "$work/src/"
src=$work/src build=$work/build
"$lab" down >/dev/null 2>&1 || true

helpers=(h1 h2 h3)
injector=""
cleanup() {
  [[ -z $injector ]] || kill "$injector" 2>/dev/null || true
  for h in "${helpers[@]}"; do [[ -f $work/$h.pid ]] && kill -CONT "$(cat "$work/$h.pid")" 2>/dev/null || true; done
  "$lab" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$lab" up client s1 s2 "${helpers[@]}" >/dev/null
s1=$("$lab" ip s1) s2=$("$lab" ip s2)
key=$work/cluster.key
"$bin/swlaunch" key generate "$key" >/dev/null
schedulers="$s1:8775,$s2:8775"

start_scheduler() { # NAME
  "$lab" run "$1" -- "$bin/swlaunch-scheduler" --listen 0.0.0.0:8775 --key-file "$key" >>"$work/$1.log" 2>&1 &
  echo $! > "$work/$1.pid"
}
start_helper() { # NAME
  "$lab" run "$1" --hide "$src" --hide "$build" -- "$bin/swlaunchd" --name "$1" --listen 0.0.0.0:8776 \
    --scheduler "$schedulers" --state-dir "$work/state-$1" --max-jobs 2 --key-file "$key" >>"$work/$1.log" 2>&1 &
  echo $! > "$work/$1.pid"
}
start_scheduler s1; start_scheduler s2
for h in "${helpers[@]}"; do start_helper "$h"; done
"$lab" run client -- "$bin/swlaunchd" --name client --no-remote --local-jobs 2 --scheduler "$schedulers" \
  --state-dir "$work/state-client" --key-file "$key" >"$work/client.log" 2>&1 &
on_client() { "$lab" run client -- "$@"; }
wait_for_hosts client 5

echo "== reference: plain local build"
on_client cmake -S "$src" -B "$build" -G Ninja $cmake_args >"$work/reference-configure.log"
on_client ninja -C "$build" -j2 >"$work/reference-build.log"
(cd "$build" && find . -name "*.o" -exec cp --parents {} "$work/reference/" \;)
objects=$(cd "$work/reference" && find . -name '*.o' | wc -l)
rm -rf "$build"; mkdir -p "$build"
on_client cmake -S "$src" -B "$build" -G Ninja $cmake_args \
  -DCMAKE_C_COMPILER_LAUNCHER="$bin/swlaunch" -DCMAKE_CXX_COMPILER_LAUNCHER="$bin/swlaunch" >"$work/configure.log"
echo "$objects objects"

# Genuine errors: the compiler's verdict, which must come back once and never be compiled again.
printf 'int f( { return 1; }\n' > "$work/errors/syntax.c"
printf '#error chaos\n' > "$work/errors/hash.c"
printf 'int f(void) { int unused; return 0; }\n' > "$work/errors/werror.c"
declare -A error_flags=([syntax]="" [hash]="" [werror]="-Wall -Werror")
for e in syntax hash werror; do
  (cd "$work/errors" && gcc ${error_flags[$e]} -c $e.c -o plain-$e.o >plain-$e.out 2>plain-$e.err; echo $? > plain-$e.rc) || true
done

# The fault schedule, drawn from the seed here so that it does not depend on subshells.
faults=(kill sched cut lossy stop)
schedule=$work/schedule
: > "$schedule"
for _ in $(seq 2000); do
  echo "$(( 3 + RANDOM % 10 )) ${faults[RANDOM % ${#faults[@]}]} ${helpers[RANDOM % ${#helpers[@]}]} $(( 2 + RANDOM % 9 ))" >> "$schedule"
done

ns() { echo "$LAB_PREFIX-$1"; }
inject() { # prints one line per fault to the fault log; runs until killed
  local delay fault target pause pid
  set +e  # a fault that cannot be undone must not stop the injector; its error goes to the fault log
  exec 2>>"$work/faults.err"
  while read -r delay fault target pause; do
    sleep "$delay"
    [[ $fault == sched ]] && target=s1
    echo "S $(date +%s.%N) $fault $target" >> "$work/faults.log"
    case $fault in
      kill)
        kill -9 "$(cat "$work/$target.pid")" 2>/dev/null || true; sleep 5; start_helper "$target" ;;
      sched)
        kill -9 "$(cat "$work/s1.pid")" 2>/dev/null || true; sleep "$pause"; start_scheduler s1 ;;
      cut)
        ip netns exec "$(ns "$target")" nft -f - <<EOF
table inet chaos {
  chain in { type filter hook input priority 0; policy drop; }
  chain out { type filter hook output priority 0; policy drop; }
}
EOF
        sleep 30; ip netns exec "$(ns "$target")" nft delete table inet chaos ;;
      lossy)
        ip netns exec "$(ns "$target")" nft -f - <<EOF
table inet chaos {
  chain in { type filter hook input priority 0; numgen random mod 100 < 5 drop; }
  chain out { type filter hook output priority 0; numgen random mod 100 < 5 drop; }
}
EOF
        ip netns exec "$(ns "$target")" tc qdisc add dev eth0 root tbf rate 20mbit burst 64kb latency 100ms
        sleep 40
        ip netns exec "$(ns "$target")" nft delete table inet chaos
        ip netns exec "$(ns "$target")" tc qdisc del dev eth0 root ;;
      stop)
        pid=$(cat "$work/$target.pid"); kill -STOP "$pid" 2>/dev/null || true; sleep 20; kill -CONT "$pid" 2>/dev/null || true ;;
    esac
    echo "E $(date +%s.%N) $fault $target" >> "$work/faults.log"
  done < "$schedule"
}
: > "$work/faults.log"; : > "$work/faults.err"
inject &
injector=$!

compiled_lines() { # the helpers' "job compiled" lines so far, one output path a line
  for h in "${helpers[@]}"; do grep -h 'job compiled' "$work/$h.log" 2>/dev/null || true; done \
    | sed -n 's/.*output=\([^ ]*\).*/\1/p'
}
stat_of() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get(sys.argv[2], 0))' "$1" "$2"; }

failed=0 differ_total=0 twice_total=0 error_twice=0 error_wrong=0 compared=0 slowest=0 slowest_name=""
results=$work/results.tsv
printf 'build\trc\twall_s\tremote\tfallback\thelper_failures\tdiffer\tran_twice\tslowest_ms\n' > "$results"
: > "$work/build-times"
for i in $(seq "$builds"); do
  on_client ninja -C "$build" -t clean >/dev/null
  rm -f "$build/.ninja_log"
  on_client "$bin/swlaunch" stats --reset >/dev/null
  compiled_lines | sort > "$work/before.lst"
  t0=$(date +%s.%N)
  rc=0; on_client ninja -C "$build" -j"$jobs" >"$work/build-$i.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  on_client "$bin/swlaunch" stats --json > "$work/stats-$i.json"
  [[ $rc == 0 ]] || failed=$((failed + 1))
  differ=0
  while IFS= read -r o; do
    compared=$((compared + 1))
    cmp -s "$work/reference/$o" "$build/$o" || { echo "build $i: DIFFERS or missing: $o"; differ=$((differ + 1)); }
  done < <(cd "$work/reference" && find . -name '*.o')
  differ_total=$((differ_total + differ))
  # Compiles of this build that ran to their end on a helper, by object; local runs (local + fallback) beyond the
  # objects no helper finished ran a second time too.
  compiled_lines | sort > "$work/after.lst"
  comm -13 "$work/before.lst" "$work/after.lst" | grep "^$build/" > "$work/build-$i.compiled" || true
  remote_twice=$(sort "$work/build-$i.compiled" | uniq -c | awk '$1 > 1 { n += $1 - 1 } END { print n + 0 }')
  finished_remote=$(sort -u "$work/build-$i.compiled" | wc -l)
  local_runs=$(( $(stat_of "$work/stats-$i.json" local) + $(stat_of "$work/stats-$i.json" fallback) ))
  local_twice=$(( local_runs - (objects - finished_remote) )); (( local_twice > 0 )) || local_twice=0
  twice=$((remote_twice + local_twice))
  twice_total=$((twice_total + twice))
  read -r build_slowest build_slowest_name < <(python3 - "$build/.ninja_log" <<'PY'
import sys
best = (0, "")
for line in open(sys.argv[1]):
    if line.startswith("#"): continue
    start, end, _, name, _ = line.rstrip("\n").split("\t")
    if name.endswith(".o"): best = max(best, (int(end) - int(start), name))
print(best[0], best[1])
PY
)
  if (( build_slowest > slowest )); then slowest=$build_slowest slowest_name="build $i: $build_slowest_name"; fi
  # The genuine errors, through swlaunch while the faults go on.
  for e in syntax hash werror; do
    before=$(compiled_lines | grep -c "/errors/b$i-$e.o$" || true)
    on_client "$bin/swlaunch" stats --json > "$work/e.json"; fb0=$(( $(stat_of "$work/e.json" fallback) + $(stat_of "$work/e.json" local) ))
    erc=0
    (cd "$work/errors" && on_client "$bin/swlaunch" gcc ${error_flags[$e]} -c $e.c -o b$i-$e.o >b$i-$e.out 2>b$i-$e.err) || erc=$?
    on_client "$bin/swlaunch" stats --json > "$work/e.json"; fb1=$(( $(stat_of "$work/e.json" fallback) + $(stat_of "$work/e.json" local) ))
    ran_remote=$(( $(compiled_lines | grep -c "/errors/b$i-$e.o$" || true) - before ))
    runs=$(( ran_remote + fb1 - fb0 ))
    (( runs <= 1 )) || { echo "build $i: genuine error $e ran $runs times"; error_twice=$((error_twice + 1)); }
    if [[ $erc != "$(cat "$work/errors/plain-$e.rc")" ]] || \
       ! diff -q <(sed "s/b$i-$e.o/plain-$e.o/" "$work/errors/b$i-$e.err") "$work/errors/plain-$e.err" >/dev/null; then
      echo "build $i: genuine error $e: exit $erc or diagnostics differ from the plain compile"; error_wrong=$((error_wrong + 1))
    fi
  done
  wall=$(python3 -c "print(round($t1 - $t0, 1))")
  echo "$i $t0 $t1" >> "$work/build-times"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$rc" "$wall" "$(stat_of "$work/stats-$i.json" remote)" \
    "$(stat_of "$work/stats-$i.json" fallback)" "$(stat_of "$work/stats-$i.json" helper_failures)" "$differ" "$twice" \
    "$build_slowest" >> "$results"
  echo "build $i: rc $rc, ${wall} s, $(stat_of "$work/stats-$i.json" remote) remote, $(stat_of "$work/stats-$i.json" fallback) fallback, $differ differ, $twice ran twice"
done
kill "$injector" 2>/dev/null || true; injector=""

echo "== chaos run, seed $seed"
# The faults under way at some moment of each build (begun before it ended, not over before it began).
python3 - "$work" <<'PY' > "$work/results-faults.tsv"
import sys, time
w = sys.argv[1]
faults, open_ = [], {}
for line in open(f"{w}/faults.log"):
    kind, t, fault, target = line.split()
    if kind == "S": open_[(fault, target)] = float(t)
    else: faults.append((open_.pop((fault, target)), float(t), f"{fault}:{target}"))
faults += [(start, time.time(), f"{f}:{t}") for (f, t), start in open_.items()]
rows = open(f"{w}/results.tsv").read().splitlines()
times = {int(b): (float(t0), float(t1)) for b, t0, t1 in (l.split() for l in open(f"{w}/build-times"))}
print(rows[0] + "\tfaults during the build")
for row in rows[1:]:
    t0, t1 = times[int(row.split("\t")[0])]
    print(row + "\t" + (",".join(name for start, end, name in sorted(faults) if start < t1 and end > t0) or "-"))
PY
column -t -s $'\t' "$work/results-faults.tsv"
with_faults=$(awk -F'\t' 'NR > 1 && $10 != "-"' "$work/results-faults.tsv" | wc -l)
python3 - "$work" <<'PY'
import json, glob, sys, collections
reasons = collections.Counter(); failures = collections.Counter()
for f in glob.glob(f"{sys.argv[1]}/stats-*.json"):
    d = json.load(open(f))
    reasons.update(d.get("fallback_reasons", {})); failures.update(d.get("helper_failure_reasons", {}))
print("fallback reasons:", dict(reasons)); print("helper failures by class code:", dict(failures))
PY
echo "faults injected: $(grep -c '^S' "$work/faults.log") ($(awk '$1 == "S" { print $3 }' "$work/faults.log" | sort | uniq -c | awk '{ printf "%s%s %s", sep, $1, $2; sep=", " }'))"
echo "builds with a fault under way: $with_faults of $builds"
# bash's notices of the daemons it SIGKILLed are expected; anything else the injector printed is shown.
if grep -v " Killed " "$work/faults.err" | grep -q .; then echo "fault injector errors:"; grep -v " Killed " "$work/faults.err" | sed -n 1,10p; fi
echo "builds attempted: $builds, failed: $failed"
echo "objects compared with a plain build: $compared, differ: $differ_total"
echo "compiles that ran twice: $twice_total; genuine errors compiled: $((builds * 3)), run twice: $error_twice, answered unlike a plain compile: $error_wrong"
echo "slowest single compile: $slowest ms ($slowest_name)"
[[ $failed == 0 && $differ_total == 0 && $error_twice == 0 && $error_wrong == 0 ]]
