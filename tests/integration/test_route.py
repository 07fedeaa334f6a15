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
    unassigned = [u["id"] for u in sol.get("unassigned", [])]
    test.assertEqual(sorted(seen + unassigned), sorted(stops), "each stop served or unassigned once")
    test.assertAlmostEqual(total, sol["cost"], places=6)
    return total


def read_solomon(path):
    """A Solomon / Gehring-Homberger file: (vehicles, capacity, rows of no x y q ready due s)."""
    lines = [ln.split() for ln in read(path).splitlines() if ln.strip()]
    vehicles, capacity = int(lines[3][0]), int(lines[3][1])
    rows = [list(map(float, ln)) for ln in lines[6:]]
    return vehicles, capacity, rows


def check_solomon(test, path, sol):
    """An independent check of a solution to a Solomon file: fleet, loads, windows, horizon,
    every customer served once or listed once as unassigned; returns (distance, routes)."""
    vehicles, capacity, rows = read_solomon(path)
    test.assertLessEqual(len(sol["routes"]), vehicles)
    seen, total = [], 0.0
    for r in sol["routes"]:
        t, load, prev = 0.0, 0, rows[0]
        for c in r["stops"] + [0]:
            row = rows[c]
            d = math.hypot(row[1] - prev[1], row[2] - prev[2])
            total += d
            t = max(t + (prev[6] if prev is not rows[0] else 0) + d, row[4] if c else 0)
            test.assertLessEqual(t, row[5] + 1e-6, f"{path}: customer {c} reached late")
            load += int(row[3])
            prev = row
            if c:
                seen.append(c)
        test.assertLessEqual(load, capacity)
    unassigned = [u["id"] for u in sol["unassigned"]]
    test.assertEqual(sorted(seen + unassigned), list(range(1, len(rows))))
    test.assertAlmostEqual(total, sol["distance"], places=6)
    return total, len(sol["routes"])


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
        r = self.run_route(path, "--time-limit", "1", "--strict")
        self.assertEqual(r.returncode, 2)
        self.assertIn("stop 's03': demand 500 is more than any vehicle carries (80)", r.stderr)
        # without --strict: a plan for the rest, the heavy stop listed with its reason, exit 0
        r = self.run_route(path, "--time-limit", "0.3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("warning: 1 of 5 stops unassigned", r.stderr)
        sol = json.loads(r.stdout)
        self.assertEqual(sol["unassigned"],
                         [{"id": "s03", "reason": "demand over every vehicle's capacity"}])
        served = [s for ro in sol["routes"] for s in ro["stops"]]
        self.assertEqual(sorted(served), ["s00", "s01", "s02", "s04"])
        r = self.run_route(path, "--time-limit", "-1")
        self.assertEqual(r.returncode, 2)


class NeverWithoutAPlanTest(unittest.TestCase):
    """An answer for every instance and any time limit; stops that cannot be served are listed
    as unassigned with their reason (exit 0 and a warning), and --strict refuses instead."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="outpost-route-")

    def run_route(self, *args):
        return subprocess.run([REL, "route", *args], capture_output=True, text=True, timeout=120)

    def write(self, name, inst):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(inst, f)
        return path

    def test_hard_benchmarks_at_a_tenth_of_a_second(self):
        files = [os.path.join(VRP, "solomon", f"{n}.txt") for n in ("R101", "R102", "R103")]
        files += [os.path.join(VRP, "gh", "200", f"{n}.txt") for n in ("r1_2_1", "rc1_2_1")]
        files += [os.path.join(VRP, "gh", "400", f"{n}.txt") for n in ("r1_4_1", "rc1_4_1")]
        ran = 0
        for path in files:
            if not os.path.exists(path):
                continue
            ran += 1
            r = self.run_route(path, "--time-limit", "0.1", "--quiet")
            self.assertEqual(r.returncode, 0, f"{path}: {r.stderr}")
            sol = json.loads(r.stdout)
            self.assertEqual(sol["unassigned"], [], path)
            check_solomon(self, path, sol)
            self.assertGreater(sol["vehicles"], 0)
        if not ran:
            self.skipTest(f"{VRP} is missing (shared data sets not on this machine)")

    def test_fleet_too_small(self):
        # 10 stops of demand 3, two vans of 10: three stops a van, four left out
        inst = {"name": "small-fleet", "depot": {"x": 0, "y": 0},
                "vehicles": [{"name": "van", "capacity": 10, "count": 2}],
                "stops": [{"id": f"s{i}", "x": math.cos(i), "y": math.sin(i), "demand": 3}
                          for i in range(10)]}
        path = self.write("small.json", inst)
        r = self.run_route(path, "--time-limit", "0.3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("warning: 4 of 10 stops unassigned", r.stderr)
        sol = json.loads(r.stdout)
        check_solution(self, {**inst, "stops": [{**s, "ready": 0, "due": 1e9} for s in
                                                inst["stops"]]}, sol)
        self.assertEqual(len(sol["unassigned"]), 4)
        self.assertEqual({u["reason"] for u in sol["unassigned"]},
                         {"no room for it in the fleet's routes"})
        # a partial plan is a checkpoint like any other: resuming from it works
        ckpt = os.path.join(self.dir, "partial.json")
        with open(ckpt, "w") as f:
            f.write(r.stdout)
        r = self.run_route(path, "--iterations", "5", "--resume", ckpt, "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(json.loads(r.stdout)["unassigned"]), 4)
        r = self.run_route(path, "--time-limit", "0.3", "--strict")
        self.assertEqual(r.returncode, 2)
        self.assertIn("total demand 30 is more than the whole fleet carries (20)", r.stderr)

    def test_stop_unreachable_in_its_window(self):
        inst = instance(12)
        inst["stops"][5].update({"x": 400, "y": 0, "ready": 0, "due": 100})
        path = self.write("far.json", inst)
        r = self.run_route(path, "--time-limit", "0.3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("stop 's05': no vehicle can reach it", r.stderr)
        sol = json.loads(r.stdout)
        self.assertEqual([u["id"] for u in sol["unassigned"]], ["s05"])
        check_solution(self, inst, sol)
        r = self.run_route(path, "--time-limit", "0.3", "--strict")
        self.assertEqual(r.returncode, 2)
        self.assertIn("stop 's05': no vehicle can reach it inside its window", r.stderr)

    def test_windows_that_cannot_all_be_met(self):
        # one van, two stops far apart both due at 60: one of them is served
        inst = {"name": "clash", "depot": {"x": 0, "y": 0, "due": 500},
                "vehicles": [{"name": "van", "capacity": 10, "count": 1}],
                "stops": [{"id": "east", "x": 50, "y": 0, "demand": 1, "ready": 0, "due": 60},
                          {"id": "west", "x": -50, "y": 0, "demand": 1, "ready": 0,
                           "due": 60}]}
        path = self.write("clash.json", inst)
        r = self.run_route(path, "--time-limit", "0.2")
        self.assertEqual(r.returncode, 0, r.stderr)
        sol = json.loads(r.stdout)
        check_solution(self, inst, sol)
        self.assertEqual(len(sol["unassigned"]), 1)
        self.assertEqual(sol["vehicles"], 1)
        r = self.run_route(path, "--time-limit", "0.2", "--strict")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no feasible solution found", r.stderr)


class ObjectiveTest(unittest.TestCase):
    """--objective vehicles (fewer vans first, then distance) and vehicle costs in the JSON form."""

    def run_route(self, *args):
        return subprocess.run([REL, "route", *args], capture_output=True, text=True, timeout=120)

    def test_vehicles_first_on_solomon(self):
        path = os.path.join(VRP, "solomon", "RC101.txt")
        if not os.path.exists(path):
            self.skipTest(f"{VRP} is missing (shared data sets not on this machine)")
        got = {}
        for objective in ("distance", "vehicles"):
            r = self.run_route(path, "--iterations", "150", "--objective", objective, "--quiet")
            self.assertEqual(r.returncode, 0, r.stderr)
            sol = json.loads(r.stdout)
            got[objective] = check_solomon(self, path, sol)
            self.assertEqual(sol["vehicles"], len(sol["routes"]))
            self.assertAlmostEqual(sol["cost"], sol["distance"], places=6)
        self.assertLessEqual(got["vehicles"][1], got["distance"][1])
        r = self.run_route(path, "--objective", "vans")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--objective must be 'distance' or 'vehicles'", r.stderr)

    def test_fixed_and_hourly_costs(self):
        inst = instance(20)
        inst["vehicles"] = [{"name": "van", "capacity": 30, "count": 8, "fixed_cost": 50,
                             "cost_per_hour": 30}]
        inst["time_unit"] = "minutes"
        d = tempfile.mkdtemp(prefix="outpost-route-")
        path = os.path.join(d, "costs.json")
        with open(path, "w") as f:
            json.dump(inst, f)
        r = self.run_route(path, "--iterations", "50", "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        sol = json.loads(r.stdout)
        # the route distances add up to "distance"; "cost" adds 50 a van and 30 an hour
        self.assertAlmostEqual(sum(ro["distance"] for ro in sol["routes"]), sol["distance"],
                               places=6)
        extra = sol["cost"] - sol["distance"]
        self.assertGreaterEqual(extra, 50 * sol["vehicles"])
        hours = sum(ro["back_at"] for ro in sol["routes"]) / 60  # an upper bound on the durations
        self.assertLessEqual(extra, 50 * sol["vehicles"] + 30 * hours + 1e-6)


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
