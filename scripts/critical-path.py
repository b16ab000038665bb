#!/usr/bin/env python3
"""Critical path of a ninja build's last run, worked out independently of swlaunch ninjalog: the last build of
.ninja_log (a new build starts where end times go backwards), dependencies from `ninja -t query` for each
output (explicit, implicit and order-only inputs, through phony targets), longest chain by measured durations.

    scripts/critical-path.py BUILD_DIR        prints {"critical_path_ms": N, "chain": [...]} as JSON
"""
import json, subprocess, sys
from functools import lru_cache

build = sys.argv[1]
lines = open(f"{build}/.ninja_log").read().splitlines()[1:]
steps, last_end = {}, -1
for line in lines:
    fields = line.split("\t")
    if len(fields) != 5 or line.startswith("#"):
        continue
    start, end, output = int(fields[0]), int(fields[1]), fields[3]
    if end < last_end:
        steps = {}
    last_end = end
    steps[output] = (start, end)

@lru_cache(maxsize=None)
def inputs(target):
    out = subprocess.run(["ninja", "-C", build, "-t", "query", target], capture_output=True, text=True).stdout
    result, section = [], None
    for line in out.splitlines():
        if line.startswith("  input:"):
            section = "input"
        elif line.startswith("  outputs:"):
            section = None
        elif section == "input" and line.startswith("    "):
            result.append(line.strip().lstrip("|").strip())
    return tuple(result)

@lru_cache(maxsize=None)
def producers(target, depth=0):
    """The logged steps a target waits for: itself if logged, else (phony, source) what it depends on."""
    if target in steps:
        return frozenset([target])
    found = set()
    for i in inputs(target):
        found |= producers(i, depth + 1)
    return frozenset(found)

@lru_cache(maxsize=None)
def longest(output):
    start, end = steps[output]
    best, via = 0, None
    preds = set()
    for i in inputs(output):
        preds |= producers(i)
    preds.discard(output)
    for p in preds:
        length = longest(p)[0]
        if length > best:
            best, via = length, p
    return best + end - start, via

sys.setrecursionlimit(100000)
tail = max(steps, key=lambda o: longest(o)[0])
chain, cursor = [], tail
while cursor:
    chain.append(cursor)
    cursor = longest(cursor)[1]
print(json.dumps({"critical_path_ms": longest(tail)[0], "chain": chain[::-1]}))
