"""Learned run times end to end: a real hub learns how long a program runs from the jobs that
succeed (timed on its own clock from placement), keeps it across a restart, and the next job of that program,
submitted without expected_s, is placed with the learned run time, which `outpost explain`
shows."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet  # noqa: E402


class RuntimesTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.f.start_broker()
        self.f.start_hub()
        self.f.start_site("dc-1", "dc", cores=3)

    def tearDown(self):
        self.f.stop()

    def test_learned_run_time_survives_a_restart_and_is_explained(self):
        f = self.f
        ids = [int(x) for x in f.cli("submit", "--quiet", "--count", "6", "--", "sleep", "2").stdout.split()]
        states = f.wait_jobs_terminal(ids, 90)
        self.assertTrue(all(s == "succeeded" for s in states.values()), states)
        # before enough runs were seen nothing is said; the first jobs planned with nothing
        self.assertNotIn("learned from", f.cli("explain", str(ids[0])).stdout)
        f.hub.stop()
        f.start_hub()
        jid = int(f.cli("submit", "--quiet", "--", "sleep", "2").stdout)
        self.assertEqual(f.wait_jobs_terminal([jid], 60)[jid], "succeeded")
        explain = f.cli("explain", str(jid)).stdout
        m = re.search(r"run time (\d+) s \(planned (\d+) s\) learned from 6 runs of sleep on dc-1",
                      explain)
        self.assertIsNotNone(m, explain)
        # timed by the hub from placement to the result: at least the 2 s the job slept
        self.assertGreaterEqual(int(m.group(1)), 2)
        self.assertLess(int(m.group(1)), 15)


if __name__ == "__main__":
    unittest.main()
