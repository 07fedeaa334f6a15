"""Problems in VROOM's JSON form, end to end: `outpost route` on this machine and route jobs on
a real fleet. Every answer is re-checked by the independent checker (`outpost route PROBLEM
--check ANSWER`) and by the coverage and precedence checks here; hand-made wrong answers are
refused with the reason; malformed problems are refused naming the JSON path."""
import copy
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import ROOT, Fleet  # noqa: E402
import vroomgen  # noqa: E402

REL = os.path.join(ROOT, "build", "rel", "outpost")
EXAMPLES = os.path.join(ROOT, "examples", "vroom")
SOLOMON = os.path.join(vroomgen.VRP, "solomon")


def read(path):
    with open(path) as f:
        return f.read()


def tasks_of(problem):
    """Every task as (type, id)."""
    out = [("job", j["id"]) for j in problem.get("jobs", [])]
    for s in problem.get("shipments", []):
        out += [("pickup", s["pickup"]["id"]), ("delivery", s["delivery"]["id"])]
    return out


class VroomCommandTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="outpost-vroom-")

    def write(self, name, obj):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return path

    def route(self, *args):
        return subprocess.run([REL, "route", *args], capture_output=True, text=True, timeout=120)

    def plan(self, problem_path, *args):
        """Plans and re-checks; returns the answer."""
        out = os.path.join(self.dir, "answer.json")
        r = self.route(problem_path, "--quiet", "--out", out, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        answer = json.loads(read(out))
        c = self.route(problem_path, "--check", out)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(json.loads(c.stdout)["check"], "ok")
        self.check_cover(json.loads(read(problem_path)), answer)
        return answer

    def check_cover(self, problem, answer):
        """VROOM's output form; every task served once or listed once; pickups first."""
        self.assertEqual(answer["code"], 0)
        for key in ("cost", "routes", "unassigned", "delivery", "pickup", "setup", "service",
                    "duration", "waiting_time", "priority", "violations"):
            self.assertIn(key, answer["summary"])
        seen = []
        pickup_of = {s["delivery"]["id"]: s["pickup"]["id"] for s in problem.get("shipments", [])}
        for r in answer["routes"]:
            for key in ("vehicle", "cost", "delivery", "pickup", "setup", "service", "duration",
                        "waiting_time", "priority", "steps"):
                self.assertIn(key, r)
            picked = set()
            for s in r["steps"]:
                for key in ("type", "arrival", "duration", "load"):
                    self.assertIn(key, s)
                if s["type"] in ("job", "pickup", "delivery"):
                    seen.append((s["type"], s["id"]))
                if s["type"] == "pickup":
                    picked.add(s["id"])
                if s["type"] == "delivery":
                    self.assertIn(pickup_of[s["id"]], picked, "delivery before its pickup")
        listed = [(u["type"], u["id"]) for u in answer["unassigned"]]
        self.assertEqual(sorted(seen + listed), sorted(tasks_of(problem)))
        self.assertEqual(answer["summary"]["unassigned"], len(listed))
        self.assertAlmostEqual(answer["summary"]["cost"], sum(r["cost"] for r in answer["routes"]))

    def test_examples_planned_and_checked(self):
        for name in sorted(os.listdir(EXAMPLES)):
            with self.subTest(name=name):
                answer = self.plan(os.path.join(EXAMPLES, name), "--iterations", "300")
                if name == "optional.json":
                    self.assertEqual(answer["summary"]["priority"], 80)
                    self.assertEqual(sorted(u["id"] for u in answer["unassigned"]), [1, 3, 4])
                else:
                    self.assertEqual(answer["unassigned"], [])
                if name == "breaks.json":
                    for r in answer["routes"]:
                        self.assertTrue(any(s["type"] == "break" for s in r["steps"]))

    def solomon(self, name, make=vroomgen.solomon_jobs):
        path = os.path.join(SOLOMON, name + ".txt")
        if not os.path.exists(path):
            self.skipTest(f"{SOLOMON} is missing (shared data sets not on this machine)")
        return self.write(name + ".json", make(path))

    def test_solomon_jobs_near_the_best_known(self):
        # distance-only best-known values (solomon/bks.csv)
        for name, bks in (("C101", 828.94), ("R101", 1637.7), ("RC201", 1261.8)):
            with self.subTest(name=name):
                answer = self.plan(self.solomon(name), "--time-limit", "3", "--seed", "2")
                self.assertEqual(answer["unassigned"], [])
                self.assertLess(answer["summary"]["cost"] / vroomgen.SCALE, bks * 1.06)

    def test_solomon_shipments(self):
        answer = self.plan(self.solomon("R201", vroomgen.solomon_shipments), "--time-limit", "3")
        served = sum(1 for r in answer["routes"] for s in r["steps"] if s["type"] == "delivery")
        self.assertGreaterEqual(served, 40)  # of 50 pairs: a few have windows no pair can meet

    def test_every_feature_on_solomon(self):
        path = self.write("rc101r.json",
                          vroomgen.with_rich(vroomgen.solomon_jobs(os.path.join(SOLOMON, "RC101.txt"))))
        problem = json.loads(read(path))
        answer = self.plan(path, "--time-limit", "2")
        skills = {v["id"]: set(v["skills"]) for v in problem["vehicles"]}
        need = {j["id"]: set(j.get("skills", [])) for j in problem["jobs"]}
        for r in answer["routes"]:
            jobs = [s["id"] for s in r["steps"] if s["type"] == "job"]
            self.assertLessEqual(len(jobs), 12)  # max_tasks
            for j in jobs:
                self.assertLessEqual(need[j], skills[r["vehicle"]])
            self.assertEqual(sum(1 for s in r["steps"] if s["type"] == "break"), 1)

    def test_never_without_a_plan(self):
        answer = self.plan(self.solomon("R101"), "--time-limit", "0.1")
        self.assertGreater(len(answer["routes"]), 0)

    def test_reproducible_with_iterations(self):
        path = os.path.join(EXAMPLES, "shipments.json")
        a = self.route(path, "--iterations", "200", "--seed", "5", "--quiet").stdout
        b = self.route(path, "--iterations", "200", "--seed", "5", "--quiet").stdout
        self.assertEqual(a, b)

    def test_checkpoint_and_resume_never_worse(self):
        path = os.path.join(EXAMPLES, "breaks.json")
        ckpt = os.path.join(self.dir, "ckpt.json")
        first = self.plan(path, "--iterations", "100", "--checkpoint", ckpt)
        self.assertEqual(json.loads(read(ckpt))["summary"]["cost"], first["summary"]["cost"])
        again = self.plan(path, "--iterations", "5", "--seed", "4", "--resume", ckpt)
        self.assertLessEqual(again["summary"]["cost"], first["summary"]["cost"])
        bad = self.write("bad-ckpt.json", {"routes": [], "unassigned": []})
        r = self.route(path, "--iterations", "5", "--resume", bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn("neither served nor listed as unassigned", r.stderr)

    def test_checker_refuses_hand_made_plans(self):
        path = os.path.join(EXAMPLES, "breaks.json")
        good = self.plan(path, "--iterations", "200")

        def refused(answer, why):
            bad = self.write("bad.json", answer)
            r = self.route(path, "--check", bad)
            self.assertEqual(r.returncode, 2, r.stdout)
            self.assertIn(why, r.stderr)

        no_break = copy.deepcopy(good)
        route = no_break["routes"][0]
        route["steps"] = [s for s in route["steps"] if s["type"] != "break"]
        refused(no_break, "not taken")
        twice = copy.deepcopy(good)
        # a pickup-only job (5 or 6: nothing aboard from the start) served on both vehicles
        step = next(s for r in twice["routes"] for s in r["steps"] if s.get("id") in (5, 6)
                    and s["type"] == "job")
        for r in twice["routes"]:
            if step not in r["steps"]:
                r["steps"].insert(-1, dict(step, arrival=9000))
                break
        else:
            twice["routes"][0]["steps"].insert(-1, dict(step, arrival=9000))
        refused(twice, "served twice")
        cost = copy.deepcopy(good)
        cost["summary"]["cost"] += 50
        refused(cost, "but the routes cost")
        early = copy.deepcopy(good)
        step = next(s for s in early["routes"][0]["steps"] if s["type"] == "job")
        step["arrival"] -= 1
        refused(early, "before")
        # shipments: delivery before pickup
        spath = os.path.join(EXAMPLES, "shipments.json")
        out = os.path.join(self.dir, "s.json")
        self.assertEqual(self.route(spath, "--iterations", "200", "--quiet", "--out", out).returncode, 0)
        ans = json.loads(read(out))
        for r in ans["routes"]:
            kinds = [s["type"] for s in r["steps"]]
            if "pickup" in kinds:
                i, j = kinds.index("pickup"), kinds.index("delivery")
                r["steps"][i], r["steps"][j] = r["steps"][j], r["steps"][i]
                break
        bad = self.write("swapped.json", ans)
        r = self.route(spath, "--check", bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn("fails the check", r.stderr)

    def test_bad_problems_named(self):
        cases = [
            ('{"vehicles":[{"id":1,"start_index":0}],"jobs":[{"id":1,"location_index":1,'
             '"time_windows":[[9,1]]}],"matrix":[[0,1],[1,0]]}',
             "jobs[0].time_windows[0]: must be [start, end]"),
            ('{"vehicles":[{"id":1,"start_index":0,"capacity":[1,1]}],"jobs":[{"id":1,'
             '"location_index":1,"delivery":[1]}],"matrix":[[0,1],[1,0]]}',
             "vehicles[0].capacity: has 2 numbers where earlier amounts have 1"),
            ('{"vehicles":[{"id":1,"start_index":0}],"shipments":[{"pickup":{"id":1},'
             '"delivery":{"id":1,"location_index":1}}],"matrix":[[0,1],[1,0]]}',
             "shipments[0].pickup.location_index: missing"),
            ('{"vehicles":[{"id":1,"start":[2,48],"steps":[]}],"jobs":[]}',
             "vehicles[0].steps: plan mode is not supported"),
        ]
        for text, why in cases:
            with self.subTest(why=why):
                r = self.route(self.write("bad.json", text), "--iterations", "5")
                self.assertEqual(r.returncode, 2, r.stdout)
                self.assertIn(why, r.stderr)
        # options of the other forms are refused, not ignored
        r = self.route(os.path.join(EXAMPLES, "basic.json"), "--objective", "vehicles")
        self.assertEqual(r.returncode, 2)
        self.assertIn("not for problems in VROOM's form", r.stderr)
        # --check is for VROOM-form problems only
        r = self.route(os.path.join(ROOT, "examples", "route-day.json"), "--check",
                       os.path.join(EXAMPLES, "basic.json"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("--check is for problems in VROOM's form", r.stderr)


class VroomFleetTest(unittest.TestCase):
    """A route job carrying a VROOM problem: planned by a site in its sandbox, the answer
    fetched with its hashes verified and re-checked by the independent checker."""

    def setUp(self):
        self.f = Fleet()
        self.f.start_broker()
        self.f.start_hub()
        self.f.start_site("wh-1", "dc", cores=2, route_program=REL)
        self.dir = tempfile.mkdtemp(prefix="outpost-vroom-")

    def tearDown(self):
        self.f.stop()

    def test_vroom_problem_on_the_fleet(self):
        problem = os.path.join(EXAMPLES, "shipments.json")
        jid = int(self.f.cli("submit", "--quiet", "--kind", "route", problem, "--time-limit",
                             "1").stdout.split()[0])
        states = self.f.wait_jobs_terminal([jid], 90)
        self.assertEqual(states[jid], "succeeded", json.dumps(self.f.job(jid)))
        out = os.path.join(self.dir, "out")
        self.assertIn("(verified)", self.f.cli("result", str(jid), "--save", out).stdout)
        answer_path = os.path.join(out, "solution.json")
        answer = json.loads(read(answer_path))
        self.assertEqual(answer["code"], 0)
        self.assertEqual(answer["unassigned"], [])
        r = subprocess.run([REL, "route", problem, "--check", answer_path], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(read(os.path.join(out, "routes.svg")).startswith("<svg"))

    def test_bad_vroom_problem_fails_the_job_naming_the_path(self):
        path = os.path.join(self.dir, "bad.json")
        with open(path, "w") as f:
            f.write('{"vehicles":[{"id":1,"start_index":0}],"jobs":[{"id":1,"location_index":7}],'
                    '"matrix":[[0,1],[1,0]]}')
        jid = int(self.f.cli("submit", "--quiet", "--kind", "route", path).stdout.split()[0])
        self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "failed")
        self.assertEqual(self.f.job(jid)["job"]["reason"], "exit code 2")
        res = self.f.cli_json("result", str(jid))
        self.assertIn("jobs[0].location_index: must be a row of the matrix", json.dumps(res))


if __name__ == "__main__":
    unittest.main()
