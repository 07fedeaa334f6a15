"""The fault-injection suite (tests/faults/run.py) inside `make test`: 300 jobs under site
kills, link cuts, hub and broker SIGKILLs and cars leaving, and its four storage episodes in
their short form (a data dir full for 3 s: the hub's, a site's; a damaged hub.db and
site.db restored from backups), then the books are checked; and, in 40 jobs, both disk-full
episodes through the ENOSPC shim an unprivileged run uses; and the failover case in short
(tests/faults/failover.py: 100 jobs through a PostgreSQL-backed pair of hubs, the active one
SIGKILLed three times). `make test-faults` runs the drivers with 1,000 jobs and 6 s windows."""
import os
import re
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import sqlite_only  # noqa: E402


@sqlite_only("the driver (tests/faults/run.py) fills and damages hub.db and reads its books "
             "from the file; FailoverFaultsTest below is its PostgreSQL counterpart")
class FaultSuiteTest(unittest.TestCase):
    def test_no_job_lost_or_applied_twice_under_faults(self):
        seed = os.environ.get("FAULT_SEED", "1")
        r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "faults", "run.py"),
                            "--jobs", os.environ.get("FAULT_JOBS", "300"), "--seed", seed,
                            "--full-seconds", os.environ.get("FAULT_FULL_S", "3")],
                           capture_output=True, text=True, timeout=900)
        out = r.stdout + r.stderr
        print(out[-2500:])
        self.assertEqual(r.returncode, 0, out[-6000:])
        m = re.search(r"submitted (\d+), completed (\d+), lost (\d+), applied twice (\d+)", out)
        self.assertIsNotNone(m, out[-3000:])
        self.assertEqual(m.group(1), m.group(2))
        self.assertEqual((m.group(3), m.group(4)), ("0", "0"))
        # the storage episodes ran, each refused its damaged database and verified its logs
        m = re.search(r"storage episodes (\d+) .*damaged db refused (\d+)/(\d+), audit logs "
                      r"verified after (\d+)/(\d+)", out)
        self.assertIsNotNone(m, out[-3000:])
        self.assertEqual(m.groups(), ("4", "2", "2", "4", "4"))

    def test_disk_full_through_the_shim(self):
        """The path an unprivileged run takes (where the test above mounts tmpfs): both
        disk-full episodes with the ENOSPC shim preloaded, 40 jobs."""
        r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "faults", "run.py"),
                            "--jobs", "40", "--seed", os.environ.get("FAULT_SEED", "1"),
                            "--full-seconds", "3", "--disk", "shim",
                            "--storage", "hub-disk-full,site-disk-full"],
                           capture_output=True, text=True, timeout=600)
        out = r.stdout + r.stderr
        print(out[-1500:])
        self.assertEqual(r.returncode, 0, out[-6000:])
        self.assertRegex(out, r"lost 0, applied twice 0, .*storage episodes 2 \(hub-disk-full, "
                              r"site-disk-full \S+; disk full by shim\).*audit logs verified "
                              r"after 2/2")


if __name__ == "__main__":
    unittest.main()


class FailoverFaultsTest(unittest.TestCase):
    def test_active_hub_killed_repeatedly_nothing_lost(self):
        r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "faults",
                                                             "failover.py"),
                            "--jobs", "100", "--kills", "3",
                            "--seed", os.environ.get("FAULT_SEED", "1")],
                           capture_output=True, text=True, timeout=600)
        out = r.stdout + r.stderr
        print(out[-1500:])
        self.assertEqual(r.returncode, 0, out[-6000:])
        if "skipped:" in out:
            self.skipTest(out.strip())
        m = re.search(r"submitted (\d+), completed (\d+), lost (\d+), applied twice (\d+), "
                      r"takeovers (\d+)", out)
        self.assertIsNotNone(m, out[-3000:])
        self.assertEqual(m.group(1), m.group(2))
        self.assertEqual((m.group(3), m.group(4)), ("0", "0"))
        self.assertGreaterEqual(int(m.group(5)), 3)
