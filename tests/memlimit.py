"""Run a Python module under a memory limit and report what it used.

    python tests/memlimit.py [--limit-mb N] [--report FILE] -m MODULE ARGS...

``--limit-mb`` sets RLIMIT_AS (address space, the limit every Linux has and that needs no
cgroup): an allocation beyond it fails as it would under systemd's ``MemoryMax``. At exit
``--report`` gets ``{"vm_peak_mb", "rss_peak_mb"}`` from /proc/self/status, so a test can
run a command once without a limit, then again with a limit just above what it needed.
glibc's per-thread malloc arenas each reserve 64 MB of address space at the whim of thread
scheduling; the caller sets MALLOC_ARENA_MAX so that the peak is the same from run to run.

(tests/memory_limit.py puts a child in a memory cgroup where it can; this one is for a run
that is stopped by a signal and must report its own peaks: the MQTT tests.)
"""
from __future__ import annotations

import atexit
import json
import os
import resource
import runpy
import sys


def _status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmPeak", "VmHWM"):
                out[{"VmPeak": "vm_peak_mb", "VmHWM": "rss_peak_mb"}[key]] = \
                    int(value.split()[0]) / 1024
    return out


def main() -> None:
    args = sys.argv[1:]
    limit_mb = report = None
    while args and args[0] != "-m":
        if args[0] == "--limit-mb":
            limit_mb, args = float(args[1]), args[2:]
        elif args[0] == "--report":
            report, args = args[1], args[2:]
        else:
            raise SystemExit(f"memlimit.py: unknown option {args[0]}")
    module, argv = args[1], args[2:]
    if limit_mb is not None:
        n = int(limit_mb * 1024 * 1024)
        resource.setrlimit(resource.RLIMIT_AS, (n, n))
    if report:
        atexit.register(lambda: open(report, "w").write(json.dumps(_status())))
    sys.argv = [module, *argv]
    sys.path[0] = os.getcwd()     # as ``python -m`` has it, not this script's folder
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
