"""Governance end to end: the hub's policy (set, shown, diffed, logged) decides at submission
and placement, approvals hold jobs, and a site's own policy refuses more than the hub's."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet, wait_for  # noqa: E402


class PolicyTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.f.start_broker()
        self.f.start_hub()
        site_policy = os.path.join(self.f.base, "dc-1.policy")
        with open(site_policy, "w") as fh:
            fh.write("version 1\n# the warehouse owner allows only these programs\n"
                     "commands dc true sha256sum\n")
        self.f.start_site("car-1", "car", cores=2)
        self.f.start_site("dc-1", "dc", cores=2, policy_file=site_policy)

    def tearDown(self):
        self.f.stop()

    def write(self, name, text):
        path = os.path.join(self.f.base, name)
        with open(path, "w") as fh:
            fh.write(text)
        return path

    def test_policy_decides_and_is_logged(self):
        f = self.f
        op = "op-" + f.cli("operator-key").stdout.split()[0][:16]
        bad = self.write("bad.policy", "version 2\ndata confidential on pod boat\n")
        r = f.cli("policy", "check", bad, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.policy:2:26: unknown site class 'boat'", r.stderr)
        good = self.write("good.policy",
                          "version 2\n"
                          f"submit exec,noop by {op}\n"
                          "data confidential on pod dc\n"
                          "approve exec cores>=2\n")
        self.assertIn("valid, version 2", f.cli("policy", "check", good).stdout)
        self.assertIn("no policy in force", f.cli("policy", "show").stdout)
        diff = f.cli("policy", "diff", good).stdout
        self.assertIn("+ data confidential on pod dc", diff)
        self.assertIn("policy version 2 in force", f.cli("policy", "set", good).stdout)
        self.assertIn("approve exec cores>=2", f.cli("policy", "show").stdout)
        r = f.cli("policy", "set", good, check=False)
        self.assertEqual(r.returncode, 6)
        self.assertIn("not newer", r.stderr)
        self.assertIn("policy", f.cli("audit", "show", "--kind", "policy").stdout)

        # Confidential data never on a car: refused at submission with the rule.
        r = f.cli("submit", "--data-class", "confidential", "--classes", "car", "--", "true",
                  check=False)
        self.assertEqual(r.returncode, 6)
        self.assertIn("confidential data may not run on a car", r.stderr)
        # ... and placed elsewhere when another class is allowed.
        jid = int(f.cli("submit", "--quiet", "--data-class", "confidential", "--", "true").stdout)
        self.assertEqual(f.wait_jobs_terminal([jid], 60)[jid], "succeeded")
        self.assertEqual(f.job(jid)["job"]["site"], "dc-1")

        # Approval holds a 2-core exec job until an operator approves it.
        held = int(f.cli("submit", "--quiet", "--cores", "2", "--classes", "dc", "--", "true").stdout)
        job = f.job(held)["job"]
        self.assertEqual(job["state"], "queued")
        self.assertIn(f"outpost approve {held}", job["reason"])
        self.assertEqual(f.cli("approve", "999999", check=False).returncode, 6)
        self.assertIn("approved", f.cli("approve", str(held)).stdout)
        self.assertEqual(f.wait_jobs_terminal([held], 60)[held], "succeeded")
        self.assertIn("approved", f.cli("explain", str(held)).stdout)

        # The site's own policy is sovereign: it refuses a program the hub would allow.
        refused = int(f.cli("submit", "--quiet", "--classes", "dc", "--", "echo", "hi").stdout)
        self.assertEqual(f.wait_jobs_terminal([refused], 60)[refused], "failed")
        ex = f.cli("explain", str(refused)).stdout
        self.assertIn("site policy", ex)
        self.assertIn("'echo' may not run on a dc", ex)

    def test_submit_rule_refuses_other_operators(self):
        f = self.f
        p = self.write("only.policy", "version 5\nsubmit noop by op-0000000000000000\n")
        f.cli("policy", "set", p)
        r = f.cli("submit", "--kind", "noop", check=False)
        self.assertEqual(r.returncode, 6)
        self.assertIn("may not submit noop jobs", r.stderr)


if __name__ == "__main__":
    unittest.main()
