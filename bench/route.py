#!/usr/bin/python3
"""`make bench-route`: the routing solver against best-known solutions.

Runs `outpost route` on CVRPLIB set X (instances with at most 300 customers)
and the 56 Solomon instances from ../shared/data/vrp, one instance per core
(two at a time on this machine), at each time limit. For each instance: cost,
gap to the best-known value, time to the best solution found. Prints mean and
worst gap per set and limit, and the same for an in-run baseline: the
solver's initial population only (100 random tours cut by split and improved
by local search, `--iterations 1`), i.e. multi-start local search without the
genetic search.

X gaps use the CVRPLIB convention (rounded Euclidean, free number of routes).
Solomon gaps use the distance-only best-known values (dist_bks_distance:
unrounded Euclidean, at most the 25 vehicles the files allow); the number of
routes is reported next to the hierarchical best-known count.

Never without a plan, and fleet size: Solomon and the Gehring-Homberger
200-customer set at 0.1 s, 1 s and 5 s, once with `--objective distance` and
once with `--objective vehicles`: instances without a plan (must be none),
unassigned stops, mean distance gap (distance objective: to the distance-only
best-known where there is one, else the hierarchical one; vehicles objective:
to the hierarchical best-known distance) and mean vehicles next to the mean of
the best-known (hierarchical) fleet sizes.

The problems depots have (part `rich`): problems in VROOM's JSON form planned by the rich
search (ruin and recreate), every answer re-checked with `outpost route PROBLEM --check
ANSWER`: the 56 Solomon instances as VROOM jobs with a matrix (distances times 100, rounded)
next to HGS on the same .txt files at the same time limit (the price of the general search),
the same customers paired into pickup-and-delivery shipments, the same instances with every
feature added (skills, priorities, a second capacity dimension, a break per vehicle, open
ends, max_tasks), and the hand-written examples/vroom/*.json. Per type: instances, tasks
served and unassigned, mean cost, checker verdicts.

Environment: BENCH_QUICK=1 runs 6 instances per set, X and Solomon at 1 s
only and the anytime part at 0.1 s and 1 s; BENCH_PARTS=x,solomon,anytime,rich
chooses the parts (default all); BENCH_JOBS=2 instances at a time;
BENCH_RICH_LIMITS=1,5 the time limits of the rich part.
"""
import concurrent.futures as cf
import csv
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import vroomgen  # noqa: E402
VRP = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "vrp"))
BIN = os.path.join(ROOT, "build", "rel", "outpost")
OUT = os.path.join(ROOT, "build", "bench")


def load_sets(quick):
    sets = {}
    with open(os.path.join(VRP, "x", "bks.csv")) as f:
        rows = [r for r in csv.DictReader(f) if int(r["customers"]) <= 300]
    sets["X (n<=300)"] = [(os.path.join(VRP, "x", r["instance"] + ".vrp"), r["instance"],
                           float(r["bks_cost"]), int(r["bks_routes"])) for r in rows]
    with open(os.path.join(VRP, "solomon", "bks.csv")) as f:
        rows = list(csv.DictReader(f))
    sets["Solomon"] = [(os.path.join(VRP, "solomon", r["instance"] + ".txt"), r["instance"],
                        float(r["dist_bks_distance"]), int(r["hier_bks_vehicles"])) for r in rows]
    if quick:
        for k in sets:
            sets[k] = sets[k][:: max(1, len(sets[k]) // 6)][:6]
    return sets


def load_anytime(quick):
    """Solomon and Gehring-Homberger 200: (path, name, distance bks, vehicles bks, hier distance)."""
    sets = {}
    with open(os.path.join(VRP, "solomon", "bks.csv")) as f:
        sets["Solomon"] = [(os.path.join(VRP, "solomon", r["instance"] + ".txt"), r["instance"],
                            float(r["dist_bks_distance"]), int(r["hier_bks_vehicles"]),
                            float(r["hier_bks_distance"])) for r in csv.DictReader(f)]
    gh = os.path.join(VRP, "gh", "bks.csv")
    if os.path.exists(gh):
        with open(gh) as f:
            rows = [r for r in csv.DictReader(f) if r["customers"] == "200"
                    and os.path.exists(os.path.join(VRP, "gh", r["file"]))]
        sets["GH 200"] = [(os.path.join(VRP, "gh", r["file"]), r["instance"],
                           float(r["hier_bks_distance"]), int(r["hier_bks_vehicles"]),
                           float(r["hier_bks_distance"])) for r in rows]
    if quick:
        for k in sets:
            sets[k] = sets[k][:: max(1, len(sets[k]) // 6)][:6]
    return sets


def run_plan(path, limit, objective):
    args = [BIN, "route", path, "--quiet", "--seed", "1", "--time-limit", str(limit),
            "--objective", objective]
    p = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-300:]}
    d = json.loads(p.stdout)
    return {"distance": d["distance"], "vehicles": d["vehicles"],
            "unassigned": len(d["unassigned"])}


def anytime(quick, jobs_n):
    """The anytime and fleet-size table (see the module's comment)."""
    sets = load_anytime(quick)
    limits = [0.1, 1] if quick else [0.1, 1, 5]
    jobs = []
    with cf.ThreadPoolExecutor(max_workers=jobs_n) as pool:
        for name, items in sets.items():
            for limit in limits:
                for objective in ("distance", "vehicles"):
                    for item in items:
                        jobs.append((name, limit, objective, item,
                                     pool.submit(run_plan, item[0], limit, objective)))
        rows = []
        for name, limit, objective, (path, inst, dbks, vbks, hbks), fut in jobs:
            r = fut.result()
            bks = dbks if objective == "distance" else hbks
            if "error" in r:
                print(f"  {inst} @ {limit} s {objective}: NO PLAN {r['error']}", flush=True)
            rows.append((name, limit, objective, inst, bks, vbks, r))
    with open(os.path.join(OUT, "route_anytime.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["set", "limit_s", "objective", "instance", "bks_distance", "bks_vehicles",
                    "distance", "vehicles", "unassigned", "error"])
        for name, limit, objective, inst, bks, vbks, r in rows:
            w.writerow([name, limit, objective, inst, bks, vbks, r.get("distance", ""),
                        r.get("vehicles", ""), r.get("unassigned", ""), r.get("error", "")])
    print("\n| set | limit | objective | instances | without a plan | unassigned | "
          "mean distance gap | mean vehicles | best-known mean vehicles | vehicles vs best-known |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in sets:
        for limit in limits:
            for objective in ("distance", "vehicles"):
                sel = [x for x in rows if x[:3] == (name, limit, objective)]
                ok = [x for x in sel if "error" not in x[6]]
                if not ok:
                    continue
                gaps = [100 * (x[6]["distance"] - x[4]) / x[4] for x in ok]
                veh = sum(x[6]["vehicles"] for x in ok) / len(ok)
                bveh = sum(x[5] for x in ok) / len(ok)
                print(f"| {name} | {limit} s | {objective} | {len(sel)} | {len(sel) - len(ok)} | "
                      f"{sum(x[6]['unassigned'] for x in ok)} | {sum(gaps) / len(gaps):.2f}% | "
                      f"{veh:.2f} | {bveh:.2f} | {100 * (veh - bveh) / bveh:+.1f}% |")


def run_rich(path, limit):
    """One VROOM-form problem: the answer's figures and the checker's verdict."""
    out = os.path.join(OUT, "vroom", os.path.basename(path)[:-5] + f".{limit}.answer.json")
    p = subprocess.run([BIN, "route", path, "--quiet", "--seed", "1", "--time-limit", str(limit),
                        "--out", out], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-300:]}
    with open(out) as f:
        a = json.load(f)
    c = subprocess.run([BIN, "route", path, "--check", out], capture_output=True, text=True,
                       timeout=600)
    served = sum(1 for r in a["routes"] for st in r["steps"]
                 if st["type"] in ("job", "pickup", "delivery"))
    return {"cost": a["summary"]["cost"], "routes": a["summary"]["routes"], "served": served,
            "unassigned": a["summary"]["unassigned"], "checked": c.returncode == 0,
            "iterations": a["summary"].get("iterations", 0),
            "why": c.stderr.strip()[-200:]}


def rich(quick, jobs_n):
    """The problems depots have (see the module's comment)."""
    limits = [float(x) for x in os.environ.get("BENCH_RICH_LIMITS", "1" if quick else "1,5").split(",")]
    with open(os.path.join(VRP, "solomon", "bks.csv")) as f:
        sol = [(r["instance"], float(r["dist_bks_distance"])) for r in csv.DictReader(f)]
    if quick:
        sol = sol[:: max(1, len(sol) // 6)][:6]
    folder = os.path.join(OUT, "vroom")
    os.makedirs(folder, exist_ok=True)
    problems = []  # (type, name, path, bks or None, solomon txt or None)
    makers = [("Solomon jobs", vroomgen.solomon_jobs), ("Solomon shipments", vroomgen.solomon_shipments),
              ("Solomon, every feature", lambda p: vroomgen.with_rich(vroomgen.solomon_jobs(p)))]
    for kind, make in makers:
        for inst, bks in sol:
            txt = os.path.join(VRP, "solomon", inst + ".txt")
            path = os.path.join(folder, f"{inst}.{kind.split()[-1].strip(',')}.json")
            with open(path, "w") as f:
                json.dump(make(txt), f)
            problems.append((kind, inst, path, bks if kind == "Solomon jobs" else None, txt))
    for name in sorted(os.listdir(os.path.join(ROOT, "examples", "vroom"))):
        problems.append(("examples/vroom", name, os.path.join(ROOT, "examples", "vroom", name), None, None))
    jobs = []
    with cf.ThreadPoolExecutor(max_workers=jobs_n) as pool:
        for limit in limits:
            for kind, name, path, bks, txt in problems:
                jobs.append((limit, kind, name, bks, pool.submit(run_rich, path, limit),
                             pool.submit(run_one, txt, limit) if bks else None))
        rows = [(limit, kind, name, bks, a.result(), h.result() if h else None)
                for limit, kind, name, bks, a, h in jobs]
    with open(os.path.join(OUT, "route_rich.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["limit_s", "type", "instance", "bks_distance", "cost", "served", "unassigned",
                    "checked", "hgs_distance", "error"])
        for limit, kind, name, bks, r, h in rows:
            w.writerow([limit, kind, name, bks or "", r.get("cost", ""), r.get("served", ""),
                        r.get("unassigned", ""), r.get("checked", ""),
                        h.get("cost", "") if h else "", r.get("error", "") or r.get("why", "")])
    print("\n| limit | problem type | instances | tasks served | unassigned | mean cost | "
          "checker: passed | rich search gap to best-known | HGS gap, same limit |")
    print("|---|---|---|---|---|---|---|---|---|")
    for limit in limits:
        for kind in dict.fromkeys(x[1] for x in rows):
            sel = [x for x in rows if x[0] == limit and x[1] == kind]
            ok = [x for x in sel if "error" not in x[4]]
            if not ok:
                continue
            served = sum(x[4]["served"] for x in ok)
            un = sum(x[4]["unassigned"] for x in ok)
            cost = sum(x[4]["cost"] for x in ok) / len(ok)
            passed = sum(1 for x in ok if x[4]["checked"])
            gap = hgap = ""
            if kind == "Solomon jobs":
                g = [100 * (x[4]["cost"] / vroomgen.SCALE - x[3]) / x[3] for x in ok]
                h = [100 * (x[5]["cost"] - x[3]) / x[3] for x in ok if x[5] and "error" not in x[5]]
                gap = f"{sum(g) / len(g):.2f}%"
                hgap = f"{sum(h) / len(h):.2f}%" if h else ""
            print(f"| {limit:g} s | {kind} | {len(sel)} | {served} | {un} | {cost:.0f} | "
                  f"{passed} of {len(sel)} | {gap} | {hgap} |")


def run_one(path, limit, seed=1):
    args = [BIN, "route", path, "--quiet", "--seed", str(seed)]
    if limit == "baseline":
        args += ["--iterations", "1"]
    else:
        args += ["--time-limit", str(limit)]
    t0 = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-300:], "wall_s": wall}
    d = json.loads(p.stdout)
    return {"cost": d["distance"], "routes": d["routes_used"], "best_s": d.get("best_found_s", 0),
            "iterations": d.get("iterations", 0), "wall_s": wall}


def main():
    if not os.path.isdir(VRP):
        print(f"bench-route: SKIPPED: {VRP} is missing (the shared data sets are not on this machine)")
        return 0
    quick = os.environ.get("BENCH_QUICK") == "1"
    parts = os.environ.get("BENCH_PARTS", "x,solomon,anytime,rich").split(",")
    jobs_n = int(os.environ.get("BENCH_JOBS", "2"))
    os.makedirs(OUT, exist_ok=True)
    sets = {k: v for k, v in load_sets(quick).items()
            if ("x" if k.startswith("X") else "solomon") in parts}
    limits = {"X (n<=300)": ["baseline", 1] if quick else ["baseline", 1, 10],
              "Solomon": ["baseline", 1] if quick else ["baseline", 1, 5, 10]}
    os.makedirs(OUT, exist_ok=True)
    rows = []
    jobs = []
    with cf.ThreadPoolExecutor(max_workers=jobs_n) as pool:
        for name, items in sets.items():
            for limit in limits[name]:
                for path, inst, bks, bks_routes in items:
                    fut = pool.submit(run_one, path, limit)
                    jobs.append((name, limit, inst, bks, bks_routes, fut))
        done = 0
        for name, limit, inst, bks, bks_routes, fut in jobs:
            r = fut.result()
            done += 1
            if "error" in r:
                print(f"  {inst} @ {limit}: FAILED {r['error']}", flush=True)
                rows.append([name, limit, inst, bks, "", "", "", "", "", r["error"]])
                continue
            gap = 100.0 * (r["cost"] - bks) / bks
            rows.append([name, limit, inst, bks, round(r["cost"], 2), round(gap, 3), r["routes"],
                         bks_routes, round(r["best_s"], 2), ""])
            print(f"  [{done}/{len(jobs)}] {name:11s} {str(limit):8s} {inst:12s} cost {r['cost']:10.2f} "
                  f"bks {bks:10.2f} gap {round(gap, 2) + 0.0:6.2f}%  routes {r['routes']} (bks {bks_routes})  "
                  f"best at {r['best_s']:.2f} s", flush=True)
    csv_path = os.path.join(OUT, "route.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["set", "limit_s", "instance", "bks", "cost", "gap_pct", "routes", "bks_routes",
                    "best_found_s", "error"])
        w.writerows(rows)
    if sets:
        print(f"\nper-instance figures: {csv_path}\n")
        print("| set | time limit per instance | instances | mean gap | worst gap | failed |")
        print("|---|---|---|---|---|---|")
    summary = {}
    for name in sets:
        for limit in limits[name]:
            gaps = [r[5] for r in rows if r[0] == name and r[1] == limit and r[9] == ""]
            failed = sum(1 for r in rows if r[0] == name and r[1] == limit and r[9] != "")
            if not gaps:
                continue
            mean, worst = sum(gaps) / len(gaps), max(gaps)
            summary[(name, limit)] = mean
            label = "baseline: initial population only (multi-start LS)" if limit == "baseline" \
                else f"{limit} s"
            print(f"| {name} | {label} | {len(gaps)} | {mean:.2f}% | {worst:.2f}% | {failed} |")
    for name in sets:
        base = summary.get((name, "baseline"))
        for limit in limits[name]:
            if limit == "baseline" or base is None or (name, limit) not in summary:
                continue
            m = summary[(name, limit)]
            ratio = m / base if base > 0 else float("nan")
            print(f"ratio {name} {limit} s mean gap / baseline mean gap: {ratio:.2f}")
    if "anytime" in parts:
        anytime(quick, jobs_n)
    if "rich" in parts:
        rich(quick, jobs_n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
