#!/usr/bin/env bash
# make-build.sh: builds a make-based Debian source package with `swlaunch make` on a lab cluster (scripts/lab.sh):
# a client capped at --client-cpu cores with --no-remote, two helpers that cannot see the build folder. The same
# tree is built first with plain make (the reference), then with `swlaunch make`, in the same folder, so that -g
# objects name the same paths; every object is compared with the reference, and the launcher's stats are printed.
#
#   scripts/make-build.sh [--package NAME] [--targets "..."] [--client-cpu F] [--work DIR]
# Default: bzip2 (Debian's bzip2_1.0.8, a plain Makefile with CC=gcc), targets "libbz2.a bzip2 bzip2recover".
# The source comes from `apt-get source --download-only NAME` (needs a deb-src line for Debian's archive).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
package=bzip2
targets="libbz2.a bzip2 bzip2recover"
client_cpu=0.5
work=/tmp/swlaunch-make
while [[ $# -gt 0 ]]; do
  case $1 in
    --package) package=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --client-cpu) client_cpu=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=$repo/.build/release
[[ -x $bin/swlaunch ]] || swift build -c release --static-swift-stdlib
rm -rf "$work"; mkdir -p "$work/download" "$work/reference" "$work/src"
(cd "$work/download" && apt-get source --download-only "$package" >/dev/null 2>&1) \
  || { echo "cannot download the source of $package (add a deb-src line for Debian's archive, apt-get update)" >&2; exit 2; }
orig=$(ls "$work"/download/*.orig.tar.* | head -1)
# Emptied and refilled in place: the helpers hide this very folder (a bind mount over it).
unpack() { find "$work/src" -mindepth 1 -delete; tar -xf "$orig" -C "$work/src" --strip-components=1; }
echo "== $package from $(basename "$orig")"

export LAB_PREFIX=swmake LAB_SUBNET=198.18.5
lab=$repo/scripts/lab.sh
source "$repo/scripts/lab-lib.sh"
"$lab" down >/dev/null 2>&1 || true
trap '"$lab" down >/dev/null 2>&1 || true' EXIT
"$lab" up client h1 h2 >/dev/null
start_cluster "$work/src"
on_client() { "$lab" run client -- "$@"; }

echo "== reference: plain make"
unpack
t0=$(date +%s.%N)
(cd "$work/src" && on_client make -j2 $targets >"$work/reference.log" 2>&1)
echo "plain make -j2: $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s (uncapped)"
(cd "$work/src" && find . -name '*.o' -exec cp --parents {} "$work/reference/" \;)
objects=$(cd "$work/reference" && find . -name '*.o' | wc -l)

echo "== swlaunch make (client capped at $client_cpu cores)"
unpack
on_client "$bin/swlaunch" stats --reset >/dev/null
t0=$(date +%s.%N)
(cd "$work/src" && "$lab" run client --cpu "$client_cpu" -- "$bin/swlaunch" make $targets >"$work/build.log" 2>"$work/build.err")
echo "swlaunch make: $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s"
grep "^swlaunch make:" "$work/build.err"
stats=$(on_client "$bin/swlaunch" stats --json)
differ=0
while IFS= read -r o; do cmp -s "$work/reference/$o" "$work/src/$o" || { echo "DIFFERS: $o"; differ=$((differ + 1)); }; done \
  < <(cd "$work/reference" && find . -name '*.o')
remote=$(echo "$stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["remote"])')
echo "compiles remote: $remote; objects: $objects, $differ differ from the plain build"
echo "$stats"
[[ $differ == 0 && $remote -gt 0 ]]
