#!/usr/bin/env bash
# The dashboard during a real build, for docs/dashboard.png: a scheduler with --http, two helper daemons and a
# client daemon on loopback; a generated C++ project (40 files, with the standard library's heavier headers and a
# few long compiles) built with CMake and ninja through swlaunch; half-way through, headless Chromium loads the
# dashboard (scripts/dashboard-check.py: no console errors, the hosts and running jobs shown) and takes the
# screenshot. Also prints `swlaunch monitor --once` at the same moment. Everything it starts is stopped at the end.
#   scripts/dashboard-demo.sh [--out FILE] [--bin DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=$repo/docs/dashboard.png
bin=""
while (($#)); do
  case $1 in
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--out FILE] [--bin DIR]" >&2; exit 2 ;;
  esac
done
if [[ -z $bin ]]; then
  scripts/deps.sh
  swift build
  bin=$repo/.build/debug
fi
work=$(mktemp -d /tmp/swlaunch-dashboard.XXXXXX)
http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SCHEDULER_ARGS=(--http "127.0.0.1:$http" --history "$work/history.sqlite") HELPER_ARGS=(--max-jobs 3)
source scripts/loopback-cluster.sh

src=$work/project
mkdir -p "$src/src"
headers=("<map>" "<regex>" "<vector>" "<string>" "<algorithm>" "<sstream>" "<unordered_map>" "<functional>")
for i in $(seq 1 40); do
  {
    echo "#include ${headers[$((i % 8))]}"
    echo "#include ${headers[$(((i + 3) % 8))]}"
    echo "#include <string>"
    spin=$(( i % 9 == 0 ? 1500000 : 20000 ))
    echo "constexpr unsigned long spin$i(unsigned long n) { unsigned long s = 0; for (unsigned long k = 0; k < n; ++k) s += k % 7; return s; }"
    echo "static_assert(spin$i($spin) > 0);"
    echo "std::string unit$i(int x) { return std::to_string(x * $i); }"
  } > "$src/src/unit$i.cpp"
done
{
  echo "cmake_minimum_required(VERSION 3.16)"
  echo "project(dashboard_demo CXX)"
  echo "set(CMAKE_CXX_STANDARD 17)"
  echo "add_compile_options(-fconstexpr-loop-limit=2000000000 -fconstexpr-ops-limit=100000000000)"
  echo "file(GLOB sources src/*.cpp)"
  echo "add_library(demo STATIC \${sources})"
} > "$src/CMakeLists.txt"
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER_LAUNCHER="$bin/swlaunch" >/dev/null
ninja -C "$work/build" -j8 > "$work/ninja.log" 2>&1 & build=$!
# Half-way: when 20 of the 40 objects exist.
for _ in $(seq 600); do
  (( $(find "$work/build" -name '*.o' | wc -l) >= 20 )) && break
  sleep 0.2
done
/usr/bin/python3 scripts/dashboard-check.py "http://127.0.0.1:$http/" --want-hosts 3 --want-running 1 --screenshot "$out"
COLUMNS=100 "$bin/swlaunch-ctl" monitor --once
wait $build
echo "build: $(tail -1 "$work/ninja.log")"
"$bin/swlaunch-ctl" stats
echo "screenshot: $out (logs in $work)"
