#!/usr/bin/python3
"""Bytes a site writes to storage (small sites run on SD cards and eMMC).

A real broker, hub and one site (release build, data dirs on this machine's disk). Reads
write_bytes from /proc/<pid>/io (what the kernel sends to the block layer on the
process's behalf) and counts write syscalls, over three phases: idle, a trickle of jobs
(one exec job every 2 s) and a busy site (no-op jobs back to back, 25 per submission,
never more than BUSY_WINDOW submitted and not yet finished, so the hub's queue stays far
below its limit and the site, not the submitter, sets the pace). Prints bytes per hour for
each phase, the jobs submitted and the jobs finished during it, and bytes per finished job.

BENCH_QUICK=1 shortens each phase from 60 s to 15 s.
"""
import os
import sqlite3
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fleet import Fleet  # noqa: E402

BATCH = 25
# Jobs submitted and not yet finished, at most; the hub refuses submissions past its
# max_queued_jobs (100,000 by default), and one 2-core site finishes a few thousand a second.
BUSY_WINDOW = 500


def io(pid):
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            out[k] = int(v)
    return out


def finished_jobs(hub_db):
    """Jobs in a final state, read from the hub's store (WAL: readers do not block it)."""
    with sqlite3.connect(f"file:{hub_db}?mode=ro", uri=True, timeout=30) as db:
        return db.execute("SELECT COUNT(*) FROM jobs WHERE state IN "
                          "('succeeded','failed','cancelled')").fetchone()[0]


def main():
    seconds = 15 if os.environ.get("BENCH_QUICK") == "1" else 60
    base = tempfile.mkdtemp(prefix="outpost-flash-", dir=os.path.join(ROOT, "build"))
    f = Fleet(binary=os.path.join(ROOT, "build", "rel", "outpost"), base=base)
    try:
        f.start_broker()
        f.start_hub()
        hub_db = os.path.join(f.hub_dir, "hub.db")
        site = f.start_site("dc-1", "dc", cores=2, heartbeat_ms=2000)
        pid = site.p.pid
        time.sleep(3)
        rows = []
        submitted = {"n": 0}

        def phase(name, work):
            a, t = io(pid), time.monotonic()
            done_before, sub_before = finished_jobs(hub_db), submitted["n"]
            end = t + seconds
            while time.monotonic() < end:
                work()
            b, dt = io(pid), time.monotonic() - t
            written = b["write_bytes"] - a["write_bytes"]
            rows.append((name, written / dt * 3600, submitted["n"] - sub_before,
                         finished_jobs(hub_db) - done_before, written, dt,
                         (b["syscw"] - a["syscw"]) / dt))

        def idle():
            time.sleep(1)

        def trickle():
            f.cli("submit", "--", "true")
            submitted["n"] += 1
            time.sleep(2)

        def busy():
            if submitted["n"] - finished_jobs(hub_db) > BUSY_WINDOW - BATCH:
                time.sleep(0.02)
                return
            f.cli("submit", "--kind", "noop", "--count", str(BATCH))
            submitted["n"] += BATCH

        phase("idle", idle)
        phase("one exec job every 2 s", trickle)
        phase("busy: no-op jobs back to back", busy)
        print(f"\n== site storage writes (write_bytes from /proc, {seconds} s per phase, "
              f"heartbeat every 2 s; busy: at most {BUSY_WINDOW} jobs unfinished)")
        idle_rate = rows[0][1]
        for name, per_h, n_sub, n_done, written, dt, sc in rows:
            ratio = f"{per_h / idle_rate:.1f}x idle" if idle_rate > 0 else "(idle wrote 0)"
            per_job = f"{written / n_done / 1024:.1f} KiB per finished job" if n_done else \
                "no job finished"
            print(f"  {name:30s} {per_h / 1e6:9.2f} MB/h, {per_job}; {ratio}")
            print(f"  {'':30s} jobs submitted {n_sub}, finished {n_done} ({n_done / dt:.1f}/s); "
                  f"write syscalls {sc:.1f}/s")
    finally:
        f.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
