#!/usr/bin/python3
"""`make bench-route`: the routing solver against best-known solutions.

Set X by size band (n <= 300, 300 < n <= 400, 400 < n <= 1,000), at 10 s and 30 s per
instance on one core (`--threads 1`), next to a baseline solver measured in the same run: the
solver of git revision BENCH_BASE (default 992e357, the release before the faster search),
exported with `git archive` into build/bench/base and built there with
`make build/rel/outpost`. Both solvers run at the same time on the same instance, each pinned
to its own core with taskset, the cores swapped from one instance to the next (on a one-core
machine, one after the other). For each band and
limit: mean gap to the best-known, offspring (iterations) per second, and the instances where
the solver is better, tied or worse than the baseline. Gaps use the CVRPLIB convention
(rounded Euclidean, free number of routes). A default selection of 20 instances spread over
the bands (8, 4, 8) keeps the part near 15 minutes; BENCH_ALL=1 takes all 80.

Threads (BENCH_PARTS=threads): on the n > 400 instances of the selection, the solver with
`--threads 1` (pinned to one core) and then `--threads 2` (both cores) for the same wall time
(BENCH_THREADS_LIMIT, default 10 s): mean gap of each, and the time the two-thread run needs to
reach the one-thread run's final cost (from the progress lines), as a speedup.

Solomon (the 56 instances at 1, 5 and 10 s, two at a time) against the distance-only
best-known values (dist_bks_distance: unrounded Euclidean, at most the 25 vehicles the files
allow), with the number of routes next to the hierarchical best-known count.

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


Every solution is re-checked by the solver's independent checker before it is written.

Environment: BENCH_QUICK=1: 6 X instances (2 per band) at 2 s against the baseline, the
threads part on 2 instances at 3 s, 6 Solomon instances at 1 s, the anytime part at 0.1 s
and 1 s; BENCH_PARTS=x,threads,solomon,anytime,rich chooses the parts (default all);
BENCH_ALL=1 all X instances; BENCH_BASE=REV the baseline's revision; BENCH_JOBS=2 Solomon
instances at a time; BENCH_RICH_LIMITS=1,5 the time limits of the rich part.
"""
import concurrent.futures as cf
import csv
import json
import os
import shutil
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
    with open(os.path.join(VRP, "solomon", "bks.csv")) as f:
        rows = list(csv.DictReader(f))
    sets["Solomon"] = [(os.path.join(VRP, "solomon", r["instance"] + ".txt"), r["instance"],
                        float(r["dist_bks_distance"]), int(r["hier_bks_vehicles"])) for r in rows]
    if quick:
        for k in sets:
            sets[k] = sets[k][:: max(1, len(sets[k]) // 6)][:6]
    return sets


BANDS = [("n <= 300", 0, 300, 8), ("300 < n <= 400", 300, 400, 4), ("400 < n <= 1000", 400, 1000, 8)]


def select_x(quick, take_all):
    """{band: [(path, name, n, bks)]}: evenly spread over each band by size, or all."""
    with open(os.path.join(VRP, "x", "bks.csv")) as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["customers"]))
    out = {}
    for band, lo, hi, count in BANDS:
        inb = [(os.path.join(VRP, "x", r["instance"] + ".vrp"), r["instance"], int(r["customers"]),
                float(r["bks_cost"])) for r in rows if lo < int(r["customers"]) <= hi]
        count = 2 if quick else count
        if not take_all and len(inb) > count:
            inb = [inb[round(i * (len(inb) - 1) / (count - 1))] for i in range(count)]
        out[band] = inb
    return out


def build_base(rev):
    """The baseline solver of git revision rev, built in build/bench/base (reused when there)."""
    base = os.path.join(OUT, "base")
    binary = os.path.join(base, "build", "rel", "outpost")
    stamp = os.path.join(base, ".rev")
    head = open(stamp).read().strip() if os.path.exists(stamp) else ""
    want = subprocess.run(["git", "-C", ROOT, "rev-parse", rev], capture_output=True, text=True,
                          check=True).stdout.strip()
    if head != want:
        # An exported tree, not a worktree: nothing is registered in the repository.
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(base)
        tar = subprocess.run(["git", "-C", ROOT, "archive", want], capture_output=True,
                             check=True).stdout
        subprocess.run(["tar", "-x", "-C", base], input=tar, check=True)
        with open(stamp, "w") as f:
            f.write(want + "\n")
    if not os.path.exists(binary):
        print(f"building the baseline ({rev}) in {base} ...", flush=True)
        subprocess.run(["nice", "make", "-C", base, "-j2", "build/rel/outpost"], check=True,
                       capture_output=True)
    return binary


def cpus():
    return sorted(os.sched_getaffinity(0))


def run_pinned(binary, path, limit, cores, threads=None):
    """One solve pinned to cores; returns cost, iterations, elapsed and the improvements."""
    args = ["taskset", "-c", ",".join(map(str, cores)), binary, "route", path, "--seed", "1",
            "--time-limit", str(limit)]
    if threads:
        args += ["--threads", str(threads)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=limit * 3 + 120)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-300:]}
    d = json.loads(p.stdout)
    trail = []  # (seconds, cost) at each improvement, from the progress lines
    for line in p.stderr.splitlines():
        t = line.split()
        if len(t) >= 7 and t[0] == "route:" and t[2] == "s" and t[3] == "iteration":
            trail.append((float(t[1]), float(t[6])))
    return {"cost": d["distance"], "iterations": d.get("iterations", 0),
            "elapsed": max(d.get("elapsed_s", limit), 1e-9), "trail": trail}


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def x_part(quick, take_all, rev):
    """Set X by band at 10 s and 30 s, next to the baseline solver (see the module's comment)."""
    base_bin = build_base(rev)
    sel = select_x(quick, take_all)
    limits = [2] if quick else [10, 30]
    cores = cpus()
    pair = len(cores) >= 2
    rows = []
    total = sum(len(v) for v in sel.values()) * len(limits)
    done = 0
    for limit in limits:
        for band, items in sel.items():
            for path, name, n, bks in items:
                # the solvers change cores from one run to the next: other work on the machine
                # can load one core more than the other
                mine = [cores[done % 2]] if pair else [cores[0]]
                theirs = [cores[(done + 1) % 2]] if pair else [cores[0]]
                with cf.ThreadPoolExecutor(max_workers=2 if pair else 1) as pool:
                    fn = pool.submit(run_pinned, BIN, path, limit, mine, 1)
                    fb = pool.submit(run_pinned, base_bin, path, limit, theirs)
                    new, old = fn.result(), fb.result()
                done += 1
                for who, r in (("new", new), ("base", old)):
                    if "error" in r:
                        print(f"  {name} @ {limit} s {who}: FAILED {r['error']}", flush=True)
                        continue
                    r["gap"] = 100 * (r["cost"] - bks) / bks
                    r["rate"] = r["iterations"] / r["elapsed"]
                rows.append((band, limit, name, n, bks, new, old))
                if "gap" in new and "gap" in old:
                    print(f"  [{done}/{total}] {band:16s} {limit:>3} s {name:13s} "
                          f"gap {new['gap']:6.2f}% ({new['rate']:7.1f} it/s)  baseline "
                          f"{old['gap']:6.2f}% ({old['rate']:7.1f} it/s)", flush=True)
    with open(os.path.join(OUT, "route_x.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["band", "limit_s", "instance", "customers", "bks", "cost", "gap_pct",
                    "iterations_per_s", "base_cost", "base_gap_pct", "base_iterations_per_s"])
        for band, limit, name, n, bks, new, old in rows:
            w.writerow([band, limit, name, n, bks, new.get("cost", ""),
                        round(new.get("gap", float("nan")), 3),
                        round(new.get("rate", float("nan")), 1), old.get("cost", ""),
                        round(old.get("gap", float("nan")), 3),
                        round(old.get("rate", float("nan")), 1)])
    print(f"\nset X against the baseline {rev} (same run, each on its own core; seed 1)\n")
    print("| band | limit | instances | mean gap | baseline mean gap | ratio | offspring/s "
          "(mean) | baseline offspring/s | rate ratio | better / tied / worse |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for limit in limits:
        for band in sel:
            ok = [r for r in rows if r[0] == band and r[1] == limit
                  and "gap" in r[5] and "gap" in r[6]]
            if not ok:
                continue
            g, gb = mean([r[5]["gap"] for r in ok]), mean([r[6]["gap"] for r in ok])
            it, itb = mean([r[5]["rate"] for r in ok]), mean([r[6]["rate"] for r in ok])
            rate_ratio = mean([r[5]["rate"] / r[6]["rate"] for r in ok if r[6]["rate"] > 0])
            better = sum(r[5]["cost"] < r[6]["cost"] for r in ok)
            tied = sum(r[5]["cost"] == r[6]["cost"] for r in ok)
            ratio = g / gb if gb > 0 else float("nan")
            print(f"| {band} | {limit} s | {len(ok)} | {g:.3f}% | {gb:.3f}% | {ratio:.2f} | "
                  f"{it:.1f} | {itb:.1f} | {rate_ratio:.2f} | {better} / {tied} / "
                  f"{len(ok) - better - tied} |")


def reach_time(trail, cost):
    """When a run's progress first reached cost or better (None: never)."""
    for t, c in trail:
        if c <= cost + 1e-9:
            return t
    return None


def threads_part(quick, take_all):
    """1 vs 2 threads at the same wall time on the n > 400 band (see the module's comment)."""
    cores = cpus()
    if len(cores) < 2:
        print("threads: SKIPPED: one CPU only")
        return
    limit = float(os.environ.get("BENCH_THREADS_LIMIT", "3" if quick else "10"))
    items = select_x(quick, take_all)["400 < n <= 1000"]
    rows = []
    for path, name, n, bks in items:
        one = run_pinned(BIN, path, limit, [cores[0]], 1)
        two = run_pinned(BIN, path, limit, cores[:2], 2)
        if "error" in one or "error" in two:
            print(f"  {name}: FAILED {one.get('error', '')} {two.get('error', '')}", flush=True)
            continue
        t1 = reach_time(one["trail"], one["cost"])
        t2 = reach_time(two["trail"], one["cost"])
        rows.append((name, bks, one, two, t1, t2))
        print(f"  {name:13s} 1 thread {100 * (one['cost'] - bks) / bks:6.2f}% (at {t1:.2f} s)  "
              f"2 threads {100 * (two['cost'] - bks) / bks:6.2f}% (1-thread cost reached at "
              f"{'never' if t2 is None else f'{t2:.2f} s'})", flush=True)
    with open(os.path.join(OUT, "route_threads.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["instance", "bks", "limit_s", "cost_1", "cost_2", "reached_1_s",
                    "reached_by_2_s"])
        for name, bks, one, two, t1, t2 in rows:
            w.writerow([name, bks, limit, one["cost"], two["cost"], t1, t2])
    if not rows:
        return
    g1 = mean([100 * (r[2]["cost"] - r[1]) / r[1] for r in rows])
    g2 = mean([100 * (r[3]["cost"] - r[1]) / r[1] for r in rows])
    speed = [r[4] / r[5] for r in rows if r[5] is not None and r[5] > 0 and r[4]]
    never = sum(1 for r in rows if r[5] is None)
    better = sum(r[3]["cost"] < r[2]["cost"] for r in rows)
    print(f"\nthreads on X 400 < n <= 1000, {limit:g} s wall, seed 1\n")
    print("| instances | 1 thread mean gap | 2 threads mean gap | 2 better / tied / worse | "
          "time-to-cost speedup (mean) | 2 threads never reached it |")
    print("|---|---|---|---|---|---|")
    tied = sum(r[3]["cost"] == r[2]["cost"] for r in rows)
    print(f"| {len(rows)} | {g1:.3f}% | {g2:.3f}% | {better} / {tied} / "
          f"{len(rows) - better - tied} | {mean(speed):.2f} | {never} |")


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
            "--objective", objective, "--threads", "1"]
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
    args = [BIN, "route", path, "--quiet", "--seed", str(seed), "--threads", "1"]
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
    take_all = os.environ.get("BENCH_ALL") == "1"
    parts = os.environ.get("BENCH_PARTS", "x,threads,solomon,anytime,rich").split(",")
    jobs_n = int(os.environ.get("BENCH_JOBS", "2"))
    os.makedirs(OUT, exist_ok=True)
    if "x" in parts:
        x_part(quick, take_all, os.environ.get("BENCH_BASE", "992e357"))
    if "threads" in parts:
        threads_part(quick, take_all)
    sets = load_sets(quick) if "solomon" in parts else {}
    limits = {"Solomon": ["baseline", 1] if quick else ["baseline", 1, 5, 10]}
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
