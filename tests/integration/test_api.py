"""The hub's HTTP API against a real fleet (mosquitto, a hub, sites): every endpoint, its
answers checked against the OpenAPI document the hub serves, every error status, roles,
the console's cookie login and its CSRF header, server-sent events, TLS, body limits, the
audit log under the token's operator, and the attacks on the HTTP surface."""
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet, free_port, wait_for  # noqa: E402

try:
    import jsonschema
except ImportError:  # python3-jsonschema (scripts/deps.sh test)
    jsonschema = None

NOOP = {"kind": "noop", "name": "api-noop"}


def http_call(port, method, path, body=None, token=None, headers=None, raw=None, tls_ctx=None,
              timeout=20):
    """(status, headers dict (lower-case names), body bytes)."""
    if tls_ctx:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls_ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {}
    if token:
        h["Authorization"] = "Bearer " + token
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def hub_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class OpenApi:
    """The served OpenAPI document, and the schema of an answer by path, method and status."""

    def __init__(self, doc):
        self.doc = doc
        self.seen = set()

    def template_of(self, path):
        path = path.split("?")[0]
        for template in self.doc["paths"]:
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, path):
                return template
        return None

    def check(self, test, method, path, status, body):
        template = self.template_of(path)
        op = self.doc["paths"][template].get(method.lower()) if template else None
        if op is None:  # no such route or method: the document's error answer
            test.assertIn(status, (404, 405))
            resp = self.doc["components"]["responses"]["Error"]
            jsonschema and jsonschema.validate(json.loads(body), dict(
                resp["content"]["application/json"]["schema"], components=self.doc["components"]))
            return
        resp = op["responses"].get(str(status))
        test.assertIsNotNone(resp, f"{method} {template}: status {status} is not documented")
        self.seen.add((method.lower(), template))
        if "$ref" in resp:
            resp = self.doc["components"]["responses"][resp["$ref"].split("/")[-1]]
        schema = resp.get("content", {}).get("application/json", {}).get("schema")
        if schema is None or jsonschema is None:
            return
        full = dict(schema)
        full["components"] = self.doc["components"]
        jsonschema.validate(json.loads(body), full)


class ApiFleet:
    """A broker, a hub with the API on, a pod and a dc site (the dc with /metrics), and a
    token per role; shared by the tests of a class (test_attack_api.py uses it too)."""

    @classmethod
    def setUpClass(cls):
        cls.f = Fleet()
        cls.port = free_port()
        cls.f.start_broker()
        cls.f.start_hub(http_listen=f"127.0.0.1:{cls.port}", power_history_step_s=1,
                        http_stream_queue_bytes=4096)
        cls.f.start_site("pod-1", "pod", cores=2)
        cls.site_metrics_port = free_port()
        cls.f.start_site("dc-1", "dc", cores=2,
                         metrics_listen=f"127.0.0.1:{cls.site_metrics_port}")
        cls.tokens = {}
        # the admin token acts as the hub's local admin operator, whose key join tokens are
        # sealed to; the others as operators of their own
        cls.admin_op = "op-" + cls.f.cli("operator-key").stdout.split()[0][:16]
        for role in ("viewer", "operator", "admin"):
            op_id = cls.admin_op if role == "admin" else f"op-api-{role}"
            r = cls.f.cli("api-token", "create", "--operator", op_id, "--role", role)
            cls.tokens[role] = r.stdout.strip()
        status, _, body = http_call(cls.port, "GET", "/v1/openapi.json")
        assert status == 200, body
        cls.openapi = OpenApi(json.loads(body))

    @classmethod
    def tearDownClass(cls):
        codes = cls.f.stop()
        assert codes.get("hub") == 0, codes

    def call(self, method, path, body=None, role="admin", check=True, **kw):
        token = self.tokens[role] if role else None
        status, headers, data = http_call(self.port, method, path, body, token, **kw)
        if check and headers.get("content-type", "").startswith("application/json"):
            self.openapi.check(self, method, path, status, data)
        return status, headers, data

    def json_call(self, method, path, body=None, expect=200, **kw):
        status, _, data = self.call(method, path, body, **kw)
        self.assertEqual(status, expect, data)
        return json.loads(data)

    def wait_state(self, job_id, states, timeout=60):
        return wait_for(lambda: self.json_call("GET", f"/v1/jobs/{job_id}")["job"]["state"]
                        in states, timeout, 0.2, f"job {job_id} in {states}")

    def login(self, token):
        return http_call(self.port, "POST", "/v1/login", {"token": token})

    def open_stream(self, token, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.connect(("127.0.0.1", self.port))
        s.sendall(f"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                  "Accept: text/event-stream\r\n\r\n".encode())
        return s


class ApiTest(ApiFleet, unittest.TestCase):
    # ---- every endpoint, checked against the document

    def test_every_endpoint_matches_the_document(self):
        self.assertIsNotNone(jsonschema, "python3-jsonschema is needed (scripts/deps.sh test)")
        j = self.json_call
        health = j("GET", "/v1/health", role=None)
        self.assertTrue(health["ok"])
        ids = j("POST", "/v1/jobs", NOOP, expect=201)["ids"]
        ids += j("POST", "/v1/jobs", {"specs": [NOOP, NOOP]}, expect=201)["ids"]
        self.assertEqual(len(ids), 3)
        for i in ids:
            self.wait_state(i, ("succeeded",))
        listed = j("GET", "/v1/jobs?state=succeeded&limit=100")
        self.assertTrue(set(ids) <= {x["id"] for x in listed["jobs"]})
        job = j("GET", f"/v1/jobs/{ids[0]}")
        self.assertIn("placed", [e["event"] for e in job["events"]])
        j("GET", f"/v1/jobs/{ids[0]}/result")
        held = j("POST", "/v1/jobs", dict(NOOP, deadline_s=3600), expect=201)["ids"][0]
        st, _, _ = self.call("POST", f"/v1/jobs/{held}/cancel")
        self.assertIn(st, (200, 400))  # it may have finished already
        st, _, _ = self.call("POST", f"/v1/jobs/{held}/approve")
        self.assertEqual(st, 400)  # not awaiting approval
        sites = j("GET", "/v1/sites")["sites"]
        self.assertEqual({s["id"] for s in sites}, {"pod-1", "dc-1"})
        # the broker each site said it is on (its heartbeats come every 500 ms)
        wait_for(lambda: all(s["broker"] == f"127.0.0.1:{self.f.port}"
                             for s in j("GET", "/v1/sites")["sites"]), 10, 0.2,
                 "the sites' broker in /v1/sites")
        st, _, _ = self.call("POST", "/v1/sites/pod-1/clear")
        self.assertEqual(st, 400)  # not quarantined
        self.assertIn("counts", j("GET", "/v1/stats"))
        self.assertEqual(j("GET", "/v1/policy")["version"], 0)
        pol = j("PUT", "/v1/policy", {"text": "version 1\nsubmit exec,noop,route,learn by *\n"})
        self.assertEqual(pol["version"], 1)
        tok = j("POST", "/v1/tokens", {"class": "pod", "site": "pod-9"}, expect=201)
        self.assertTrue(tok["sealed_token"])
        made = j("POST", "/v1/api-tokens", {"operator": "op-tmp", "role": "viewer"}, expect=201)
        listed = j("GET", "/v1/api-tokens")["tokens"]
        self.assertIn(made["id"], [t["id"] for t in listed])
        self.assertNotIn(made["token"], json.dumps(listed))
        j("DELETE", f"/v1/api-tokens/{made['id']}")
        st, _, _ = self.call("GET", "/v1/jobs", role=None, headers={
            "Authorization": "Bearer " + made["token"]})
        self.assertEqual(st, 401)  # revoked
        head = j("GET", "/v1/audit/head")["head"]
        self.assertGreater(head["size"], 0)
        proof = j("GET", "/v1/audit/prove?index=0")
        self.assertEqual(proof["index"], 0)
        entries = j("GET", "/v1/audit/entries?start=0&limit=5")
        self.assertEqual(len(entries["entries"]), 5)
        j("GET", "/v1/models?limit=10")
        st, _, _ = self.call("GET", "/v1/models/nosuch")
        self.assertEqual(st, 404)
        st, _, data = self.call("POST", "/v1/models/nosuch/pool", {"owner": "nobody"})
        self.assertIn(st, (400, 404), data)
        power = wait_for(lambda: (lambda p: p if p["classes"]["pod"]["offered_w"] and
                                  max(p["classes"]["pod"]["offered_w"]) > 0 else None)(
            j("GET", "/v1/power?hours=1")), 20, 0.5, "a power sample with pod-1 alive")
        self.assertEqual(power["step_s"], 1)
        # the same history and tokens from the CLI, over MQTT
        self.assertIn("pod", self.f.cli("power-history", "--hours", "1").stdout)
        self.assertIn("op-api-viewer", self.f.cli("api-token", "list").stdout)
        self.assertEqual(set(power["classes"]), {"pod", "car", "dc"})
        st, headers, body = self.call("GET", "/")
        self.assertEqual(st, 200)
        self.assertIn("default-src 'self'", headers["content-security-policy"])
        self.assertIn(b"<html", body.lower())
        st, headers, body = self.call("GET", "/metrics", role=None)
        self.assertEqual(st, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        self.call("POST", "/v1/logout", role=None)
        status, headers, _ = self.login(self.tokens["viewer"])
        self.assertEqual(status, 200)
        # every path and method of the document was called (events and metrics are not JSON)
        self.openapi.seen |= {("get", "/v1/events"), ("get", "/metrics"), ("get", "/v1/openapi.json")}
        documented = {(m, p) for p, ops in self.openapi.doc["paths"].items() for m in ops}
        self.assertEqual(documented - self.openapi.seen, set())

    # ---- errors

    def test_every_error_status(self):
        cases = [
            ("POST", "/v1/jobs", None, b"{not json", {"Content-Type": "application/json"}, 400),
            ("POST", "/v1/jobs", None, b"[1, 2]", {"Content-Type": "application/json"}, 400),
            ("POST", "/v1/jobs", {"kind": "warp"}, None, None, 400),
            ("GET", "/v1/jobs?limit=many", None, None, None, 400),
            ("GET", "/v1/audit/prove", None, None, None, 400),
            ("GET", "/v1/jobs/123456789", None, None, None, 404),
            ("GET", "/v1/jobs/abc", None, None, None, 404),
            ("GET", "/v1/nothing/here", None, None, None, 404),
            ("DELETE", "/v1/jobs", None, None, None, 405),
            ("PUT", "/v1/sites", None, None, None, 405),
            ("POST", "/v1/jobs", None, b"kind=noop", {"Content-Type": "text/plain"}, 415),
            ("POST", "/v1/jobs", None, b'{"kind": "noop"}', {}, 415),
        ]
        for method, path, body, raw, headers, expect in cases:
            with self.subTest(method=method, path=path, expect=expect):
                st, h, data = self.call(method, path, body, raw=raw, headers=headers,
                                        role="admin" if path != "/v1/login" else None)
                self.assertEqual(st, expect, data)
                err = json.loads(data)
                self.assertTrue(err["error"])
                self.assertTrue(err["code"])
                if expect == 405:
                    self.assertIn("allow", h)
        st, h, data = self.call("GET", "/v1/jobs", role=None)
        self.assertEqual(st, 401)
        self.assertIn("Bearer", h.get("www-authenticate", ""))
        bad = self.tokens["admin"][:-4] + "0000"
        for token in ("nonsense", bad, "oat1_" + "0" * 16 + "_" + "0" * 64):
            st, _, _ = self.call("GET", "/v1/jobs", role=None,
                                 headers={"Authorization": "Bearer " + token})
            self.assertEqual(st, 401, token)

    def test_roles(self):
        st, _, data = self.call("POST", "/v1/jobs", NOOP, role="viewer")
        self.assertEqual(st, 403)
        self.assertIn("needs the operator role", json.loads(data)["error"])
        st, _, _ = self.call("GET", "/v1/jobs", role="viewer")
        self.assertEqual(st, 200)
        st, _, data = self.call("PUT", "/v1/policy", {"text": "version 9\n"}, role="operator")
        self.assertEqual(st, 403)
        self.assertIn("needs the admin role", json.loads(data)["error"])
        st, _, _ = self.call("POST", "/v1/api-tokens", {"operator": "x", "role": "admin"},
                             role="operator")
        self.assertEqual(st, 403)
        st, _, data = self.call("POST", "/v1/jobs", NOOP, role="operator")
        self.assertEqual(st, 201, data)

    def test_the_policy_caps_a_tokens_role(self):
        current = self.json_call("GET", "/v1/policy")
        version = current["version"]
        body = "".join(line + "\n" for line in current["text"].splitlines()
                       if not line.startswith("version"))

        def set_policy(extra):
            nonlocal version
            version += 1
            self.json_call("PUT", "/v1/policy", {"text": f"version {version}\n{body}{extra}"})
        set_policy("api op-api-operator viewer\napi * admin\n")
        try:
            st, _, data = self.call("POST", "/v1/jobs", NOOP, role="operator")
            self.assertEqual(st, 403, data)
            self.assertIn("the hub's policy allows its operator no more", json.loads(data)["error"])
            st, _, _ = self.call("GET", "/v1/jobs", role="operator")
            self.assertEqual(st, 200)
            set_policy("api op-api-operator none\napi * admin\n")
            st, _, data = self.call("GET", "/v1/jobs", role="operator")
            self.assertEqual(st, 403, data)
        finally:
            set_policy("")
        st, _, data = self.call("POST", "/v1/jobs", NOOP, role="operator")
        self.assertEqual(st, 201, data)

    # ---- the audit log names the token's operator

    def test_changes_are_audited_under_the_tokens_operator(self):
        job = self.json_call("POST", "/v1/jobs", NOOP, role="operator", expect=201)["ids"][0]
        entries = self.json_call("GET", f"/v1/audit/entries?subject=job:{job}&kind=submitted")
        self.assertEqual(len(entries["entries"]), 1, entries)
        self.assertIn("op-api-operator", json.dumps(entries["entries"][0]))
        made = self.json_call("POST", "/v1/api-tokens", {"operator": "op-x", "role": "viewer"},
                              expect=201)
        shown = self.f.cli("audit", "show", "--kind", "api-token").stdout
        self.assertIn(made["id"], shown)
        self.assertIn(self.admin_op, shown)
        self.assertNotIn(made["token"].split("_")[2], shown)

    # ---- the console's session cookie

    def test_cookie_login_needs_the_csrf_header_for_changes(self):
        st, _, _ = self.login("oat1_" + "1" * 16 + "_" + "2" * 64)
        self.assertEqual(st, 401)
        st, headers, data = self.login(self.tokens["operator"])
        self.assertEqual(st, 200, data)
        self.openapi.check(self, "POST", "/v1/login", st, data)
        cookie = headers["set-cookie"]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        session = cookie.split(";")[0]
        jar = {"Cookie": session}
        st, _, _ = http_call(self.port, "GET", "/v1/jobs", headers=jar)
        self.assertEqual(st, 200)
        st, _, data = http_call(self.port, "POST", "/v1/jobs", NOOP, headers=jar)
        self.assertEqual(st, 403)
        self.assertIn("X-Outpost-CSRF", json.loads(data)["error"])
        st, _, data = http_call(self.port, "POST", "/v1/jobs", NOOP,
                                headers=dict(jar, **{"X-Outpost-CSRF": "1"}))
        self.assertEqual(st, 201, data)
        # a bearer token needs no CSRF header: a cross-site form cannot set it
        st, _, _ = self.call("POST", "/v1/jobs", NOOP, role="operator")
        self.assertEqual(st, 201)
        st, headers, _ = http_call(self.port, "POST", "/v1/logout", headers=jar)
        self.assertEqual(st, 200)
        self.assertIn("Max-Age=0", headers["set-cookie"])
        st, _, _ = http_call(self.port, "GET", "/v1/jobs", headers=jar)
        self.assertEqual(st, 401)

    # ---- server-sent events

    def test_events_show_a_job_going_through_its_states(self):
        s = self.open_stream(self.tokens["viewer"])
        got = bytearray()
        stop = threading.Event()

        def reader():
            s.settimeout(0.5)
            while not stop.is_set():
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                got.extend(chunk)
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            wait_for(lambda: b"200 OK" in got, 10, 0.05, "the stream's headers")
            self.assertIn(b"text/event-stream", bytes(got))
            job = self.json_call("POST", "/v1/jobs", NOOP, role="operator", expect=201)["ids"][0]

            def states():
                out = []
                for m in re.finditer(rb"event: job\r?\ndata: (\{[^\n]*\})", bytes(got)):
                    d = json.loads(m.group(1))
                    if d["id"] == job:
                        out.append(d["state"])
                return out
            wait_for(lambda: "succeeded" in states(), 30, 0.1, "the job's events")
            seen = states()
            self.assertEqual(seen[0], "queued", seen)
            self.assertEqual(seen[-1], "succeeded", seen)
            wait_for(lambda: b"event: stats" in got, 15, 0.2, "a stats event")
            wait_for(lambda: b"event: site" in got, 15, 0.2, "a site event")
        finally:
            stop.set()
            t.join(5)
            s.close()

    # ---- metrics

    def test_metrics_parse_and_count_jobs(self):
        def scrape():
            st, _, body = self.call("GET", "/metrics", role=None)
            self.assertEqual(st, 200)
            return parse_metrics(self, body.decode())
        before = scrape()
        ids = self.json_call("POST", "/v1/jobs", {"specs": [NOOP] * 3}, role="operator",
                             expect=201)["ids"]
        for i in ids:
            self.wait_state(i, ("succeeded",))
        after = scrape()
        key = ("outpost_jobs_total", (("state", "succeeded"),))
        self.assertGreaterEqual(after[key] - before.get(key, 0), 3)
        self.assertGreater(after[("outpost_placement_seconds_count", ())],
                           before.get(("outpost_placement_seconds_count", ()), 0))
        for name in ("outpost_jobs", "outpost_sites", "outpost_site_power_watts",
                     "outpost_messages_rejected_total", "outpost_audit_entries",
                     "outpost_audit_log_bytes", "outpost_http_requests_total",
                     "process_resident_memory_bytes"):
            self.assertTrue(any(k[0] == name for k in after), name)
        self.assertEqual(after[("outpost_sites", (("class", "pod"), ("state", "alive")))], 1)
        # every series the example Grafana dashboard draws is one the hub exports
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with open(os.path.join(root, "examples", "grafana-dashboard.json")) as fh:
            exprs = [t["expr"] for p in json.load(fh)["panels"] for t in p["targets"]]
        names = {k[0] for k in after}
        for expr in exprs:
            for name in re.findall(r"\b((?:outpost|process)_[a-z_]+)\b", expr):
                self.assertIn(name, names, expr)
        self.assertGreater(after[("outpost_site_power_watts",
                                  (("kind", "envelope"), ("site", "dc-1")))], 0)

    def test_site_metrics(self):
        st, headers, body = http_call(self.site_metrics_port, "GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        values = parse_metrics(self, body.decode())
        self.assertEqual(values[("outpost_site_power_watts",
                                 (("kind", "envelope"), ("site", "dc-1")))], 200)
        self.assertIn(("outpost_site_jobs_running", ()), values)
        st, _, _ = http_call(self.site_metrics_port, "GET", "/v1/jobs")
        self.assertEqual(st, 404)
        st, _, _ = http_call(self.site_metrics_port, "POST", "/metrics", raw=b"x")
        self.assertIn(st, (405, 413))

def parse_metrics(test, text):
    """Checks the exposition format line by line; {(name, sorted labels): value}."""
    families, values, buckets = {}, {}, {}
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (-?[0-9.eE+]+|\+Inf|NaN)$')
    for line in text.splitlines():
        if line.startswith("# HELP "):
            families.setdefault(line.split()[2], {})["help"] = True
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            test.assertIn(kind, ("counter", "gauge", "histogram", "summary", "untyped"))
            families.setdefault(name, {})["type"] = kind
            continue
        m = sample.match(line)
        test.assertIsNotNone(m, f"malformed metrics line: {line!r}")
        name, labels = m.group(1), m.group(3) or ""
        pairs = tuple(sorted(tuple(p.split("=", 1)) for p in re.findall(r'[a-z_]+="[^"]*"', labels)))
        pairs = tuple((k, v.strip('"')) for k, v in pairs)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        fam = families.get(name) or families.get(base)
        test.assertIsNotNone(fam, f"{name} has no HELP/TYPE")
        test.assertTrue(fam.get("help") and fam.get("type"), name)
        if fam["type"] == "counter":
            test.assertTrue(name.endswith("_total"), name)
        value = float(m.group(4))
        values[(name, tuple((k, v) for k, v in pairs if k != "le"))
               if name.endswith("_bucket") else (name, pairs)] = value
        if name.endswith("_bucket"):
            le = dict(pairs)["le"]
            buckets.setdefault(base, []).append((float("inf") if le == "+Inf" else float(le), value))
    for base, bs in buckets.items():
        test.assertEqual([b[0] for b in bs], sorted(b[0] for b in bs), base)
        test.assertEqual([b[1] for b in bs], sorted(b[1] for b in bs), f"{base} not monotone")
        test.assertEqual(bs[-1][1], values[(base + "_count", ())])
    return values


class ApiTlsTest(unittest.TestCase):
    """HTTPS with a certificate from a test CA made here; plain HTTP is refused."""

    def test_tls(self):
        f = Fleet()
        try:
            d = os.path.join(f.base, "httpca")
            os.makedirs(d)

            def ssl_run(*args):
                subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
            ssl_run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj",
                    "/CN=outpost test http CA")
            ssl_run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", "hub.key", "-out", "hub.csr", "-subj", "/CN=127.0.0.1")
            with open(os.path.join(d, "ext"), "w") as fh:
                fh.write("subjectAltName=IP:127.0.0.1\n")
            ssl_run("x509", "-req", "-in", "hub.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", "hub.crt", "-days", "2", "-extfile", "ext")
            port = free_port()
            f.start_broker()
            f.start_hub(http_listen=f"127.0.0.1:{port}", http_cert=os.path.join(d, "hub.crt"),
                        http_key=os.path.join(d, "hub.key"))
            token = f.cli("api-token", "create", "--operator", "op-tls", "--role",
                          "viewer").stdout.strip()
            ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
            st, _, body = http_call(port, "GET", "/v1/jobs", token=token, tls_ctx=ctx)
            self.assertEqual(st, 200, body)
            st, headers, _ = http_call(port, "POST", "/v1/login", {"token": token}, tls_ctx=ctx)
            self.assertEqual(st, 200)
            self.assertIn("Secure", headers["set-cookie"])
            with self.assertRaises(ssl.SSLError):  # a client that does not trust the CA
                http_call(port, "GET", "/v1/health", tls_ctx=ssl.create_default_context())
            try:
                st, _, _ = http_call(port, "GET", "/v1/health", timeout=5)
                self.assertNotEqual(st, 200)
            except (http.client.HTTPException, OSError):
                pass  # plain HTTP on the TLS port: no answer
        finally:
            codes = f.stop()
        self.assertEqual(codes.get("hub"), 0, codes)


if __name__ == "__main__":
    unittest.main()
