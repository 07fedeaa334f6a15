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
        wait_for(lambda: holder in self.f.cli_json("model", "show", "eta")["held_by"], 20, 0.3,
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
        # the job cannot alter the cached model the next job reads
        spec = self.reader("eta")
        spec["command"] = ["sh", "-c", 'echo x >> "$OUTPOST_MODEL" && echo ALTERED; '
                           'chmod u+w "$OUTPOST_MODEL" && echo ALTERED; sha256sum "$OUTPOST_MODEL"']
        vandal = self.submit(spec)
        self.assertEqual(self.f.wait_jobs_terminal([vandal], 60)[vandal], "succeeded")
        out = self.f.cli_json("result", str(vandal))["stdout"]
        self.assertNotIn("ALTERED", out)
        self.assertTrue(out.startswith(sha), out)


def held_chunks(site_db, sha):
    rows = query(site_db, "SELECT held FROM artifacts WHERE sha256=?", sha)
    return sum(bin(b).count("1") for b in rows[0][0]) if rows and rows[0][0] else 0


class SlowLink(LinkProxy):
    """A LinkProxy that carries at most rate bytes a second from the broker to the site:
    slow enough to cut a 24 MB fetch in the middle."""

    def __init__(self, upstream_port, rate):
        self.rate = rate
        super().__init__(upstream_port)

    def _pump(self, a, b):
        try:
            down = a.getpeername()[1] == self.upstream
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
                if down:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        self._close(a, b)


class ResumeTest(ModelsBase):
    def setUp(self):
        self.f = Fleet()
        self.tmp = tempfile.mkdtemp(prefix="outpost-models-")
        self.f.start_broker()
        # the site stays placed-on through the cut: what is measured is the fetch, not a retry
        self.f.start_hub(policy=UNCHECKED_POLICY, site_lost_after_ms=60000, lease_ms=120000)
        self.link = SlowLink(self.f.port, 3 * MB)
        self.f.start_site("wh-1", "dc", cores=2, broker_port=self.link.port)
        self.db = os.path.join(self.f.base, "sites", "wh-1", "site.db")

    def tearDown(self):
        self.f.stop()
        self.link.close()

    def start_fetch(self, size):
        path, sha = self.model_file("eta.bin", size)
        self.put("eta", path)
        jid = self.submit(self.reader("eta"))
        n = size // (256 * 1024)
        wait_for(lambda: held_chunks(self.db, sha) >= n // 4, 60, 0.05, "a quarter of the chunks")
        return jid, sha, n

    def finish(self, jid, sha):
        self.assertEqual(self.f.wait_jobs_terminal([jid], 180)[jid], "succeeded")
        self.assertTrue(self.f.cli_json("result", str(jid))["stdout"].startswith(sha))

    def test_cut_link_resumes_with_no_chunk_sent_twice(self):
        jid, sha, n = self.start_fetch(24 * MB)
        self.link.cut(True)
        before = held_chunks(self.db, sha)
        time.sleep(3)
        self.assertLess(before, n)
        self.link.cut(False)
        self.finish(jid, sha)
        # every chunk crossed once: the hub served each once, the site wrote none twice
        self.assertEqual(self.f.cli_json("stats")["artifacts"]["chunks_served"], n)
        wait_for(lambda: self.site_artifacts("wh-1").get("held") == 1, 20, 0.3, "the report")
        a = self.site_artifacts("wh-1")
        self.assertEqual(a["chunks_dup"], 0)
        self.assertEqual(a["chunks_bad"], 0)
        self.assertEqual(a["from_hub_bytes"], 24 * MB)

    def test_restart_mid_fetch_asks_only_for_missing_chunks(self):
        jid, sha, n = self.start_fetch(24 * MB)
        self.link.cut(True)
        self.f.sites["wh-1"].kill(signal.SIGKILL)
        self.f.sites["wh-1"].wait(10)
        held = held_chunks(self.db, sha)
        self.assertLess(held, n)
        self.f.start_site("wh-1", None, wait=False, cores=2, broker_port=self.link.port)
        self.link.cut(False)
        self.finish(jid, sha)
        # after the restart the site asked only for what it lacked: the hub sent at most the
        # chunks that were on their way when it died (written, not yet committed) again
        served = self.f.cli_json("stats")["artifacts"]["chunks_served"]
        self.assertLessEqual(served, n + 16)
        wait_for(lambda: self.site_artifacts("wh-1").get("held") == 1, 20, 0.3, "the report")
        a = self.site_artifacts("wh-1")
        self.assertLessEqual(a["from_hub_bytes"], (n - held + 16) * 256 * 1024)
        print(f"\nrestart mid-fetch: {held}/{n} chunks held at the kill, hub served {served} "
              f"({served - n} again), site took {a['from_hub_bytes'] // (256 * 1024)} after")


class PlacementTest(ModelsBase):
    def test_site_private_model_stays_home(self):
        for site in ("wh-1", "wh-2"):
            self.f.start_site(site, "dc", cores=2)
        path, sha = self.model_file("own.bin", 2 * MB, seed=7)
        self.put("own", path, "--data-class", "site-private", "--origin", "wh-1")
        # a job that could run elsewhere is refused at submission, saying why
        for extra in ({}, {"data_class": "confidential"},
                      {"data_class": "site-private", "origin": "wh-2"}):
            r = self.f.cli("submit", "-", input=json.dumps(self.reader("own", **extra)),
                           check=False)
            self.assertNotEqual(r.returncode, 0, extra)
            self.assertIn("site-private to wh-1", r.stderr)
        # one that stays on its origin runs there
        jid = self.submit(self.reader("own", data_class="site-private", origin="wh-1"))
        self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "succeeded")
        self.assertEqual(self.f.job(jid)["job"]["site"], "wh-1")
        self.assertFalse(os.path.exists(os.path.join(self.f.base, "sites", "wh-2", "artifacts",
                                                     sha)))

    def test_cache_evicts_least_recently_used_within_its_budget(self):
        self.f.start_site("wh-1", "dc", cores=1, artifact_cache_mb=8)
        shas = []
        for i, name in enumerate(("a", "b", "c")):
            path, sha = self.model_file(name + ".bin", 3 * MB, seed=i)
            shas.append(sha)
            self.put(name, path)
            jid = self.submit(self.reader(name))
            self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "succeeded")
        db = os.path.join(self.f.base, "sites", "wh-1", "site.db")
        kept = {r[0] for r in query(db, "SELECT sha256 FROM artifacts")}
        self.assertEqual(kept, {shas[1], shas[2]})  # a, least recently used, went for c
        files = os.listdir(os.path.join(self.f.base, "sites", "wh-1", "artifacts"))
        self.assertEqual(sorted(files), sorted(shas[1:]))
        wait_for(lambda: self.site_artifacts("wh-1").get("evicted") == 1, 20, 0.3, "the report")
        self.assertLessEqual(self.site_artifacts("wh-1")["cache_bytes"], 8 * MB)
        # a model larger than the whole budget is refused by the site, with the reason
        path, _ = self.model_file("big.bin", 9 * MB, seed=9)
        self.put("big", path)
        jid = self.submit(self.reader("big"))
        self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "failed")
        self.assertIn("artifact cache of 8 MB", json.dumps(self.f.job(jid)))


class PeersTest(ModelsBase):
    def test_peers_serve_what_the_hub_would(self):
        for site in ("wh-1", "wh-2", "wh-3"):
            self.f.start_site(site, "dc", cores=1)
        path, sha = self.model_file("eta.bin", 8 * MB)
        self.put("eta", path)
        first = self.submit(self.reader("eta"))
        self.assertEqual(self.f.wait_jobs_terminal([first], 60)[first], "succeeded")
        holder = self.f.job(first)["job"]["site"]
        wait_for(lambda: holder in self.f.cli_json("model", "show", "eta")["held_by"], 20, 0.3,
                 "the hub to know the holder")
        # three at once on three one-core sites: two of them fetch, from the holder
        spec = self.reader("eta")
        spec["command"] = ["sh", "-c", 'sleep 2; sha256sum "$OUTPOST_MODEL"']
        ids = [self.submit(spec) for _ in range(3)]
        states = self.f.wait_jobs_terminal(ids, 120)
        self.assertEqual(set(states.values()), {"succeeded"})
        self.assertEqual({self.f.job(j)["job"]["site"] for j in ids}, {"wh-1", "wh-2", "wh-3"})
        stats = self.f.cli_json("stats")["artifacts"]
        self.assertEqual(stats["bytes_served"], 8 * MB)  # the hub served one copy only
        self.assertGreaterEqual(stats["peer_grants"], 2)
        others = [s for s in ("wh-1", "wh-2", "wh-3") if s != holder]
        for site in others:
            wait_for(lambda: self.site_artifacts(site).get("held") == 1, 20, 0.3, "its report")
            self.assertEqual(self.site_artifacts(site)["from_peers_bytes"], 8 * MB)
        self.assertEqual(self.site_artifacts(holder)["served_bytes"], 16 * MB)

    def test_peer_topics_are_private_and_strangers_are_not_served(self):
        from fleet import Wire
        for site in ("wh-1", "wh-2"):
            self.f.start_site(site, "dc", cores=1)
        self.f.credential("evil-1")
        heard = []
        spy = self.f.mqtt_client("evil-1")
        spy.on_message = lambda c, u, m: heard.append(m.topic)
        spy.connect("127.0.0.1", self.f.port)
        spy.loop_start()
        tap = Wire(self.f, "outpost/v1/peer/#")
        try:
            for topic in ("outpost/v1/peer/+/+", "outpost/v1/peer/wh-1/+", "#"):
                spy.subscribe(topic, qos=1)
            path, sha = self.model_file("eta.bin", 4 * MB)
            self.put("eta", path)
            first = self.submit(self.reader("eta"))
            self.f.wait_jobs_terminal([first], 60)
            holder = self.f.job(first)["job"]["site"]
            other = "wh-2" if holder == "wh-1" else "wh-1"
            wait_for(lambda: holder in self.f.cli_json("model", "show", "eta")["held_by"], 20,
                     0.3, "the hub to know the holder")
            # a job on the other site: its chunks come from the holder on the peer topics
            spec = self.reader("eta", site_classes=["dc"])
            spec["command"] = ["sh", "-c", 'sleep 3; sha256sum "$OUTPOST_MODEL"']
            ids = [self.submit(spec) for _ in range(2)]
            self.f.wait_jobs_terminal(ids, 60)
            self.assertTrue(tap.find(b"\0OS1"), "peer traffic on the broker")
            self.assertEqual([t for t in heard if t.startswith("outpost/v1/peer/")], [])
            # a stranger's pull (its own name, not granted) and a pull in another's name
            before = self.f.cli_json("sites")["sites"]
            tap.publish(f"outpost/v1/peer/{holder}/evil-1", b"\0OS1" + os.urandom(200),
                        {"kid": "evil-1", "sig": "00" * 64}, as_="evil-1")
            tap.publish(f"outpost/v1/peer/{holder}/{other}", b"rogue-marker", as_="evil-1",
                        wait=True)
            time.sleep(1.5)
            self.assertEqual(tap.find(b"rogue-marker"), [])  # the ACL never let it through
            msgs = {s["id"]: s.get("messages", {}) for s in self.f.cli_json("sites")["sites"]}
            old = {s["id"]: s.get("messages", {}) for s in before}
            self.assertGreater(msgs[holder]["unknown_sender"], old[holder]["unknown_sender"])
            self.assertEqual(self.site_artifacts(holder)["served_bytes"], 4 * MB)
        finally:
            spy.loop_stop()
            spy.disconnect()
            tap.close()


if __name__ == "__main__":
    unittest.main()
