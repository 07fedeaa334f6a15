#!/usr/bin/python3
"""One hub under a swarm of virtual sites (build/rel/outpost-swarm), for docs/scale.md.

For each size (SWARM_SIZES, default 1000,5000,10000,20000): a fresh mosquitto (plain TCP,
max_connections -1, enough descriptors), a fresh hub (broker_tls off, probes off, its other
settings at their defaults: site_lost_after_ms 6000), and the swarm: every site enrolls with
its own token, heartbeats every SWARM_HEARTBEAT_MS (default 2000, a site's default), noop jobs
at SWARM_JOBS_PER_S (default 20) for SWARM_STEADY_S seconds (default 60) of steady state. Then
the hub is SIGKILLed and started again on the same store while the swarm keeps running: the
time until it is ready and until it has heard every site again.

Figures per size: enrollment rate; over the steady window hub CPU per heartbeat (user+system
seconds of the hub process over heartbeats sent), broker CPU (% of one core), hub memory per
site (RSS after the swarm enrolled minus RSS with no site, over the sites), placement pass
time (mean and max, from the hub's stats), offer latency p50/p99 (submission to the offer's
arrival at the site), sites marked lost (all false: no churn in these runs) and the restart.
Prints the table and writes build/bench/swarm.json. Asserts nothing.
"""
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("OUTPOST_BIN", os.path.join(ROOT, "build", "rel", "outpost"))
SWARM = os.environ.get("OUTPOST_SWARM", os.path.join(ROOT, "build", "rel", "outpost-swarm"))
POWER = os.path.join(os.path.dirname(ROOT), "shared", "data", "power")
OUT = os.path.join(ROOT, "build", "bench", "swarm")
BRIDGE_STATE_QOS = int(os.environ.get("SWARM_BRIDGE_STATE_QOS", "1"))
# SWARM_HUB_LINKS=all: the brokers side by side, no bridge, the hub on each at once
# (broker_mode = all); bridge (the default): the second broker on bridged to the hub's
HUB_LINKS = os.environ.get("SWARM_HUB_LINKS", "bridge")
# SWARM_TLS=1: brokers on TLS with client certificates from the hub's CA, as in production
# (the sites' join bundles carry their certificates); not with a bridge
TLS = os.environ.get("SWARM_TLS", "0") == "1"
# SWARM_BEAT_AUTH=sig: every heartbeat Ed25519-signed (the form before heartbeats carried a
# MAC under the key the site's sealed hello gave the hub); mac (the default): as sites do now
BEAT_AUTH = os.environ.get("SWARM_BEAT_AUTH", "mac")
CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def env_int(name, default):
    return int(os.environ.get(name, default))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def more_fds():
    """Descriptors for tens of thousands of connections (the caller is root, or has them)."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200000, 200000))
    except (ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def thread_cpu_s(pid):
    """The loop thread's CPU seconds (the hub's main thread: its tid is its pid)."""
    return cpu_s(f"{pid}/task/{pid}")


def rss_bytes(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def wait_for(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def losses_logged(text):
    """Sites the hub's log says were lost: the first few of a fleet check by name, the rest
    of it summed up in one line ("N more sites lost, each silent for over ...")."""
    named = text.count(" lost (silent for ")
    return named + sum(int(m) for m in re.findall(r" (\d+) more sites lost, each silent", text))


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


class Run:
    """A broker and a hub in base, torn down by stop()."""

    def __init__(self, base, sites):
        self.base = base
        self.sites = sites
        os.makedirs(base, exist_ok=True)
        self.port = free_port()
        self.hub_dir = os.path.join(base, "hub")
        self.procs = []
        self.brokers = []
        self.ports = [self.port]

    def start_broker(self, name="mosquitto", port=None, bridge_to=None):
        """A broker; bridge_to: the hub's broker, to which the sites' topics are bridged
        (their messages out, the hub's inbox messages in)."""
        port = port or self.port
        conf = os.path.join(self.base, f"{name}.conf")
        with open(conf, "w") as f:
            if bridge_to:
                f.write(f"connection to-hub-broker\naddress 127.0.0.1:{bridge_to}\n"
                        "bridge_protocol_version mqttv50\ncleansession false\n"
                        "try_private true\n")
                for leaf in ("hello", "state", "event", "result"):
                    # SWARM_BRIDGE_STATE_QOS=0: heartbeats cross the bridge at QoS 0 (no
                    # in-flight window: a late heartbeat is worth less than a lost one)
                    qos = BRIDGE_STATE_QOS if leaf == "state" else 1
                    f.write(f"topic outpost/v1/site/+/{leaf} out {qos}\n")
                f.write("topic outpost/v1/site/+/inbox in 1\n")
            f.write(f"listener {port} 127.0.0.1\n")
            if TLS:  # the listener's own settings, after it
                tls = self.broker_tls()
                f.write(f"cafile {tls}/ca.crt\ncertfile {tls}/server.crt\n"
                        f"keyfile {tls}/server.key\ntls_version tlsv1.2\n"
                        "require_certificate true\nuse_identity_as_username true\n"
                        f"acl_file {tls}/acl\n")
            f.write(f"allow_anonymous {'false' if TLS else 'true'}\n"
                    "max_connections -1\npersistence false\nset_tcp_nodelay true\n"
                    "max_inflight_messages 1000\nmax_queued_messages 100000\n"
                    "max_packet_size 8454144\nlog_type error\n")
            if os.geteuid() == 0:
                f.write("user root\n")
        log = open(os.path.join(self.base, f"{name}.log"), "w")
        broker = subprocess.Popen(["mosquitto", "-c", conf], stdout=log, stderr=log,
                                  preexec_fn=more_fds)
        self.procs.append(broker)
        self.brokers.append(broker)
        wait_for(lambda: self._port_open(port), 10, "mosquitto")
        return broker

    def broker_tls(self):
        """The broker's CA, server certificate and ACL (`outpost ca broker`), made once."""
        tls = os.path.join(self.base, "broker-tls")
        if not os.path.exists(os.path.join(tls, "acl")):
            subprocess.run([BIN, "ca", "broker", "--hub-dir", self.hub_dir, "--out", tls,
                            "--hub-id", "hub", "--name", "127.0.0.1"], check=True,
                           capture_output=True)
        return tls

    def _port_open(self, port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    def start_hub(self):
        conf = os.path.join(self.base, "hub.conf")
        with open(conf, "w") as f:
            f.write(f"hub_id = hub\nbroker_port = {self.port}\n"
                    f"broker_tls = {'on' if TLS else 'off'}\nprobe = off\n"
                    f"max_queued_jobs = 100000\n")
            if os.environ.get("SWARM_BEAT_WORKERS"):
                f.write(f"beat_workers = {int(os.environ['SWARM_BEAT_WORKERS'])}\n")
            if HUB_LINKS == "all":
                hosts = ", ".join(f"127.0.0.1:{p}" for p in self.ports)
                f.write(f"broker_host = {hosts}\nbroker_mode = all\n")
        self.hub_log = os.path.join(self.base, "hub.log")
        readies = self.log_text().count("ready: store open") if os.path.exists(self.hub_log) else 0
        log = open(self.hub_log, "a")
        self.hub = subprocess.Popen([BIN, "hub", "--data-dir", self.hub_dir, "--config", conf],
                                    stdout=log, stderr=log, preexec_fn=more_fds)
        self.procs.append(self.hub)
        wait_for(lambda: self.log_text().count("ready: store open") > readies, 300,
                 "the hub to be ready")

    def log_text(self):
        with open(self.hub_log, errors="replace") as f:
            return f.read()

    def stats(self):
        r = subprocess.run([BIN, "stats", "--json", "--hub-dir", self.hub_dir, "--timeout", "30000"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def read_reports(path):
    rows = []
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                break  # the report being written now
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def last_report(path):
    rows = read_reports(path)
    return rows[-1] if rows else {}


PER_PROCESS = 5000  # sites per swarm process: 3 descriptors each, under a 20,000 fd limit
PER_BROKER = 10000  # sites per broker: one descriptor each, same limit


def start_swarms(run, n, beat_ms, jobs_per_s, ports):
    """Swarm processes of PER_PROCESS sites, spread over the brokers (ports)."""
    swarms = []
    k = (n + PER_PROCESS - 1) // PER_PROCESS
    for j in range(k):
        first = j * PER_PROCESS
        count = min(PER_PROCESS, n - first)
        port = ports[min(first // PER_BROKER, len(ports) - 1)]
        path = os.path.join(run.base, f"swarm{j}.jsonl")
        out = open(path, "w")
        err = open(os.path.join(run.base, f"swarm{j}.log"), "w")
        p = subprocess.Popen([SWARM, "--hub-dir", run.hub_dir, "--sites", str(count),
                              "--first", str(first), "--heartbeat-ms", str(beat_ms),
                              "--jobs-per-s", str(jobs_per_s / k), "--duration-s", "7200",
                              "--report-ms", "1000", "--power", POWER, "--connect-per-s",
                              str(max(1, 2000 // k)), "--broker-port", str(port)]
                             + (["--beat-sig"] if BEAT_AUTH == "sig" else []),
                             stdout=out, stderr=err, preexec_fn=more_fds)
        run.procs.append(p)
        swarms.append((p, path))
    return swarms


def swarm_totals(swarms):
    """The swarm processes' last reports, summed (latencies: the worst p99, the median p50)."""
    total = {}
    for _, path in swarms:
        r = last_report(path)
        for key in ("enrolled", "beats", "offered", "connected", "connects", "dropped",
                    "submitted", "submit_errors", "keepalive_drops"):
            total[key] = total.get(key, 0) + r.get(key, 0)
    return total


def window_latencies(swarms, marks):
    p50s, p99s = [], []
    for (_, path), mark in zip(swarms, marks):
        for r in read_reports(path)[mark:]:
            if r.get("latency_p50_ms", -1) >= 0:
                p50s.append(r["latency_p50_ms"])
                p99s.append(r["latency_p99_ms"])
    p50s.sort()
    return (p50s[len(p50s) // 2] if p50s else None), (max(p99s) if p99s else None)


def measure(n, beat_ms, jobs_per_s, steady_s):
    base = os.path.join(OUT, f"n{n}")
    subprocess.run(["rm", "-rf", base])
    run = Run(base, n)
    fig = {"sites": n, "heartbeat_ms": beat_ms, "jobs_per_s": jobs_per_s, "load_before": load()}
    try:
        run.start_broker()
        ports = [run.port]
        for b in range(1, (n + PER_BROKER - 1) // PER_BROKER):
            ports.append(free_port())
            run.start_broker(f"bridged{b}", ports[-1],
                             bridge_to=None if HUB_LINKS == "all" else run.port)
        run.ports = ports
        fig["brokers"] = len(ports)
        fig["hub_links"] = HUB_LINKS
        fig["tls"] = TLS
        fig["beat_auth"] = BEAT_AUTH
        run.start_hub()
        rss0 = rss_bytes(run.hub.pid)
        t0 = time.time()
        swarms = start_swarms(run, n, beat_ms, jobs_per_s, ports)
        fig["swarm_processes"] = len(swarms)
        wait_for(lambda: swarm_totals(swarms).get("enrolled", 0) >= n or
                 any(p.poll() is not None for p, _ in swarms), n / 20 + 180, f"{n} sites to enroll")
        fig["enroll_s"] = round(time.time() - t0, 1)
        fig["enroll_per_s"] = round(n / max(fig["enroll_s"], 0.1), 0)
        fig["lost_during_enrollment"] = losses_logged(run.log_text())
        # the first heartbeats and jobs settle (SWARM_SETTLE_S: longer, for the enrollment
        # storm's tail to pass before the steady window)
        time.sleep(env_int("SWARM_SETTLE_S", min(10, steady_s // 4)))
        s0 = run.stats() or {}
        fig["rss_per_site_bytes"] = round((rss_bytes(run.hub.pid) - rss0) / n)
        brokers_cpu = lambda: sum(cpu_s(b.pid) for b in run.brokers)
        swarms_cpu = lambda: sum(cpu_s(p.pid) for p, _ in swarms if p.poll() is None)
        r0, h0, b0, w0 = swarm_totals(swarms), cpu_s(run.hub.pid), brokers_cpu(), time.time()
        l0, g0 = thread_cpu_s(run.hub.pid), swarms_cpu()
        marks = [len(read_reports(path)) for _, path in swarms]
        time.sleep(steady_s)
        r1, h1, b1, w1 = swarm_totals(swarms), cpu_s(run.hub.pid), brokers_cpu(), time.time()
        l1, g1 = thread_cpu_s(run.hub.pid), swarms_cpu()
        s1 = run.stats()
        beats = r1["beats"] - r0["beats"]
        fig["beats_per_s"] = round(beats / (w1 - w0), 0)
        fig["hub_cpu_pct"] = round(100 * (h1 - h0) / (w1 - w0), 1)
        fig["hub_cpu_us_per_beat"] = round(1e6 * (h1 - h0) / max(beats, 1), 1)
        fig["loop_cpu_us_per_beat"] = round(1e6 * (l1 - l0) / max(beats, 1), 1)
        fig["broker_cpu_pct"] = round(100 * (b1 - b0) / (w1 - w0), 1)
        # the load generator's own share of the machine (its sites' signatures or MACs among it)
        fig["swarm_cpu_pct"] = round(100 * (g1 - g0) / (w1 - w0), 1)
        fig["offers_per_s"] = round((r1["offered"] - r0["offered"]) / (w1 - w0), 1)
        # where the jobs asked for went: submitted (answered), refused, accepted by the hub
        fig["submitted_per_s"] = round((r1["submitted"] - r0["submitted"]) / (w1 - w0), 1)
        fig["submit_errors"] = r1["submit_errors"] - r0["submit_errors"]
        if s1 and s0:
            fig["hub_submitted_per_s"] = round(
                (s1.get("jobs_submitted", 0) - s0.get("jobs_submitted", 0)) / (w1 - w0), 1)
            fig["job_states_before"] = s0.get("counts")
            fig["job_states_after"] = s1.get("counts")
            fig["hellos"] = {k: s1.get("fleet", {}).get(k) for k in
                             ("hellos_offloaded", "hellos_repeated", "beats_inline", "beats_mac",
                              "rekeys")}
        fig["latency_p50_ms"], fig["latency_p99_ms"] = window_latencies(swarms, marks)
        if s1:
            f = s1.get("fleet", {})
            fig["lost"] = f.get("lost")
            fig["place_ms_avg"] = round(f.get("place_ms_avg", 0), 2)
            fig["place_ms_max"] = f.get("place_ms_max")
            f0 = s0.get("fleet", {}) if s0 else {}
            fig["place_passes_per_s"] = round(
                (f.get("place_passes", 0) - f0.get("place_passes", 0)) / (w1 - w0), 1)
            fig["place_skipped_per_s"] = round(
                (f.get("place_skipped", 0) - f0.get("place_skipped", 0)) / (w1 - w0), 1)
        fig["lost_log_lines"] = losses_logged(run.log_text())
        fig["lost_in_steady_state"] = fig["lost_log_lines"] - fig["lost_during_enrollment"]
        fig["load_during"] = load()
        fig.update(restart(run, n))
        fig.update(broker_restart(run, n, swarms))
        fig["lost_log_lines_total"] = losses_logged(run.log_text())
        for p, _ in swarms:
            p.send_signal(signal.SIGTERM)
        for p, _ in swarms:
            p.wait(30)
        fig["swarm_final"] = swarm_totals(swarms)
    finally:
        run.stop()
    return fig


def restart(run, n):
    """SIGKILL the hub, start it again on its store; the swarm runs on meanwhile."""
    run.hub.kill()
    run.hub.wait()
    killed = time.time()
    time.sleep(2)
    started = time.time()
    run.start_hub()
    ready = time.time()

    def all_heard():
        s = run.stats()
        f = s.get("fleet", {}) if s else {}
        return f if f.get("alive", 0) + f.get("lost", 0) >= n and f.get("presumed", 1) == 0 else None
    try:
        f = wait_for(all_heard, 300, "the restarted hub to hear every site")
    except RuntimeError:
        f = {}
    heard = time.time()
    return {"restart_ready_s": round(ready - started, 1),
            "restart_all_heard_s": round(heard - started, 1),
            "restart_down_s": round(started - killed, 1),
            "restart_lost": f.get("lost")}


def broker_restart(run, n, swarms):
    """SIGKILL the hub's broker (no persistence: every session gone), start it again on the
    same port 2 s later: the hub and the sites on it reconnect (a reconnect storm of hellos);
    the time until every swarm site is connected again, and the sites the hub lost."""
    lost0 = losses_logged(run.log_text())
    broker = run.brokers[0]
    broker.kill()
    broker.wait()
    run.brokers.remove(broker)
    time.sleep(2)
    started = time.time()
    run.start_broker()
    run.brokers.insert(0, run.brokers.pop())
    try:
        wait_for(lambda: swarm_totals(swarms).get("connected", 0) >= n, 300,
                 "every site to reconnect after the broker's restart")
    except RuntimeError:
        pass
    back = time.time()
    time.sleep(10)  # past site_lost_after_ms: a site not heard again would be lost by now
    return {"broker_restart_all_connected_s": round(back - started, 1),
            "broker_restart_lost": losses_logged(run.log_text()) - lost0}


def table(figs):
    cols = [("sites", "sites"), ("enroll/s", "enroll_per_s"), ("beats/s", "beats_per_s"),
            ("hub CPU %", "hub_cpu_pct"), ("hub us/beat", "hub_cpu_us_per_beat"),
            ("loop us/beat", "loop_cpu_us_per_beat"),
            ("broker CPU %", "broker_cpu_pct"), ("swarm CPU %", "swarm_cpu_pct"),
            ("B/site", "rss_per_site_bytes"),
            ("place ms avg", "place_ms_avg"), ("place ms max", "place_ms_max"),
            ("offer p50 ms", "latency_p50_ms"), ("offer p99 ms", "latency_p99_ms"),
            ("lost", "lost_log_lines"), ("restart ready s", "restart_ready_s"),
            ("all heard s", "restart_all_heard_s"), ("load", "load_during")]
    print(" | ".join(c for c, _ in cols))
    for f in figs:
        print(" | ".join(str(f.get(k)) for _, k in cols))


def main():
    sizes = [int(x) for x in os.environ.get("SWARM_SIZES", "1000,5000,10000,20000").split(",")]
    beat_ms = env_int("SWARM_HEARTBEAT_MS", 2000)
    jobs = env_int("SWARM_JOBS_PER_S", 20)
    steady = env_int("SWARM_STEADY_S", 60)
    for path in (BIN, SWARM):
        if not os.path.exists(path):
            sys.exit(f"{path} missing: make build/rel/outpost build/rel/outpost-swarm")
    os.makedirs(OUT, exist_ok=True)
    more_fds()
    figs = []
    for n in sizes:
        print(f"== {n} sites (heartbeat {beat_ms} ms, {jobs} jobs/s, {steady} s steady)", flush=True)
        fig = measure(n, beat_ms, jobs, steady)
        print(json.dumps(fig), flush=True)
        figs.append(fig)
    with open(os.path.join(ROOT, "build", "bench", f"swarm{os.environ.get('SWARM_TAG', '')}.json"),
              "w") as f:
        json.dump(figs, f, indent=1)
    table(figs)


if __name__ == "__main__":
    main()
