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

Environment: BENCH_QUICK=1 runs 6 instances per set at 1 s only.
"""
import concurrent.futures as cf
import csv
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
    return {"cost": d["cost"], "routes": d["routes_used"], "best_s": d.get("best_found_s", 0),
            "iterations": d.get("iterations", 0), "wall_s": wall}


def main():
    if not os.path.isdir(VRP):
        print(f"bench-route: SKIPPED: {VRP} is missing (the shared data sets are not on this machine)")
        return 0
    quick = os.environ.get("BENCH_QUICK") == "1"
    sets = load_sets(quick)
    limits = {"X (n<=300)": ["baseline", 1] if quick else ["baseline", 1, 10],
              "Solomon": ["baseline", 1] if quick else ["baseline", 1, 5, 10]}
    os.makedirs(OUT, exist_ok=True)
    rows = []
    jobs = []
    with cf.ThreadPoolExecutor(max_workers=int(os.environ.get("BENCH_JOBS", "2"))) as pool:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
