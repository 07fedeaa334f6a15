"""Power signals at the site, with a real broker, hub and sites: the envelope from a
meter topic drops below the running job's draw and the site hands it back within its reaction
time, the job completing elsewhere once, with an energy receipt priced at the site that ran it;
bad meter messages are refused and change nothing; a short demand-response cut pauses the job
(SIGSTOP, seen in /proc) and it resumes where it was; a parked car's stated departure keeps long
jobs off it; a job whose deadline passes fails with that reason."""
import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import UNCHECKED_POLICY, Fleet, wait_for  # noqa: E402


METER_TOPIC = "outpost/v1/meter/pod-1/meter-pod-1"


def publish(fleet, topic, payload):
    """Publishes as the meter the topic names (its own broker credential)."""
    c = fleet.mqtt_client(topic.rsplit("/", 1)[1])
    c.connect("127.0.0.1", fleet.port)
    c.loop_start()
    c.publish(topic, payload, qos=1).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


def proc_state(marker):
    """State letter of the process whose argv holds marker (R, S, T...), or None."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if marker.encode() not in fh.read().split(b"\0"):
                    continue
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
    return None


class PowerSignalsTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.f.start_broker()
        self.f.start_hub(policy=UNCHECKED_POLICY, site_lost_after_ms=3000)
        self.dir = tempfile.mkdtemp(prefix="outpost-signals-")

    def tearDown(self):
        self.f.stop()

    def spec(self, name, **fields):
        path = os.path.join(self.dir, name + ".json")
        with open(path, "w") as fh:
            json.dump(fields, fh)
        return path

    def site(self, name):
        return next(s for s in self.f.cli_json("sites")["sites"] if s["id"] == name)

    def test_meter_drop_sheds_and_the_receipt_prices_the_run(self):
        self.f.start_site("pod-1", "pod", cores=2, watts_per_core=15, power_budget_watts=200,
                          meter_topic=METER_TOPIC, reaction_ms=1000)
        publish(self.f, METER_TOPIC, json.dumps({"watts": 200, "price": 40}))
        spec = self.spec("busy", kind="exec", resources={"cores": 1},
                         command=["sh", "-c", "sleep 6; i=0; while [ $i -lt 200000 ]; do "
                                  "i=$((i+1)); done; echo done"])
        jid = int(self.f.cli("submit", "--quiet", spec).stdout)
        wait_for(lambda: self.f.job(jid)["job"]["state"] == "running", 30, 0.1, "running")
        self.assertEqual(self.f.job(jid)["job"]["site"], "pod-1")
        self.f.start_site("dc-1", "dc", cores=2, watts_per_core=10, price=55, carbon=120)
        # bad meter messages: refused, logged, nothing changes
        publish(self.f, METER_TOPIC, b"not json")
        publish(self.f, METER_TOPIC, json.dumps({"watts": -3}))
        publish(self.f, METER_TOPIC, json.dumps({"watts": 100, "volts": 230}))
        wait_for(lambda: "volts: unknown field" in self.f.sites["pod-1"].log_text(), 10, 0.1,
                 "the third bad message refused")
        log = self.f.sites["pod-1"].log_text()
        self.assertIn("meter message must be a JSON object", log)
        self.assertIn("watts: must be a number from 0 to 1e+09", log)
        self.assertEqual(self.f.job(jid)["job"]["state"], "running")
        # the chargers fill up: the meter says 5 W, below the job's 15 W
        t_drop = time.time()
        publish(self.f, METER_TOPIC, json.dumps({"watts": 5}))
        self.assertEqual(self.f.wait_jobs_terminal([jid], 90)[jid], "succeeded")
        job = self.f.job(jid)
        self.assertEqual(job["job"]["site"], "dc-1")
        applied = [r for r in job["results"] if r["applied"]]
        self.assertEqual(len(applied), 1)
        shed = [e for e in job["events"] if "power envelope dropped" in (e.get("detail") or "")]
        self.assertTrue(shed, job["events"])
        late_ms = shed[0]["ts"] - t_drop * 1000
        print(f"handed back {late_ms:.0f} ms after the meter message", file=sys.stderr)
        self.assertLess(late_ms, 1000 + 1000)
        self.assertIn("power envelope now 5 W (meter)", self.f.sites["pod-1"].log_text())
        receipt = applied[0]["receipt"]
        self.assertEqual(receipt["spare_share"], 1)
        self.assertEqual(receipt["price_per_mwh"], 55)
        self.assertEqual(receipt["carbon_g_per_kwh"], 120)
        self.assertAlmostEqual(receipt["cost"], receipt["joules"] / 3.6e6 * 55 / 1000, places=12)
        self.assertGreater(receipt["joules"], 0)
        # the hub counted the hand-back against pod-1's reliability
        self.assertEqual(self.site("pod-1")["power"]["attempts_lost"], 1)
        out = self.f.cli("job", str(jid)).stdout
        self.assertIn("energy receipt:", out)

    def test_short_demand_response_cut_pauses_then_resumes(self):
        self.f.start_site("dc-1", "dc", cores=2, watts_per_core=10, power_budget_watts=100,
                          pause_max_ms=60000, reaction_ms=1000)
        site_dir = os.path.join(self.f.base, "sites", "dc-1")
        spec = self.spec("sleepy", kind="exec", command=["sh", "-c", "sleep 7.25; echo ok"])
        jid = int(self.f.cli("submit", "--quiet", spec).stdout)
        wait_for(lambda: proc_state("7.25") in ("S", "R"), 30, 0.1, "the job's sleep running")
        # a demand-response event: 0 W for 30 s, within pause_max_ms: pause, do not hand back
        out = self.f.cli("power", site_dir, "--dr-watts", "0", "--dr-for", "30").stdout
        self.assertIn("envelope now 0 W", out)
        wait_for(lambda: proc_state("7.25") == "T", 10, 0.05, "the job stopped (SIGSTOP)")
        self.assertIn("pausing job", self.f.sites["dc-1"].log_text())
        # the event is called off early: the job resumes where it was
        self.f.cli("power", site_dir, "--dr-watts", "0", "--dr-for", "0")
        wait_for(lambda: proc_state("7.25") in ("S", "R", None), 10, 0.1, "the job resumed")
        self.assertIn(f"job {jid} resumed", self.f.sites["dc-1"].log_text())
        self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "succeeded")
        job = self.f.job(jid)
        self.assertEqual(job["job"]["attempt"], 1)
        self.assertEqual(len(job["results"]), 1)
        bad = self.f.cli("power", site_dir, "--watts", "-5", check=False)
        self.assertEqual(bad.returncode, 6, bad.stderr)
        self.assertIn("watts: must be a number from 0 to 1e+09", bad.stderr)

    def test_departure_keeps_long_jobs_off_and_deadlines_fail_clearly(self):
        self.f.start_site("car-1", "car", cores=2, watts_per_core=10, power_budget_watts=100)
        car_dir = os.path.join(self.f.base, "sites", "car-1")
        # the driver says: leaving in 40 min (the site stops 10 min before)
        self.f.cli("power", car_dir, "--departure-in", "2400")
        wait_for(lambda: self.site("car-1")["power"].get("stay_until_ms"), 10, 0.1,
                 "the departure in the car's heartbeat")
        fc = self.site("car-1")["power"]["forecast_watts"]
        self.assertEqual(len(fc), 8)
        self.assertEqual(fc[0], 100)  # the next 15 min
        self.assertEqual(fc[1:], [0] * 7)  # 30 min and beyond: gone
        long_job = int(self.f.cli("submit", "--quiet", self.spec("long", kind="noop",
                                                       expected_s=3000)).stdout)
        short_job = int(self.f.cli("submit", "--quiet", self.spec("short", kind="noop",
                                                        expected_s=60)).stdout)
        self.assertEqual(self.f.wait_jobs_terminal([short_job], 30)[short_job], "succeeded")
        self.assertEqual(self.f.job(short_job)["job"]["site"], "car-1")
        wait_for(lambda: "leaves before the job can finish" in
                 (self.f.job(long_job)["job"].get("explanation") or ""), 10, 0.1,
                 "the long job's reason")
        self.assertEqual(self.f.job(long_job)["job"]["state"], "queued")
        # a job on the leaving car is told its stay and to checkpoint more often
        hint = int(self.f.cli("submit", "--quiet", self.spec(
            "hint", kind="exec", expected_s=60, checkpoint="state.bin",
            command=["sh", "-c", 'echo "$OUTPOST_STAY_S $OUTPOST_CHECKPOINT_EVERY_S '
                                 '$OUTPOST_CHECKPOINT"'])).stdout)
        self.assertEqual(self.f.wait_jobs_terminal([hint], 30)[hint], "succeeded")
        stay, every, name = self.f.cli_json("result", str(hint))["stdout"].split()
        self.assertTrue(1700 <= int(stay) <= 1800, stay)
        self.assertEqual(int(every), int(stay) // 4)
        self.assertEqual(name, "state.bin")
        # a deadline that passes while it waits (the car's power is gone for its 1000 s):
        # failed once it can no longer finish in time, with that reason
        late = int(self.f.cli("submit", "--quiet", self.spec("late", kind="noop", expected_s=1000,
                                                   deadline_s=1004)).stdout)
        self.assertEqual(self.f.wait_jobs_terminal([late], 30)[late], "failed")
        self.assertIn("deadline", self.f.job(late)["job"]["reason"])
        # a spec that could never make its deadline is refused at the door
        bad = self.f.cli("submit", self.spec("never", kind="noop", expected_s=100,
                                             deadline_s=10), check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("expected_s: longer than deadline_s", bad.stderr)


class IndexedHubTest(unittest.TestCase):
    """A hub told to place through the fleet index (fleet_index_from = 1) runs jobs on it with
    the same rules: residency, classes, power; explanations name the exact checks."""

    def setUp(self):
        self.f = Fleet()
        self.f.start_broker()
        self.f.start_hub(fleet_index_from=1)
        self.dir = tempfile.mkdtemp(prefix="outpost-index-")

    def tearDown(self):
        self.f.stop()

    def test_jobs_placed_through_the_index(self):
        self.f.start_site("dc-1", "dc", cores=2, watts_per_core=10, power_budget_watts=100)
        self.f.start_site("pod-1", "pod", cores=2, watts_per_core=10, power_budget_watts=5)
        out = self.f.cli("submit", "--quiet", "--kind", "noop", "--count", "20").stdout
        ids = [int(x) for x in out.split()]
        path = os.path.join(self.dir, "private.json")
        with open(path, "w") as fh:
            json.dump({"kind": "noop", "data_class": "site-private", "origin": "dc-1"}, fh)
        ids.append(int(self.f.cli("submit", "--quiet", path).stdout))
        states = self.f.wait_jobs_terminal(ids, 60)
        self.assertEqual(set(states.values()), {"succeeded"}, states)
        for jid in ids:
            job = self.f.job(jid)["job"]
            # pod-1's 5 W cannot run a 10 W core: everything ran on dc-1
            self.assertEqual(job["site"], "dc-1")
        placed = [e for e in self.f.job(ids[0])["events"] if e["event"] == "placed"]
        self.assertRegex(placed[0]["detail"], r"\d+ sites? checked exactly")


class OldDatabaseTest(unittest.TestCase):
    """A hub whose database predates deadlines (no deadline, expected-duration or deferral
    columns) adds them at start and keeps its jobs."""

    OLD_JOBS = (
        "CREATE TABLE jobs(id INTEGER PRIMARY KEY, name TEXT, kind TEXT NOT NULL,"
        " spec TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, site TEXT,"
        " cores INTEGER NOT NULL, memory_mb INTEGER NOT NULL, class_mask INTEGER NOT NULL,"
        " origin TEXT, site_private INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,"
        " submitted_by TEXT, submitted_at INTEGER, placed_at INTEGER, started_at INTEGER,"
        " finished_at INTEGER, lease_expires_at INTEGER, reason TEXT, explanation TEXT,"
        " excluded TEXT NOT NULL DEFAULT '', notify TEXT,"
        " awaiting_approval INTEGER NOT NULL DEFAULT 0, program TEXT,"
        " data_class INTEGER NOT NULL DEFAULT 0)")

    def test_columns_added_and_jobs_kept(self):
        f = Fleet()
        try:
            f.start_broker()
            old_jobs = self.OLD_JOBS
            if f.store_url:  # the table as an older hub created it on PostgreSQL
                old_jobs = old_jobs.replace("id INTEGER PRIMARY KEY", "id BIGSERIAL PRIMARY KEY")
                old_jobs = old_jobs.replace(" INTEGER", " BIGINT")
            f.hub_execute(old_jobs)
            f.hub_execute("INSERT INTO jobs(kind, spec, state, cores, memory_mb, class_mask,"
                          " max_attempts) VALUES('noop', '{\"kind\":\"noop\"}', 'queued', 1,"
                          " 256, 7, 3)")
            f.start_hub()
            log = f.hub.log_text()
            for col in ("expected_ms", "deadline_at", "may_defer"):
                self.assertIn(f"database: added column jobs.{col}", log)
            f.start_site("dc-1", "dc", cores=2)
            self.assertEqual(f.wait_jobs_terminal([1], 30)[1], "succeeded", f.job(1))
            path = os.path.join(f.base, "deadline.json")
            with open(path, "w") as fh:
                json.dump({"kind": "noop", "deadline_s": 60, "expected_s": 1}, fh)
            jid = int(f.cli("submit", "--quiet", path).stdout)
            self.assertEqual(f.wait_jobs_terminal([jid], 30)[jid], "succeeded")
        finally:
            f.stop()


if __name__ == "__main__":
    unittest.main()
