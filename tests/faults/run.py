#!/usr/bin/python3
"""`make test-faults`: a fleet under injected faults, then the books are checked.

Real processes and a real broker: a hub and six sites (each connected to mosquitto through
a TCP proxy on loopback that the driver can cut), several hundred short exec jobs submitted
in batches while, one after another, seeded at random:

  site-kill    SIGKILL of a site mid-job, restarted after a moment
  link-cut     a site's broker connection closed and refused for 2-6 s while it computes
               (longer than the hub's site_lost_after_ms: its jobs are placed again)
  hub-kill     SIGKILL of the hub, restarted
  broker-kill  SIGKILL of the broker (no persistence), restarted on the same port
  car-leaves   a car's owner unplugs (`outpost leave`: jobs handed back, the agent exits),
               back later

and four storage episodes spread over the run (tests/faults/episodes.py): the hub's data
dir full, a site's data dir full (a small tmpfs as root, else an LD_PRELOAD shim that fails
writes with ENOSPC), the hub's database damaged and restored from a backup, a site's
likewise; after each the audit logs verify and nothing accepted is missing or applied twice.
Jobs the hub refused while full ("could not store this request") were never accepted: they
are counted apart and submitted again.

At the end, with every process stopped, it reads the hub's SQLite file and each site's:
every submitted job exists once and is in a terminal state; every succeeded job has
exactly one applied result; no site outbox still holds a result; the audit log verifies.
Each site's log verifies too, with the site's key. It prints "submitted N, completed N, lost
N, applied twice N, recovered after X s" (the time for a fresh job to complete after a final
hub SIGKILL) followed by the storage episodes, and exits 1 on any loss or double application
or a failed episode. Seeded (--seed), so a failing run can be replayed.
"""
import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from fleet import Fleet, LinkProxy, wait_for  # noqa: E402
from episodes import KINDS, REFUSED, StorageEpisodes  # noqa: E402
from storage import outbox_left, verify_site_log  # noqa: E402

SITES = [("pod-1", "pod"), ("pod-2", "pod"), ("car-1", "car"), ("car-2", "car"),
         ("dc-1", "dc"), ("dc-2", "dc")]
HUB_CONF = {"site_lost_after_ms": 3000, "lease_ms": 8000}
TERMINAL = ("succeeded", "failed", "cancelled")


class Driver:
    def __init__(self, args):
        self.args = args
        self.rnd = random.Random(args.seed)
        self.f = Fleet(binary=args.binary, keep=True)  # the books are read after the stop
        self.proxies = {}
        self.names = {}  # job name -> spec, for every job we mean to have submitted
        self.accepted = set()  # names the hub confirmed
        self.faults = {}
        self.log = []
        self.refused = set()  # jobs the hub said it could not store (then): never accepted
        self.storage = StorageEpisodes(self, args.storage, args.full_seconds, args.disk)

    def say(self, msg):
        line = f"[{time.monotonic() - self.t0:7.2f}s] {msg}"
        self.log.append(line)
        if self.args.verbose:
            print(line, flush=True)

    # --- fleet
    def start(self):
        f = self.f
        self.storage.prepare(self.site_names())  # tmpfs mounts, or the shim in f.env
        f.start_broker()
        f.start_hub(**HUB_CONF)
        for name, cls in SITES:
            self.proxies[name] = LinkProxy(f.port)
            f.start_site(name, cls, cores=2, broker_port=self.proxies[name].port)

    def site_names(self):
        return [name for name, _ in SITES]

    def restart_site(self, name):
        self.f.start_site(name, None, wait=False, cores=2, broker_port=self.proxies[name].port)

    def restart_hub(self):
        self.f.start_hub(**HUB_CONF)

    def restart_broker(self):
        self.f.start_broker(port=self.f.port)

    def hub_db(self):
        path = os.path.join(self.f.hub_dir, "hub.db")
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)

    def up(self):
        return self.f.hub and self.f.hub.alive() and self.f.broker and self.f.broker.alive()

    # --- jobs
    def new_batch(self, n, pad=None):
        """n new jobs; with pad, the first carries the input pad() makes."""
        specs = []
        for _ in range(n):
            i = len(self.names)
            name = f"f{self.args.seed}-{i}"
            ms = self.rnd.choice((100, 200, 400, 800, 1500))
            # deterministic: the cars take their share, each result checked by another owner's
            spec = {"kind": "exec", "name": name, "max_attempts": 25, "deterministic": True,
                    "command": ["sh", "-c", f"sleep {ms / 1000}; echo {name}"],
                    "resources": {"wall_s": 60}}
            if pad and not specs:
                spec["inputs"] = [pad()]
                spec["command"][2] = f"wc -c < pad.bin; {spec['command'][2]}"
            self.names[name] = spec
            specs.append(spec)
        return specs

    def submit(self, specs):
        """All or nothing. When the reply is lost, the hub's store says whether it landed."""
        path = os.path.join(self.f.base, "batch.json")
        with open(path, "w") as fh:
            json.dump(specs, fh)
        r = self.f.cli("submit", path, check=False, timeout=30)
        if r.returncode == 0:
            self.accepted.update(s["name"] for s in specs)
            return True
        landed = self.landed([s["name"] for s in specs])
        if landed:
            self.accepted.update(s["name"] for s in specs)
            self.say(f"submit reply lost ({r.returncode}), batch found in the hub's store")
            return True
        if REFUSED in r.stdout + r.stderr:
            self.refused.update(s["name"] for s in specs)
        self.say(f"submit failed ({r.returncode}): {r.stderr.strip()[:120]}")
        return False

    def landed(self, names):
        try:
            with self.hub_db() as db:
                q = f"SELECT COUNT(*) FROM jobs WHERE name IN ({','.join('?' * len(names))})"
                return db.execute(q, names).fetchone()[0] == len(names)
        except sqlite3.Error:
            return False

    # --- faults
    def inject(self):
        kind = self.rnd.choices(["site-kill", "link-cut", "hub-kill", "broker-kill", "car-leaves"],
                                weights=[35, 25, 15, 15, 10])[0]
        self.faults[kind] = self.faults.get(kind, 0) + 1
        f = self.f
        if kind == "site-kill":
            name = self.rnd.choice(SITES)[0]
            self.say(f"site-kill {name}")
            f.sites[name].kill(signal.SIGKILL)
            f.sites[name].wait(10)
            time.sleep(self.rnd.uniform(0.3, 2.0))
            self.restart_site(name)
        elif kind == "link-cut":
            name = self.rnd.choice(SITES)[0]
            d = self.rnd.uniform(2.0, 6.0)
            self.say(f"link-cut {name} for {d:.1f} s")
            self.proxies[name].cut(True)
            time.sleep(d / 2)
            self.submit_some()  # work keeps arriving while the site is cut off
            time.sleep(d / 2)
            self.proxies[name].cut(False)
        elif kind == "hub-kill":
            self.say("hub-kill")
            f.hub.kill(signal.SIGKILL)
            f.hub.wait(10)
            time.sleep(self.rnd.uniform(0.2, 1.5))
            self.restart_hub()
        elif kind == "broker-kill":
            self.say("broker-kill")
            f.broker.kill(signal.SIGKILL)
            f.broker.wait(10)
            time.sleep(self.rnd.uniform(0.2, 1.5))
            self.restart_broker()
        else:
            name = self.rnd.choice([s for s, c in SITES if c == "car"])
            self.say(f"car-leaves {name}")
            r = f.cli("leave", os.path.join(f.base, "sites", name), "--grace", "2", check=False)
            if r.returncode != 0:  # the agent was already down or busy restarting
                self.say(f"leave: {r.returncode} {r.stderr.strip()[:100]}")
            try:
                f.sites[name].wait(45)
            except subprocess.TimeoutExpired:
                f.sites[name].stop(10)
            time.sleep(self.rnd.uniform(1.0, 4.0))
            self.restart_site(name)

    def submit_some(self, pad=None):
        if len(self.accepted) >= self.args.jobs or not self.up():
            return
        pending = [n for n in self.names if n not in self.accepted]
        if pending:
            specs = [self.names[n] for n in pending]
        else:
            specs = self.new_batch(min(10, self.args.jobs - len(self.accepted)), pad)
        self.submit(specs)

    def run(self):
        self.t0 = time.monotonic()
        self.start()
        self.say("fleet up")
        while len(self.accepted) < self.args.jobs:  # about one fault per 10-job batch
            self.submit_some()
            if self.storage.due():
                self.storage.run_next()
            else:
                self.inject()
            time.sleep(self.rnd.uniform(0.3, 1.5))
        while self.storage.pending:  # a short run may be over before the last were due
            self.storage.run_next()
        self.say(f"all {len(self.accepted)} jobs submitted; faults {self.faults}")
        for p in self.proxies.values():
            p.cut(False)
        for name, _ in SITES:
            if not self.f.sites[name].alive():
                self.restart_site(name)
        wait_for(self.all_terminal, self.args.timeout, 1.0, "every job to end")
        self.say("every job ended")
        try:  # a site just back from a link cut still has results to send (stale ones)
            wait_for(self.outboxes_empty, 60, 0.5, "the sites' outboxes to drain")
        except TimeoutError as e:
            self.say(str(e))  # the books say which
        recovered = self.hub_recovery()
        audit = self.f.cli("audit", "verify", check=False, timeout=120)
        codes = self.f.stop()
        for p in self.proxies.values():
            p.close()
        return self.books(recovered, audit, codes)

    def all_terminal(self):
        try:
            with self.hub_db() as db:
                q = ("SELECT COUNT(*) FROM jobs WHERE name LIKE ? AND state NOT IN "
                     "('succeeded','failed','cancelled')")
                left = db.execute(q, (f"f{self.args.seed}-%",)).fetchone()[0]
        except sqlite3.Error:
            return False
        return left == 0

    def interim_books(self):
        """(accepted jobs missing from the hub's store, jobs with two applied results)."""
        mine = f"f{self.args.seed}-%"
        with self.hub_db() as db:
            stored = {r[0] for r in db.execute("SELECT name FROM jobs WHERE name LIKE ?",
                                               (mine,))}
            twice = db.execute(
                "SELECT COUNT(*) FROM (SELECT r.job_id FROM results r JOIN jobs j ON "
                "r.job_id = j.id WHERE j.name LIKE ? AND r.applied = 1 GROUP BY r.job_id "
                "HAVING COUNT(*) > 1)", (mine,)).fetchone()[0]
        return len(self.accepted - stored), twice

    def outbox_left(self):
        return outbox_left(self.f.base, SITES)

    def outboxes_empty(self):
        try:
            return self.outbox_left() == 0
        except sqlite3.Error:
            return False

    def hub_recovery(self):
        """Seconds from a hub SIGKILL to a fresh job's completion."""
        t = time.monotonic()
        self.f.hub.kill(signal.SIGKILL)
        self.f.hub.wait(10)
        self.restart_hub()
        jid = None
        while jid is None and time.monotonic() - t < 60:
            r = self.f.cli("submit", "--quiet", "--kind", "noop", check=False, timeout=15)
            if r.returncode == 0:
                jid = int(r.stdout.split()[0])
        self.f.wait_jobs_terminal([jid], 60)
        return time.monotonic() - t

    def books(self, recovered, audit, codes):
        mine = f"f{self.args.seed}-%"
        with self.hub_db() as db:
            rows = db.execute("SELECT name, COUNT(*), MAX(state), MAX(id) FROM jobs "
                              "WHERE name LIKE ? GROUP BY name", (mine,)).fetchall()
            applied = dict(db.execute(
                "SELECT j.name, COALESCE(SUM(r.applied), 0) FROM jobs j LEFT JOIN results r "
                "ON r.job_id = j.id WHERE j.name LIKE ? GROUP BY j.name", (mine,)).fetchall())
            dup_results = db.execute(
                "SELECT COUNT(*) FROM results r JOIN jobs j ON r.job_id = j.id "
                "WHERE j.name LIKE ? AND r.applied = 0", (mine,)).fetchone()[0]
            reasons = db.execute("SELECT state, reason, COUNT(*) FROM jobs WHERE name LIKE ? "
                                 "AND state != 'succeeded' GROUP BY state, reason",
                                 (mine,)).fetchall()
            attempts = db.execute("SELECT SUM(attempt) FROM jobs WHERE name LIKE ?",
                                  (mine,)).fetchone()[0] or 0
        by_name = {r[0]: r for r in rows}
        submitted = len(self.accepted)
        twice_submitted = sum(1 for r in rows if r[1] > 1)
        completed = sum(1 for n in self.accepted if n in by_name and by_name[n][2] == "succeeded"
                        and applied.get(n) == 1)
        lost = sum(1 for n in self.accepted if n not in by_name or by_name[n][2] not in TERMINAL
                   or (by_name[n][2] == "succeeded" and applied.get(n, 0) == 0))
        applied_twice = sum(1 for n in self.accepted if applied.get(n, 0) > 1)
        failed = sum(1 for n in self.accepted if n in by_name and by_name[n][2] != "succeeded")
        outbox_left = self.outbox_left()
        site_logs_bad = []
        for name, _ in SITES:
            v = verify_site_log(self.f, name)
            if v.returncode != 0:
                site_logs_bad.append(f"{name}: {(v.stdout + v.stderr).strip()[-300:]}")
        print(f"faults injected: {json.dumps(self.faults, sort_keys=True)}; "
              f"attempts {attempts} for {submitted} jobs; results recorded but not applied "
              f"(stale or duplicate): {dup_results}")
        if reasons:
            print(f"not succeeded: {reasons}")
        for r in self.storage.results:
            print(f"storage episode: {json.dumps(r, sort_keys=True)}")
        for p in self.storage.problems + site_logs_bad:
            print(f"PROBLEM: {p}")
        ok = (lost == 0 and applied_twice == 0 and failed == 0 and twice_submitted == 0
              and outbox_left == 0 and audit.returncode == 0 and not site_logs_bad
              and not self.storage.problems and not self.storage.pending)
        print(f"audit verify: exit {audit.returncode}; site logs verified "
              f"{len(SITES) - len(site_logs_bad)}/{len(SITES)}; site outboxes left: "
              f"{outbox_left}; exit codes at stop: {codes}")
        print(f"submitted {submitted}, completed {completed}, lost {lost}, applied twice "
              f"{applied_twice}, recovered after {recovered:.1f} s; {self.storage.summary()}")
        self.storage.close(keep_copies=not ok or self.args.keep)
        if not ok:
            print("FAULTS: FAILED (seed %d); driver log:\n%s" % (self.args.seed,
                                                                 "\n".join(self.log)))
            print(audit.stdout[-2000:], audit.stderr[-2000:])
        elif not self.args.keep:
            import shutil
            shutil.rmtree(self.f.base, ignore_errors=True)
        return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("FAULT_JOBS", "400")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FAULT_SEED", "1")))
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--binary", default=os.environ.get("OUTPOST_BIN"))
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the fleet's files after a pass")
    ap.add_argument("--storage", default=os.environ.get("FAULT_STORAGE", "all"),
                    help="storage episodes: all, none, or a comma list of " + ", ".join(KINDS))
    ap.add_argument("--full-seconds", type=float,
                    default=float(os.environ.get("FAULT_FULL_S", "6")),
                    help="how long a data dir stays full (at least; until it shows)")
    ap.add_argument("--disk", choices=("tmpfs", "shim"), default=os.environ.get("FAULT_DISK"),
                    help="how a disk fills up (default: tmpfs where this process may mount)")
    args = ap.parse_args()
    if args.storage == "all":
        args.storage = list(KINDS)
    elif args.storage == "none":
        args.storage = []
    else:
        args.storage = args.storage.split(",")
        unknown = [k for k in args.storage if k not in KINDS]
        if unknown:
            ap.error(f"unknown storage episode {unknown[0]} (known: {', '.join(KINDS)})")
    d = Driver(args)
    try:
        return d.run()
    except Exception as e:  # the books could not be checked: a failure, with the log
        print(f"FAULTS: ERROR {e!r} (seed {args.seed}); driver log:\n" + "\n".join(d.log))
        for p in d.storage.problems:
            print(f"PROBLEM: {p}")
        try:
            d.f.stop()
        except Exception:
            pass
        d.storage.close(keep_copies=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
