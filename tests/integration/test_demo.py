"""`make demo` stays true: run demo/run.py end to end (with the binary under test) and check
that every job succeeded and every process it started exited cleanly."""
import os
import re
import subprocess
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class DemoTest(unittest.TestCase):
    def test_demo_runs_every_job_and_stops_cleanly(self):
        env = dict(os.environ)
        env["OUTPOST_BIN"] = os.path.abspath(env.get("OUTPOST_BIN", "build/asan/outpost"))
        r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "demo", "run.py")], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=600)
        out = r.stdout
        self.assertEqual(r.returncode, 0, out[-3000:] + r.stderr[-3000:])
        m = re.search(r"== (\d+)/(\d+) jobs succeeded", out)
        self.assertIsNotNone(m, out[-3000:])
        self.assertEqual(m.group(1), m.group(2))
        self.assertGreater(int(m.group(2)), 10)
        self.assertIn("(all exited cleanly)", out)
        # A broker-wide eavesdropper heard no token, key, input or output.
        m = re.search(r"== eavesdropper .* (\d+) sealed, (\d+) heartbeats in clear; (\d+) known "
                      r"secrets .* looked for, (\d+) found", out)
        self.assertIsNotNone(m, out[-3000:])
        self.assertGreater(int(m.group(1)), 100)
        self.assertEqual(m.group(4), "0")
        # With the real data sets every class does work (cars take the small files); the
        # fallback workload (the project's sources) is too light to load the data centers.
        if os.path.isdir(os.path.join(os.path.dirname(ROOT), "shared", "data")):
            per_site = out[out.index("== per site"):]
            for cls in (" pod ", " car ", " dc "):
                self.assertIn(cls, per_site)
            # The cars' jobs ended only once two owners agreed, and the honest cars agreed.
            m = re.search(r"== verified: (\d+) jobs .* mismatches (\d+)", out)
            self.assertIsNotNone(m, out[-3000:])
            self.assertGreater(int(m.group(1)), 0)
            self.assertEqual(m.group(2), "0")
            # The warehouses learned: a model adopted over the static plan, the next route
            # job planned with it, the pooled model adopted or refused with the reason.
            self.assertIn("learn-adopt: model eta-dc-warehouse-a: adopted", out)
            self.assertIn("travel times from eta-dc-warehouse-a site version 1", out)
            self.assertRegex(out, r"pooled model eta-pool@4 (adopted as this site's model|"
                                  r"refused) \(")
        # No process left behind.
        left = subprocess.run(["pgrep", "-f", os.path.join(ROOT, "build", "demo")],
                              capture_output=True, text=True)
        self.assertEqual(left.stdout.strip(), "")


if __name__ == "__main__":
    unittest.main()
