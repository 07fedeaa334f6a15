#!/usr/bin/python3
"""`make demo`: a local Outpost fleet doing real work.

Starts a mosquitto broker on a free loopback port, a hub and 8 site agents
(3 charging-site pods, 3 parked cars, 2 warehouse data centers), each with
its own data dir, identity and capacity; enrolls them with one-time join bundles (a token
and a broker certificate each: the broker takes only TLS clients with certificates from the
hub's CA);
submits a batch of exec jobs that compress and checksum the real data sets
under ../shared/data (or the project's own sources when that folder is
missing); shows live progress with `outpost watch`; then has the two
warehouses plan delivery routes (route jobs on CVRPLIB and Solomon instances,
pinned by policy to their origin) and prints cost and gap to the best known;
before that, a pod's envelope drops (`outpost power`) and its job moves to another pod from
its checkpoint; then the warehouses learn from their exceptions (demo/learning.py: taxi trips as
delivery legs, a learn job on spare power, the next route job planning with the model, a pooled
model offered and adopted or refused with the reason); prints every job's outcome, site, CPU seconds and energy estimate; ends with
`outpost sim` on 2,000 simulated sites built from the real power data. A broker-wide eavesdropper
(a test-only credential: what a compromised broker sees) listens throughout; the demo fails if it
hears a join token, a key, the console's API token, or any job's input or output. The hub serves
its web console on a free loopback port (the address and an admin API token are printed); with
KEEP=1 the fleet stays up after the run until Ctrl-C. Everything it started is
stopped on exit and on Ctrl-C; logs stay in the run directory it prints.
"""
import base64
import glob
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fleet import SHARED_DATA, Fleet, Wire, free_port, wait_for  # noqa: E402

sys.path.insert(0, HERE)
from learning import OWNER, WAREHOUSES, learning_phase  # noqa: E402

# (name, class, cores, memory_mb, power budget W, W per busy core, idle W)
SITES = [
    ("pod-berlin", "pod", 2, 2048, 180, 35, 20),
    ("pod-lyon", "pod", 2, 2048, 120, 35, 20),
    ("pod-leeds", "pod", 2, 2048, 60, 35, 20),   # small spare grid capacity: one job at a time
    ("car-ev17", "car", 1, 1024, 40, 25, 8),
    ("car-ev23", "car", 1, 1024, 40, 25, 8),
    ("car-ev42", "car", 1, 1024, 40, 25, 8),
    ("dc-warehouse-a", "dc", 4, 8192, 400, 45, 60),
    ("dc-factory-b", "dc", 4, 8192, 400, 45, 60),
]
MAX_INPUT = 3 * 1024 * 1024
# The headline workload: each warehouse plans its own delivery routes (instance, BKS, origin).
ROUTE_JOBS = [("solomon/R101.txt", 1642.88, "dc-warehouse-a"),
              ("solomon/RC105.txt", 1518.58, "dc-warehouse-a"),
              ("x/X-n101-k25.vrp", 27591, "dc-factory-b"),
              ("x/X-n148-k46.vrp", 43448, "dc-factory-b")]
ROUTE_SECONDS = 3
POWER_JOBS = 1  # power_phase's one job that moves from pod to pod


def job_ids(stdout):
    """The job ids `outpost submit` printed, one per line: "N" or "submitted job N"."""
    return [int(line.split()[-1]) for line in stdout.splitlines() if line.strip()]


def width(values, least):
    """A column as wide as its longest value (site ids may have up to 63 characters)."""
    return max([least] + [len(str(v)) for v in values])


def gap_percent(cost, best_known):
    """Gap to the best known solution; a cost equal to it prints 0.00%, never -0.00%."""
    gap = round(100 * (cost - best_known) / best_known, 2)
    return f"{gap + 0.0:.2f}%"


def data_files():
    if os.path.isdir(SHARED_DATA):
        files = sorted(glob.glob(os.path.join(SHARED_DATA, "power", "*.csv")) +
                       glob.glob(os.path.join(SHARED_DATA, "learning", "*.*")) +
                       glob.glob(os.path.join(SHARED_DATA, "vrp", "x", "X-n1*.vrp"))[:40])
        src = "../shared/data (EV charging, grid, taxi and VRP data sets)"
    else:
        print(f"note: {SHARED_DATA} is missing; compressing the project's own sources instead")
        files = sorted(glob.glob(os.path.join(ROOT, "src", "*.c")) +
                       glob.glob(os.path.join(ROOT, "src", "*", "*.c")))
        src = "the project's sources"
    return [f for f in files if os.path.getsize(f) <= MAX_INPUT], src


def job_specs(files):
    """Two real jobs per file: xz -6 with an integrity test, and gzip -9 with checksums."""
    specs = []
    for path in files:
        name = os.path.basename(path)
        big = os.path.getsize(path) > 1024 * 1024
        # Both jobs give the same bytes wherever they run (xz -T1; gzip -n leaves out the
        # file's name and time), so they are declared deterministic: a car's result is then
        # accepted once another owner's car (or a pod or data center) agrees.
        specs.append(["--name", f"xz:{name}"[:63], "--input", path, "--output", name + ".xz",
                      "--memory-mb", "512", "--wall-s", "300", "--deterministic",
                      "--", "sh", "-c", f"xz -6 -T1 -k '{name}' && xz -t '{name}.xz' && "
                      f"sha256sum '{name}' && wc -c < '{name}.xz'"])
        # Big files only on pods and data centers (a car may leave at any moment); small
        # quick ones go to the parked cars, which suit short jobs.
        small = os.path.getsize(path) < 256 * 1024
        classes = ["--classes", "pod,dc"] if big else ["--classes", "car"] if small else []
        specs.append(["--name", f"gz:{name}"[:63], "--input", path, *classes, "--deterministic",
                      "--", "sh", "-c", f"gzip -9 -n -c '{name}' | sha256sum; sha256sum '{name}'"])
    return specs


def generated_instance(path, seed):
    """A delivery day for one depot, when ../shared is missing: 60 stops with windows."""
    import random
    rnd = random.Random(seed)
    stops = []
    for i in range(60):
        ready = rnd.randrange(0, 300)
        stops.append({"id": f"s{i:02d}", "x": rnd.uniform(-50, 50), "y": rnd.uniform(-50, 50),
                      "demand": rnd.randrange(1, 10), "ready": ready,
                      "due": ready + rnd.randrange(120, 400), "service": 5})
    with open(path, "w") as f:
        json.dump({"name": os.path.basename(path), "depot": {"x": 0, "y": 0, "due": 1000},
                   "vehicles": [{"name": "van", "capacity": 40, "count": 10}], "stops": stops}, f)


def power_phase(fleet):
    """The chargers at a pod fill up: its envelope drops and its job moves to another pod."""
    pods = {name: budget for name, cls, _, _, budget, _, _ in SITES if cls == "pod"}
    for name in pods:  # grid signals as the pods' meters would send them
        fleet.cli("power", os.path.join(fleet.base, "sites", name), "--price", "42.5",
                  "--carbon", "180")
    spec = os.path.join(fleet.base, "power-job.json")
    with open(spec, "w") as f:
        json.dump({"kind": "exec", "name": "charging-window-forecast", "site_classes": ["pod"],
                   "expected_s": 8, "checkpoint": "state.txt",
                   "command": ["sh", "-c", "test -f state.txt && echo resumed from $(cat state.txt);"
                               " trap 'echo step-1 > state.txt; exit 143' TERM; sleep 6 & wait;"
                               " echo forecast done"]}, f)
    jid = job_ids(fleet.cli("submit", spec).stdout)[0]
    wait_for(lambda: fleet.job(jid)["job"]["state"] == "running", 60, 0.2, "the pod job to run")
    first = fleet.job(jid)["job"]["site"]
    print(f"== power: job {jid} runs on {first}; its chargers fill up and its meter says 0 W")
    fleet.cli("power", os.path.join(fleet.base, "sites", first), "--watts", "0")
    fleet.wait_jobs_terminal([jid], 60)
    job = fleet.job(jid)
    events = [e for e in job["events"] if e["event"] in ("placed", "requeued", "succeeded", "failed")]
    site_w = width([e.get("site") or "" for e in events], 4)
    for e in events:
        head = f"   {e['event']:<10} {e.get('site') or '':<{site_w}} "
        # the placement's reasons without its per-site list, wrapped between words
        detail = (e.get("detail") or "").split(" [", 1)[0]
        lines = textwrap.wrap(detail, width=max(40, 100 - len(head)), break_on_hyphens=False,
                              break_long_words=False) or [""]
        print(head + lines[0])
        for more in lines[1:]:
            print(" " * len(head) + more)
    out = fleet.cli_json("result", str(jid)).get("stdout", "").strip().replace("\n", " / ")
    print(f"   job {jid} {job['job']['state']} on {job['job']['site']} "
          f"(attempt {job['job']['attempt']}); its output: {out}")
    fleet.cli("power", os.path.join(fleet.base, "sites", first), "--watts", str(pods[first]))
    return [jid]


def sim_phase(binary):
    """The same scheduler on a simulated fleet built from the real charging and grid data."""
    data = os.path.join(SHARED_DATA, "power")
    if not os.path.exists(os.path.join(data, "acn_caltech_sessions_2020-12_2021-09.csv")):
        print(f"== outpost sim: skipped ({data} is missing)")
        return
    print("\n== outpost sim: 2,000 simulated sites, 20,000 jobs, a day of real charging, carbon "
          "and price data")
    r = subprocess.run([binary, "sim", "--sites", "2000", "--jobs", "20000", "--data", data,
                        "--quiet"], capture_output=True, text=True, timeout=300)
    keep = ("outpost sim", "outpost  ", "of what eligible", "envelope violations",
            "energy cost", "carbon (t")
    for line in r.stdout.splitlines():
        if any(k in line for k in keep):
            print("   " + line.rstrip())


def route_phase(fleet):
    """Route jobs pinned by policy to the warehouse their data comes from; gaps to best known."""
    policy = os.path.join(fleet.base, "hub.policy")
    with open(policy, "w") as f:
        f.write("version 1\n# delivery data never leaves the warehouse it comes from\n"
                "data confidential on origin\n")
    fleet.cli("policy", "set", policy)
    jobs = []
    for rel, bks, origin in ROUTE_JOBS:
        path = os.path.join(SHARED_DATA, "vrp", rel)
        if not os.path.exists(path):
            path, bks = os.path.join(fleet.base, f"day-{len(jobs)}.json"), None
            generated_instance(path, len(jobs))
        jid = job_ids(fleet.cli("submit", "--kind", "route", path, "--name",
                                f"route:{os.path.basename(path)}", "--time-limit",
                                str(ROUTE_SECONDS), "--data-class", "confidential", "--origin",
                                origin).stdout)[0]
        jobs.append((jid, os.path.basename(path), bks, origin))
    print(f"== submitted {len(jobs)} route jobs ({ROUTE_SECONDS} s each), confidential, pinned "
          "by policy to their warehouse")
    fleet.wait_jobs_terminal([j[0] for j in jobs], 120)
    rows = []
    for jid, name, bks, origin in jobs:
        j = fleet.job(jid)["job"]
        cost, routes, gap = "-", "-", "-"
        out = os.path.join(fleet.base, "routes", str(jid))
        if j["state"] == "succeeded":
            fleet.cli("result", str(jid), "--save", out)
            with open(os.path.join(out, "solution.json")) as f:
                sol = json.load(f)
            cost, routes = f"{sol['cost']:.2f}", str(sol["routes_used"])
            gap = gap_percent(sol["cost"], bks) if bks else "-"
        rows.append((jid, name, j["site"] or "-", j["state"], cost, bks or "-", gap, routes))
    name_w = width([r[1] for r in rows], len("INSTANCE"))
    site_w = width([r[2] for r in rows], len("SITE"))
    print(f"\n{'ID':>4} {'INSTANCE':<{name_w}} {'SITE':<{site_w}} {'STATE':<10} {'COST':>10} "
          f"{'BEST KNOWN':>10} {'GAP':>7} {'ROUTES':>6}")
    for jid, name, site, state, cost, bks, gap, routes in rows:
        print(f"{jid:>4} {name:<{name_w}} {site:<{site_w}} {state:<10} {cost:>10} {bks:>10} "
              f"{gap:>7} {routes:>6}")
    print(f"   solutions and SVG pictures of the routes: {fleet.base}/routes/<job>/")
    return [j[0] for j in jobs]


SEAL_MAGIC = b"\0OS1"


def secrets_of(paths):
    """What must never cross the broker readable: token and key markers, and for each job
    input its first bytes (raw and as base64, the form inputs travel in) and its SHA-256 (the
    demo's jobs print it: it is in their results)."""
    needles = [b"opt1.", b"opj1.", b"PRIVATE KEY"]
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        head = data[:48]
        needles += [head, base64.b64encode(head), hashlib.sha256(data).hexdigest().encode()]
    return needles


def eavesdropper_report(wire, needles):
    """True when the broker-wide listener heard no secret and nothing in clear but heartbeats."""
    wire.close()
    heard = list(wire.messages)
    clear = [t for t, p, _ in heard if not p.startswith(SEAL_MAGIC)]
    odd = sorted({t for t in clear if not t.endswith("/state")})
    leaks = sorted({t for t, p, _ in heard for n in needles if n in p})
    print(f"== eavesdropper on '#' (a test-only broker credential: what a compromised broker "
          f"sees): {len(heard)} messages, {len(heard) - len(clear)} sealed, {len(clear)} "
          f"heartbeats in clear; {len(needles)} known secrets (tokens, keys, inputs, outputs) "
          f"looked for, {len(leaks)} found")
    if odd or leaks:
        print(f"!! in clear on {odd}, secrets on {leaks}")
    return not odd and not leaks


def main():
    binary = os.environ.get("OUTPOST_BIN", os.path.join(ROOT, "build", "rel", "outpost"))
    # route jobs run the release solver (an ASan build cannot start under the job's RLIMIT_AS)
    route_program = os.path.join(ROOT, "build", "rel", "outpost")
    if not os.path.exists(route_program):
        route_program = binary
    run_dir = os.path.join(ROOT, "build", "demo", time.strftime("%Y%m%d-%H%M%S"))
    fleet = Fleet(binary=binary, base=run_dir, keep=True)
    stopping = {"flag": False}

    def on_signal(signum, frame):
        stopping["flag"] = True
        raise KeyboardInterrupt

    # Explicitly: a shell may start us with SIGINT ignored (background job), and a closed
    # terminal sends SIGHUP; every way out stops what we started.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    started = time.monotonic()
    clean = False
    try:
        print(f"== Outpost demo; logs and data dirs in {run_dir}")
        fleet.start_broker()
        print(f"== mosquitto on 127.0.0.1:{fleet.port}: TLS, client certificates from the hub's CA,"
              " an ACL by certificate name")
        http_port = free_port()
        fleet.start_hub(site_lost_after_ms=6000, lease_ms=20000,
                        http_listen=f"127.0.0.1:{http_port}", power_history_step_s=5)
        wire = Wire(fleet, "#")
        api_token = console_login(fleet, http_port)
        print(f"== hub started; enrolling {len(SITES)} sites with one-time join bundles")
        learners = {w[0] for w in WAREHOUSES}
        for name, cls, cores, mem, budget, wpc, idle in SITES:
            extra, token = {}, None
            if name in learners:  # one owner's two warehouses: they learn, and pool
                extra["route_model"] = f"eta-{name}"
                token = fleet.cli("token", "create", "--class", cls, "--site", name, "--owner",
                                  OWNER).stdout.strip()
            fleet.start_site(name, cls if token is None else None, token=token, wait=False,
                             cores=cores, memory_mb=mem, power_budget_watts=budget,
                             watts_per_core=wpc, idle_watts=idle, heartbeat_ms=1000,
                             resend_ms=2000, route_program=route_program, **extra)
        wait_for(lambda: all(s["status"] == "alive" for s in fleet.cli_json("sites")["sites"])
                 and len(fleet.cli_json("sites")["sites"]) == len(SITES), 60, 0.3,
                 "all sites to check in")
        print(fleet.cli("sites").stdout)
        files, source = data_files()
        specs = job_specs(files)
        print(f"== {len(specs) + POWER_JOBS + len(ROUTE_JOBS)} jobs in all: {len(specs)} exec, "
              f"{POWER_JOBS} moved by a power cut, {len(ROUTE_JOBS)} route")
        print(f"== submitting {len(specs)} exec jobs: compress and checksum {len(files)} files "
              f"from {source}")
        ids = []
        for argv in specs:
            ids += job_ids(fleet.cli("submit", *argv).stdout)
        watch = subprocess.run([binary, "watch", "--hub-dir", fleet.hub_dir, "--until-done",
                                "--interval", "1000"], env=fleet.env)
        if watch.returncode != 0:
            print("watch ended with", watch.returncode)
        print("\n== power at the sites")
        ids += power_phase(fleet)
        print("\n== routing on site: the warehouses plan their own delivery routes")
        ids += route_phase(fleet)
        print("\n== learning at the edge: the warehouses learn from their exceptions")
        ids += learning_phase(fleet)
        summary(fleet, ids, time.monotonic() - started)
        route_inputs = [os.path.join(SHARED_DATA, "vrp", r[0]) for r in ROUTE_JOBS]
        clean = eavesdropper_report(wire, secrets_of(
            files + [p for p in route_inputs if os.path.exists(p)]) + [api_token.encode()])
        sim_phase(binary)
        if os.environ.get("KEEP") not in (None, "", "0"):
            print(f"\n== KEEP is set: the fleet keeps running for a look at the console "
                  f"(http://127.0.0.1:{http_port}/ with the token above); Ctrl-C stops it")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("\n== interrupted; stopping the fleet")
    finally:
        codes = fleet.stop()
        bad = {k: v for k, v in codes.items() if v not in (0, None) and k != "broker"}
        print(f"== stopped broker, hub and {len(fleet.sites)} sites"
              + (f" (non-zero exits: {bad})" if bad else " (all exited cleanly)"))
        print(f"== logs: {run_dir}/*.log   data dirs: {run_dir}/hub, {run_dir}/sites/*")
    if stopping["flag"]:
        return 130
    return 0 if clean else 1


def console_login(fleet, http_port):
    """The hub's web console: its address and a token of the hub's own admin to log in with."""
    op = "op-" + fleet.cli("operator-key").stdout.split()[0][:16]
    token = fleet.cli("api-token", "create", "--operator", op, "--role",
                      "admin").stdout.split()[-1]
    print(f"== web console: http://127.0.0.1:{http_port}/  token: {token}  (live while the demo "
          f"runs; `make demo KEEP=1` keeps the fleet up afterwards)")
    return token


def summary(fleet, ids, elapsed):
    sites = {s["id"]: s for s in fleet.cli_json("sites")["sites"]}
    rows, per_site = [], {}
    for jid in ids:
        d = fleet.cli_json("job", str(jid))
        j = d["job"]
        applied = [r for r in d["results"] if r["applied"]]
        r = applied[0] if applied else {}
        rows.append((jid, j["name"] or j["kind"], j["state"], j["site"] or "-", j["attempt"],
                     r.get("cpu_seconds", 0.0), r.get("energy_joules", 0.0), r.get("wall_ms", 0)))
        agg = per_site.setdefault(j["site"] or "-", [0, 0.0, 0.0])
        agg[0] += 1
        agg[1] += r.get("cpu_seconds", 0.0)
        agg[2] += r.get("energy_joules", 0.0)
    name_w = width([r[1] for r in rows], len("JOB"))
    site_w = width([r[3] for r in rows], len("SITE"))
    print("\n== every job")
    print(f"{'ID':>4} {'JOB':<{name_w}} {'STATE':<10} {'SITE':<{site_w}} {'TRY':>3} {'CPU s':>7} "
          f"{'ENERGY J':>9}")
    for jid, name, state, site, attempt, cpu, joules, wall in rows:
        print(f"{jid:>4} {name:<{name_w}} {state:<10} {site:<{site_w}} {attempt:>3} {cpu:>7.2f} "
              f"{joules:>9.1f}")
    print("\n== per site")
    print(f"{'SITE':<{site_w}} {'CLASS':<5} {'JOBS':>5} {'CPU s':>8} {'ENERGY J':>9}")
    for site, (n, cpu, joules) in sorted(per_site.items()):
        cls = sites.get(site, {}).get("class", "-")
        print(f"{site:<{site_w}} {cls:<5} {n:>5} {cpu:>8.2f} {joules:>9.1f}")
    ok = sum(1 for r in rows if r[2] == "succeeded")
    cpu = sum(r[5] for r in rows)
    joules = sum(r[6] for r in rows)
    print(f"\n== {ok}/{len(rows)} jobs succeeded in {elapsed:.1f} s wall; {cpu:.1f} CPU s; "
          f"energy estimate {joules:.0f} J ({joules / 3600:.2f} Wh) at each site's watts per "
          f"busy core")
    verified = [jid for jid in ids if "verified by" in (fleet.job(jid)["job"].get("reason") or "")]
    cars = [s for s in sites.values() if not s["trust"]["trusted_class"]]
    print(f"== verified: {len(verified)} jobs that ran on cars ended only once two owners' "
          f"results agreed; cars' validated results "
          f"{sum(s['trust']['total_valid'] for s in cars)}, mismatches "
          f"{sum(s['trust']['mismatches'] for s in cars)}")
    stats = fleet.cli_json("stats")
    m = stats["messages"]
    print(f"== messages accepted {m['accepted']}, rejected: forged {m['forged']}, replayed "
          f"{m['replayed']}, unsigned {m['unsigned']}, unknown {m['unknown_sender']}")


if __name__ == "__main__":
    sys.exit(main())
