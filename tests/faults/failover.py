#!/usr/bin/python3
"""`make test-faults`, failover case: the active hub SIGKILLed again and again while jobs
flow through a PostgreSQL-backed pair, then the books are checked.

Real processes: a PostgreSQL 15 server started here (tests/integration/pgserver.py), a
mosquitto broker, two hub processes with the same keys on one database (failover = on, one
active, one standby), and four sites. Jobs are submitted in batches of 20; every few seconds
the active hub is SIGKILLed and restarted at once (it comes back as the standby), so the
other one takes over. A submission whose reply is lost is looked up in the database and
submitted again only when it did not land.

Per kill it measures the time from the SIGKILL to the standby taking the lease ("active"
in its log) and to its serving (broker sessions open, "started"). At the end, every
process stopped, it reads the database: every accepted job exists once and is terminal,
every succeeded job has exactly one applied result, no site outbox holds a result, the
audit log verifies (`outpost audit verify --db URL`, with the hubs' shared key) and has one
hub-takeover entry per takeover, each site's log verifies. It prints "submitted N, completed
N, lost N, applied twice N, takeovers K: ..." and exits 1 on any loss, double application
or failed check. Skipped (exit 0, with a message) when the PostgreSQL binaries are missing.
"""
import argparse
import json
import os
import random
import signal
import sqlite3
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import pgserver  # noqa: E402
from fleet import Fleet, wait_for  # noqa: E402
from storage import outbox_left, verify_site_log  # noqa: E402
from test_failover import Pair  # noqa: E402

SITES = [("pod-1", "pod"), ("car-1", "car"), ("dc-1", "dc"), ("dc-2", "dc")]
TERMINAL = ("succeeded", "failed", "cancelled")
GOAL_S = 5.0


class Driver:
    def __init__(self, args):
        self.args = args
        self.rnd = random.Random(args.seed)
        self.f = Fleet(binary=args.binary, keep=True)
        self.names = {}
        self.accepted = set()
        self.takeovers = []   # (seconds to the lease, seconds to serving)
        self.log = []

    def say(self, msg):
        line = f"[{time.monotonic() - self.t0:7.2f}s] {msg}"
        self.log.append(line)
        if self.args.verbose:
            print(line, flush=True)

    def sql(self, query):
        db = self.url.rsplit("/", 1)[1]
        return [line.split("|") for line in
                self.pg.psql(db, query).stdout.splitlines() if line.strip()]

    def start(self):
        self.pg = pgserver.shared()
        self.url = self.pg.database()
        self.f.start_broker()
        self.pair = Pair(self.f, self.url)
        self.pair.start("hub-a")
        self.pair.wait_active("hub-a")
        self.pair.start("hub-b")
        wait_for(lambda: "standby (" in self.pair.hubs["hub-b"].log_text(), 30, 0.05)
        for name, cls in SITES:
            self.f.start_site(name, cls, cores=2)

    def new_batch(self, n):
        specs = []
        for _ in range(n):
            name = f"fo{self.args.seed}-{len(self.names)}"
            ms = self.rnd.choice((50, 100, 200, 400))
            specs.append({"kind": "exec", "name": name, "max_attempts": 25,
                          "deterministic": True,
                          "command": ["sh", "-c", f"sleep {ms / 1000}; echo {name}"],
                          "resources": {"wall_s": 60}})
            self.names[name] = specs[-1]
        return specs

    def landed(self, names):
        quoted = ",".join(f"'{n}'" for n in names)
        try:
            return int(self.sql(f"SELECT COUNT(*) FROM jobs WHERE name IN ({quoted})")[0][0]) \
                == len(names)
        except Exception:
            return False

    def submit_some(self):
        if len(self.accepted) >= self.args.jobs:
            return
        pending = [n for n in self.names if n not in self.accepted]
        specs = ([self.names[n] for n in pending] if pending else
                 self.new_batch(min(20, self.args.jobs - len(self.accepted))))
        path = os.path.join(self.f.base, "batch.json")
        with open(path, "w") as fh:
            json.dump(specs, fh)
        r = self.f.cli("submit", path, check=False, timeout=40)
        if r.returncode == 0 or self.landed([s["name"] for s in specs]):
            self.accepted.update(s["name"] for s in specs)
        else:
            self.say(f"submit failed ({r.returncode}): {r.stderr.strip()[:100]}")

    def active_name(self):
        act = self.pair.active()
        return act[0] if len(act) == 1 else None

    def kill_active(self):
        """SIGKILL the active hub, time the other's takeover, restart the killed one."""
        name = self.active_name()
        if not name:
            return
        other = "hub-b" if name == "hub-a" else "hub-a"
        o = self.pair.hubs[other]
        seen = len(o.log_text().split("active: took the lease")) - 1
        t = time.monotonic()
        self.pair.hubs[name].kill(signal.SIGKILL)
        self.pair.hubs[name].wait(10)
        wait_for(lambda: len(o.log_text().split("active: took the lease")) - 1 > seen or
                 not o.alive(), 60, 0.01, f"{other} to take the lease")
        lease_s = time.monotonic() - t
        started = len(o.log_text().split(" started (pubkey ")) - 1
        wait_for(lambda: started > seen or len(o.log_text().split(" started (pubkey ")) - 1 > seen,
                 60, 0.01, f"{other} to serve")
        serve_s = time.monotonic() - t
        self.takeovers.append((lease_s, serve_s))
        self.say(f"killed {name}: {other} took the lease after {lease_s:.2f} s, serving after "
                 f"{serve_s:.2f} s")
        # the killed one comes back as the standby (a fresh log: active() reads it)
        log = self.pair.hubs[name].log_path
        os.replace(log, f"{log}.{len(self.takeovers)}")
        self.pair.start(name)

    def run(self):
        self.t0 = time.monotonic()
        self.start()
        self.say("fleet up")
        next_kill = time.monotonic() + self.rnd.uniform(3, 6)
        while len(self.accepted) < self.args.jobs or len(self.takeovers) < self.args.kills:
            self.submit_some()
            if time.monotonic() >= next_kill and len(self.takeovers) < self.args.kills:
                self.kill_active()
                next_kill = time.monotonic() + self.rnd.uniform(3, 8)
            time.sleep(self.rnd.uniform(0.1, 0.6))
        self.say(f"all {len(self.accepted)} jobs submitted, {len(self.takeovers)} takeovers")
        wait_for(self.all_terminal, self.args.timeout, 1.0, "every job to end")
        try:
            wait_for(self.outboxes_empty, 60, 0.5, "the sites' outboxes to drain")
        except TimeoutError as e:
            self.say(str(e))
        audit = self.f.cli("audit", "verify", "--db", self.url, check=False, timeout=300)
        # counted before the stop: a clean stop hands the lease to the standby, a takeover too
        self.entries = int(self.sql("SELECT COUNT(*) FROM audit_entries WHERE entry LIKE "
                                    "'%\"kind\":\"hub-takeover\"%'")[0][0])
        codes = self.pair.stop()
        codes.update(self.f.stop())
        return self.books(audit, codes)

    def all_terminal(self):
        try:
            left = self.sql(f"SELECT COUNT(*) FROM jobs WHERE name LIKE 'fo{self.args.seed}-%'"
                            " AND state NOT IN ('succeeded','failed','cancelled')")
            return int(left[0][0]) == 0
        except Exception:
            return False

    def outbox_left(self):
        return outbox_left(self.f.base, SITES)

    def outboxes_empty(self):
        try:
            return self.outbox_left() == 0
        except sqlite3.Error:
            return False

    def books(self, audit, codes):
        mine = f"fo{self.args.seed}-%"
        rows = self.sql("SELECT name, COUNT(*), MAX(state) FROM jobs WHERE name LIKE "
                        f"'{mine}' GROUP BY name")
        applied = {r[0]: int(r[1]) for r in self.sql(
            "SELECT j.name, COALESCE(SUM(r.applied), 0) FROM jobs j LEFT JOIN results r ON "
            f"r.job_id = j.id WHERE j.name LIKE '{mine}' GROUP BY j.name")}
        entries = self.entries
        by_name = {r[0]: (int(r[1]), r[2]) for r in rows}
        submitted = len(self.accepted)
        twice_submitted = sum(1 for c, _ in by_name.values() if c > 1)
        completed = sum(1 for n in self.accepted if n in by_name and
                        by_name[n][1] == "succeeded" and applied.get(n) == 1)
        lost = sum(1 for n in self.accepted if n not in by_name or by_name[n][1] not in TERMINAL
                   or (by_name[n][1] == "succeeded" and applied.get(n, 0) == 0))
        applied_twice = sum(1 for n in self.accepted if applied.get(n, 0) > 1)
        failed = sum(1 for n in self.accepted if n in by_name and by_name[n][1] != "succeeded")
        outbox_left = self.outbox_left()
        site_logs_bad = [name for name, _ in SITES if verify_site_log(self.f, name).returncode]
        lease = [t[0] for t in self.takeovers]
        serve = [t[1] for t in self.takeovers]
        print("takeover per kill (s to the lease / s to serving): " +
              ", ".join(f"{a:.2f}/{b:.2f}" for a, b in self.takeovers))
        # one entry per start of an active hub: hub-a's first, then one per takeover
        ok = (lost == 0 and applied_twice == 0 and failed == 0 and twice_submitted == 0 and
              outbox_left == 0 and audit.returncode == 0 and not site_logs_bad and
              entries == len(self.takeovers) + 1 and all(s < GOAL_S for s in serve))
        print(f"audit verify: exit {audit.returncode} ({audit.stdout.strip()[:120]}); "
              f"hub-takeover entries {entries}; site logs verified "
              f"{len(SITES) - len(site_logs_bad)}/{len(SITES)}; outboxes left {outbox_left}; "
              f"exit codes at stop: {codes}")
        print(f"submitted {submitted}, completed {completed}, lost {lost}, applied twice "
              f"{applied_twice}, takeovers {len(self.takeovers)}: to the lease max "
              f"{max(lease):.2f} s mean {sum(lease) / len(lease):.2f} s, serving max "
              f"{max(serve):.2f} s mean {sum(serve) / len(serve):.2f} s (goal {GOAL_S:.0f} s)")
        if not ok:
            print("FAILOVER FAULTS: FAILED (seed %d; files in %s); driver log:\n%s" %
                  (self.args.seed, self.f.base, "\n".join(self.log)))
            print(audit.stdout[-2000:], audit.stderr[-2000:])
        elif not self.args.keep:
            import shutil
            shutil.rmtree(self.f.base, ignore_errors=True)
        return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--kills", type=int, default=8, help="SIGKILLs of the active hub (at least)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--binary", default=os.environ.get("OUTPOST_BIN"))
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    why = pgserver.available()
    if why:
        print(f"failover faults: skipped: {why}")
        return 0
    d = Driver(args)
    try:
        return d.run()
    except Exception as e:
        print(f"FAILOVER FAULTS: ERROR {e!r} (seed {args.seed}; files in {d.f.base}); driver log:\n" +
              "\n".join(d.log))
        try:
            d.pair.stop()
            d.f.stop()
        except Exception:
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main())
