#!/usr/bin/env bash
# Runs every libFuzzer target of Fuzz/ (frame decoder, message decoder, argument classifier and helper policy,
# configuration parser, ninja log parser, environment archive unpacker) for a fixed number of inputs each.
#   scripts/fuzz.sh [RUNS] [TARGET...]     (RUNS default 1000000; targets default all)
# Crashes are kept in Fuzz/crashes/<target>/ (make each one a regression test); the corpus in Fuzz/corpus/.
# Prints one line per target: inputs run, seconds, crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}; shift || true
targets=("$@")
((${#targets[@]})) || targets=(FuzzFrames FuzzMessages FuzzClassifier FuzzConfig FuzzNinjaLog FuzzArchive)
scripts/deps.sh
command -v zstd >/dev/null || { apt-get install -y -qq zstd >/dev/null; }
(cd Fuzz && swift build -c release --sanitize=fuzzer --sanitize=address >/tmp/swlaunch-fuzz-build.log 2>&1) \
  || { tail -30 /tmp/swlaunch-fuzz-build.log; exit 1; }
bin=Fuzz/.build/release

# Seeds: real inputs of each kind.
seed() { mkdir -p "Fuzz/corpus/$1"; }
seed FuzzNinjaLog; cp Tests/NinjaLogTests/Fixtures/* Fuzz/corpus/FuzzNinjaLog/ 2>/dev/null || true
seed FuzzConfig
printf '[scheduler]\naddress = "h:8775"\n[jobs]\ncount = 4\nfallback = "local"\n[toolchains]\n"g++" = { x86_64-linux = "a.tar.zst" }\n' > Fuzz/corpus/FuzzConfig/seed.toml
seed FuzzClassifier
printf -- '-c\0a.c\0-o\0a.o\0-MD\0-MF\0a.d\0-Iinc\0--output=b.o\0-Wp,-MD,x' > Fuzz/corpus/FuzzClassifier/seed
seed FuzzArchive
if [[ ! -s Fuzz/corpus/FuzzArchive/seed.tar ]]; then
  # The target compresses its input: seeds are plain tars (an environment's layout, with a link).
  t=$(mktemp -d); mkdir -p "$t/.swlaunch" "$t/usr/bin"; printf 'platform x86_64-linux\ncompiler /usr/bin/gcc\n' > "$t/.swlaunch/environment"
  printf 'x' > "$t/usr/bin/gcc"; ln -s gcc "$t/usr/bin/cc"
  tar -C "$t" --format=pax -cf Fuzz/corpus/FuzzArchive/seed.tar .swlaunch usr; rm -rf "$t"
fi
seed FuzzFrames; seed FuzzMessages

status=0
for target in "${targets[@]}"; do
  mkdir -p "Fuzz/crashes/$target" "Fuzz/corpus/$target"
  start=$(date +%s)
  set +e
  "$bin/$target" "Fuzz/corpus/$target" -runs="$runs" -max_len=65536 -rss_limit_mb=4096 -timeout=20 \
    -artifact_prefix="Fuzz/crashes/$target/" -print_final_stats=1 >"/tmp/swlaunch-fuzz-$target.log" 2>&1
  rc=$?
  set -e
  done_runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "/tmp/swlaunch-fuzz-$target.log" | grep -o '[0-9]*$' || echo "?")
  crashes=$(find "Fuzz/crashes/$target" -type f | wc -l)
  echo "$target: $done_runs inputs in $(( $(date +%s) - start )) s, exit $rc, $crashes crash file(s)"
  [[ $rc == 0 && $crashes == 0 ]] || { status=1; tail -20 "/tmp/swlaunch-fuzz-$target.log"; }
done
exit $status
