"""Sites learning from their exceptions on a real fleet (broker, hub, site agents): taxi trips
of one NYC borough fed to a warehouse site as its delivery legs (`outpost exception add`), a
deferrable learn job that trains on them at the site, the champion/challenger verdict in the
site's audit log, the adopted model's lineage in the hub's registry (`outpost model show`)
and its model-put entry proven (`outpost audit prove`); a site-private model's bytes never
reach the hub; bad exceptions are refused with the field named (docs/learning.md)."""
import json
import os
import sqlite3
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import ROOT, UNCHECKED_POLICY, Fleet, wait_for  # noqa: E402
import trips  # noqa: E402


# learn and route jobs run this (an ASan binary cannot start under a job's memory limit)
REL = os.path.join(ROOT, "build", "rel", "outpost")


def query(path, sql, *args):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        return db.execute(sql, args).fetchall()


def learn_spec(site, model="eta", **learn):
    spec = {"kind": "learn", "model": model, "data_class": "site-private", "origin": site,
            "deadline_s": 3600, "deferrable": True, "expected_s": 20,
            "resources": {"cores": 1, "memory_mb": 512, "wall_s": 300}}
    if learn:
        spec["learn"] = learn
    return spec


@unittest.skipUnless(trips.have_data(), "no taxi data in ../shared/data/learning")
class SiteLearnTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.tmp = tempfile.mkdtemp(prefix="outpost-sitelearn-")
        self.f.start_broker()
        self.f.start_hub(policy=UNCHECKED_POLICY)
        self.f.start_site("wh1", cls="pod", route_program=REL)
        self.dir = os.path.join(self.f.base, "sites", "wh1")
        self.db = os.path.join(self.dir, "site.db")

    def tearDown(self):
        self.f.stop()

    def add(self, legs):
        path = trips.write_jsonl(legs, os.path.join(self.tmp, "legs.jsonl"))
        r = subprocess_run(self.f, "exception", "add", self.dir, "--file", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def submit(self, spec):
        r = self.f.cli("submit", "--quiet", "-", input=json.dumps(spec))
        return int(r.stdout.strip())

    def test_exceptions_learn_adopt_registry_and_proof(self):
        legs, _ = trips.nyc_legs("Manhattan", limit=1500)
        self.add(legs)
        self.assertEqual(query(self.db, "SELECT COUNT(*) FROM exceptions")[0][0], 1500)
        job = self.submit(learn_spec("wh1"))
        self.f.wait_jobs_terminal([job], timeout=120)
        self.assertEqual(self.f.job(job)["job"]["state"], "succeeded", self.f.cli("result", str(job), check=False).stdout + self.f.sites["wh1"].log_text()[-3000:])
        # the site's audit log: adopted, with the metrics
        entries = [json.loads(e[0]) for e in query(self.db, "SELECT entry FROM audit_entries")]
        adopt = [e for e in entries if e["kind"] == "learn-adopt"]
        self.assertEqual(len(adopt), 1, [e["kind"] for e in entries])
        self.assertIn("static plan", json.dumps(adopt[0]))
        # the registry: version 1, made by the site, lineage and metrics, no bytes at the hub
        show = json.loads(self.f.cli("model", "--json", "show", "eta").stdout)
        self.assertTrue(show["verified"])
        fields = show["fields"]
        self.assertEqual(fields["created_by"], "wh1")
        self.assertEqual(fields["data_class"], "site-private")
        self.assertEqual(fields["lineage"]["site"], "wh1")
        self.assertGreater(fields["lineage"]["rows"], 1000)
        mae = fields["lineage"]["metrics"]["mae"]
        self.assertLess(mae, fields["lineage"]["metrics"]["static_mae"])
        self.assertFalse(os.path.exists(os.path.join(self.f.hub_dir, "models", fields["sha256"])))
        self.assertTrue(os.path.exists(os.path.join(self.dir, "models", fields["sha256"] + ".ubj")))
        # the hub's model-put entry of it is proven
        out = self.f.cli("audit", "--json", "show", "--limit", "500").stdout
        puts = [json.loads(line) for line in out.splitlines()
                if line.strip() and json.loads(line)["kind"] == "model-put"]
        self.assertEqual(len(puts), 1)
        index = puts[0]["i"]
        r = self.f.cli("audit", "prove", str(index))
        self.assertIn(f"verified: entry {index} is in the log", r.stderr)
        # a job elsewhere cannot be given a model whose bytes stay at the site
        r = self.f.cli("submit", "-", input=json.dumps(
            {"kind": "exec", "command": ["true"], "model": "eta", "data_class": "site-private",
             "origin": "wh1"}), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("stay at wh1", r.stderr)
        # no new rows: a second learn job has no held-out rows and is rejected, logged
        job2 = self.submit(learn_spec("wh1"))
        self.f.wait_jobs_terminal([job2], timeout=120)
        entries = [json.loads(e[0]) for e in query(self.db, "SELECT entry FROM audit_entries")]
        self.assertEqual(len([e for e in entries if e["kind"] == "learn-reject"]), 1)
        self.assertEqual(len(json.loads(self.f.cli("model", "--json", "list").stdout)["models"]), 1)
        # newer rows: the champion is continued and the challenger measured against it
        more, _ = trips.nyc_legs("Manhattan", limit=2500)
        self.add(more[1500:])
        job3 = self.submit(learn_spec("wh1", rounds=20))
        self.f.wait_jobs_terminal([job3], timeout=120)
        entries = [json.loads(e[0]) for e in query(self.db, "SELECT entry FROM audit_entries")]
        last = [e for e in entries if e["kind"] in ("learn-adopt", "learn-reject")][-1]
        self.assertIn("champion", json.dumps(last))

    def test_bad_exceptions_refused_with_the_field(self):
        cases = [({"planned_s": 0, "actual_s": 5, "features": {"distance_miles": 1}}, "planned_s"),
                 ({"planned_s": 5, "actual_s": 5, "features": {"distance_mile": 1}}, "distance_mile"),
                 ({"planned_s": 5, "actual_s": 5, "features": {"hour": 30, "distance_miles": 1}},
                  "features.hour"),
                 ({"planned_s": 5, "actual_s": 5, "features": {}}, "distance_miles"),
                 ({"kind": "gossip", "planned_s": 5, "actual_s": 5}, "kind"),
                 ({"planned_s": 5, "actual_s": 1e12, "features": {"distance_miles": 1}}, "actual_s")]
        for leg, field in cases:
            path = trips.write_jsonl([leg], os.path.join(self.tmp, "bad.jsonl"))
            r = subprocess_run(self.f, "exception", "add", self.dir, "--file", path)
            self.assertEqual(r.returncode, 6, (leg, r.stderr))
            self.assertIn(field, r.stderr)
        r = subprocess_run(self.f, "exception", "add", self.dir, "--planned", "60", "--actual",
                           "90", "--features", '{"distance_miles": 0.5, "hour": 8}')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("the site keeps 1", r.stdout)
        # a learn job is site-private at its origin, names no version and takes no inputs
        for bad, field in (({"origin": None, "data_class": "public"}, "data_class"),
                           ({"model": "eta@2"}, "model"),
                           ({"learn": {"rounds": 0}}, "learn.rounds"),
                           ({"learn": {"rows": "some"}}, "learn.rows")):
            spec = learn_spec("wh1")
            spec.update(bad)
            spec = {k: v for k, v in spec.items() if v is not None}
            r = self.f.cli("submit", "-", input=json.dumps(spec), check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(field, r.stderr)


def delivery_day(n=12):
    """A day of deliveries around a warehouse, coordinates in miles (Manhattan-sized)."""
    stops = [{"id": f"S{i:02d}", "x": round(((i * 37) % 23) / 10.0 - 1.1, 2),
              "y": round(((i * 53) % 41) / 10.0 - 2.0, 2), "demand": 1 + i % 3}
             for i in range(n)]
    return {"name": "wh1 deliveries", "depot": {"x": 0, "y": 0},
            "vehicles": [{"name": "van", "capacity": 10, "count": 4}], "stops": stops}


@unittest.skipUnless(trips.have_data(), "no taxi data in ../shared/data/learning")
class SiteModelUseTest(unittest.TestCase):
    """What the model does: route jobs plan with it, outpost predict answers from it."""

    def setUp(self):
        self.f = Fleet()
        self.tmp = tempfile.mkdtemp(prefix="outpost-sitelearn-")
        self.f.start_broker()
        self.f.start_hub(policy=UNCHECKED_POLICY)
        self.f.start_site("wh1", cls="pod", route_program=REL, route_model="eta")
        self.dir = os.path.join(self.f.base, "sites", "wh1")

    def tearDown(self):
        self.f.stop()

    def predict(self, *extra):
        r = subprocess_run(self.f, "predict", "--json", self.dir, "--planned", "600",
                           "--features", '{"distance_miles": 1.5, "start": 1552640400}', *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_route_job_plans_with_the_model_and_predict_answers_offline(self):
        self.assertEqual(self.predict()["source"], "static plan (no model at this site)")
        legs, _ = trips.nyc_legs("Manhattan", limit=1500)
        path = trips.write_jsonl(legs, os.path.join(self.tmp, "legs.jsonl"))
        self.assertEqual(subprocess_run(self.f, "exception", "add", self.dir, "--file",
                                        path).returncode, 0)
        r = self.f.cli("submit", "--quiet", "-", input=json.dumps(learn_spec("wh1")))
        job = int(r.stdout.strip())
        self.f.wait_jobs_terminal([job], timeout=120)
        p = self.predict()
        self.assertEqual((p["source"], p["version"], p["model"]), ("local", 1, "eta"))
        self.assertNotEqual(p["seconds"], 600)
        # a route job of the warehouse's own plans with the model, and its result says which
        day = os.path.join(self.tmp, "day.json")
        with open(day, "w") as fh:
            json.dump(delivery_day(), fh)
        r = self.f.cli("submit", "--quiet", "--kind", "route", day, "--time-limit", "1",
                       "--data-class", "site-private", "--origin", "wh1")
        rjob = int(r.stdout.strip())
        self.f.wait_jobs_terminal([rjob], timeout=120)
        res = self.f.cli_json("result", str(rjob))
        text = json.dumps(res)
        self.assertIn("eta site version 1", text, text[:2000])
        # a public route job does not (its replicas elsewhere must plan alike)
        r = self.f.cli("submit", "--quiet", "--kind", "route", day, "--time-limit", "1")
        pjob = int(r.stdout.strip())
        self.f.wait_jobs_terminal([pjob], timeout=120)
        self.assertNotIn("route_model", json.dumps(self.f.cli_json("result", str(pjob))))
        # the hub goes away: the site still answers, marked offline
        self.f.hub.stop()
        self.f.broker.stop()
        wait_for(lambda: self.predict()["source"] == "local (offline)", 20, 0.3,
                 "the site to notice it is offline")
        self.f.hub = None
        self.f.broker = None


def subprocess_run(f, *args):
    import subprocess
    return subprocess.run([f.binary, *args], capture_output=True, text=True, timeout=60,
                          env=f.env)


if __name__ == "__main__":
    unittest.main()
