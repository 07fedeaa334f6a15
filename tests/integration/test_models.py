"""Models as fleet artifacts, on a real fleet (broker, hub, site agents): a 20 MB model put
in the hub's registry, a job that uses it runs where the model was fetched and reads it
whole, the next job prefers the site that holds it, a fetch cut mid-transfer resumes with no
chunk written twice, peers serve what the hub would, data classes keep a site-private model
home, and a site's cache evicts under its budget (docs/models.md)."""
import hashlib
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import UNCHECKED_POLICY, Fleet, LinkProxy, wait_for  # noqa: E402

MB = 1024 * 1024


def query(path, sql, *args):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        return db.execute(sql, args).fetchall()


class ModelsBase(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.tmp = tempfile.mkdtemp(prefix="outpost-models-")
        self.f.start_broker()
        self.f.start_hub(policy=UNCHECKED_POLICY)

    def tearDown(self):
        self.f.stop()

    def model_file(self, name, size, seed=1):
        path = os.path.join(self.tmp, name)
        block = hashlib.sha256(str(seed).encode()).digest() * (MB // 32)
        with open(path, "wb") as fh:
            for i in range(size // MB):
                fh.write(hashlib.sha256(bytes([i % 256]) + block[:32]).digest() + block[32:])
            fh.write(os.urandom(size % MB))
        with open(path, "rb") as fh:
            return path, hashlib.sha256(fh.read()).hexdigest()

    def put(self, name, path, *args):
        return json.loads(self.f.cli("model", "--json", "put", name, path, *args,
                                     timeout=180).stdout)

    def submit(self, spec):
        r = self.f.cli("submit", "--quiet", "-", input=json.dumps(spec))
        return int(r.stdout.strip())

    def reader(self, model, **extra):
        """A job that prints the sha256 of its model, read at $OUTPOST_MODEL."""
        spec = {"kind": "exec", "command": ["sh", "-c", 'sha256sum "$OUTPOST_MODEL"'],
                "model": model, "resources": {"cores": 1, "wall_s": 120}}
        spec.update(extra)
        return spec

    def site_artifacts(self, site):
        for s in self.f.cli_json("sites")["sites"]:
            if s["id"] == site:
                return s.get("artifacts", {})
        return {}

    def holds(self, site, sha):
        db = os.path.join(self.f.base, "sites", site, "site.db")
        return query(db, "SELECT complete FROM artifacts WHERE sha256=?", sha) == [(1,)]


class ModelsTest(ModelsBase):
    def test_put_show_list_rm_and_audit(self):
        path, sha = self.model_file("eta.bin", 3 * MB + 12345)
        out = self.put("eta", path, "--metrics", '{"mae": 41.5}', "--lineage",
                       '{"site": "wh-1", "from": "2019-03-01", "to": "2019-03-07", "rows": 9000}')
        self.assertEqual(out["version"], 1)
        self.assertTrue(os.path.exists(os.path.join(self.f.hub_dir, "models", sha)))
        self.assertEqual(self.put("eta", path, "--parent", "1")["version"], 2)
        show = self.f.cli("model", "show", "eta").stdout
        self.assertIn("signature: verified", show)
        self.assertIn("version 2", show)
        self.assertIn(sha, show)
        v1 = json.loads(self.f.cli("model", "--json", "show", "eta", "--version", "1").stdout)
        self.assertTrue(v1["verified"])
        self.assertEqual(v1["fields"]["lineage"]["metrics"]["mae"], 41.5)
        self.assertEqual(v1["fields"]["lineage"]["rows"], 9000)
        listed = self.f.cli_json("model", "list")["models"]
        self.assertEqual([m["version"] for m in listed], [2, 1])
        # a lineage of the wrong shape is refused with the field named
        r = self.f.cli("model", "put", "eta", path, "--lineage", '{"rowz": 1}', check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("rowz", r.stderr)
        # removal: the versions go, then the bytes no version names
        self.f.cli("model", "rm", "eta", "--version", "1")
        self.assertTrue(os.path.exists(os.path.join(self.f.hub_dir, "models", sha)))
        self.f.cli("model", "rm", "eta")
        self.assertFalse(os.path.exists(os.path.join(self.f.hub_dir, "models", sha)))
        self.assertEqual(self.f.cli_json("model", "list")["models"], [])
        r = self.f.cli("submit", "-", input=json.dumps(self.reader("eta")), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no eta", r.stderr)
        out = self.f.cli("audit", "--json", "show", "--limit", "500").stdout
        kinds = [json.loads(line)["kind"] for line in out.splitlines() if line.strip()]
        self.assertEqual(kinds.count("model-put"), 2)
        self.assertEqual(kinds.count("model-rm"), 2)

    def test_job_runs_with_its_model_and_the_next_prefers_the_holder(self):
        for site in ("wh-1", "wh-2"):
            self.f.start_site(site, "dc", cores=2)
        path, sha = self.model_file("eta.bin", 20 * MB)
        self.put("eta", path)
        first = self.submit(self.reader("eta"))
        self.assertEqual(self.f.wait_jobs_terminal([first], 120)[first], "succeeded")
        res = self.f.cli_json("result", str(first))
        self.assertTrue(res["stdout"].startswith(sha), res["stdout"])
        job = self.f.job(first)
        holder = job["job"]["site"]
        self.assertTrue(self.holds(holder, sha))
        events = [e["event"] for e in job["events"]]
        self.assertIn("model", events)
        self.assertIn("fetching", events)
        # the hub hears from the site's heartbeat that it holds the model ...
        wait_for(lambda: sha in json.dumps(self.f.cli_json("model", "show", "eta")["held_by"] and
                                           self.f.cli_json("model", "show", "eta")) and
                 holder in self.f.cli_json("model", "show", "eta")["held_by"], 20, 0.3,
                 "the holder in the registry's view")
        # ... and the next job that reads it goes there, saying why
        second = self.submit(self.reader("eta@1"))
        self.assertEqual(self.f.wait_jobs_terminal([second], 60)[second], "succeeded")
        job2 = self.f.job(second)
        self.assertEqual(job2["job"]["site"], holder)
        self.assertIn("holds model eta@1", job2["job"]["explanation"])
        self.assertNotIn("fetching", [e["event"] for e in job2["events"]])
        stats = self.f.cli_json("stats")["artifacts"]
        self.assertEqual(stats["bytes_served"], 20 * MB)


if __name__ == "__main__":
    unittest.main()
