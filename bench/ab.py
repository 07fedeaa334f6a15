#!/usr/bin/python3
"""Two builds side by side, in one sitting: placements/s at 100,000 and 10,000 sites
(outpost-bench fleet 300000) and end-to-end no-op jobs/s (a hub and 8 sites on loopback,
outpost-bench e2e: 20,000 jobs, batches of 100, 2,000 in flight), alternating the builds for
3 rounds; prints each run and the medians. Each tree must have been built with
`make build/rel/outpost build/rel/outpost-bench`.
Usage: bench/ab.py BEFORE_TREE AFTER_TREE [--e2e-only] [--kind exec]
  (e.g. a git worktree of an older commit, and .); --e2e-only skips the placement runs,
  --kind exec runs 2,000 exec jobs (batches of 20, 64 in flight) instead of the no-op ones.
Asserts nothing."""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fleet import Fleet, wait_for  # noqa: E402

args = sys.argv[1:]
E2E_ONLY = "--e2e-only" in args
KIND = args[args.index("--kind") + 1] if "--kind" in args else "noop"
trees = [a for a in args if not a.startswith("--") and a != KIND]
if len(trees) != 2:
    raise SystemExit(__doc__)
TREES = {"before": os.path.abspath(trees[0]), "after": os.path.abspath(trees[1])}
COUNT, BATCH, WINDOW = ("2000", "20", "64") if KIND == "exec" else ("20000", "100", "2000")

def fleet_rate(root):
    r = subprocess.run([f"{root}/build/rel/outpost-bench", "fleet", "300000"], capture_output=True, text=True, timeout=900)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    return {int(v["sites"]): v["placements_per_s"] for v in d.values()}

def e2e_rate(root):
    f = Fleet(binary=f"{root}/build/rel/outpost")
    try:
        f.start_broker(); f.start_hub(max_queued_jobs=100000)
        names = [f"pod-{i}" for i in range(3)] + [f"car-{i}" for i in range(3)] + [f"dc-{i}" for i in range(2)]
        for n in names:
            f.start_site(n, n.split("-")[0], wait=False, cores=64, memory_mb=65536, power_budget_watts=100000,
                         watts_per_core=10, heartbeat_ms=2000, max_jobs=256)
        wait_for(lambda: len([s for s in f.cli_json("sites")["sites"] if s["status"] == "alive"]) == 8, 60, 0.3, "8 sites")
        time.sleep(2)
        r = subprocess.run([f"{root}/build/rel/outpost-bench", "e2e", "--hub-dir", f.hub_dir, "--kind", KIND,
                            "--count", COUNT, "--batch", BATCH, "--window", WINDOW], capture_output=True, text=True, timeout=900)
        return json.loads(r.stdout.strip().splitlines()[-1])["jobs_per_s"]
    finally:
        f.stop()

res = {k: {"fleet100k": [], "fleet10k": [], "e2e": []} for k in TREES}
for rnd in range(3):
    for name, root in (TREES.items() if rnd % 2 == 0 else reversed(list(TREES.items()))):
        fr = {100000: 0.0, 10000: 0.0} if E2E_ONLY else fleet_rate(root)
        res[name]["fleet100k"].append(fr[100000]); res[name]["fleet10k"].append(fr[10000])
        res[name]["e2e"].append(e2e_rate(root))
        print(rnd, name, f"{fr[100000]:.0f} placements/s at 100k, {fr[10000]:.0f} at 10k, e2e {res[name]['e2e'][-1]:.0f} jobs/s", flush=True)
for name in TREES:
    for key, vals in res[name].items():
        s = sorted(vals)
        print(f"{name:6} {key:9} median {s[1]:.0f} (range {s[0]:.0f}-{s[2]:.0f})")
