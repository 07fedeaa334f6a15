#!/usr/bin/python3
"""A large model to many sites: chunks from the hub and from peers.

Real processes on loopback (release build): a broker (TLS, the production ACL), a hub and
N site agents (each agent is a full process with its own store, bus link and sandbox). A
model is put in the hub's registry, then N jobs that read it are submitted at once, one per
one-core site: each site fetches the whole artifact, every chunk checked against the hub's
signed manifest, before its job starts; each job hashes the file it was given.

Two stages, each run twice on fresh fleets:
  outpost   artifact_peers on: the hub serves at most artifact_hub_streams sites itself
            while nobody holds the artifact; the others pull from sites that hold it
  baseline  artifact_peers off: the hub serves every site itself
  size      a 1 GiB model to 8 agents (what two shared cores carry at that size: 8 GiB
            through one machine's TLS broker, seals and signatures)
  fleet     a 32 MiB model to 50 agents (the fleet's shape: who serves whom among 50
            fetchers; 50 copies of 1 GiB would be 50 GiB through the same two cores)
In every run one site's link is cut for 3 s when it holds a third of the chunks (a
LinkProxy). Then, after the size stage's peers run, the cache under its budget: one site
whose budget holds one such model and a bit gets a second, smaller model (site-private to
it, so its job runs there) and evicts the first.

Printed per run: time from submission to the last job's end, bytes the hub served, bytes
peers served, chunks sent in all against the chunks needed (anything above is a chunk sent
twice), chunks refused as bad, the cut site's duplicate chunks; then the ratios against the
baseline of the same stage, and for the fleet stage the hub's bytes in copies of the model
(what carries over to a 1 GiB model: the hub serves that many copies whatever the size).

SITES=N and SIZE_MB=M override the size stage, FLEET_SITES and FLEET_MB the fleet stage
(FLEET_SITES=0 skips it); BENCH_QUICK=1 runs 4 sites and 128 MiB, then 12 sites and 8 MiB.
"""
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fleet import UNCHECKED_POLICY, Fleet, LinkProxy, wait_for  # noqa: E402

MB = 1024 * 1024
CHUNK = 256 * 1024


def model_file(path, size, seed):
    """size bytes that do not compress (so nothing on the way can cheat)."""
    h = hashlib.sha256()
    block = os.urandom(MB) if seed is None else hashlib.sha256(seed).digest() * (MB // 32)
    with open(path, "wb") as f:
        for i in range(size // MB):
            piece = hashlib.sha256(block[:32] + i.to_bytes(8, "little")).digest() + block[32:]
            f.write(piece)
            h.update(piece)
    return h.hexdigest()


def held_chunks(db, sha):
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
            row = c.execute("SELECT held FROM artifacts WHERE sha256=?", (sha,)).fetchone()
    except sqlite3.Error:
        return 0
    return sum(bin(b).count("1") for b in row[0]) if row and row[0] else 0


def reader(model, **extra):
    spec = {"kind": "exec", "command": ["sh", "-c", 'sha256sum "$OUTPOST_MODEL"'],
            "model": model, "resources": {"cores": 1, "wall_s": 900}}
    spec.update(extra)
    return spec


def submit(f, spec):
    return int(f.cli("submit", "--quiet", "-", input=json.dumps(spec)).stdout.strip())


def reports(f, names):
    sites = {s["id"]: s.get("artifacts", {}) for s in f.cli_json("sites")["sites"]}
    return {n: sites.get(n, {}) for n in names}


def start_sites(f, names, cut, proxy, budget):
    """Every agent at once, then one wait for all to be alive (50 one by one is slow)."""
    for name in names:
        f.start_site(name, "dc", wait=False, cores=1, artifact_cache_mb=budget,
                     heartbeat_ms=1000, **({"broker_port": proxy.port} if name == cut else {}))

    def alive():
        sites = {s["id"]: s["status"] for s in f.cli_json("sites", timeout=30)["sites"]}
        dead = [n for n in names if not f.sites[n].alive()]
        if dead:
            raise RuntimeError(f"site {dead[0]} exited:\n" + f.sites[dead[0]].log_text())
        return all(sites.get(n) == "alive" for n in names)
    wait_for(alive, 120 + 2 * len(names), 0.5, "every site to be alive")


def run(label, peers, n_sites, size, path, sha, base, eviction):
    f = Fleet(binary=os.path.join(ROOT, "build", "rel", "outpost"), base=base)
    proxy = None
    try:
        f.start_broker()
        f.start_hub(policy=UNCHECKED_POLICY, artifact_peers="on" if peers else "off",
                    site_lost_after_ms=120000, lease_ms=1200000)
        proxy = LinkProxy(f.port)
        names = [f"s{i:02d}" for i in range(n_sites)]
        cut = names[-1]
        budget = size // MB + size // MB // 8 + 1
        start_sites(f, names, cut, proxy, budget)
        t = time.monotonic()
        f.cli("model", "put", "big", path, timeout=1800)
        upload_s = time.monotonic() - t
        t0 = time.monotonic()
        # one request: placed together, one per one-core site (submitted one by one, a later
        # job would go to a site that already holds the model, as placement prefers)
        r = f.cli("submit", "--quiet", "-", input=json.dumps([reader("big") for _ in names]))
        ids = [int(x) for x in r.stdout.split()]
        db = os.path.join(base, "sites", cut, "site.db")
        n = size // CHUNK
        wait_for(lambda: held_chunks(db, sha) >= n // 3, 1800, 0.05, "a third at the cut site")
        proxy.cut(True)
        held_at_cut = held_chunks(db, sha)
        time.sleep(3)
        proxy.cut(False)
        states = f.wait_jobs_terminal(ids, 3600)
        elapsed = time.monotonic() - t0
        bad = [j for j, s in states.items() if s != "succeeded"]
        if bad:
            raise RuntimeError(f"{label}: jobs {bad} did not succeed")
        for j in ids:
            if not f.cli_json("result", str(j))["stdout"].startswith(sha):
                raise RuntimeError(f"{label}: job {j} read other bytes")
        wait_for(lambda: all(r.get("held") == 1 for r in reports(f, names).values()), 60, 0.5,
                 "every site to report the model")
        rep = reports(f, names)
        hub = f.cli_json("stats")["artifacts"]
        out = {"label": label, "sites": n_sites, "seconds": elapsed, "upload_s": upload_s,
               "hub_bytes": hub["bytes_served"], "hub_chunks": hub["chunks_served"],
               "peer_bytes": sum(r["served_bytes"] for r in rep.values()),
               "peer_chunks": sum(r["served_chunks"] for r in rep.values()),
               "fetched_bytes": sum(r["from_hub_bytes"] + r["from_peers_bytes"]
                                    for r in rep.values()),
               "dup": sum(r["chunks_dup"] for r in rep.values()),
               "cut_dup": rep[cut]["chunks_dup"], "needed_chunks": n * n_sites,
               "bad": sum(r.get("chunks_bad", 0) for r in rep.values()),
               "held_at_cut": held_at_cut, "chunks": n, "size": size,
               "grants": hub["peer_grants"], "waits": hub["waits"]}
        if peers and eviction:
            out["eviction"] = evict(f, names[0], size, budget, base)
        return out
    finally:
        f.stop()
        if proxy:
            proxy.close()


def evict(f, site, size, budget_mb, base):
    """A second model, site-private to site, makes it evict the first (LRU, not in use)."""
    small = max(size // 4, 4 * MB)
    path = os.path.join(base, "small.bin")
    sha2 = model_file(path, small, seed=b"second")
    f.cli("model", "put", "small", path, "--data-class", "site-private", "--origin", site,
          timeout=600)
    j = submit(f, reader("small", data_class="site-private", origin=site))
    if f.wait_jobs_terminal([j], 1800)[j] != "succeeded":
        raise RuntimeError("eviction job failed")
    wait_for(lambda: reports(f, [site])[site].get("evicted", 0) >= 1, 60, 0.5, "the eviction")
    r = reports(f, [site])[site]
    files = os.listdir(os.path.join(base, "sites", site, "artifacts"))
    return {"budget_mb": budget_mb, "cache_mb": r["cache_bytes"] / MB,
            "evicted": r["evicted"], "files": files == [sha2]}


def stage(work, title, n_sites, size, eviction):
    """One size of model to n_sites agents, with peers and with the hub serving all."""
    path = os.path.join(work, "big.bin")
    sha = model_file(path, size, seed=None)
    print(f"artifacts, {title}: a {size // MB} MiB model to {n_sites} real site agents "
          f"(release build, TLS broker, one machine); one site's link cut for 3 s mid-fetch")
    results = []
    for label, peers in (("outpost (peers)", True), ("baseline (hub serves all)", False)):
        base = os.path.join(work, "peers" if peers else "hub")
        results.append(run(label, peers, n_sites, size, path, sha, base, eviction))
        shutil.rmtree(base, ignore_errors=True)
    os.unlink(path)
    print(f"{'':28} {'time s':>8} {'hub MiB':>9} {'peers MiB':>10} {'sent/needed':>13} "
          f"{'dup':>4} {'bad':>4} {'cut at':>7} {'cut dup':>8}")
    for r in results:
        sent = r["hub_chunks"] + r["peer_chunks"]
        print(f"{r['label']:28} {r['seconds']:8.1f} {r['hub_bytes'] / MB:9.0f} "
              f"{r['peer_bytes'] / MB:10.0f} {sent:>6}/{r['needed_chunks']:<6} "
              f"{r['dup']:4} {r['bad']:4} {r['held_at_cut']:>3}/{r['chunks']:<3} "
              f"{r['cut_dup']:8}")
    a, b = results
    print(f"hub bytes: {a['hub_bytes'] / b['hub_bytes']:.3f} of the baseline's "
          f"({b['hub_bytes'] / max(a['hub_bytes'], 1):.1f}x fewer; the hub sent "
          f"{a['hub_bytes'] / size:.1f} copies against {b['hub_bytes'] / size:.1f}); time: "
          f"{a['seconds'] / b['seconds']:.2f}x the baseline's; upload {a['upload_s']:.1f} s; "
          f"peer grants {a['grants']}, hub 'wait' answers {a['waits']}")
    if eviction:
        e = a["eviction"]
        print(f"cache: budget {e['budget_mb']} MiB, {e['cache_mb']:.0f} MiB held after a "
              f"second model, {e['evicted']} evicted, only the new one on disk: {e['files']}")
    return results


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    n_sites = int(os.environ.get("SITES", 4 if quick else 8))
    size = int(os.environ.get("SIZE_MB", 128 if quick else 1024)) * MB
    fleet_sites = int(os.environ.get("FLEET_SITES", 12 if quick else 50))
    fleet_size = int(os.environ.get("FLEET_MB", 8 if quick else 32)) * MB
    work = tempfile.mkdtemp(prefix="outpost-artifacts-", dir=os.path.join(ROOT, "build"))
    try:
        stage(work, "size", n_sites, size, eviction=True)
        if fleet_sites > 0:
            print()
            stage(work, "fleet", fleet_sites, fleet_size, eviction=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
