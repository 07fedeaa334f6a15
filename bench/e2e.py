#!/usr/bin/python3
"""Benchmarks behind `make bench`. Prints figures and ratios against baselines
measured in the same run; asserts nothing. Results also go to
build/bench/results.json. Quick mode (BENCH_QUICK=1) runs smaller counts."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fleet import BENCH_USER, Fleet, wait_for  # noqa: E402

BIN = os.path.join(ROOT, "build", "rel", "outpost")
BENCH = os.path.join(ROOT, "build", "rel", "outpost-bench")
QUICK = os.environ.get("BENCH_QUICK") == "1"


def run_json(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"{argv} failed: {r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = {p: 0 for p in pids}
        self.running = True

    def run(self):
        while self.running:
            for p in self.pids:
                self.peak[p] = max(self.peak[p], rss_kb(p))
            time.sleep(0.05)


def main():
    results = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}}
    print("== micro benchmarks (one process, no I/O)")
    micro = run_json([BENCH, "micro"])
    results["micro"] = micro
    sv = micro["sign_verify"]
    print(f"  sign+verify, our envelope : {sv['envelope_per_s']:>10.0f}/s  "
          f"(raw Ed25519 on the same {sv['payload_bytes']} bytes: {sv['raw_ed25519_per_s']:.0f}/s,"
          f" ratio {sv['ratio_vs_raw']:.2f})")
    for key in ("seal_1k", "seal_4m"):
        s = micro[key]
        print(f"  seal+open {s['bytes']:>8.0f} bytes: {s['seal_open_p50_ms']:>10.3f} ms p50  "
              f"(seal {s['seal_p50_ms']:.3f}, open {s['open_p50_ms']:.3f}; the signature check "
              f"on the same bytes {s['verify_p50_ms']:.3f})")
    for key in ("sched_8_sites", "sched_10000_sites"):
        s = micro[key]
        print(f"  placement, {s['sites']:>5} sites     : {s['placements_per_s']:>10.0f}/s  "
              f"(bare free-core scan {s['bare_scan_per_s']:.0f}/s, ratio "
              f"{s['ratio_vs_bare_scan']:.3f})")
    j = micro["jobspec_parse"]
    print(f"  job spec parse+validate   : {j['per_s']:>10.0f}/s  (cJSON parse alone "
          f"{j['cjson_only_per_s']:.0f}/s, ratio {j['ratio_vs_cjson']:.2f})")

    print("\n== audit log (SQLite file, synchronous=FULL)")
    a = run_json([BENCH, "audit", "--entries", "200000" if QUICK else "1000000"])
    results["audit"] = a
    print(f"  durable appends          : {a['durable_appends_batched_per_s']:>10.0f}/s batched "
          f"(10,000 per commit), {a['durable_appends_single_per_s']:.0f}/s one commit each")
    print(f"  verify {a['entries']:.0f} entries  : {a['verify_seconds']:>10.2f} s from a fresh "
          f"open (reading and hashing each entry once: {a['scan_and_hash_seconds']:.2f} s, ratio "
          f"{a['verify_ratio_vs_scan']:.2f})")
    print(f"  proofs at that size      : inclusion {a['inclusion_proof_hashes']:.0f} hashes "
          f"({32 * a['inclusion_proof_hashes']:.0f} bytes), consistency "
          f"{a['consistency_proof_hashes']:.0f} hashes; {a['inclusion_proofs_per_s']:.0f} "
          f"inclusion proofs/s")

    base = tempfile.mkdtemp(prefix="outpost-bench-")
    fleet = Fleet(binary=BIN, base=base)
    try:
        fleet.start_broker()
        print("\n== baseline: bare MQTT QoS 1 round trips through the same mosquitto")
        ca, cert, key = fleet.credential(BENCH_USER)  # TLS as every Outpost client
        tls = ["--ca", ca, "--cert", cert, "--key", key]
        mq_lat = run_json([BENCH, "mqtt", "--port", str(fleet.port), "--count",
                           "500" if QUICK else "2000", "--window", "1", *tls])
        mq_tp = run_json([BENCH, "mqtt", "--port", str(fleet.port), "--count",
                          "5000" if QUICK else "40000", "--window", "400", *tls])
        results["mqtt_baseline"] = {"closed_loop": mq_lat, "windowed": mq_tp}
        print(f"  closed loop: p50 {mq_lat['p50_ms']:.3f} ms, p99 {mq_lat['p99_ms']:.3f} ms; "
              f"windowed: {mq_tp['round_trips_per_s']:.0f} round trips/s")

        fleet.start_hub(site_lost_after_ms=10000, lease_ms=60000)
        names = [f"pod-{i}" for i in range(3)] + [f"car-{i}" for i in range(3)] + \
                [f"dc-{i}" for i in range(2)]
        for n in names:
            fleet.start_site(n, n.split("-")[0], wait=False, cores=64, memory_mb=65536,
                             power_budget_watts=100000, watts_per_core=10, heartbeat_ms=2000,
                             max_jobs=256)
        wait_for(lambda: len([s for s in fleet.cli_json("sites")["sites"]
                              if s["status"] == "alive"]) == 8, 60, 0.3, "8 sites")
        time.sleep(3)
        hub_pid = fleet.hub.p.pid
        site_pids = [fleet.sites[n].p.pid for n in names]
        idle = {"hub_kb": rss_kb(hub_pid), "site_kb": [rss_kb(p) for p in site_pids]}
        results["rss_idle"] = idle
        print(f"\n== resident memory, idle: hub {idle['hub_kb'] / 1024:.1f} MB, sites "
              f"{min(idle['site_kb']) / 1024:.1f}-{max(idle['site_kb']) / 1024:.1f} MB")

        print("\n== end to end (8 sites on loopback; submit -> hub -> site -> result -> hub ->"
              " notification)")
        # (key, kind, jobs, batch, window, offered rate in jobs/s or 0 for closed loop)
        runs = [
            ("noop_closed_loop", "noop", 300 if QUICK else 1000, 1, 1, 0),
            ("noop_at_1000_per_s", "noop", 2000 if QUICK else 10000, 10, 100000, 1000),
            ("noop_at_2000_per_s", "noop", 4000 if QUICK else 20000, 10, 100000, 2000),
            ("noop_max_throughput", "noop", 3000 if QUICK else 20000, 100, 2000, 0),
            ("exec_closed_loop", "exec", 50 if QUICK else 200, 1, 1, 0),
            ("exec_throughput", "exec", 300 if QUICK else 2000, 20, 64, 0),
        ]
        sampler = RssSampler([hub_pid] + site_pids)
        sampler.start()
        for key, kind, count, batch, window, rate in runs:
            argv = [BENCH, "e2e", "--hub-dir", fleet.hub_dir, "--kind", kind, "--count",
                    str(count), "--batch", str(batch), "--window", str(window)]
            if rate:
                argv += ["--rate", str(rate)]
            r = run_json(argv)
            results[key] = r
            ratio = r["p50_ms"] / mq_lat["p50_ms"]
            print(f"  {key:<19} {r['jobs']:>6} jobs: {r['jobs_per_s']:>8.0f} jobs/s, p50 "
                  f"{r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms  (p50 = {ratio:.1f}x a bare "
                  f"MQTT round trip)")
        sampler.running = False
        sampler.join()
        load = {"hub_kb": sampler.peak[hub_pid],
                "site_kb": [sampler.peak[p] for p in site_pids]}
        results["rss_peak_under_load"] = load
        tp = results["noop_max_throughput"]["jobs_per_s"]
        print(f"  noop throughput vs bare MQTT windowed round trips: "
              f"{tp / mq_tp['round_trips_per_s']:.2f}")
        print(f"\n== resident memory, peak under load: hub {load['hub_kb'] / 1024:.1f} MB, sites "
              f"{min(load['site_kb']) / 1024:.1f}-{max(load['site_kb']) / 1024:.1f} MB")
    finally:
        fleet.stop()
    size = os.path.getsize(BIN)
    stripped = os.path.join(base + "-strip")
    shutil.copy(BIN, stripped)
    subprocess.run(["strip", stripped], check=False)
    results["binary"] = {"bytes": size, "stripped_bytes": os.path.getsize(stripped)}
    os.unlink(stripped)
    print(f"\n== binary: {size / 1024:.0f} KiB with debug info, "
          f"{results['binary']['stripped_bytes'] / 1024:.0f} KiB stripped (dynamically linked)")
    out_dir = os.path.join(ROOT, "build", "bench")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nresults: {os.path.join(out_dir, 'results.json')}")


if __name__ == "__main__":
    main()
