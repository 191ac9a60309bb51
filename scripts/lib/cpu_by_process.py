#!/usr/bin/env python3
"""CPU time by program, for the load benchmark: where did the machine's two cores go?

    cpu_by_process.py OUT.json COMMAND [ARG...]

Runs COMMAND (the load generator), then writes to OUT.json the user+system CPU seconds that each
program used meanwhile: COMMAND itself and everything it waited for under the name "k6", and every
other process grouped by name (/proc/PID/stat, threads included). A process that started or ended
during the run counts only with what it used while both snapshots saw it; the server keeps its
connections, so none of the measured programs come and go during a scenario. Exits with COMMAND's
status.
"""
import json
import os
import resource
import subprocess
import sys

GROUPS = ("seatgrid", "postgres", "redis-server", "k6", "clickhouse-serv")
TICKS = os.sysconf("SC_CLK_TCK")


def snapshot():
    seen = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The name is in parentheses and may hold spaces; the fields after it are fixed.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        utime, stime = int(fields[11]), int(fields[12])
        seen[pid] = [name, (utime + stime) / TICKS]
    return seen


def diff(before, after):
    used = {}
    for pid, (name, seconds) in after.items():
        start = before.get(pid, [name, 0.0])[1]
        group = name if name in GROUPS else "other"
        used[group] = used.get(group, 0.0) + max(seconds - start, 0.0)
    return used


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    before = snapshot()
    status = subprocess.call(sys.argv[2:])
    used = diff(before, snapshot())
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    used["k6"] = used.get("k6", 0.0) + children.ru_utime + children.ru_stime
    with open(sys.argv[1], "w") as f:
        json.dump(used, f)
    sys.exit(status)


if __name__ == "__main__":
    main()
