#!/usr/bin/python3
"""Power-aware scheduling at fleet scale, for `make bench`.

1. Placement through the fleet index at 1,000, 10,000 and 100,000 sites with every
   constraint on (classes, regions, forecasts per horizon, stated departures, grid
   ranks, deferrable jobs, 1% pinned to their origin), in batches of 256, next to the
   full scan (sched_place, the same filter and score) on the same fleet; scheduler
   bytes per site (struct sizes and resident memory).
2. `outpost sim` on the real data under ../shared/data/power: 100,000 sites and
   1,000,000 jobs over a day (BENCH_QUICK=1: 10,000 and 100,000), Outpost next to the
   least-loaded and first-fit baselines of the same run. Files in build/bench/sim/.
Prints figures and ratios; asserts nothing."""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "rel", "outpost")
BENCH = os.path.join(ROOT, "build", "rel", "outpost-bench")
QUICK = os.environ.get("BENCH_QUICK") == "1"
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "power")


def main():
    print("\n== fleet placement (one core, batches of 256; releases timed apart)")
    count = "300000" if QUICK else "2000000"
    r = subprocess.run([BENCH, "fleet", count], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"outpost-bench fleet failed: {r.stderr}")
    fleet = json.loads(r.stdout.strip().splitlines()[-1])
    for key in sorted(fleet, key=lambda k: fleet[k]["sites"]):
        f = fleet[key]
        print(f"  {f['sites']:>7.0f} sites: {f['placements_per_s']:>10.0f} placements/s "
              f"({f['placements_per_s_with_releases']:.0f}/s with the releases; "
              f"{f['ns_per_decision']:.0f} ns per decision, {f['waits']:.0f} waits); full scan "
              f"{f['scan_placements_per_s']:.0f}/s, ratio {f['ratio_vs_scan']:.0f}; "
              f"{f['bytes_per_site_structs']:.0f} B/site in structs, "
              f"{f['bytes_per_site_rss']:.0f} B/site resident")
    out_dir = os.path.join(ROOT, "build", "bench")
    os.makedirs(out_dir, exist_ok=True)
    results = {"fleet": fleet}
    if not os.path.exists(os.path.join(DATA, "acn_caltech_sessions_2020-12_2021-09.csv")):
        print(f"\n== outpost sim: SKIPPED ({DATA} is not on this machine)")
    else:
        sites, jobs = ("10000", "100000") if QUICK else ("100000", "1000000")
        print(f"\n== outpost sim --sites {sites} --jobs {jobs} (real data, one day)")
        sim_dir = os.path.join(out_dir, "sim")
        t0 = time.time()
        r = subprocess.run([BIN, "sim", "--sites", sites, "--jobs", jobs, "--data", DATA,
                            "--out", sim_dir, "--quiet"], capture_output=True, text=True,
                           timeout=3600)
        if r.returncode != 0:
            raise SystemExit(f"outpost sim failed: {r.stderr}")
        print("  " + r.stdout.replace("\n", "\n  ").rstrip())
        print(f"  (wall {time.time() - t0:.1f} s including loading the data)")
        results["sim_stdout"] = r.stdout
    with open(os.path.join(out_dir, "fleet.json"), "w") as fh:
        json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
