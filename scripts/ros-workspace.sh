#!/usr/bin/env bash
# ros-workspace.sh: a ROS 1 workspace from Debian's source packages (default ros-geometry: tf, tf_conversions,
# eigen_conversions, kdl_conversions) built with `swlaunch colcon build` on a lab cluster (scripts/lab.sh): a client
# capped at --client-cpu cores with --no-remote and two helpers that cannot see the workspace. First a plain
# `colcon build` of the same folder (the reference), then the wrapped build; every installed library is compared
# byte for byte and the share of compiles that ran remote is printed, with both wall times.
#
#   scripts/ros-workspace.sh [--tool colcon|catkin|catkin_make] [--package NAME] [--client-cpu F] [--client-cores N]
#                            [--work DIR] [--bench N]
# --client-cores N pins the client's builds to N processors (taskset), so that the tools count N cores, as on a
# Pi with fewer cores than the cluster has slots (colcon's defaults: N workers, -jN -lN each).
# --bench N then times N rounds of two clean builds, in turns: the tool with the launcher passed by hand and the
# tool's own parallelism defaults (colcon: --cmake-args -DCMAKE_<LANG>_COMPILER_LAUNCHER=swlaunch, -j/-l and workers
# from the cores), and `swlaunch <tool>`; it prints each run and the medians.
# --tool picks the build tool (default colcon): `catkin build` (catkin_tools, after `catkin init`) and catkin_make
# build the same workspace into devel/, whose libraries are compared instead of install/'s.
# Needs: a deb-src line for Debian's archive, `apt-get build-dep ros-geometry`, colcon python3-colcon-ros
# python3-colcon-cmake catkin. Debian's ROS lives in /usr (no setup.bash); catkin's configure needs the system
# python3 (with catkin_pkg) first on PATH, which the script sees to.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
package=ros-geometry
tool=colcon
client_cpu=0.5
work=/tmp/swlaunch-ros
bench=0
client_cores=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --package) package=$2; shift 2 ;;
    --tool) tool=$2; shift 2 ;;
    --client-cpu) client_cpu=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --bench) bench=$2; shift 2 ;;
    --client-cores) client_cores=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
export PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH
bin=$repo/.build/release
[[ -x $bin/swlaunch ]] || swift build -c release --static-swift-stdlib
rm -rf "$work"; mkdir -p "$work/download" "$work/ws/src" "$work/reference"
# Some of the archive's Debian tarballs are missing here; the upstream one is all a workspace needs.
(cd "$work/download" && apt-get source --download-only "$package" >/dev/null 2>&1) || true
orig=$(ls "$work"/download/*.orig.tar.* 2>/dev/null | head -1)
[[ -n $orig ]] || { echo "cannot download the source of $package (deb-src line? apt-get update?)" >&2; exit 2; }
tar -xf "$orig" -C "$work/ws/src"
ws=$work/ws
echo "== workspace: $(basename "$orig"), $(find "$ws/src" -name package.xml | wc -l) package.xml files, $(find "$ws/src" -name '*.cpp' -not -path '*/test/*' | wc -l) C++ sources outside tests"

export LAB_PREFIX=swros LAB_SUBNET=198.18.7
lab=$repo/scripts/lab.sh
source "$repo/scripts/lab-lib.sh"
"$lab" down >/dev/null 2>&1 || true
trap '"$lab" down >/dev/null 2>&1 || true' EXIT
"$lab" up client h1 h2 >/dev/null
start_cluster "$ws"

launchers=(-DCMAKE_C_COMPILER_LAUNCHER="$bin/swlaunch" -DCMAKE_CXX_COMPILER_LAUNCHER="$bin/swlaunch")
case $tool in
  colcon) command=(colcon build --event-handlers console_direct-); products=install; by_hand=(--cmake-args "${launchers[@]}") ;;
  catkin) command=(catkin build --no-status); products=devel; by_hand=(--cmake-args "${launchers[@]}"); (cd "$ws" && catkin init >/dev/null) ;;
  catkin_make) command=(catkin_make); products=devel; by_hand=("${launchers[@]}") ;;
  *) echo "unknown tool $tool" >&2; exit 2 ;;
esac
ws_build() { # LOG PREFIX... [-- SUFFIX...]: a clean build of the workspace on the capped client
  local log=$1; shift
  local prefix=() suffix=()
  while [[ $# -gt 0 && $1 != -- ]]; do prefix+=("$1"); shift; done
  [[ ${1:-} == -- ]] && { shift; suffix=("$@"); }
  rm -rf "$ws/build" "$ws/install" "$ws/devel" "$ws/log" "$ws/logs"
  [[ -n $client_cores ]] && prefix=(taskset -c "0-$((client_cores - 1))" "${prefix[@]}")
  local t0; t0=$(date +%s.%N)
  (cd "$ws" && "$lab" run client --cpu "$client_cpu" -- "${prefix[@]}" "${command[@]}" "${suffix[@]}" >"$work/$log" 2>&1) \
    || { echo "$log: the build failed:" >&2; tail -30 "$work/$log" >&2; exit 1; }
  python3 -c "print(round($(date +%s.%N) - $t0, 1))"
}
echo "== reference: plain ${command[*]} (client capped at $client_cpu cores, the tool's defaults)"
plain=$(ws_build reference.log)
(cd "$ws/$products" && find . -name '*.so*' -type f -exec cp --parents {} "$work/reference/" \;)
libraries=$(cd "$work/reference" && find . -type f | wc -l)
echo "plain ${command[*]}: $plain s, $libraries libraries in $products/"

echo "== swlaunch ${command[*]}"
"$lab" run client -- "$bin/swlaunch" stats --reset >/dev/null
wrapped=$(ws_build wrapped.log "$bin/swlaunch")
grep -h "^swlaunch $tool:" "$work/wrapped.log" || true
echo "swlaunch ${command[*]}: $wrapped s"
stats=$("$lab" run client -- "$bin/swlaunch" stats --json)
differ=0
while IFS= read -r f; do cmp -s "$work/reference/$f" "$ws/$products/$f" || { echo "DIFFERS: $f"; differ=$((differ + 1)); }; done \
  < <(cd "$work/reference" && find . -type f)
python3 - "$stats" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
compiles = d["remote"] + d["fallback"]
print(f"compiles: {d['remote']} remote of {compiles} ({100 * d['remote'] / max(1, compiles):.1f}%), fallback reasons {d['fallback_reasons']}, "
      f"local (not distributable) {d['local']} {d['local_reasons']}")
PY
echo "libraries in $products/: $libraries, $differ differ from the plain build"
[[ $differ == 0 ]]

[[ $bench -gt 0 ]] || exit 0
echo "== $bench rounds: ${command[*]} with the launcher by hand (the tool's defaults) against swlaunch ${command[*]}"
hand_times=() wrapped_times=()
for round in $(seq "$bench"); do
  # Turns alternate which goes first, so that neither always meets a warm page cache.
  if (( round % 2 )); then order=(hand wrapped); else order=(wrapped hand); fi
  for kind in "${order[@]}"; do
    if [[ $kind == hand ]]; then
      t=$(ws_build "hand-$round.log" -- "${by_hand[@]}"); hand_times+=("$t")
    else
      t=$(ws_build "wrapped-$round.log" "$bin/swlaunch"); wrapped_times+=("$t")
    fi
    echo "round $round: $kind $t s"
  done
done
python3 - "$plain" "${hand_times[*]}" "${wrapped_times[*]}" "${command[*]}" "$client_cpu" "$client_cores" <<'PY'
import statistics, sys
plain, hand, wrapped, command, cpu = float(sys.argv[1]), [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()], sys.argv[4], sys.argv[5]
pinned = f" on {sys.argv[6]} processor(s)" if sys.argv[6] else ""
h, w = statistics.median(hand), statistics.median(wrapped)
print(f"| client {cpu} cores{pinned}, 2 helpers | runs | median wall | vs plain |")
print("|---|---|---|---|")
print(f"| plain `{command}` (local) | 1 | {plain:.1f} s | 1.00 |")
print(f"| `{command}` + launcher by hand, the tool's defaults | {len(hand)} | {h:.1f} s | {plain / h:.2f}x |")
print(f"| `swlaunch {command}` | {len(wrapped)} | {w:.1f} s | {plain / w:.2f}x |")
print(f"wrapper against the launcher by hand: {h / w:.2f}x faster (median {w:.1f} s against {h:.1f} s)")
PY
