#!/usr/bin/env bash
# Times `swlaunch ninjalog` on a generated log of a million lines beside ninjatracing (and Chromium's
# post_build_ninja_summary.py when given), on the same file, median of several runs each.
#
#   scripts/bench-ninjalog.sh [--lines N] [--runs R] [--parallel J] [--other-runs R] [--timeout S]
# The other tools are slow on big logs (ninjatracing assigns lanes in quadratic time): they run --other-runs
# times (default 1), each cut off after --timeout seconds (default 900), which is then reported as a lower bound.
# NINJATRACING=/path/to/ninjatracing and POST_BUILD_NINJA_SUMMARY=/path/to/post_build_ninja_summary.py name the
# other tools (neither is packaged by Debian or PyPI; clone nico/ninjatracing or depot_tools); missing ones are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=1000000 runs=5 parallel=64 other_runs=1 limit=900
while [[ $# -gt 0 ]]; do
  case $1 in
    --lines) lines=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    --other-runs) other_runs=$2; shift 2 ;;
    --timeout) limit=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=.build/release
[[ -x $bin/swlaunch-ctl ]] || swift build -c release --product swlaunch-ctl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$work/.ninja_log
# One build of $lines steps on $parallel job slots, lines in the order steps end (as ninja writes them).
python3 - "$log" "$lines" "$parallel" <<'PY'
import heapq, random, sys
path, n, j = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
slots = [(0, s) for s in range(j)]
ends = []
for i in range(n):
    free, slot = heapq.heappop(slots)
    d = rng.randint(20, 3000)
    ends.append((free + d, free, f"obj/dir{i % 997}/file{i}.o", i))
    heapq.heappush(slots, (free + d, slot))
ends.sort()
with open(path, "w") as f:
    f.write("# ninja log v5\n")
    for end, start, name, i in ends:
        f.write(f"{start}\t{end}\t0\t{name}\t{i * 2654435761 % (1 << 64):x}\n")
PY
echo "log: $lines lines, $(du -h "$log" | cut -f1), $parallel steps in parallel"
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
time_runs() {  # label, runs, command...
  local label=$1 n=$2; shift 2
  local t
  t=$(for _ in $(seq "$n"); do
        s=$(date +%s.%N); timeout "$limit" "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N)
        python3 -c "print(round($e - $s, 3))"
      done | median)
  printf '%-44s median of %d: %8.3f s%s\n' "$label" "$n" "$t" "$(python3 -c "print(' (cut off: at least this)' if $t >= $limit else '')")"
  echo "$label $t" >> "$work/results"
}
time_runs "swlaunch ninjalog --json" "$runs" "$bin/swlaunch-ctl" ninjalog "$log" --json
time_runs "swlaunch ninjalog --trace" "$runs" "$bin/swlaunch-ctl" ninjalog "$log" --json --trace "$work/trace.json"
if [[ -n ${NINJATRACING:-} ]]; then
  time_runs "ninjatracing (trace only)" "$other_runs" sh -c "python3 '$NINJATRACING' '$log' > '$work/nt.json'"
else
  echo "ninjatracing: skipped (set NINJATRACING=/path/to/ninjatracing)"
fi
if [[ -n ${POST_BUILD_NINJA_SUMMARY:-} ]]; then
  time_runs "post_build_ninja_summary.py" "$other_runs" python3 "$POST_BUILD_NINJA_SUMMARY" -C "$work"
else
  echo "post_build_ninja_summary.py: skipped (set POST_BUILD_NINJA_SUMMARY=/path/to/it)"
fi
python3 - "$work/results" <<'PY'
import sys
r = dict(line.rsplit(" ", 1) for line in open(sys.argv[1]).read().splitlines())
ours = float(r["swlaunch ninjalog --trace"])
for k, v in r.items():
    if not k.startswith("swlaunch"):
        print(f"{k}: {float(v) / ours:.1f}x the time of swlaunch ninjalog --trace")
PY
