#!/usr/bin/python3
"""Bytes a site writes to storage (issue 5: small sites run on SD cards and eMMC).

A real broker, hub and one site (release build, data dirs on this machine's disk). Reads
write_bytes from /proc/<pid>/io (what the kernel sends to the block layer on the
process's behalf) and counts fsyncs with the SQLite file sizes, over three phases:
idle, a trickle of jobs (one exec job every 2 s) and a busy site (no-op jobs as fast
as the CLI submits them, 25 per submission). Prints bytes per hour for each and the
ratio to the idle phase.

BENCH_QUICK=1 shortens each phase from 60 s to 15 s.
"""
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fleet import Fleet  # noqa: E402


def io(pid):
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            out[k] = int(v)
    return out


def main():
    seconds = 15 if os.environ.get("BENCH_QUICK") == "1" else 60
    base = tempfile.mkdtemp(prefix="outpost-flash-", dir=os.path.join(ROOT, "build"))
    f = Fleet(binary=os.path.join(ROOT, "build", "rel", "outpost"), base=base)
    try:
        f.start_broker()
        f.start_hub()
        site = f.start_site("dc-1", "dc", cores=2, heartbeat_ms=2000)
        pid = site.p.pid
        time.sleep(3)
        rows = []

        def phase(name, work):
            a, t = io(pid), time.monotonic()
            end = t + seconds
            n = 0
            while time.monotonic() < end:
                n += work()
            b, dt = io(pid), time.monotonic() - t
            per_h = (b["write_bytes"] - a["write_bytes"]) / dt * 3600
            syscalls = (b["syscw"] - a["syscw"]) / dt
            rows.append((name, per_h, n, syscalls))

        def idle():
            time.sleep(1)
            return 0

        def trickle():
            f.cli("submit", "--", "true")
            time.sleep(2)
            return 1

        def busy():
            f.cli("submit", "--kind", "noop", "--count", "25")
            return 25

        phase("idle", idle)
        phase("one exec job every 2 s", trickle)
        phase("busy: no-op jobs back to back", busy)
        print(f"site storage writes (write_bytes from /proc, {seconds} s per phase, "
              f"heartbeat every 2 s)")
        idle_rate = rows[0][1]
        for name, per_h, n, sc in rows:
            ratio = f"{per_h / idle_rate:.1f}x idle" if idle_rate > 0 else "(idle wrote 0)"
            print(f"  {name:32s} {per_h / 1e6:9.2f} MB/h   jobs {n:6d}   write syscalls "
                  f"{sc:7.1f}/s   {ratio}")
    finally:
        f.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
