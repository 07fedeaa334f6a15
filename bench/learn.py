#!/usr/bin/python3
"""Learning from exceptions, for `make bench`: `outpost learn replay` on the real taxi data
(../shared/data/learning) with the release binary, NYC March 2019 (sites: pickup boroughs,
periods: days) and Chicago 2013-2016 (sites: companies, periods: weeks). Prints each replay's
final table, then one line per data set with Outpost's MAE as ratios against the two baselines
measured in the same run: the static estimate (below it is better) and the central model that
sees every row (the upper bound). BENCH_QUICK=1: the first 10 days / 52 weeks. Files (CSV, SVG
learning curves) in build/bench/learn/. Prints figures; asserts nothing."""
import os
import re
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "rel", "outpost")
QUICK = os.environ.get("BENCH_QUICK") == "1"
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "learning")


def main():
    out_dir = os.path.join(ROOT, "build", "bench", "learn")
    if not os.path.exists(os.path.join(DATA, "nyc_taxis_2019_03_seaborn.csv")):
        print(f"\n== outpost learn replay: SKIPPED ({DATA} is not on this machine)")
        return
    summary = []
    for data in ("nyc", "chicago"):
        args = [BIN, "learn", "replay", "--data", data, "--dir", DATA, "--out", out_dir, "--quiet"]
        if QUICK:
            args.append("--quick")
        print(f"\n== outpost learn replay --data {data}{' --quick' if QUICK else ''} "
              "(real data; prequential: every trip predicted before any model learns it)")
        t0 = time.time()
        r = subprocess.run(args, capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise SystemExit(f"outpost learn replay failed: {r.stderr}")
        print("  " + r.stdout.replace("\n", "\n  ").rstrip())
        print(f"  (wall {time.time() - t0:.1f} s)")
        mae = {}
        for name in ("static", "outpost-ensemble", "outpost-cyclic", "central"):
            m = re.search(rf"^{name}\s+([0-9.]+)\s", r.stdout, re.M)
            mae[name] = float(m.group(1))
        chosen = re.search(r"^RESULT (\S+)", r.stdout, re.M).group(1)
        summary.append((data, chosen, mae))
    print("\n== learning from exceptions: Outpost's MAE against the baselines of the same run")
    for data, chosen, mae in summary:
        print(f"  {data:8s} {chosen}: {mae[chosen]:.0f} s; static {mae['static']:.0f} s "
              f"(ratio {mae[chosen] / mae['static']:.2f}), central {mae['central']:.0f} s "
              f"(ratio {mae[chosen] / mae['central']:.2f})")
    print(f"  files: {out_dir}/learn_{{nyc,chicago}}.{{csv,svg}}")


if __name__ == "__main__":
    main()
