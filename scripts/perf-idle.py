#!/usr/bin/env python3
"""Where a lab build left processors idle, from a whole-machine perf recording of it.

    PEER_PERF=1 scripts/peer-bench.sh --tools swlaunch --runs 1 --budgets 0.125 --edits 0 --no-local
    scripts/perf-idle.py /tmp/swlaunch-peer/perf-swlaunch-cold-0.125-1.data WALL

WALL is the build's wall time (the script's result line); the build is taken to be the last WALL seconds of the
recording (perf stops right after ninja). Prints a line per quarter-second step, then per processor its idle
seconds at the start (the leading steps idle at least half the time), at the end (the trailing ones; this includes
the link steps, which run on the client alone and which the limit counts as serial work) and in between. A
processor's busy share of a step is its samples over the sampling rate (perf's `cpu-clock` event does not fire on a processor that sleeps, so idle is what is missing)."""
import collections, re, subprocess, sys

def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr); sys.exit(2)
    data, wall = sys.argv[1], float(sys.argv[2])
    step = float(sys.argv[3]) if len(sys.argv) > 3 else 0.25
    text = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,cpu,time"], capture_output=True, text=True,
                          check=True).stdout
    samples = []
    for line in text.splitlines():
        m = re.match(r"\s*(.+?)\s+\d+/\d+\s+\[(\d+)\]\s+([\d.]+):", line)
        if m: samples.append((m.group(1), int(m.group(2)), float(m.group(3))))
    if not samples:
        sys.exit(f"{data}: no samples")
    end = max(t for _, _, t in samples)
    start = end - wall
    cpus = sorted({c for _, c, _ in samples})
    # The sampling rate: the busiest step of any processor is taken as fully busy.
    busy = collections.defaultdict(lambda: collections.Counter())
    for comm, cpu, t in samples:
        if t >= start and comm != "swapper":
            busy[int((t - start) / step)][cpu] += 1
    steps = int(wall / step) + 1
    rate = max(max(c.values(), default=0) for c in busy.values()) / step
    idle = {cpu: [max(0.0, 1 - busy[k][cpu] / (rate * step)) * step for k in range(steps)] for cpu in cpus}
    for k in range(steps):
        print(f"{k * step:6.2f} s  " + "  ".join(f"cpu{cpu} idle {idle[cpu][k] / step * 100:3.0f}%" for cpu in cpus))
    for cpu in cpus:
        values = idle[cpu]
        lead = 0.0
        for v in values:
            if v < step * 0.5: break
            lead += v
        trail = 0.0
        for v in reversed(values):
            if v < step * 0.5: break
            trail += v
        print(f"cpu{cpu}: idle {sum(values):.2f} s in all: {lead:.2f} s at the start, {trail:.2f} s at the end, "
              f"{sum(values) - lead - trail:.2f} s in between")

main()
