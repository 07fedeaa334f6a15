"""Storage faults against a real fleet: the hub's data dir on a small tmpfs that fills up while
jobs with large inputs arrive, then gets room again. Nothing committed is lost, the hub keeps
serving, restarts, and its audit log verifies. Needs root (to mount the tmpfs)."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet  # noqa: E402


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                   check=True)


def resize_tmpfs(path, size):
    subprocess.run(["mount", "-o", f"remount,size={size}", path], check=True)


@unittest.skipUnless(os.geteuid() == 0, "needs root to mount a small tmpfs")
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


if __name__ == "__main__":
    unittest.main()
