#!/usr/bin/env python3
"""Where a distributed build's helpers sat idle, from a client daemon's job journal (STATE/jobs.jsonl: per remote job
its helper, its output, when it ended and how long it queued, was prepared, transferred and compiled).

    scripts/job-timeline.py STATE/jobs.jsonl [--skip NAME]...

Jobs more than 2 s apart belong to different builds; builds whose first output path contains a --skip name are left
out. Per build: the jobs, the span from the first job reaching the client daemon to the last compile's end, and per
helper when its first compile started (after the span's start), its compile seconds, and how long it sat idle at the
end while another still compiled ("end gap"), with the job that ended the build. The idle time at the start and at
the end is what separates a build from its helpers' perfect split.
"""
import json
import statistics
import sys


def builds(jobs):
    """The journal's jobs grouped into builds (a gap of more than 2 s between one's start and the others' ends)."""
    for job in jobs:
        job["arrived"] = job["end_us"] - job["queue_us"] - job["preprocess_us"] - job["transfer_us"] - job["compile_us"]
    jobs.sort(key=lambda job: job["arrived"])
    group = []
    for job in jobs:
        if group and job["arrived"] - max(other["end_us"] for other in group) > 2e6:
            yield group
            group = []
        group.append(job)
    if group:
        yield group


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    skip = [args[i + 1] for i, arg in enumerate(args) if arg == "--skip" and i + 1 < len(args)]
    path = args[0]
    jobs = [json.loads(line) for line in open(path) if line.strip()]
    gaps, firsts = [], []
    for group in builds(jobs):
        name = group[0]["outputs"][0] if group[0]["outputs"] else "?"
        if any(word in name for word in skip):
            continue
        start = group[0]["arrived"]
        end = max(job["end_us"] for job in group)
        hosts = sorted({job["host"] for job in group})
        line = [f"{len(group):3d} jobs, span {(end - start) / 1e6:5.2f} s"]
        for host in hosts:
            mine = [job for job in group if job["host"] == host]
            first = min(job["end_us"] - job["compile_us"] for job in mine) - start
            last = max(job["end_us"] for job in mine)
            firsts.append(first / 1e6)
            line.append(f"{host}: first compile {first / 1e3:4.0f} ms, compiles {sum(j['compile_us'] for j in mine) / 1e6:5.2f} s, "
                        f"end gap {(end - last) / 1e3:4.0f} ms")
        gap = end - min(max(job["end_us"] for job in group if job["host"] == host) for host in hosts)
        if len(hosts) > 1:
            gaps.append(gap / 1e6)
        finisher = max(group, key=lambda job: job["end_us"])
        output = finisher["outputs"][0].rsplit("/", 1)[-1] if finisher["outputs"] else "?"
        line.append(f"last: {output} ({finisher['compile_us'] / 1e3:.0f} ms compile)")
        print(" | ".join(line))
    if gaps:
        print(f"end gap (one helper idle while another compiles): median {statistics.median(gaps):.2f} s, "
              f"mean {statistics.mean(gaps):.2f} s over {len(gaps)} builds; first compile start: median "
              f"{statistics.median(firsts):.2f} s")


if __name__ == "__main__":
    main()
