"""Joint inference on a real fleet (broker, hub, site agent): `outpost predict` answers from
the site's own model when it is confident, escalates a question it is not confident about to
a larger model through the hub when the site's policy lets the features leave and the hub is
in reach (the hub runs the model in a child process), keeps it local when the policy says
no or the features are site-private, and answers locally, marked so, when offline
(docs/learning.md)."""
import glob
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import UNCHECKED_POLICY, Fleet, wait_for  # noqa: E402
import trips  # noqa: E402
from test_sitelearn import REL, learn_spec, subprocess_run  # noqa: E402

START = 1552640400  # 2019-03-15 09:00, inside the trips the model learned from
FAMILIAR = {"distance_miles": 1.5, "start": START}
STRANGE = {"distance_miles": 1.5, "start": START, "year": 2031}  # a year it never saw


@unittest.skipUnless(trips.have_data(), "no taxi data in ../shared/data/learning")
class JointInferenceTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.tmp = tempfile.mkdtemp(prefix="outpost-predict-")
        policy = os.path.join(self.tmp, "site.policy")
        with open(policy, "w") as fh:
            fh.write("version 1\npredict escalate confidential to eta-big\n")
        self.f.start_broker()
        self.f.start_hub(policy=UNCHECKED_POLICY, predict_program=REL)
        self.f.start_site("wh1", cls="pod", route_program=REL, route_model="eta",
                          policy_file=policy)
        self.dir = os.path.join(self.f.base, "sites", "wh1")
        legs, _ = trips.nyc_legs("Manhattan", limit=1500)
        path = trips.write_jsonl(legs, os.path.join(self.tmp, "legs.jsonl"))
        r = subprocess_run(self.f, "exception", "add", self.dir, "--file", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        job = int(self.f.cli("submit", "--quiet", "-",
                             input=json.dumps(learn_spec("wh1"))).stdout.strip())
        self.f.wait_jobs_terminal([job], timeout=180)
        # the larger model: here the site's own bytes, registered at the hub as a public model
        big = os.path.join(self.tmp, "big.ubj")
        shutil.copy(glob.glob(os.path.join(self.dir, "models", "*.ubj"))[0], big)
        self.f.cli("model", "put", "eta-big", big, "--data-class", "public")

    def tearDown(self):
        self.f.stop()

    def predict(self, features, *extra):
        r = subprocess_run(self.f, "predict", "--json", self.dir, "--planned", "600",
                           "--features", json.dumps(features), *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_confident_local_escalated_refused_and_offline(self):
        # confident: the site's own model, nothing leaves
        p = self.predict(FAMILIAR, "--data-class", "confidential")
        self.assertEqual((p["source"], p["confidence"], p["version"]), ("local", "high", 1), p)
        self.assertNotIn("escalation", p)
        local = p["seconds"]
        # not confident, and the policy lets confidential features leave: the larger model
        p = self.predict(STRANGE, "--data-class", "confidential")
        self.assertEqual(p["confidence"], "low", p)
        self.assertIn("year 2031 outside the 2019..2019", p["low_because"])
        self.assertEqual(p["source"], "escalated to eta-big@1 at the hub", p)
        self.assertIn("local_seconds", p)
        self.assertEqual(p["seconds"], p["escalated_seconds"])
        self.assertIn("escalated a question to eta-big", self.f.hub.log_text())
        r = subprocess_run(self.f, "predict", self.dir, "--planned", "600", "--features",
                           json.dumps(STRANGE), "--data-class", "confidential")
        self.assertIn("escalated to eta-big@1 at the hub", r.stdout)
        self.assertIn("(local answer", r.stdout)
        # the answers came from children: neither the hub nor the site maps libxgboost
        for proc in (self.f.hub, self.f.sites["wh1"]):
            with open(f"/proc/{proc.p.pid}/maps") as fh:
                self.assertNotIn("libxgboost", fh.read(), proc.name)
        # refused: site-private features never leave; public ones this policy keeps home
        p = self.predict(STRANGE)
        self.assertEqual((p["source"], p["confidence"]), ("local", "low"))
        self.assertEqual(p["escalation"], "site-private features never leave the site")
        p = self.predict(STRANGE, "--data-class", "public")
        self.assertIn("the site's policy keeps public features here", p["escalation"])
        # the hub cannot answer (the larger model is gone): the local answer, with why
        self.f.cli("model", "rm", "eta-big")
        p = self.predict(STRANGE, "--data-class", "confidential")
        self.assertEqual(p["source"], "local")
        self.assertIn("the hub did not answer: no model eta-big", p["escalation"])
        # a bad class is refused with the field named
        r = subprocess_run(self.f, "predict", self.dir, "--planned", "600", "--features",
                           json.dumps(FAMILIAR), "--data-class", "secret")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("data_class", r.stderr)
        # offline: the broker is gone; the site answers alone, marked so
        self.f.broker.stop()
        wait_for(lambda: self.predict(STRANGE, "--data-class", "confidential")["source"] ==
                 "local (offline)", 30, 0.5, "the site to notice it is offline")
        p = self.predict(STRANGE, "--data-class", "confidential")
        self.assertEqual(p["escalation"], "the hub is out of reach")
        p = self.predict(FAMILIAR)
        self.assertEqual((p["source"], p["seconds"]), ("local (offline)", local))


if __name__ == "__main__":
    unittest.main()
