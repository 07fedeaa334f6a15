"""The demo's learning story (demo/run.py calls learning_phase): two warehouses of one owner
learn from their exceptions. Taxi trips of one NYC borough are each warehouse's delivery legs
(planned by a static speed, then what really happened); each trains its own travel-time
model in a deferrable learn job on the site, adopted only because it beats the static plan on
held-out legs; the next route job plans with it and its result names the model version;
`outpost predict` answers from it; then the hub drives a pooling round (`outpost model pool`):
a pooled model visits both warehouses in turn (no row leaves either) and is offered to each,
adopted where it beats the warehouse's own model and refused with the reason where it does
not."""
import json
import os
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
import trips  # noqa: E402

# (site, borough, legs it has seen, legs of the days after): Manhattan is busy, Brooklyn
# has few exceptions
WAREHOUSES = [("dc-warehouse-a", "Manhattan", 2000, 300), ("dc-factory-b", "Brooklyn", 250, 124)]
OWNER = "acme"


def learn_spec(site, model, **learn):
    """Deferrable: it may wait for spare power within its hour."""
    spec = {"kind": "learn", "name": f"learn:{model}"[:63], "model": model,
            "data_class": "site-private", "origin": site, "deadline_s": 3600,
            "deferrable": True, "expected_s": 10,
            "resources": {"cores": 1, "memory_mb": 512, "wall_s": 300}}
    if learn:
        spec["learn"] = learn
    return spec


def delivery_day():
    """A day of deliveries around the warehouse, coordinates in miles."""
    stops = [{"id": f"D{i:02d}", "x": round(((i * 37) % 23) / 8.0 - 1.4, 2),
              "y": round(((i * 53) % 41) / 8.0 - 2.5, 2), "demand": 1 + i % 3} for i in range(24)]
    return {"name": "warehouse-a tuesday", "depot": {"x": 0, "y": 0},
            "vehicles": [{"name": "van", "capacity": 12, "count": 6}], "stops": stops}


def audit_entries(fleet, site, kinds):
    path = os.path.join(fleet.base, "sites", site, "site.db")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        rows = [json.loads(r[0]) for r in db.execute("SELECT entry FROM audit_entries")]
    return [r for r in rows if r["kind"] in kinds]


def report(fleet, site, legs):
    """The legs reported to the site (`outpost exception add --file`): its answer."""
    path = trips.write_jsonl(legs, os.path.join(fleet.base, f"legs-{site}.jsonl"))
    r = subprocess.run([fleet.binary, "exception", "add", os.path.join(fleet.base, "sites", site),
                        "--file", path], capture_output=True, text=True, env=fleet.env)
    return r.stdout.strip() or r.stderr.strip()


def run(fleet, spec):
    out = fleet.cli("submit", "--quiet", "-", input=json.dumps(spec)).stdout
    jid = int(out.split()[-1])
    fleet.wait_jobs_terminal([jid], 180)
    return jid


def entry_detail(e):
    body = e.get("body")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return body
    return (body or {}).get("detail", "") if isinstance(body, dict) else str(body)


def learning_phase(fleet):
    """Returns the ids of the jobs it ran (all should succeed)."""
    if not trips.have_data():
        print(f"== learning: skipped ({trips.DATA} is missing)")
        return []
    ids = []
    binary = fleet.binary
    later = {}
    for site, borough, n, more in WAREHOUSES:
        legs, speed = trips.nyc_legs(borough, limit=n + more)
        legs = [dict(leg, data_class="confidential") for leg in legs]  # the owner's: poolable
        later[site] = legs[n:]
        r = report(fleet, site, legs[:n])
        print(f"   {site}: {n} delivery legs ({borough} taxi trips, planned at a static "
              f"{speed:.1f} mph) reported back: {r}")
    print("== each warehouse trains its own travel-time model on spare power (a deferrable "
          "learn job, rows never leave the site)")
    for site, _, _, _ in WAREHOUSES:
        jid = run(fleet, learn_spec(site, f"eta-{site}"))
        ids.append(jid)
        placed = [e for e in fleet.job(jid)["events"] if e["event"] == "placed"]
        if placed:
            print(f"   job {jid} {(placed[-1].get('detail') or '').split(' [', 1)[0][:110]}")
        print(f"   {site} {last_detail_of(fleet, site)}")
        show = json.loads(fleet.cli("model", "--json", "show", f"eta-{site}").stdout)
        f = show["fields"]
        print(f"   registry: eta-{site} version {f['version']} by {f['created_by']}, "
              f"{f['data_class']}, {f['lineage']['rows']} rows, MAE "
              f"{f['lineage']['metrics']['mae']:.1f} s, signature "
              f"{'verified' if show['verified'] else 'NOT verified'}")
    print("== warehouse-a's next route job plans with its model")
    day = os.path.join(fleet.base, "day-learned.json")
    with open(day, "w") as fh:
        json.dump(delivery_day(), fh)
    out = fleet.cli("submit", "--quiet", "--kind", "route", day, "--time-limit", "2",
                    "--data-class", "confidential", "--origin", "dc-warehouse-a").stdout
    rjob = int(out.split()[-1])
    fleet.wait_jobs_terminal([rjob], 120)
    ids.append(rjob)
    res = fleet.cli_json("result", str(rjob))
    print(f"   route job {rjob} {fleet.job(rjob)['job']['state']}: travel times from "
          f"{res.get('route_model', 'the static plan')}")
    r = subprocess.run([binary, "predict", os.path.join(fleet.base, "sites", "dc-warehouse-a"),
                        "--planned", "778", "--features",
                        '{"distance_miles": 2.0, "hour": 17, "weekday": 4, "month": 3}'],
                       capture_output=True, text=True, env=fleet.env)
    print(f"   outpost predict: a 2-mile leg on a Friday at 5 pm, planned 778 s: "
          f"{r.stdout.strip() or r.stderr.strip()}")
    print("== the next days' legs come in")
    for site, _, _, _ in WAREHOUSES:
        print(f"   {site}: {len(later[site])} more legs: {report(fleet, site, later[site])}")
    print("== pooling without moving rows: the hub drives a round (`outpost model pool`): a "
          "shared model visits both warehouses in turn (twice round), each continuing it on its "
          "own legs, then is offered to each, adopted only where it beats the warehouse's own")
    out = fleet.cli("model", "--json", "pool", "eta-pool", "--owner", OWNER, "--visits", "2",
                    "--deadline-s", "3600").stdout
    print(f"   round {json.loads(out)['round']} over {json.loads(out)['sites']}")
    rnd = wait_round(fleet, "eta-pool")
    for j in rnd.get("jobs", []):
        ids.append(j["job"])
        made = "eta-pool@" if j["mode"] == "visit" else f"eta-{j['site']}@"
        version = f" -> {made}{j['version']}" if j.get("version") else ""
        print(f"   job {j['job']} {j['mode']} at {j['site']}: {j['outcome']}{version}"
              f" ({j['detail'][:110]})")
    print(f"   round {rnd.get('state')}: {rnd.get('versions')} pooled versions")
    for site, _, _, _ in WAREHOUSES:
        print(f"   {site} {last_detail_of(fleet, site)}")
    return ids


def wait_round(fleet, name, timeout=600):
    """The newest pooling round of name once it has ended (or as it stands at the timeout)."""
    deadline = time.monotonic() + timeout
    rnd = {}
    while time.monotonic() < deadline:
        r = fleet.cli("model", "--json", "show", name, check=False)
        if r.returncode == 0:
            rnd = (json.loads(r.stdout).get("pooling") or [{}])[0]
            if rnd.get("state") in ("done", "failed"):
                break
        time.sleep(1)
    return rnd


def last_detail_of(fleet, site):
    entries = audit_entries(fleet, site, ("learn-adopt", "learn-reject"))
    return (entries[-1]["kind"] + ": " + entry_detail(entries[-1])) if entries else "(none)"
