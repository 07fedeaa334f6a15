"""The fault suite's storage episodes (tests/faults/run.py), each run while jobs keep
arriving, spread over the run (the first after a fifth of the jobs are in, and so on):

  hub-disk-full    the hub's data dir runs out of space for a window (batches keep coming,
                   one job of each with a 256 KiB input); refusals ("could not store this
                   request") are counted apart: never accepted, those jobs are submitted
                   again later. Space returns, the hub is restarted.
  site-disk-full   the same for one site's data dir, until the hub shows it as no-store;
                   space returns, and a job only that site may run (site-private) gives it
                   work before it is restarted. A job whose output found no room fails on
                   the site: it must be handed back and run elsewhere, not fail for good.
  hub-corrupt-db   a backup taken while the hub runs (`outpost backup`), the hub stopped,
                   pages of the largest B-tree in hub.db XOR'd: the hub must refuse to start
                   and `outpost audit verify` must say the file is damaged; the backup is
                   restored as docs/operations.md says, and the hub started on it.
  site-corrupt-db  the same for a site's site.db (`outpost backup --db`).

After each: the hub (or site) is up, the hub's audit log verifies (and the site's, with the
site's key), every job accepted so far is in the hub's store, and none has two applied
results. The final books (run.py) then check that every accepted job ended exactly once.
A restore rolls the record back to the backup: work finished after it runs again (one
applied result in the end), as docs/operations.md says.
"""
import base64
import hashlib
import os
import random
import sqlite3
import subprocess
import time

from fleet import wait_for
from storage import FullDisk, corrupt_pages, restore_db, verify_site_log

def audit_size(db_path):
    """Entries in the audit log stored in a SQLite file (read only; 0 if unreadable)."""
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute("SELECT IFNULL(MAX(idx) + 1, 0) FROM audit_entries").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def error_lines(proc):
    """ERROR lines in a daemon's log so far (how loud a full disk is: for the record)."""
    return sum(1 for line in proc.log_text().splitlines() if " ERROR " in line)


KINDS = ("hub-disk-full", "site-disk-full", "hub-corrupt-db", "site-corrupt-db")
REFUSED = "could not store this request"
DAMAGED = "is damaged (SQLite quick_check"


class StorageEpisodes:
    def __init__(self, driver, kinds, full_seconds, disk_mode=None):
        self.d = driver
        self.kinds = list(kinds)
        self.pending = list(kinds)
        self.window_s = full_seconds
        self.disk_mode = disk_mode
        self.disk = None
        self.rnd = random.Random(driver.args.seed * 7919 + 17)  # apart from the other faults
        self.results = []  # one dict per episode run
        self.problems = []

    # --- set-up, before any process starts
    def prepare(self, site_names):
        f = self.d.f
        self.disk = FullDisk(f, self.disk_mode)
        self.disk.prepare(f.hub_dir)
        for name in site_names:
            self.disk.prepare(os.path.join(f.base, "sites", name))

    def close(self, keep_copies=False):
        if self.disk:
            self.disk.close(keep_copies)

    def due(self):
        """An episode is due each time another share of the jobs is in."""
        if not self.pending:
            return False
        share = (len(self.kinds) - len(self.pending) + 1) / (len(self.kinds) + 1)
        return len(self.d.accepted) >= self.d.args.jobs * share

    def run_next(self):
        kind = self.pending.pop(0)
        self.d.faults[kind] = self.d.faults.get(kind, 0) + 1
        getattr(self, kind.replace("-", "_"))()

    # --- the episodes
    def pad(self):
        """A 256 KiB input: a full disk shows within a few batches even where the WAL has
        room left (tmpfs), and a site's work dir needs room to run the job."""
        data = self.rnd.randbytes(256 * 1024)
        return {"name": "pad.bin", "sha256": hashlib.sha256(data).hexdigest(),
                "data_b64": base64.b64encode(data).decode()}

    def full_window(self, bitten):
        """Batches keep coming for window_s, and on (up to 30 s more) until bitten() says
        the full disk showed. Returns whether it did."""
        t0 = time.monotonic()
        seen = False
        while True:
            self.d.submit_some(pad=self.pad)
            seen = seen or bitten()
            elapsed = time.monotonic() - t0
            if (elapsed >= self.window_s and seen) or elapsed >= self.window_s + 30:
                return seen
            time.sleep(self.rnd.uniform(0.5, 1.0))

    def hub_disk_full(self):
        d, f = self.d, self.d.f
        refused_before = len(d.refused)
        errors_before = error_lines(f.hub)
        self.disk.fill(f.hub_dir)
        d.say(f"hub-disk-full: the hub's data dir is full ({self.disk.mode})")
        try:
            bit = self.full_window(lambda: len(d.refused) > refused_before)
        finally:
            self.disk.free(f.hub_dir)
        d.say(f"hub-disk-full: space back; {len(d.refused) - refused_before} jobs refused")
        survived = f.hub.alive()
        errors = error_lines(f.hub) - errors_before
        live = self.carry_on()
        self.restart_hub()
        self.check("hub-disk-full", None, {
            "showed": bit, "survived": survived, "log_before_restart": live,
            "refused_jobs": len(d.refused) - refused_before, "error_lines": errors})

    def site_disk_full(self):
        d, f = self.d, self.d.f
        name = self.rnd.choice(d.site_names())
        site_dir = os.path.join(f.base, "sites", name)
        errors_before = error_lines(f.sites[name])
        self.disk.fill(site_dir)
        d.say(f"site-disk-full: {name}'s data dir is full ({self.disk.mode})")
        try:
            bit = self.full_window(lambda: self.no_store(name))
        finally:
            self.disk.free(site_dir)
        d.say(f"site-disk-full: space back for {name}")
        survived = f.sites[name].alive()
        errors = error_lines(f.sites[name]) - errors_before
        live = self.carry_on(name)
        self.restart_site(name)
        self.check("site-disk-full", name, {"showed": bit, "survived": survived,
                                            "log_before_restart": live, "error_lines": errors})

    def hub_corrupt_db(self):
        d, f = self.d, self.d.f
        backup = os.path.join(f.base, f"hub-backup-{len(self.results)}.db")
        r = f.cli("backup", backup, check=False, timeout=120)
        backed_up = r.returncode == 0 and "audit log OK" in r.stdout
        d.say(f"hub-corrupt-db: backup exit {r.returncode}; hub stopped")
        f.hub.stop()
        db = os.path.join(f.hub_dir, "hub.db")
        pages = corrupt_pages(db)
        refused, why = self.refuses([f.binary, "hub", "--data-dir", f.hub_dir, "--config",
                                     os.path.join(f.base, "hub.conf")])
        v = f.cli("audit", "verify", check=False, timeout=120)
        verify_says = v.returncode != 0 and "is damaged" in v.stdout + v.stderr
        d.say(f"hub-corrupt-db: pages {pages} damaged; start refused: {refused}; "
              f"audit verify refused: {verify_says}; restoring the backup")
        if backed_up:
            restore_db(db, backup)
        self.restart_hub()
        self.check("hub-corrupt-db", None, {
            "backup": backed_up, "refused": refused and verify_says, "why": why})

    def site_corrupt_db(self):
        d, f = self.d, self.d.f
        name = self.rnd.choice(d.site_names())
        site_dir = os.path.join(f.base, "sites", name)
        db = os.path.join(site_dir, "site.db")
        backup = os.path.join(f.base, f"{name}-backup-{len(self.results)}.db")
        r = f.cli("backup", "--db", db, backup, check=False, timeout=120)
        backed_up = r.returncode == 0
        d.say(f"site-corrupt-db: {name}: backup exit {r.returncode}; site stopped")
        f.sites[name].stop()
        pages = corrupt_pages(db)
        refused, why = self.refuses([f.binary, "site", "--config",
                                     os.path.join(f.base, f"{name}.conf"), "--data-dir",
                                     site_dir])
        d.say(f"site-corrupt-db: {name}: pages {pages} damaged; start refused: {refused}; "
              "restoring the backup")
        if backed_up:
            restore_db(db, backup)
        self.restart_site(name)
        self.check("site-corrupt-db", name, {"backup": backed_up, "refused": refused,
                                             "why": why})

    # --- helpers
    def carry_on(self, site=None):
        """Work goes on with space back until the audit log (the site's when given, else the
        hub's) has grown by a few entries (at most 20 s), and the log is verified before any
        restart: a log whose in-memory tree stayed ahead of a rolled-back batch shows here
        as a missing entry (a restart would hide it by reading the store again, or refuse
        to start)."""
        f = self.d.f
        db = os.path.join(f.base, "sites", site, "site.db") if site else \
            os.path.join(f.hub_dir, "hub.db")
        start, t0 = audit_size(db), time.monotonic()
        if site:
            self.pinned(site)
        while audit_size(db) < start + 3 and time.monotonic() - t0 < 20:
            self.d.submit_some()
            time.sleep(0.5)
        v = verify_site_log(f, site) if site else f.cli("audit", "verify", check=False,
                                                          timeout=120)
        if v.returncode != 0:
            self.d.say(f"audit log before the restart: {(v.stdout + v.stderr).strip()[-300:]}")
        return v.returncode == 0

    def refuses(self, argv):
        """Whether a daemon started on a damaged database exits at once, saying so and
        pointing at the backup; (refused, its last words)."""
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                               env=self.d.f.env)
        except subprocess.TimeoutExpired:
            return False, "it started and ran on the damaged file"
        out = r.stdout + r.stderr
        ok = r.returncode != 0 and DAMAGED in out and "restore the last backup" in out
        last = [line for line in out.splitlines() if DAMAGED in line] or out.splitlines()[-1:]
        return ok, (last[0] if last else "")[-200:]

    def pinned(self, site):
        """A job that only site may run (its data is the site's): work for that site."""
        spec = self.d.new_batch(1)[0]
        spec.update({"data_class": "site-private", "origin": site})
        self.d.submit([spec])

    def no_store(self, name):
        try:
            sites = self.d.f.cli_json("sites", timeout=15)["sites"]
        except Exception:
            return False
        return any(s["id"] == name and s.get("store_failing") for s in sites)

    def restart_hub(self):
        """A clean stop and a start, waiting for the new process's start line."""
        f = self.d.f
        starts = f.hub.log_text().count(" started (pubkey ")
        f.hub.stop()
        self.d.restart_hub()
        wait_for(lambda: f.hub.log_text().count(" started (pubkey ") > starts
                 or not f.hub.alive(), 60, 0.1, "the hub to start again")
        if not f.hub.alive():
            raise RuntimeError("the hub did not start again:\n" + f.hub.log_text()[-3000:])

    def restart_site(self, name):
        f = self.d.f
        f.sites[name].stop()
        self.d.restart_site(name)
        wait_for(lambda: f.site_status(name) == "alive" or not f.sites[name].alive(), 60, 0.2,
                 f"site {name} to be alive again")
        if not f.sites[name].alive():
            raise RuntimeError(f"site {name} did not start again:\n" +
                               f.sites[name].log_text()[-3000:])

    def check(self, kind, site, facts):
        """The books after an episode, with everything back up."""
        f = self.d.f
        v = f.cli("audit", "verify", check=False, timeout=120)
        facts["hub_log"] = v.returncode == 0
        if site:
            sv = verify_site_log(f, site)
            facts["site_log"] = sv.returncode == 0
            if sv.returncode != 0:
                facts["site_log_says"] = (sv.stdout + sv.stderr).strip()[-300:]
        if v.returncode != 0:
            facts["hub_log_says"] = (v.stdout + v.stderr).strip()[-300:]
        facts["missing"], facts["applied_twice"] = self.d.interim_books()
        result = {"kind": kind, "site": site, **facts}
        self.results.append(result)
        bad = [k for k in ("showed", "survived", "log_before_restart", "backup", "refused",
                           "hub_log", "site_log")
               if k in facts and not facts[k]]
        if facts["missing"] or facts["applied_twice"]:
            bad.append("books")
        if bad:
            self.problems.append(f"{kind}{' ' + site if site else ''}: {', '.join(bad)} "
                                 f"({result})")
        self.d.say(f"{kind} done: {result}")

    def summary(self):
        """The episodes in the suite's summary line."""
        if not self.kinds:
            return "storage episodes 0"
        ok = sum(1 for r in self.results if r.get("hub_log") and r.get("site_log", True))
        refused = sum(r.get("refused_jobs", 0) for r in self.results)
        damaged = [r for r in self.results if "refused" in r]
        where = ", ".join(f"{r['kind']}{' ' + r['site'] if r['site'] else ''}"
                          for r in self.results)
        return (f"storage episodes {len(self.results)} ({where}; disk full by "
                f"{self.disk.mode}): jobs refused while full {refused} (never accepted, "
                f"submitted again), damaged db refused {sum(1 for r in damaged if r['refused'])}"
                f"/{len(damaged)}, audit logs verified after {ok}/{len(self.results)}")
