"""Offline-first sites: jobs submitted on the site itself while its link to the broker
is cut run there, survive a SIGKILL of the agent while still offline, and reach the hub exactly
once when the link returns; the site's policy decides which kinds it takes locally."""
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


def count(path, sql, *args):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        return db.execute(sql, args).fetchone()[0]


class OfflineTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.f.start_broker()
        self.f.start_hub(site_lost_after_ms=3000, lease_ms=8000, offline_lease_ms=4000)
        self.dir = tempfile.mkdtemp(prefix="outpost-offline-")
        self.policy = os.path.join(self.dir, "wh.policy")
        with open(self.policy, "w") as fh:
            fh.write("version 1\n# the warehouse keeps planning while its uplink is down\n"
                     "local exec,noop\n")
        self.proxy = LinkProxy(self.f.port)
        self.f.start_site("wh-1", "dc", cores=2, broker_port=self.proxy.port,
                          policy_file=self.policy)
        self.site_dir = os.path.join(self.f.base, "sites", "wh-1")
        self.site_db = os.path.join(self.site_dir, "site.db")

    def tearDown(self):
        self.f.stop()
        self.proxy.close()

    def hub_count(self, sql):
        return self.f.hub_query(sql)[0][0]

    def local(self, *args, check=True):
        return self.f.cli("submit", "--local", self.site_dir, *args, check=check)

    def test_local_work_offline_reaches_the_hub_once(self):
        self.proxy.cut(True)
        ids = []
        for i in range(3):
            out = self.local("--name", f"replan-{i}", "--", "sh", "-c", f"echo planned {i}").stdout
            ids += [int(line.split()[1]) for line in out.splitlines()]
        self.assertEqual(ids, [1, 2, 3])
        out = self.local("--kind", "noop", "--count", "200").stdout
        self.assertEqual(len(out.splitlines()), 200)
        wait_for(lambda: count(self.site_db, "SELECT COUNT(*) FROM outbox") == 203, 30, 0.2,
                 "203 results in the site's outbox")
        # The agent dies while offline: its results are on disk, not in memory.
        self.f.sites["wh-1"].kill(signal.SIGKILL)
        self.f.sites["wh-1"].wait(10)
        self.f.start_site("wh-1", None, wait=False, cores=2, broker_port=self.proxy.port,
                          policy_file=self.policy)
        time.sleep(1.0)
        self.assertEqual(self.hub_count("SELECT COUNT(*) FROM jobs WHERE submitted_by LIKE"
                                            " 'local:%'"), 0)
        # Link back: everything arrives, each local job recorded and applied exactly once.
        self.proxy.cut(False)
        wait_for(lambda: self.hub_count("SELECT COUNT(*) FROM jobs WHERE submitted_by ="
                                            " 'local:wh-1' AND state='succeeded'") == 203,
                 60, 0.3, "203 local jobs on the hub")
        wait_for(lambda: count(self.site_db, "SELECT COUNT(*) FROM outbox") == 0, 30, 0.2,
                 "the outbox to drain")
        self.assertEqual(self.hub_count("SELECT COUNT(*) FROM local_jobs WHERE site='wh-1'"),
                         203)
        self.assertEqual(self.hub_count("SELECT COUNT(*) FROM results r JOIN jobs j ON"
                                            " r.job_id=j.id WHERE j.submitted_by='local:wh-1' AND"
                                            " r.applied=1"), 203)
        replans = [r[0] for r in self.f.hub_query("SELECT id FROM jobs WHERE name LIKE "
                                                  "'replan-%' ORDER BY id")]
        self.assertEqual(len(replans), 3)
        res = self.f.cli_json("result", str(replans[0]))
        self.assertIn("planned", json.dumps(res))
        job = self.f.job(replans[0])
        self.assertEqual(job["job"]["site"], "wh-1")
        self.assertIn("local", [e["event"] for e in job["events"]])

    def outbox_has(self, text):
        with sqlite3.connect(f"file:{self.site_db}?mode=ro", uri=True, timeout=10) as db:
            return any(text in r[0] for r in db.execute("SELECT body FROM outbox"))

    def test_offline_lease_stops_work_and_bounds_a_cold_start(self):
        # Running, then cut off longer than the 4 s lease of the hub's signed offer: stopped.
        jid = int(self.f.cli("submit", "--quiet", "--", "sh", "-c", "sleep 6").stdout)
        wait_for(lambda: self.f.job(jid)["job"]["state"] == "running", 30, 0.1, "running")
        self.proxy.cut(True)
        wait_for(lambda: self.outbox_has("offline lease expired"), 20, 0.3,
                 "the site to stop the job when its lease ran out")
        self.proxy.cut(False)
        self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "succeeded")
        job = self.f.job(jid)
        self.assertGreaterEqual(job["job"]["attempt"], 2)
        self.assertEqual(sum(1 for r in job["results"] if r["applied"]), 1)
        # Cold start: the agent dies while offline and boots after the lease ran out.
        jid = int(self.f.cli("submit", "--quiet", "--", "sh", "-c", "sleep 6").stdout)
        wait_for(lambda: self.f.job(jid)["job"]["state"] == "running", 30, 0.1, "running")
        time.sleep(1.5)  # a lease check has saved the contact time
        self.proxy.cut(True)
        self.f.sites["wh-1"].kill(signal.SIGKILL)
        self.f.sites["wh-1"].wait(10)
        time.sleep(5)
        self.f.start_site("wh-1", None, wait=False, cores=2, broker_port=self.proxy.port,
                          policy_file=self.policy)
        wait_for(lambda: self.outbox_has("offline lease expired"), 20, 0.3,
                 "the restarted site to refuse to resume the expired work")
        self.assertNotIn("resuming job %d" % jid, self.f.sites["wh-1"].log_text())
        self.proxy.cut(False)
        self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "succeeded")

    def test_site_policy_decides_what_runs_locally(self):
        inst = os.path.join(self.dir, "day.vrp")
        with open(inst, "w") as fh:
            fh.write("NAME : day\n")
        r = self.local("--kind", "route", inst, check=False)
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("does not take local route jobs", r.stderr)
        r = self.local("--data-class", "site-private", "--origin", "elsewhere", "--", "true",
                       check=False)
        self.assertEqual(r.returncode, 6)
        self.assertIn("site-private data of elsewhere may not run here", r.stderr)
        bad = os.path.join(self.dir, "bad.json")
        with open(bad, "w") as fh:
            fh.write('{"kind": "exec"}')
        r = self.local(bad, check=False)
        self.assertEqual(r.returncode, 6)
        self.assertIn("command: required", r.stderr)
        r = self.f.cli("submit", "--local", os.path.join(self.dir, "nowhere"), "--", "true",
                       check=False)
        self.assertEqual(r.returncode, 5)
        self.assertIn("cannot reach the site", r.stderr)
        # the socket is for the site's own user and group
        mode = os.stat(os.path.join(self.site_dir, "local.sock")).st_mode & 0o777
        self.assertEqual(mode, 0o660)


if __name__ == "__main__":
    unittest.main()


class DepartureTest(unittest.TestCase):
    """A car's owner unplugs: its jobs are handed back with their checkpoints and resume on
    another site from there, not from zero."""

    def setUp(self):
        self.f = Fleet()
        self.f.start_broker()
        self.f.start_hub(policy=UNCHECKED_POLICY, site_lost_after_ms=3000)
        self.dir = tempfile.mkdtemp(prefix="outpost-leave-")
        rel = os.path.join(os.path.dirname(self.f.binary), "..", "rel", "outpost")
        self.route_program = os.path.abspath(rel)
        self.f.start_site("car-1", "car", cores=2, route_program=self.route_program)

    def tearDown(self):
        self.f.stop()

    def test_car_leaves_and_jobs_resume_from_checkpoints(self):
        # 15 s of counting and a 15 s plan: still running when the car leaves, however long
        # the second site takes to start on a busy machine (40 steps, 4 s, were not always)
        counter = {"kind": "exec", "name": "counter", "checkpoint": "state",
                   "command": ["sh", "-c",
                               "i=$(cat state 2>/dev/null || echo 0); start=$i; "
                               "trap 'echo $i > state; exit 143' TERM; "
                               "while [ $i -lt 150 ]; do i=$((i+1)); sleep 0.1; done; "
                               "echo counted to $i from $start"]}
        spec = os.path.join(self.dir, "counter.json")
        with open(spec, "w") as fh:
            json.dump(counter, fh)
        jid = int(self.f.cli("submit", "--quiet", spec).stdout)
        vrp = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "..", "shared", "data", "vrp", "x", "X-n101-k25.vrp")
        route = None
        if os.path.exists(vrp):
            route = int(self.f.cli("submit", "--quiet", "--kind", "route", vrp,
                                   "--time-limit", "15", "--classes", "car,dc").stdout.split()[0])
        ids = [jid] + ([route] if route else [])
        wait_for(lambda: all(self.f.job(i)["job"]["state"] == "running" for i in ids), 30, 0.1,
                 "jobs running on the car")
        time.sleep(2)
        self.f.start_site("dc-1", "dc", cores=2, route_program=self.route_program)
        r = self.f.cli("leave", os.path.join(self.f.base, "sites", "car-1"), "--grace", "5")
        self.assertIn("asked to stop", r.stdout)
        self.assertEqual(self.f.sites["car-1"].wait(40), 0)  # handed back, then exits
        states = self.f.wait_jobs_terminal(ids, 60)
        self.assertTrue(all(s == "succeeded" for s in states.values()), states)
        job = self.f.job(jid)
        self.assertEqual(job["job"]["site"], "dc-1")
        self.assertEqual(job["job"]["attempt"], 2)
        self.assertIn("checkpoint", [e["event"] for e in job["events"]])
        out = json.dumps(self.f.cli_json("result", str(jid)))
        self.assertIn("counted to 150 from", out)
        self.assertNotIn("counted to 150 from 0", out)  # resumed, not restarted
        if route:
            import base64
            rows = self.f.hub_query("SELECT data_b64 FROM checkpoints WHERE job_id=?", (route,))
            self.assertTrue(rows, "the handed-back checkpoint is stored")
            ck = rows[0]
            handed_back = json.loads(base64.b64decode(ck[0]))["cost"]
            save = os.path.join(self.dir, "route")
            self.f.cli("result", str(route), "--save", save)
            with open(os.path.join(save, "solution.json")) as fh:
                final = json.load(fh)["cost"]
            self.assertLessEqual(final, handed_back)  # resumed from the checkpoint: never worse
