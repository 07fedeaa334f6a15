"""Storage faults against a real fleet. A full disk: the hub's data dir on a small tmpfs fills
up while jobs with large inputs arrive, then gets room again; nothing committed is lost, the
hub keeps serving, restarts, and its audit log verifies (needs root to mount the tmpfs). A
corrupt database: refused at start with a message that says so, and a backup taken while the
hub ran restores it. The helpers are shared with the fault suite (tests/faults/storage.py),
which also runs a full disk unprivileged, through an ENOSPC shim."""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "faults"))
from fleet import UNCHECKED_POLICY, Fleet, on_postgresql, sqlite_only, wait_for  # noqa: E402
from storage import (SHIM, corrupt_pages, mount_tmpfs, resize_tmpfs,  # noqa: E402
                     restore_db, verify_site_log)

ROOT_ONLY = "needs root to mount a small tmpfs (make test-faults runs a full disk unprivileged)"


@unittest.skipUnless(os.geteuid() == 0, ROOT_ONLY)
@sqlite_only("fills the hub's data dir, where hub.db is; a PostgreSQL store is on its server")
class HubDiskFullTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        mount_tmpfs(self.f.hub_dir, "3m")
        self.input = os.path.join(self.f.base, "input.bin")
        with open(self.input, "wb") as fh:
            fh.write(os.urandom(300 * 1024))

    def tearDown(self):
        hub_dir = self.f.hub_dir
        try:
            self.f.stop()
        finally:
            subprocess.run(["umount", "-l", hub_dir], capture_output=True)

    def submit(self):
        r = self.f.cli("submit", "--timeout", "3000", "--input", self.input, "-q", "--", "sh", "-c",
                       "wc -c < input.bin", check=False, timeout=30)
        return r

    def test_disk_full_loses_nothing_and_the_log_verifies(self):
        f = self.f
        f.start_broker()
        f.start_hub()
        f.start_site("dc-1", "dc")
        accepted, refusals = [], []
        for _ in range(8):
            r = self.submit()
            if r.returncode == 0:
                accepted += [int(x) for x in r.stdout.split()]
            else:
                refusals.append(r.stdout + r.stderr)
        self.assertTrue(refusals, "the 3 MB data dir never filled up")
        self.assertTrue(f.hub.alive(), f.hub.log_text()[-3000:])
        # the operator is told why, not left waiting for an answer
        self.assertTrue(any("could not store this request" in r for r in refusals), refusals)
        # a failing store is logged when it starts and every 30 s, not on every batch
        errors = [line for line in f.hub.log_text().splitlines() if " ERROR " in line]
        self.assertLess(len(errors), 40, "\n".join(errors[-40:]))
        resize_tmpfs(f.hub_dir, "64m")
        for _ in range(3):
            r = self.submit()
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            accepted += [int(x) for x in r.stdout.split()]
        states = f.wait_jobs_terminal(accepted, timeout=120)
        self.assertEqual(set(states.values()), {"succeeded"}, states)
        f.hub.stop()
        f.start_hub()
        for i in accepted:
            self.assertEqual(f.job(i)["job"]["state"], "succeeded")
        v = f.cli("audit", "verify", check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


@unittest.skipUnless(os.geteuid() == 0, ROOT_ONLY)
class SiteDiskFullTest(unittest.TestCase):
    """A site whose data dir fills up: it says so (`outpost sites`: no-store), keeps its
    accepted work, and once space returns every job finishes and it restarts cleanly."""

    def setUp(self):
        self.f = Fleet()
        self.site_dir = os.path.join(self.f.base, "sites", "car-1")
        mount_tmpfs(self.site_dir, "2m")
        self.input = os.path.join(self.f.base, "input.bin")
        with open(self.input, "wb") as fh:
            fh.write(os.urandom(300 * 1024))

    def tearDown(self):
        try:
            self.f.stop()
        finally:
            subprocess.run(["umount", "-l", self.site_dir], capture_output=True)

    def test_site_disk_full_says_so_and_loses_nothing(self):
        f = self.f
        f.start_broker()
        f.start_hub(policy=UNCHECKED_POLICY)
        f.start_site("car-1", "car", cores=4)
        ids = []
        for _ in range(8):
            r = f.cli("submit", "--input", self.input, "-q", "--", "sh", "-c",
                      "wc -c < input.bin; sleep 1")
            ids += [int(x) for x in r.stdout.split()]
        wait_for(lambda: "no-store" in f.cli("sites").stdout, 60, 0.3,
                 "the site to say it cannot store")
        resize_tmpfs(self.site_dir, "64m")
        states = f.wait_jobs_terminal(ids, timeout=180)
        self.assertEqual(set(states.values()), {"succeeded"}, states)
        wait_for(lambda: not any(s["id"] == "car-1" and s.get("store_failing")
                                 for s in f.cli_json("sites")["sites"]), 60, 0.3,
                 "the site to say its store works again")
        errors = [line for line in f.sites["car-1"].log_text().splitlines() if " ERROR " in line]
        self.assertLess(len(errors), 60, "\n".join(errors[-60:]))
        f.sites["car-1"].stop()
        f.start_site("car-1", cores=4)


class CorruptDatabaseTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()

    def tearDown(self):
        self.f.stop()

    @sqlite_only("damages hub.db's pages and restores the copy `outpost backup` made")
    def test_corrupt_hub_db_refused_and_backup_restores(self):
        f = self.f
        f.start_broker()
        f.start_hub()
        f.start_site("dc-1", "dc")
        ids = [int(x) for x in f.cli("submit", "--kind", "noop", "--count", "40", "-q").stdout.split()]
        f.wait_jobs_terminal(ids, timeout=120)
        backup = os.path.join(f.base, "hub-backup.db")
        r = f.cli("backup", backup, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("audit log OK", r.stdout)
        self.assertFalse(os.path.exists(backup + ".partial"))
        f.hub.stop()
        db = os.path.join(f.hub_dir, "hub.db")
        corrupt_pages(db)
        conf = os.path.join(f.base, "hub.conf")
        r = subprocess.run([f.binary, "hub", "--data-dir", f.hub_dir, "--config", conf],
                           capture_output=True, text=True, timeout=60, env=f.env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("is damaged (SQLite quick_check", r.stderr + r.stdout)
        self.assertIn("restore the last backup", r.stderr + r.stdout)
        v = f.cli("audit", "verify", check=False)
        self.assertNotEqual(v.returncode, 0)
        self.assertIn("is damaged", v.stderr)
        # the documented restore: the damaged file (and any WAL or shared-memory file beside
        # it) moved aside, the copy in its place
        restore_db(db, backup)
        f.hub = None
        f.start_hub()
        for i in ids:
            self.assertEqual(f.job(i)["job"]["state"], "succeeded")
        v = f.cli("audit", "verify", check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    @unittest.skipUnless(on_postgresql(), "about a PostgreSQL store (OUTPOST_TEST_STORE)")
    def test_backup_of_a_postgresql_store_says_to_use_pg_dump(self):
        """`outpost backup` copies SQLite files only: on a PostgreSQL store (found through
        the store line the hub writes into cli.conf, or given with --db) it refuses and names
        the tool to use, writing nothing."""
        f = self.f
        f.start_broker()
        f.start_hub()
        with open(os.path.join(f.hub_dir, "cli.conf")) as fh:
            self.assertIn(f"store = {f.store_url}\n", fh.read())
        backup = os.path.join(f.base, "hub-backup.db")
        for extra in ((), ("--db", f.store_url)):
            r = f.cli("backup", *extra, backup, check=False)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn("the hub's store is PostgreSQL", r.stderr)
            self.assertIn("pg_dump", r.stderr)
            self.assertFalse(os.path.exists(backup))
        v = f.cli("audit", "verify", check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertIn("audit log OK", v.stdout)

    def test_corrupt_site_db_refused_and_backup_restores(self):
        f = self.f
        f.start_broker()
        f.start_hub()
        f.start_site("dc-1", "dc")
        ids = [int(x) for x in f.cli("submit", "--kind", "noop", "--count", "20", "-q").stdout.split()]
        f.wait_jobs_terminal(ids, timeout=120)
        site_dir = os.path.join(f.base, "sites", "dc-1")
        db = os.path.join(site_dir, "site.db")
        backup = os.path.join(f.base, "site-backup.db")
        r = f.cli("backup", "--db", db, backup, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        f.sites["dc-1"].stop()
        corrupt_pages(db)
        r = subprocess.run([f.binary, "site", "--config", os.path.join(f.base, "dc-1.conf"),
                            "--data-dir", site_dir], capture_output=True, text=True, timeout=60,
                           env=f.env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("site.db is damaged (SQLite quick_check", r.stderr + r.stdout)
        self.assertIn("restore the last backup", r.stderr + r.stdout)
        restore_db(db, backup)
        f.start_site("dc-1")
        v = verify_site_log(f, "dc-1")
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        more = [int(x) for x in f.cli("submit", "--kind", "noop", "--count", "5", "-q").stdout.split()]
        self.assertEqual(set(f.wait_jobs_terminal(ids + more, timeout=120).values()),
                         {"succeeded"})


# Run under the shim: each call on a file in FULL and one outside it, as errno names or "ok".
SHIM_PROBE = r"""
import errno, os, sys
full, other = sys.argv[1], sys.argv[2]
def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
out = []
for d in (full, other):
    fd = os.open(os.path.join(d, "f"), os.O_RDWR | os.O_CREAT, 0o600)
    out.append(attempt(lambda: os.write(fd, b"x" * 10)))
    out.append(attempt(lambda: os.pwrite(fd, b"y", 100)))
    out.append(attempt(lambda: os.writev(fd, [b"a", b"b"])))
    out.append(attempt(lambda: os.posix_fallocate(fd, 0, 8192)))
    out.append(attempt(lambda: os.ftruncate(fd, 1 << 20)))
    out.append(attempt(lambda: os.ftruncate(fd, 0)))
    os.close(fd)
r, w = os.pipe()
out.append(attempt(lambda: os.write(w, b"z")))
print(" ".join(out))
"""


class EnospcShimTest(unittest.TestCase):
    """The fault suite's full disk without root: writes under a listed dir fail with ENOSPC
    while the control file lists it; shrinking, other dirs and pipes are untouched."""

    def setUp(self):
        import tempfile
        self.base = os.path.realpath(tempfile.mkdtemp(prefix="outpost-shim-"))
        self.full = os.path.join(self.base, "full")
        self.other = os.path.join(self.base, "full-not")  # a prefix of it is not under it
        os.makedirs(self.full)
        os.makedirs(self.other)
        self.control = os.path.join(self.base, "control")

    def tearDown(self):
        import shutil
        shutil.rmtree(self.base, ignore_errors=True)

    def probe(self):
        env = dict(os.environ, LD_PRELOAD=SHIM, ENOSPC_SHIM_CONTROL=self.control)
        r = subprocess.run(["/usr/bin/python3", "-c", SHIM_PROBE, self.full, self.other],
                           capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.split()

    def test_writes_fail_under_a_listed_dir_only_while_listed(self):
        self.assertTrue(os.path.exists(SHIM), f"{SHIM}: run make test")
        with open(self.control, "w") as fh:
            fh.write(self.full + "/\n")
        got = self.probe()
        self.assertEqual(got[:6], ["ENOSPC"] * 5 + ["ok"])  # shrinking frees space
        self.assertEqual(got[6:], ["ok"] * 7)  # another dir, a pipe
        os.unlink(self.control)
        self.assertEqual(self.probe(), ["ok"] * 13)

    def test_the_asan_binary_runs_under_it(self):
        env = dict(os.environ, LD_PRELOAD=SHIM, ENOSPC_SHIM_CONTROL=self.control,
                   ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=1")
        binary = os.environ.get("OUTPOST_BIN") or os.path.join(HERE, "..", "..", "build",
                                                                 "asan", "outpost")
        r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30,
                           env=env)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
