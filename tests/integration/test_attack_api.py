"""Attacks on the hub's HTTP API, each of which must fail to get in (run by `make test` and
`make test-security`): a slow event client holding the hub up, bodies too big for their
route, tokens found in logs or files, secrets compared in variable time, paths reaching
files, request smuggling and oversize headers. The fleet and helpers are test_api.py's."""
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import wait_for  # noqa: E402
from test_api import NOOP, ApiFleet, hub_rss_kb  # noqa: E402


class ApiAttackTest(ApiFleet, unittest.TestCase):
    def test_a_slow_event_client_is_dropped_and_jobs_keep_flowing(self):
        slow = self.open_stream(self.tokens["viewer"], rcvbuf=2048)  # never read
        try:
            time.sleep(0.5)
            ids = []
            for _ in range(4):
                ids += self.json_call("POST", "/v1/jobs", {"specs": [NOOP] * 100}, role="operator",
                                      expect=201)["ids"]
            # the flow does not wait for the client: every job finishes
            wait_for(lambda: all(self.json_call("GET", f"/v1/jobs/{i}")["job"]["state"] ==
                                 "succeeded" for i in ids[-5:]), 90, 0.5, "the jobs to finish")

            def dropped():
                _, _, body = self.call("GET", "/metrics", role=None)
                m = re.search(rb"outpost_http_event_streams_dropped_total (\d+)", body)
                return m and int(m.group(1)) >= 1
            wait_for(dropped, 30, 0.5, "the slow stream to be dropped")
        finally:
            slow.close()

    # ---- body limits and memory

    def test_oversize_bodies_are_refused_without_the_hub_growing(self):
        pid = self.f.hub.p.pid
        big = b"{" + b" " * (5 * 1024 * 1024) + b"}"
        self.assertEqual(self.declared_post("/v1/jobs", big), 413)
        self.assertIn(self.chunked_post("/v1/policy", big, "PUT"), (413, None))
        before = hub_rss_kb(pid)
        for _ in range(10):
            self.assertEqual(self.declared_post("/v1/jobs", big), 413)
            self.assertEqual(self.declared_post("/v1/login", big[:70 * 1024]), 413)
            # chunked, so no length is declared: refused once it passes the limit
            st = self.chunked_post("/v1/login", big)
            self.assertIn(st, (413, None))
        self.assertLess(hub_rss_kb(pid) - before, 16 * 1024)
        self.assertEqual(self.json_call("GET", "/v1/health", role=None)["ok"], True)

    def declared_post(self, path, data):
        """A POST with its length declared; the answer's status (the hub may refuse before
        reading the body, so sending stops at the first refusal)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      f"{self.tokens['admin']}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(data)}\r\n\r\n".encode())
            try:
                s.sendall(data)
            except OSError:
                pass
            answer = s.recv(4096)
            m = re.match(rb"HTTP/1.1 (\d+)", answer)
            return int(m.group(1)) if m else None
        finally:
            s.close()

    def chunked_post(self, path, data, method="POST"):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      f"{self.tokens['admin']}\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n".encode())
            try:
                for i in range(0, len(data), 256 * 1024):
                    part = data[i:i + 256 * 1024]
                    s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the hub closed it: refused
            answer = s.recv(4096)
            m = re.match(rb"HTTP/1.1 (\d+)", answer)
            return int(m.group(1)) if m else None
        except OSError:
            return None
        finally:
            s.close()


    # ---- attacks

    def test_tokens_are_never_logged_or_stored(self):
        secret = self.tokens["admin"].split("_")[2]
        self.call("GET", "/v1/jobs")
        self.login(self.tokens["admin"])
        self.call("GET", "/v1/jobs", role=None, headers={"Authorization": "Bearer " + self.tokens["admin"][:-1] + "x"})
        with open(os.path.join(self.f.base, "hub.log"), "rb") as fh:
            self.assertNotIn(secret.encode(), fh.read())
        for name in os.listdir(self.f.hub_dir):
            path = os.path.join(self.f.hub_dir, name)
            if os.path.isfile(path):
                with open(path, "rb") as fh:
                    self.assertNotIn(secret.encode(), fh.read(), name)

    def test_token_hashes_are_compared_in_constant_time(self):
        src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "src", "hub", "api_auth.c")
        with open(src) as fh:
            text = fh.read()
        self.assertIn("sodium_memcmp(hash, stored", text)
        self.assertIsNone(re.search(r"\b(memcmp|strcmp|strncmp)\([^)]*(hash|secret|sid)", text))
        # a token with a known id and a wrong secret is refused like an unknown one
        good = self.tokens["viewer"]
        wrong = good[:22] + ("0" if good[22] != "0" else "1") + good[23:]
        for token in (wrong, good[:-1] + ("0" if good[-1] != "0" else "1")):
            st, _, _ = self.call("GET", "/v1/jobs", role=None,
                                 headers={"Authorization": "Bearer " + token})
            self.assertEqual(st, 401)

    def test_no_path_reaches_a_file(self):
        for path in ("/console/../../etc/passwd", "/console/%2e%2e/%2e%2e/etc/passwd",
                     "/console/..%2f..%2fhub.db", "/console//etc/passwd", "/console/./index.html/..",
                     "/../etc/passwd", "/console/%2fetc%2fpasswd", "/v1/jobs/..%2f..%2fetc"):
            with self.subTest(path=path):
                st, _, body = self.call("GET", path, check=False)
                self.assertIn(st, (400, 404), body[:200])
                self.assertNotIn(b"root:", body)

    def test_smuggling_and_oversize_headers_are_refused(self):
        def raw(request):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            try:
                s.sendall(request)
                out = b""
                while True:
                    try:
                        chunk = s.recv(65536)
                    except (socket.timeout, ConnectionResetError):
                        break
                    if not chunk:
                        break
                    out += chunk
                return out
            finally:
                s.close()
        auth = f"Authorization: Bearer {self.tokens['admin']}\r\n"
        # both a length and chunked: refused, and the smuggled request never runs
        smuggled = ("POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" + auth +
                    "Content-Type: application/json\r\nContent-Length: 4\r\n"
                    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    "0\r\n\r\nPOST /v1/jobs HTTP/1.1\r\nHost: x\r\n" + auth +
                    "Content-Type: application/json\r\nContent-Length: 16\r\n\r\n"
                    '{"kind": "noop"}').encode()
        before = self.json_call("GET", "/v1/stats")["jobs_submitted"]
        out = raw(smuggled)
        self.assertTrue(out.startswith(b"HTTP/1.1 4"), out[:200])
        self.assertEqual(self.json_call("GET", "/v1/stats")["jobs_submitted"], before)
        # headers past the connection's memory: refused, the hub still answers
        huge = ("GET /v1/jobs HTTP/1.1\r\nHost: x\r\n" + auth + "X-Pad: " + "a" * 100000 +
                "\r\n\r\n").encode()
        out = raw(huge)
        self.assertTrue(out == b"" or re.match(rb"HTTP/1.1 4(13|31|00)", out), out[:200])
        self.assertTrue(self.json_call("GET", "/v1/health", role=None)["ok"])

if __name__ == "__main__":
    unittest.main()
