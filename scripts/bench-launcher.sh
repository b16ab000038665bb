#!/usr/bin/env bash
# Benchmark (not a test): the launcher's cost on the compile path with no daemon running.
# Median wall time of `swlaunch gcc -c tiny.c` against plain `gcc -c tiny.c`, interleaved runs,
# and the cost of reading a project swlaunch.toml (a second tree that has one).
#   scripts/bench-launcher.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
[[ -x .build/release/swlaunch ]] || swift build -c release --static-swift-stdlib
launcher=$(pwd)/.build/release/swlaunch
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo 'int tiny(void) { return 1; }' > "$work/tiny.c"
mkdir -p "$work/with-config/src"
cp "$work/tiny.c" "$work/with-config/src/"
cat > "$work/with-config/swlaunch.toml" <<'TOML'
# a typical project file
[scheduler]
address = "198.18.0.11:8775"
[jobs]
fallback = "local"
compression_level = 3
count = 24
[log]
level = "info"
TOML
chmod 644 "$work/with-config/swlaunch.toml"
cd "$work"
SWLAUNCH_SOCKET=$work/no-daemon.sock python3 - "$launcher" "$runs" <<'PY'
import os, statistics, subprocess, sys, time
launcher, runs = sys.argv[1], int(sys.argv[2])
plain = ["gcc", "-c", "tiny.c", "-o", "plain.o"]
launched = [launcher, "gcc", "-c", "tiny.c", "-o", "launched.o"]
configured = [launcher, "gcc", "-c", "with-config/src/tiny.c", "-o", "configured.o"]
def once(cmd):
    t = time.perf_counter_ns()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter_ns() - t) / 1e6
for _ in range(20):
    once(plain); once(launched)
a, b, c = [], [], []
for _ in range(runs):
    a.append(once(plain)); b.append(once(launched))
os.chdir("with-config/src")
configured = [launcher, "gcc", "-c", "tiny.c", "-o", "configured.o"]
for _ in range(runs):
    c.append(once(configured))
os.chdir("../..")
ma, mb = statistics.median(a), statistics.median(b)
# Paired differences are less sensitive to drift on a shared machine.
md = statistics.median([y - x for x, y in zip(a, b)])
print(f"runs: {runs} interleaved pairs")
print(f"plain gcc -c tiny.c:          median {ma:.2f} ms")
print(f"swlaunch gcc -c tiny.c:       median {mb:.2f} ms  (no daemon running)")
print(f"launcher overhead:            median of paired differences {md:.2f} ms, ratio {mb/ma:.3f}")
print(f"with a project swlaunch.toml: median {statistics.median(c):.2f} ms (reading it: {statistics.median(c) - mb:+.2f} ms)")
PY
