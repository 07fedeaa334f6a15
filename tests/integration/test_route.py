"""Routing on site, end to end: `outpost route` on this machine (outputs, checkpoints, errors
with their line), and route jobs on a real fleet: placed by policy on the origin warehouse, run
sandboxed by the site's own solver, their solution checked here against the instance."""
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import ROOT, Fleet, wait_for  # noqa: E402

REL = os.path.join(ROOT, "build", "rel", "outpost")
VRP = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "vrp"))


def instance(n_stops=40, seed=7):
    """A delivery day for one depot: stops with demands and windows, vans and a truck."""
    rnd = random.Random(seed)
    stops = []
    for i in range(n_stops):
        ready = rnd.randrange(0, 300)
        stops.append({"id": f"s{i:02d}", "x": rnd.uniform(-50, 50), "y": rnd.uniform(-50, 50),
                      "demand": rnd.randrange(1, 10), "ready": ready,
                      "due": ready + rnd.randrange(120, 400), "service": 5})
    return {"name": "warehouse-day", "depot": {"x": 0, "y": 0, "due": 1000},
            "vehicles": [{"name": "van", "capacity": 30, "count": 8},
                         {"name": "truck", "capacity": 80, "count": 1, "shift_start": 0,
                          "shift_end": 900}],
            "stops": stops}


def read(path):
    with open(path) as f:
        return f.read()


def check_solution(test, inst, sol):
    """Every stop once, loads within the vehicle's capacity, windows kept; returns the cost."""
    stops = {s["id"]: s for s in inst["stops"]}
    caps = {v["name"]: v["capacity"] for v in inst["vehicles"]}
    seen = []
    total = 0.0
    for r in sol["routes"]:
        load, prev, t = 0, inst["depot"], 0.0
        for sid in r["stops"]:
            s = stops[sid]
            d = math.hypot(s["x"] - prev["x"], s["y"] - prev["y"])
            t = max(t + prev.get("service", 0) + d, s["ready"])
            test.assertLessEqual(t, s["due"] + 1e-6, f"stop {sid} reached late")
            total += d
            load += s["demand"]
            prev = s
            seen.append(sid)
        total += math.hypot(prev["x"], prev["y"])
        test.assertLessEqual(load, caps[r["vehicle"]])
    test.assertEqual(sorted(seen), sorted(stops))
    test.assertAlmostEqual(total, sol["cost"], places=6)
    return total


class RouteCommandTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="outpost-route-")

    def run_route(self, *args):
        return subprocess.run([REL, "route", *args], capture_output=True, text=True, timeout=120)

    def test_local_solve_outputs_and_checkpoint(self):
        inst = instance()
        path = os.path.join(self.dir, "day.json")
        with open(path, "w") as f:
            json.dump(inst, f)
        out, svg, ckpt = (os.path.join(self.dir, n) for n in ("sol.json", "r.svg", "ckpt.json"))
        r = self.run_route(path, "--time-limit", "1", "--out", out, "--svg", svg,
                           "--checkpoint", ckpt)
        self.assertEqual(r.returncode, 0, r.stderr)
        sol = json.loads(read(out))
        cost = check_solution(self, inst, sol)
        self.assertTrue(read(svg).startswith("<svg"))
        # resume from the checkpoint: never worse
        r = self.run_route(path, "--iterations", "20", "--seed", "9", "--resume", ckpt, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLessEqual(json.loads(r.stdout)["cost"], cost + 1e-9)
        # same seed and iteration limit: the same routes
        a = self.run_route(path, "--iterations", "30", "--seed", "3", "--quiet").stdout
        b = self.run_route(path, "--iterations", "30", "--seed", "3", "--quiet").stdout
        strip = lambda s: {k: v for k, v in json.loads(s).items() if "_s" not in k}  # noqa: E731
        self.assertEqual(strip(a), strip(b))

    def test_bad_input_is_named(self):
        bad = os.path.join(self.dir, "bad.vrp")
        with open(bad, "w") as f:
            f.write("NAME : bad\nTYPE : CVRP\nDIMENSION : 3\nEDGE_WEIGHT_TYPE : EUC_2D\n"
                    "CAPACITY : 10\nNODE_COORD_SECTION\n1 0 0\n2 1 x\n")
        r = self.run_route(bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.vrp:8: expected 'id x y'", r.stderr)
        heavy = instance(5)
        heavy["stops"][3]["demand"] = 500
        path = os.path.join(self.dir, "heavy.json")
        with open(path, "w") as f:
            json.dump(heavy, f)
        r = self.run_route(path, "--time-limit", "1")
        self.assertEqual(r.returncode, 2)
        self.assertIn("stop 's03': demand 500 is more than any vehicle carries (80)", r.stderr)
        r = self.run_route(path, "--time-limit", "-1")
        self.assertEqual(r.returncode, 2)


class RouteFleetTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.f.start_broker()
        self.f.start_hub()
        self.f.start_site("wh-1", "dc", cores=2, route_program=REL)
        self.f.start_site("pod-1", "pod", cores=2, route_program=REL)
        self.dir = tempfile.mkdtemp(prefix="outpost-route-")

    def tearDown(self):
        self.f.stop()

    def submit_and_fetch(self, path, *extra):
        jid = int(self.f.cli("submit", "--quiet", "--kind", "route", path, *extra).stdout.split()[0])
        states = self.f.wait_jobs_terminal([jid], 90)
        job = self.f.job(jid)["job"]
        self.assertEqual(states[jid], "succeeded", json.dumps(job))
        out = os.path.join(self.dir, f"job-{jid}")
        saved = self.f.cli("result", str(jid), "--save", out)
        self.assertIn("(verified)", saved.stdout)
        return job, json.loads(read(os.path.join(out, "solution.json"))), out

    def test_route_job_pinned_to_origin_by_policy(self):
        pol = os.path.join(self.dir, "hub.policy")
        with open(pol, "w") as f:
            f.write("version 1\n# delivery data stays in the warehouse it comes from\n"
                    "data confidential on origin\n")
        self.f.cli("policy", "set", pol)
        inst = instance()
        path = os.path.join(self.dir, "day.json")
        with open(path, "w") as f:
            json.dump(inst, f)
        for _ in range(2):
            job, sol, out = self.submit_and_fetch(path, "--time-limit", "1", "--data-class",
                                                  "confidential", "--origin", "wh-1")
            self.assertEqual(job["site"], "wh-1")
            check_solution(self, inst, sol)
            self.assertTrue(read(os.path.join(out, "routes.svg")).startswith("<svg"))
        # without an origin the policy refuses it at submission, with the rule
        r = self.f.cli("submit", "--kind", "route", path, "--data-class", "confidential",
                       check=False)
        self.assertEqual(r.returncode, 6, r.stderr)

    def test_benchmark_instance_on_the_fleet(self):
        path = os.path.join(VRP, "x", "X-n101-k25.vrp")
        if not os.path.exists(path):
            self.skipTest(f"{VRP} is missing (shared data sets not on this machine)")
        job, sol, _ = self.submit_and_fetch(path, "--time-limit", "2", "--seed", "4")
        self.assertLess(sol["cost"], 27591 * 1.05)  # best known 27591
        self.assertGreaterEqual(sol["cost"], 27591)
        self.assertEqual(sorted(c for r in sol["routes"] for c in r["stops"]), list(range(1, 101)))

    def test_bad_route_jobs(self):
        path = os.path.join(self.dir, "bad.vrp")
        with open(path, "w") as f:
            f.write("NAME : bad\nTYPE : CVRP\nDIMENSION : 2\nCAPACITY : 1\nBOGUS : 1\n")
        jid = int(self.f.cli("submit", "--quiet", "--kind", "route", path).stdout.split()[0])
        self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "failed")
        self.assertEqual(self.f.job(jid)["job"]["reason"], "exit code 2")
        res = self.f.cli_json("result", str(jid))
        self.assertIn("bad.vrp:5: unknown keyword 'BOGUS'", json.dumps(res))
        # two inputs: refused at submission, naming the field
        other = os.path.join(self.dir, "other.vrp")
        with open(other, "w") as f:
            f.write("NAME : other\n")
        r = self.f.cli("submit", "--kind", "route", path, other, check=False)
        self.assertEqual(r.returncode, 6)
        self.assertIn("inputs: a route job takes exactly one input", r.stderr)


if __name__ == "__main__":
    unittest.main()
