#!/usr/bin/python3
"""The hub's HTTP API next to the MQTT CLI path, in one run (release build, real broker,
hub and one site).

1. Submit (one no-op job per call) and job status (GET /v1/jobs/ID): over HTTP on one
   keep-alive connection, and with the `outpost` CLI (a process per call: it connects to the
   broker over TLS, signs its request and waits for the sealed answer). Requests/s, p50, p99.
2. The hub's no-op jobs/s (submitted in batches of 500 over the API, until every one has
   succeeded on the site) with the console's load open (an event stream read as it comes and
   a /v1/stats poll every second) and without it.

BENCH_QUICK=1 runs fewer calls and jobs.
"""
import http.client
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fleet import Fleet, free_port, wait_for  # noqa: E402

NOOP = {"kind": "noop", "name": "bench"}


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def report(label, latencies, wall):
    ms = [x * 1000 for x in latencies]
    print(f"  {label:<34} {len(ms) / wall:8.1f} req/s   p50 {pct(ms, 50):7.2f} ms   "
          f"p99 {pct(ms, 99):7.2f} ms   ({len(ms)} calls)")
    return len(ms) / wall, pct(ms, 50), pct(ms, 99)


class Api:
    def __init__(self, port, token):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, body=None):
        headers = {"Authorization": "Bearer " + self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        out = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {out[:200]!r}")
        return json.loads(out)


def timed(fn, n):
    lat = []
    t0 = time.monotonic()
    for i in range(n):
        t = time.monotonic()
        fn(i)
        lat.append(time.monotonic() - t)
    return lat, time.monotonic() - t0


def succeeded(api):
    return api.call("GET", "/v1/jobs?limit=1")["counts"].get("succeeded", 0)


def throughput(api, n_jobs):
    """No-op jobs/s from the first submit to the last success."""
    start_count = succeeded(api)
    t = time.monotonic()
    for _ in range(n_jobs // 500):
        api.call("POST", "/v1/jobs", {"specs": [NOOP] * 500})
    wait_for(lambda: succeeded(api) >= start_count + n_jobs, 600, 0.1, "the jobs to succeed")
    return n_jobs / (time.monotonic() - t)


class ConsoleLoad:
    """What an open console does: an event stream read as it comes, /v1/stats every second."""

    def __init__(self, port, token):
        self.stop = threading.Event()
        self.events = 0
        self.polls = 0
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.sendall(f"GET /v1/events HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {token}"
                       "\r\n\r\n".encode())
        self.api = Api(port, token)
        self.threads = [threading.Thread(target=self.read, daemon=True),
                        threading.Thread(target=self.poll, daemon=True)]
        for t in self.threads:
            t.start()

    def read(self):
        self.s.settimeout(0.5)
        while not self.stop.is_set():
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            self.events += chunk.count(b"\nevent: ") + chunk.startswith(b"event: ")

    def poll(self):
        while not self.stop.is_set():
            self.api.call("GET", "/v1/stats")
            self.polls += 1
            self.stop.wait(1.0)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(5)
        self.s.close()


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    n_http, n_cli, n_jobs = (200, 20, 1000) if quick else (500, 40, 3000)
    base = tempfile.mkdtemp(prefix="outpost-api-", dir=os.path.join(ROOT, "build"))
    f = Fleet(binary=os.path.join(ROOT, "build", "rel", "outpost"), base=base)
    port = free_port()
    try:
        f.start_broker()
        f.start_hub(http_listen=f"127.0.0.1:{port}")
        f.start_site("dc-1", "dc", cores=4, max_jobs=64)
        token = f.cli("api-token", "create", "--operator", "op-bench", "--role",
                      "operator").stdout.strip()
        api = Api(port, token)
        print("\n== HTTP API vs the MQTT CLI path (one caller, calls in sequence)")
        ids = []
        lat, wall = timed(lambda i: ids.append(api.call("POST", "/v1/jobs", NOOP)["ids"][0]),
                          n_http)
        report("submit, HTTP API", lat, wall)
        lat, wall = timed(lambda i: api.call("GET", f"/v1/jobs/{ids[i % len(ids)]}"), n_http)
        report("job status, HTTP API", lat, wall)
        spec = os.path.join(base, "noop.json")
        with open(spec, "w") as fh:
            json.dump(NOOP, fh)
        cli_ids = []
        lat, wall = timed(lambda i: cli_ids.append(
            f.cli_json("submit", spec)["ids"][0]), n_cli)
        report("submit, CLI over MQTT", lat, wall)
        lat, wall = timed(lambda i: f.cli_json("job", str(ids[i % len(ids)])), n_cli)
        report("job status, CLI over MQTT", lat, wall)
        wait_for(lambda: succeeded(api) >= n_http + n_cli, 300, 0.2, "warm-up jobs to finish")

        print(f"\n== no-op jobs/s through the hub ({n_jobs} jobs, batches of 500 over the API)")
        quiet = throughput(api, n_jobs)
        load = ConsoleLoad(port, token)
        try:
            busy = throughput(api, n_jobs)
        finally:
            load.close()
        quiet2 = throughput(api, n_jobs)
        print(f"  without the console's load       {quiet:8.0f} jobs/s (again after: {quiet2:.0f})")
        print(f"  with an event stream + 1 s poll  {busy:8.0f} jobs/s "
              f"({load.events} events read, {load.polls} polls)")
        print(f"  ratio with / without             {busy / statistics.mean([quiet, quiet2]):8.2f}")
    finally:
        codes = f.stop()
    if codes.get("hub") != 0:
        print(f"hub exited {codes}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
