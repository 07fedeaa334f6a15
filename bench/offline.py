#!/usr/bin/python3
"""A long offline period, then the link returns.

A real broker, hub and one site (release build) behind a loopback TCP proxy. With the
link cut, 10,000 no-op jobs are submitted on the site (`outpost submit --local`, 500 per
call); their results wait in the site's durable outbox. Then the link is restored and the
time until the hub has recorded every one is measured: the outbox drain rate. Also: the
site's resident memory holding the full outbox, and, as a baseline in the same run, the
same 10,000 local jobs with the link up (results flow as they are made).

BENCH_QUICK=1 uses 2,000 jobs.
"""
import os
import sqlite3
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fleet import Fleet, LinkProxy, wait_for  # noqa: E402


def count(path, sql):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(sql).fetchone()[0]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    n = 2000 if os.environ.get("BENCH_QUICK") == "1" else 10000
    base = tempfile.mkdtemp(prefix="outpost-offline-", dir=os.path.join(ROOT, "build"))
    f = Fleet(binary=os.path.join(ROOT, "build", "rel", "outpost"), base=base)
    proxy = None
    try:
        f.start_broker()
        f.start_hub(site_lost_after_ms=5000)
        policy = os.path.join(base, "site.policy")
        with open(policy, "w") as fh:
            fh.write("version 1\nlocal noop\n")
        proxy = LinkProxy(f.port)
        site = f.start_site("wh-1", "dc", cores=2, broker_port=proxy.port, policy_file=policy)
        site_dir = os.path.join(base, "sites", "wh-1")
        hub_db = os.path.join(f.hub_dir, "hub.db")

        def submit_local(k):
            for _ in range(k // 500):
                f.cli("submit", "--local", site_dir, "--kind", "noop", "--count", "500")

        def on_hub():
            return count(hub_db, "SELECT COUNT(*) FROM jobs WHERE submitted_by='local:wh-1'")

        # baseline: link up, results flow as they are made
        t = time.monotonic()
        submit_local(n)
        wait_for(lambda: on_hub() >= n, 600, 0.2, "online local results on the hub")
        online = time.monotonic() - t
        # offline: everything waits in the outbox
        rss_before = rss_mb(site.p.pid)
        proxy.cut(True)
        submit_local(n)
        site_db = os.path.join(site_dir, "site.db")
        wait_for(lambda: count(site_db, "SELECT COUNT(*) FROM outbox") >= n, 120, 0.2,
                 "the offline results in the outbox")
        outbox = count(site_db, "SELECT COUNT(*) FROM outbox")
        rss_full = rss_mb(site.p.pid)
        t = time.monotonic()
        proxy.cut(False)
        wait_for(lambda: on_hub() >= 2 * n, 900, 0.2, "the backlog to reach the hub")
        drain = time.monotonic() - t
        applied = count(hub_db, "SELECT COUNT(*) FROM results r JOIN jobs j ON r.job_id=j.id"
                                " WHERE j.submitted_by='local:wh-1' AND r.applied=1")
        print(f"\n== offline backlog: {outbox} results in the site's outbox; site RSS {rss_before:.1f}"
              f" MB before, {rss_full:.1f} MB holding them")
        print(f"  drain after the link returns: {drain:.2f} s ({n / drain:,.0f} results/s), "
              f"reconnect included")
        print(f"  baseline, link up (submit and deliver as made): {online:.2f} s "
              f"({n / online:,.0f} results/s); ratio drain/baseline rate "
              f"{(n / drain) / (n / online):.2f}")
        print(f"  applied on the hub: {applied} of {2 * n} (each exactly once)")
    finally:
        f.stop()
        if proxy:
            proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
