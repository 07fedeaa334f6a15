"""A site going back to its previous champion, on a real fleet (broker, hub, site agent):
automatically, when the champion it adopted does worse than the one before it on the next
window of fresh exceptions, and on the operator's order (`outpost model rollback NAME --site
SITE`). Either way the site audits learn-rollback with both MAEs and the hub records it on
the model's lineage (`outpost model show`), audited and proven (docs/learning.md)."""
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import UNCHECKED_POLICY, Fleet, wait_for  # noqa: E402
import trips  # noqa: E402
from test_sitelearn import REL, learn_spec, query, subprocess_run  # noqa: E402


def skewed(legs, factor):
    """Legs whose actual durations were `factor` times longer (a week of road works)."""
    return [dict(leg, actual_s=round(leg["actual_s"] * factor, 1)) for leg in legs]


@unittest.skipUnless(trips.have_data(), "no taxi data in ../shared/data/learning")
class RollbackTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.tmp = tempfile.mkdtemp(prefix="outpost-rollback-")
        self.f.start_broker()
        self.f.start_hub(policy=UNCHECKED_POLICY)
        self.f.start_site("wh1", cls="pod", route_program=REL, route_model="eta")
        self.dir = os.path.join(self.f.base, "sites", "wh1")
        self.db = os.path.join(self.dir, "site.db")
        self.legs, _ = trips.nyc_legs("Manhattan", limit=3100)

    def tearDown(self):
        self.f.stop()

    def add(self, legs):
        path = trips.write_jsonl(legs, os.path.join(self.tmp, "legs.jsonl"))
        r = subprocess_run(self.f, "exception", "add", self.dir, "--file", path)
        self.assertEqual(r.returncode, 0, r.stderr)

    def learn(self, **options):
        spec = json.dumps(learn_spec("wh1", **options))
        job = int(self.f.cli("submit", "--quiet", "-", input=spec).stdout.strip())
        self.f.wait_jobs_terminal([job], timeout=180)
        return job

    def site_audit(self, kind):
        entries = [json.loads(e[0]) for e in query(self.db, "SELECT entry FROM audit_entries")]
        return [e for e in entries if e["kind"] == kind]

    def adopt_two(self):
        """Version 1 from clean legs, version 2 from a skewed week that flattered it."""
        self.add(self.legs[:1500])
        self.learn()
        self.add(skewed(self.legs[1500:2500], 4.0))
        self.learn(rounds=60, eta=0.3, margin=0)
        self.assertEqual(len(self.site_audit("learn-adopt")), 2,
                         json.dumps(self.site_audit("learn-reject")))
        self.assertEqual(self.predict()["version"], 2)

    def predict(self):
        r = subprocess_run(self.f, "predict", "--json", self.dir, "--planned", "600",
                           "--features", '{"distance_miles": 1.5, "start": 1552640400}')
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def shown_rollbacks(self):
        show = json.loads(self.f.cli("model", "--json", "show", "eta").stdout)
        self.assertTrue(show["verified"])
        return show.get("rollbacks", [])

    def test_worse_champion_on_fresh_rows_rolled_back_by_the_site(self):
        self.adopt_two()
        self.add(self.legs[2500:3100])  # the road works are over
        job = self.learn()
        back = self.site_audit("learn-rollback")
        self.assertEqual(len(back), 1, [e["kind"] for e in self.site_audit("learn-reject")])
        text = json.dumps(back[0])
        self.assertIn("automatic", text)
        self.assertIn("from site version 2", text)
        self.assertIn("to site version 1", text)
        self.assertEqual(self.predict()["version"], 1)
        rb = self.shown_rollbacks()
        self.assertEqual(len(rb), 1)
        self.assertEqual((rb[0]["site"], rb[0]["trigger"], rb[0]["job"]), ("wh1", "automatic", job))
        self.assertEqual((rb[0]["from_version"], rb[0]["to_version"]), (2, 1))
        self.assertGreater(rb[0]["champion_mae"], rb[0]["previous_mae"])
        self.assertGreaterEqual(rb[0]["heldout_rows"], 20)
        self.assertIn("rollback at wh1", self.f.cli("model", "show", "eta").stdout)
        # the hub's entry of it is proven
        out = self.f.cli("audit", "--json", "show", "--kind", "model-rollback").stdout
        entries = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.assertEqual(len(entries), 1)
        r = self.f.cli("audit", "prove", str(entries[0]["i"]))
        self.assertIn("is in the log", r.stderr)
        # the next adopted model takes a new number, never the rolled-back one's
        champ = json.loads(query(self.db, "SELECT value FROM meta WHERE key='model:eta'")[0][0])
        self.assertEqual((champ["version"], champ["top_version"]), (1, 2))

    def test_site_audit_log_verified_offline_and_a_flipped_byte_found(self):
        self.adopt_two()
        self.f.cli("model", "rollback", "eta", "--site", "wh1")
        wait_for(lambda: self.site_audit("learn-rollback"), 180, 0.3, "the rollback")
        # the key the hub enrolled, from its own audit log
        out = self.f.cli("audit", "--json", "show", "--kind", "enrollment").stdout
        body = json.loads([json.loads(line) for line in out.splitlines() if line.strip()][0]["body"])
        r = subprocess_run(self.f, "audit", "verify", "--site-dir", self.dir, "--site-key",
                           body["pubkey"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("site audit log OK", r.stdout)
        for kind in ("learn-adopt", "learn-rollback"):
            self.assertIn(kind, r.stdout)
        self.assertIn("learn entries: 3", r.stdout)
        # a copy of the site's database with one byte of the rollback's entry flipped
        copy = os.path.join(self.tmp, "copy")
        os.makedirs(os.path.join(copy, "identity"))
        shutil.copy(os.path.join(self.dir, "identity", "identity.pub"),
                    os.path.join(copy, "identity"))
        with sqlite3.connect(self.db, timeout=10) as src, \
                sqlite3.connect(os.path.join(copy, "site.db")) as dst:
            src.backup(dst)
        with sqlite3.connect(os.path.join(copy, "site.db")) as db:
            idx, text = [(i, t) for i, t in db.execute("SELECT idx, entry FROM audit_entries")
                         if "learn-rollback" in t][0]
            at = text.index("rolled back") + 1
            flipped = text[:at] + chr(ord(text[at]) ^ 1) + text[at + 1:]
            db.execute("UPDATE audit_entries SET entry=? WHERE idx=?", (flipped, idx))
        r = subprocess_run(self.f, "audit", "verify", "--site-dir", copy)
        self.assertEqual(r.returncode, 7, r.stdout + r.stderr)
        self.assertIn("FAILED verification", r.stdout)
        self.assertIn(f"entry {idx}", r.stdout)
        # bad arguments are refused with the reason
        r = subprocess_run(self.f, "audit", "verify", "--site-dir", self.dir, "--site-key", "zz")
        self.assertEqual(r.returncode, 2)
        self.assertIn("64 hex digits", r.stderr)
        r = subprocess_run(self.f, "audit", "verify", "--site-dir", self.tmp)
        self.assertEqual(r.returncode, 2)
        self.assertIn("identity.pub", r.stderr)

    def test_operator_orders_a_rollback_through_the_hub(self):
        self.adopt_two()
        r = self.f.cli("model", "rollback", "eta", "--site", "wh1")
        self.assertIn("rollback of eta at wh1: job", r.stdout)
        job = int(r.stdout.split("job ")[1].split()[0])
        self.f.wait_jobs_terminal([job], timeout=180)
        self.assertEqual(self.f.job(job)["job"]["state"], "succeeded")
        back = self.site_audit("learn-rollback")
        self.assertEqual(len(back), 1)
        self.assertIn("operator", json.dumps(back[0]))
        self.assertEqual(self.predict()["version"], 1)
        rb = self.shown_rollbacks()
        self.assertEqual((rb[0]["trigger"], rb[0]["from_version"], rb[0]["to_version"]),
                         ("operator", 2, 1))
        out = self.f.cli("audit", "--json", "show", "--kind", "model-rollback-order").stdout
        self.assertEqual(len([line for line in out.splitlines() if line.strip()]), 1)
        # nothing left to go back to: the job fails and says why
        r = self.f.cli("model", "rollback", "eta", "--site", "wh1")
        job2 = int(r.stdout.split("job ")[1].split()[0])
        self.f.wait_jobs_terminal([job2], timeout=180)
        self.assertEqual(self.f.job(job2)["job"]["state"], "failed")
        self.assertIn("no previous champion", json.dumps(self.f.job(job2)))
        self.assertEqual(self.predict()["version"], 1)
        # refused at the hub: no such site, no such model, and no --site at all
        r = self.f.cli("model", "rollback", "eta", "--site", "nowhere", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no site nowhere", r.stderr)
        r = self.f.cli("model", "rollback", "nomodel", "--site", "wh1", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no model nomodel", r.stderr)
        r = self.f.cli("model", "rollback", "eta", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--site", r.stderr)


if __name__ == "__main__":
    unittest.main()
