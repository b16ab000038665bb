#!/usr/bin/env bash
# Writes the .ninja_log files Tests/NinjaLogTests/Fixtures holds, with a real ninja:
#   scripts/ninjalog-fixtures.sh NINJA PREFIX      e.g. /usr/bin/ninja v5 (Debian's 1.11), or PyPI's ninja 1.13 and v7
# Each fixture is two builds of a small graph of sleeps (a.o b.o -> lib.a, gen.h+gen.c from one command, app):
# PREFIX-two-builds.ninja_log (a full build, then a clean full build), PREFIX-recompacted.ninja_log (the same
# after `ninja -t recompact`) and PREFIX-damaged.ninja_log (a line cut short and a line of garbage added).
set -euo pipefail
ninja=$1 prefix=$2
out=$(cd "$(dirname "$0")/.." && pwd)/Tests/NinjaLogTests/Fixtures
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/build.ninja" <<'NINJA'
rule work
  command = sleep $t && touch $out
build a.o: work
  t = 0.4
build b.o: work
  t = 0.1
build gen.h gen.c: work
  t = 0.2
build lib.a: work a.o b.o
  t = 0.3
build app: work lib.a gen.c | gen.h
  t = 0.1
NINJA
(cd "$dir" && "$ninja" -j2 >/dev/null && "$ninja" -t clean >/dev/null && "$ninja" -j2 >/dev/null)
mkdir -p "$out"
cp "$dir/.ninja_log" "$out/$prefix-two-builds.ninja_log"
(cd "$dir" && "$ninja" -t recompact)
cp "$dir/.ninja_log" "$out/$prefix-recompacted.ninja_log"
{ cat "$out/$prefix-two-builds.ninja_log"; echo "this is not a log line"; printf '12\t34\t0\ttrunc'; } > "$out/$prefix-damaged.ninja_log"
ls -l "$out"/"$prefix"-*
