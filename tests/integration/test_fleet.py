"""Integration tests of the fleet core: a real mosquitto broker, a hub and
three site agents (pod, car, dc) as separate processes on loopback."""
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import UNCHECKED_POLICY, Wire, bundle, unbundle, Fleet, wait_for  # noqa: E402



def applied_results(job):
    return [r for r in job["results"] if r["applied"]]


class FleetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Fleet()
        cls.f.start_broker()
        cls.f.start_hub(policy=UNCHECKED_POLICY)
        cls.f.start_site("pod-1", "pod", cores=2)
        cls.f.start_site("car-1", "car", cores=2)
        cls.f.start_site("dc-1", "dc", cores=4, memory_mb=4096)

    @classmethod
    def tearDownClass(cls):
        codes = cls.f.stop()
        # Clean shutdown on SIGTERM: every process exits 0 (ASan leak check included).
        for name, code in codes.items():
            if name in ("hub", "pod-1", "car-1", "dc-1"):
                assert code == 0, f"{name} exited {code} on SIGTERM"

    def counts(self):
        return self.f.cli_json("jobs", "--limit", "1")["counts"]

    def test_jobs_of_each_class_complete(self):
        ids = {}
        for cls, site in (("pod", "pod-1"), ("car", "car-1"), ("dc", "dc-1")):
            r = self.f.cli("submit", "--quiet", "--name", f"hash-{cls}", "--classes", cls, "--",
                           "sh", "-c", "head -c 2000000 /dev/zero | sha256sum")
            ids[int(r.stdout.strip())] = site
        states = self.f.wait_jobs_terminal(list(ids), 60)
        for jid, site in ids.items():
            self.assertEqual(states[jid], "succeeded")
            job = self.f.job(jid)
            self.assertEqual(job["job"]["site"], site)
            self.assertEqual(len(applied_results(job)), 1)
            res = self.f.cli_json("result", str(jid))
            zeros = hashlib.sha256(bytes(2000000)).hexdigest()
            self.assertEqual(res["stdout"], zeros + "  -\n")
            self.assertGreaterEqual(res["cpu_seconds"], 0)
            self.assertIn("placed on " + site, job["job"]["explanation"])

    def test_inputs_by_hash_and_declared_outputs(self):
        data = os.urandom(50000)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "blob.bin")
            with open(path, "wb") as fh:
                fh.write(data)
            r = self.f.cli("submit", "--quiet", "--input", path, "--output", "blob.gz", "--output", "nope",
                           "--", "sh", "-c", "gzip -c blob.bin > blob.gz; echo ok")
            jid = int(r.stdout.strip())
            self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "succeeded")
            res = self.f.cli_json("result", str(jid))
            self.assertEqual(res["stdout"], "ok\n")
            self.assertEqual(res["missing_outputs"], ["nope"])
            out = res["outputs"][0]
            blob = base64.b64decode(out["data_b64"])
            self.assertEqual(hashlib.sha256(blob).hexdigest(), out["sha256"])
            import gzip
            self.assertEqual(gzip.decompress(blob), data)
            saved = self.f.cli("result", str(jid), "--save", os.path.join(d, "out"))
            self.assertIn("(verified)", saved.stdout)
            self.assertTrue(os.path.exists(os.path.join(d, "out", "blob.gz")))

    def test_failing_job_is_failed_with_exit_code(self):
        jid = int(self.f.cli("submit", "--quiet", "--", "sh", "-c", "echo boom >&2; exit 7").stdout)
        self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "failed")
        job = self.f.job(jid)
        self.assertEqual(job["job"]["reason"], "exit code 7")
        self.assertEqual(job["job"]["attempt"], 1)  # a job's own failure is not retried
        res = self.f.cli_json("result", str(jid))
        self.assertEqual(res["stderr"], "boom\n")

    def test_bad_specs_get_clear_errors_and_change_nothing(self):
        before = self.counts()
        cases = [
            ("{not json", "not valid JSON"),
            (json.dumps({"kind": "exec", "command": ["true"], "colour": "red"}),
             "colour: unknown field"),
            (json.dumps({"kind": "exec"}), "command: required"),
            (json.dumps({"kind": "exec", "command": ["true"], "resources": {"cores": 0}}),
             "resources.cores: must be an integer from 1 to 256"),
            (json.dumps({"kind": "exec", "command": ["true"], "resources": {"cores": 64}}),
             "no site in the fleet can ever run this job"),
            (json.dumps({"kind": "exec", "command": ["true"], "data_class": "site-private"}),
             "origin: required"),
            (json.dumps([{"kind": "noop"}, {"kind": "bogus"}]), "specs[1]: kind"),
            (json.dumps({"kind": "exec", "command": ["cat", "x"], "inputs": [
                {"name": "x", "sha256": "00" * 32, "data_b64": "aGk="}]}),
             "does not match the attached bytes"),
        ]
        for text, expect in cases:
            r = self.f.cli("submit", "-", check=False, input=text)
            self.assertNotEqual(r.returncode, 0, text)
            self.assertIn(expect, r.stderr, f"spec {text!r}: stderr {r.stderr!r}")
        self.assertEqual(self.counts(), before)

    def test_cli_errors_are_clear(self):
        r = self.f.cli("job", "999999", check=False)
        self.assertEqual(r.returncode, 4)
        self.assertIn("no job 999999", r.stderr)
        r = self.f.cli("submit", check=False)
        self.assertEqual(r.returncode, 2)
        r = self.f.cli("token", "create", "--class", "boat", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("pod, car or dc", r.stderr)
        for cmd in ("token", "submit", "jobs", "job", "result", "sites", "watch", "cancel"):
            r = self.f.cli(cmd, "--help")
            self.assertIn("usage: outpost " + cmd, r.stdout)
        r = self.f.cli("frobnicate", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command frobnicate; outpost help lists them", r.stderr)
        self.assertRegex(self.f.cli("submit", "--kind", "noop").stdout, r"^submitted job \d+\n$")

    def test_forged_replayed_unsigned_and_unknown_messages_are_dropped(self):
        sniff = Wire(self.f, "outpost/v1/site/dc-1/state")
        try:
            # heartbeats carry what changed; every tenth is in full, with the capacity
            msg = wait_for(lambda: [m for m in sniff.messages if b'"cores":4' in m[1]][:1], 15,
                           0.05, "a full heartbeat")[0]
            topic, payload, props = msg
            self.assertIn("sig", props)
            self.assertEqual(props["kid"], "dc-1")
            before = self.f.cli_json("stats")["messages"]
            sniff.publish(topic, payload, props)                       # replay
            forged = payload.replace(b'"cores":4', b'"cores":64')
            self.assertNotEqual(forged, payload)
            sniff.publish(topic, forged, props)                        # altered payload
            sniff.publish(topic, payload)                              # no signature
            sniff.publish("outpost/v1/site/ghost/state", payload,
                          {"kid": "ghost", "sig": props["sig"]})       # unknown sender
            sniff.publish(topic, b"\x00garbage{", props)               # malformed + bad sig
            sniff.publish("outpost/v1/site/dc-1/state", payload,
                          {"kid": "pod-1", "sig": props["sig"]})       # wrong kid for topic
            sniff.publish("outpost/v1/site/dc-1/result", payload, props)  # in clear, must be sealed

            def counted():
                m = self.f.cli_json("stats")["messages"]
                ok = (m["replayed"] >= before["replayed"] + 1 and
                      m["forged"] >= before["forged"] + 3 and
                      m["unsigned"] >= before["unsigned"] + 1 and
                      m["unknown_sender"] >= before["unknown_sender"] + 1 and
                      m["unsealed"] >= before["unsealed"] + 1)
                return m if ok else None
            wait_for(counted, 10, 0.2, "rejections to be counted")
            log = self.f.hub.log_text()
            self.assertIn("replayed seq", log)
            # heartbeats carry a MAC once the hub holds the site's key (signed before that)
            self.assertRegex(log, r"bad (signature|MAC) from 'dc-1'")
            self.assertIn("unsigned message", log)
            self.assertIn("unknown sender 'ghost'", log)
            # The forged capacity never took effect.
            sites = {s["id"]: s for s in self.f.cli_json("sites")["sites"]}
            self.assertEqual(sites["dc-1"]["cores"], 4)
            self.assertTrue(self.f.hub.alive())
        finally:
            sniff.close()

    def test_site_drops_forged_replayed_and_unsigned_offers(self):
        sniff = Wire(self.f, "outpost/v1/site/dc-1/inbox")
        marker = os.path.join(self.f.base, "forged-ran")
        try:
            jid = int(self.f.cli("submit", "--quiet", "--classes", "dc", "--", "echo", "genuine").stdout)
            self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "succeeded")
            # sealed to the site: the offer cannot be told from an ack, nor read
            inbox = wait_for(lambda: sniff.messages[:1], 10, 0.05, "a message to dc-1")
            self.assertEqual([m for m in sniff.messages if b"genuine" in m[1]], [])
            topic, payload, props = inbox[0]
            self.assertTrue(payload.startswith(b"\0OS1"), payload[:16])
            before = {s["id"]: s for s in self.f.cli_json("sites")["sites"]}["dc-1"]["messages"]
            sniff.publish(topic, payload, props)                         # replayed
            evil = payload[:-1] + bytes([payload[-1] ^ 1])
            sniff.publish(topic, evil, props)                            # altered ciphertext
            clear = json.dumps({"from": "hub", "type": "offer", "seq": 1 << 50,
                                "ts": int(time.time() * 1000),
                                "jobs": [{"job": jid, "attempt": 9, "lease_ms": 60000,
                                          "spec": {"command": ["touch", marker]}}]}).encode()
            sniff.publish(topic, clear)                                  # unsigned offer
            sniff.publish(topic, clear, props)                           # in clear, signed

            def counted():
                m = {s["id"]: s for s in self.f.cli_json("sites")["sites"]}["dc-1"]["messages"]
                ok = (m["replayed"] > before["replayed"] and m["forged"] > before["forged"] and
                      m["unsigned"] > before["unsigned"] and m["unsealed"] > before["unsealed"])
                return m if ok else None
            wait_for(counted, 15, 0.3, "the site to count the rejected offers")
            self.assertFalse(os.path.exists(marker))
            log = self.f.sites["dc-1"].log_text()
            self.assertIn("bad signature from 'hub'", log)
            self.assertIn("replayed seq", log)
            self.assertEqual(len(applied_results(self.f.job(jid))), 1)
            self.assertIn("REJECTED", self.f.cli("sites").stdout)
        finally:
            sniff.close()

    def test_forged_operator_request_is_dropped(self):
        sniff = Wire(self.f, "outpost/v1/op/+/req")
        try:
            self.f.cli("jobs")
            topic, payload, props = wait_for(lambda: sniff.messages[:1], 10, 0.05, "a request")[0]
            before = self.f.cli_json("stats")["messages"]["forged"]
            self.assertNotIn(b'"cmd"', payload)                # sealed to the hub
            evil = payload[:-1] + bytes([payload[-1] ^ 1])
            sniff.publish(topic, evil, props)
            wait_for(lambda: self.f.cli_json("stats")["messages"]["forged"] > before, 10, 0.2,
                     "forged request counted")
        finally:
            sniff.close()

    def test_enrollment_tokens(self):
        tok = self.f.cli("token", "create", "--class", "car", "--site", "car-2", "--owner",
                         "alice").stdout.strip()
        self.assertTrue(tok.startswith("opj1."), tok[:20])  # a join bundle: token + certificate
        # Forged: flip a character in the token's claims; the site refuses it before connecting.
        fields = unbundle(tok)
        parts = fields["token"].split(".")
        claims = parts[1]
        parts[1] = claims[:5] + ("A" if claims[5] != "A" else "B") + claims[6:]
        p = self.f.start_site("car-2", token=bundle(dict(fields, token=".".join(parts))),
                              wait=False)
        self.assertEqual(p.wait(30), 2)
        self.assertRegex(p.log_text(), "bad join token: (token signature does not verify|"
                                       "token claims are malformed|token is not valid)")
        shutil.rmtree(os.path.join(self.f.base, "sites", "car-2"))
        # Made for car-2: another site id cannot use it (the site checks; the hub too).
        p = self.f.start_site("car-3", token=tok, wait=False)
        self.assertEqual(p.wait(30), 2)
        self.assertIn("this join token was made for site car-2, not car-3", p.log_text())
        # A good token enrolls its site.
        self.f.start_site("car-2", token=tok)
        sites = {s["id"]: s for s in self.f.cli_json("sites")["sites"]}
        self.assertEqual(sites["car-2"]["class"], "car")
        # Its owner is the one its token named; other sites own themselves.
        self.assertEqual(sites["car-2"]["owner"], "alice")
        self.assertEqual(sites["pod-1"]["owner"], "pod-1")
        table = self.f.cli("sites").stdout.splitlines()
        self.assertIn("OWNER", table[0])
        self.assertRegex("\n".join(table), r"car-2 +car +alice ")
        self.assertIn('"owner":"alice"', self.f.cli("audit", "show", "--kind", "enrollment",
                                                    "--site", "car-2").stdout)
        # An owner that is not an id is refused before the hub is asked.
        r = self.f.cli("token", "create", "--class", "car", "--site", "car-4", "--owner", "a b",
                       check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--owner must be an id", r.stderr)
        # No token for the hub's name, an operator's, or a site already enrolled.
        for name in ("hub", "op-0123456789abcdef", "car-2"):
            r = self.f.cli("token", "create", "--class", "car", "--site", name, check=False)
            self.assertEqual(r.returncode, 6, r.stderr)
        r = self.f.cli("token", "create", "--class", "car", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--site ID is required", r.stderr)
        # Expired.
        short = self.f.cli("token", "create", "--class", "pod", "--site", "pod-late", "--ttl",
                           "1").stdout.strip()
        time.sleep(1.5)
        p = self.f.start_site("pod-late", token=short, wait=False)
        self.assertEqual(p.wait(30), 2)
        self.assertIn("expired", p.log_text())
        # No token at all.
        p = self.f.start_site("pod-none", wait=False)
        self.assertEqual(p.wait(30), 2)
        self.assertIn("not enrolled yet: pass --token", p.log_text())
        self.f.sites["car-2"].stop()
        del self.f.sites["car-2"]

    def test_sites_view(self):
        sites = {s["id"]: s for s in self.f.cli_json("sites")["sites"]}
        for name, cls in (("pod-1", "pod"), ("car-1", "car"), ("dc-1", "dc")):
            self.assertEqual(sites[name]["class"], cls)
            self.assertEqual(sites[name]["status"], "alive")
            self.assertEqual(sites[name]["power_budget_watts"], 200)
            self.assertGreaterEqual(sites[name]["heartbeat_age_ms"], 0)
        # Protections that this machine cannot give are named, not hidden.
        text = self.f.cli("sites").stdout
        self.assertIn("PROTECTIONS OFF", text)
        # the next hour's forecast envelope (200 W, flat), no departure
        row = next(line for line in text.splitlines() if line.startswith("pod-1 "))
        self.assertIn(" 200 W     - ", row)

    def test_noop_batch_and_cancel(self):
        ids = [int(x) for x in self.f.cli("submit", "--quiet", "--kind", "noop", "--count", "50").stdout.split()]
        self.assertEqual(len(ids), 50)
        states = self.f.wait_jobs_terminal(ids[-5:], 60)
        self.assertTrue(all(s == "succeeded" for s in states.values()))
        jid = int(self.f.cli("submit", "--quiet", "--", "sleep", "30").stdout)
        wait_for(lambda: self.f.job(jid)["job"]["state"] == "running", 30, 0.2, "running")
        self.f.cli("cancel", str(jid))
        self.assertEqual(self.f.job(jid)["job"]["state"], "cancelled")
        r = self.f.cli("cancel", str(jid), check=False)
        self.assertEqual(r.returncode, 6)
        self.assertIn("already cancelled", r.stderr)


class FaultTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.f.start_broker()
        self.f.start_hub(site_lost_after_ms=2000, lease_ms=6000)

    def tearDown(self):
        self.f.stop()

    def test_site_sigkill_mid_job_completes_elsewhere_once(self):
        self.f.start_site("dc-a", "dc", cores=1)
        self.f.start_site("dc-b", "dc", cores=1)
        jid = int(self.f.cli("submit", "--quiet", "--name", "slow", "--", "sh", "-c",
                             "sleep 2; head -c 1000000 /dev/zero | sha256sum").stdout)
        wait_for(lambda: self.f.job(jid)["job"]["state"] == "running", 30, 0.1, "running")
        first = self.f.job(jid)["job"]["site"]
        other = "dc-b" if first == "dc-a" else "dc-a"
        self.f.sites[first].kill(signal.SIGKILL)
        self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "succeeded")
        job = self.f.job(jid)
        self.assertEqual(job["job"]["site"], other)
        self.assertEqual(job["job"]["attempt"], 2)
        self.assertEqual(len(applied_results(job)), 1)
        self.assertIn("lost", " ".join(e["detail"] for e in job["events"]))

    def test_clean_stop_says_goodbye_and_quiet_exits_warn_nothing(self):
        """A site stopped with SIGTERM is 'left', not lost, on the hub and in its log; a CLI
        command and a daemon's clean exit log no lost connection (a disconnect we asked for)."""
        self.f.start_site("dc-a", "dc", cores=1)
        r = self.f.cli("stats")
        self.assertNotIn("lost connection", r.stderr)
        self.assertNotIn("WARN", r.stderr)
        proc = self.f.sites["dc-a"]
        self.assertEqual(proc.stop(), 0)
        self.assertNotIn("lost connection", proc.log_text())
        wait_for(lambda: self.f.site_status("dc-a") == "left", 10, 0.2, "dc-a shown as left")
        time.sleep(2.5)  # past site_lost_after_ms: still left, never lost
        self.assertEqual(self.f.site_status("dc-a"), "left")
        hub_log = self.f.hub.log_text()
        self.assertIn("site dc-a left (said goodbye)", hub_log)
        self.assertNotIn("site dc-a lost", hub_log)

    def test_site_clock_set_back_is_still_heard(self):
        """A site whose clock stepped back since its last run (here: the hub has heard
        sequence numbers from it 12 days ahead of its clock) is still heard after a restart:
        it starts numbering past its own stored last number, not at its clock."""
        import sqlite3
        self.f.start_site("dc-a", "dc", cores=1)
        self.assertEqual(self.f.sites["dc-a"].stop(), 0)
        self.f.hub.stop()
        ahead = int(time.time() * 1e6) + 10**12
        self.f.hub_execute("UPDATE sites SET last_seq=? WHERE id='dc-a'", (ahead,))
        site_db = sqlite3.connect(os.path.join(self.f.base, "sites", "dc-a", "site.db"))
        stored = site_db.execute("SELECT value FROM meta WHERE key='own_seq'").fetchone()
        self.assertIsNotNone(stored, "a clean stop stores the site's last sequence number")
        site_db.execute("UPDATE meta SET value=? WHERE key='own_seq'", (str(ahead),))
        site_db.commit()
        site_db.close()
        self.f.start_hub(site_lost_after_ms=2000, lease_ms=6000)
        self.f.start_site("dc-a")  # waits for the hub to call it alive: heard, not replayed
        jid = int(self.f.cli("submit", "--quiet", "--", "true").stdout)
        self.assertEqual(self.f.wait_jobs_terminal([jid], 30)[jid], "succeeded")

    def test_frozen_site_late_result_is_recorded_not_applied(self):
        self.f.start_site("dc-a", "dc", cores=1)
        self.f.start_site("dc-b", "dc", cores=1)
        jid = int(self.f.cli("submit", "--quiet", "--", "sh", "-c", "sleep 3; echo finished").stdout)
        wait_for(lambda: self.f.job(jid)["job"]["state"] == "running", 30, 0.1, "running")
        first = self.f.job(jid)["job"]["site"]
        # Freeze the agent (its job keeps running in its own process group).
        self.f.sites[first].kill(signal.SIGSTOP)
        self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "succeeded")
        self.f.sites[first].kill(signal.SIGCONT)
        # The frozen site wakes up with a result for attempt 1: recorded, never applied.
        job = wait_for(lambda: (lambda j: j if len(j["results"]) == 2 else None)(self.f.job(jid)),
                       30, 0.3, "the late result")
        self.assertEqual(len(applied_results(job)), 1)
        self.assertEqual(applied_results(job)[0]["attempt"], 2)
        self.assertIn("stale-result", [e["event"] for e in job["events"]])
        stats = self.f.cli_json("stats")
        self.assertGreaterEqual(stats["results"]["stale"], 1)

    def test_first_success_wins_across_attempts(self):
        self.f.start_site("dc-a", "dc", cores=1)
        self.f.start_site("dc-b", "dc", cores=1)
        jid = int(self.f.cli("submit", "--quiet", "--", "sh", "-c", "sleep 4; echo done").stdout)
        wait_for(lambda: self.f.job(jid)["job"]["state"] == "running", 30, 0.1, "running")
        first = self.f.job(jid)["job"]["site"]
        other = "dc-b" if first == "dc-a" else "dc-a"
        t0 = time.monotonic()
        # Freeze the agent: its job runs on; the hub loses the site and places attempt 2.
        self.f.sites[first].kill(signal.SIGSTOP)
        wait_for(lambda: (lambda j: j["job"]["attempt"] == 2 and j["job"]["site"] == other
                          and j["job"]["state"] == "running")(self.f.job(jid)), 30, 0.1,
                 "attempt 2 running elsewhere")
        # Attempt 1 finished meanwhile; its agent wakes up and reports it before attempt 2 ends.
        time.sleep(max(0.0, 4.5 - (time.monotonic() - t0)))
        self.f.sites[first].kill(signal.SIGCONT)
        self.assertEqual(self.f.wait_jobs_terminal([jid], 30)[jid], "succeeded")
        job = self.f.job(jid)
        self.assertIn("attempt 1 on %s finished first" % first, job["job"]["reason"])
        applied = applied_results(job)
        self.assertEqual([(r["attempt"], r["site"]) for r in applied], [(1, first)])
        # Attempt 2 was told to stop; if its result still comes, it is recorded, never applied.
        time.sleep(4)
        job = self.f.job(jid)
        self.assertEqual(len(applied_results(job)), 1)
        self.assertEqual(job["job"]["state"], "succeeded")

    def test_hub_sigkill_and_restart_loses_no_job(self):
        self.f.start_site("pod-a", "pod", cores=2)
        ids = [int(x) for x in self.f.cli("submit", "--quiet", "--count", "12", "--", "sh", "-c",
                                          "sleep 0.3; echo $$").stdout.split()]
        time.sleep(1.0)
        self.f.hub.kill(signal.SIGKILL)
        self.f.hub.wait(10)
        time.sleep(0.5)
        self.f.start_hub(site_lost_after_ms=2000, lease_ms=6000)
        states = self.f.wait_jobs_terminal(ids, 90)
        self.assertTrue(all(s == "succeeded" for s in states.values()), states)
        for jid in ids:
            self.assertEqual(len(applied_results(self.f.job(jid))), 1, jid)

    def test_queue_bound_refuses_with_a_clear_error(self):
        self.f.hub.stop()
        self.f.start_hub(max_queued_jobs=5)
        # No site yet: jobs wait in the queue.
        self.assertEqual(len(self.f.cli("submit", "--quiet", "--kind", "noop", "--count", "4").stdout.split()), 4)
        r = self.f.cli("submit", "--kind", "noop", "--count", "2", check=False)
        self.assertEqual(r.returncode, 6)
        self.assertIn("hub queue full (4 queued, limit 5); retry later", r.stderr)
        self.assertEqual(self.f.cli_json("jobs")["counts"], {"queued": 4})
        self.assertGreaterEqual(self.f.cli_json("stats")["bound_hits"], 1)
        self.f.start_site("dc-a", "dc", cores=2)
        self.f.wait_jobs_terminal([1, 2, 3, 4], 60)

    def test_broker_sigkill_and_restart_loses_nothing(self):
        self.f.start_site("dc-a", "dc", cores=2)
        ids = [int(x) for x in self.f.cli("submit", "--quiet", "--count", "6", "--", "sh", "-c",
                                          "sleep 1; echo ok").stdout.split()]
        time.sleep(0.5)
        self.f.broker.kill(signal.SIGKILL)
        self.f.broker.wait(10)
        time.sleep(2)
        self.f.start_broker(port=self.f.port)   # no persistence: every session is gone
        states = self.f.wait_jobs_terminal(ids, 90)
        self.assertTrue(all(s == "succeeded" for s in states.values()), states)
        for jid in ids:
            self.assertEqual(len(applied_results(self.f.job(jid))), 1, jid)
        self.assertTrue(self.f.hub.alive() and self.f.sites["dc-a"].alive())
        self.assertIn("reconnected", self.f.hub.log_text())

    def test_broker_down_longer_than_the_loss_timeout_loses_no_site(self):
        # The hub hears nobody while its broker is down: that silence is not the sites'.
        self.f.start_site("dc-a", "dc", cores=2)
        ids = [int(x) for x in self.f.cli("submit", "--quiet", "--count", "4", "--", "sh", "-c",
                                          "sleep 1; echo ok").stdout.split()]
        time.sleep(0.5)
        self.f.broker.kill(signal.SIGKILL)
        self.f.broker.wait(10)
        time.sleep(6)   # twice site_lost_after_ms (3 s)
        self.f.start_broker(port=self.f.port)
        wait_for(lambda: "hearing sites again" in self.f.hub.log_text(), 30, 0.2,
                 "the hub to hear sites again")
        states = self.f.wait_jobs_terminal(ids, 90)
        self.assertTrue(all(s == "succeeded" for s in states.values()), states)
        for jid in ids:
            self.assertEqual(len(applied_results(self.f.job(jid))), 1, jid)
        self.assertEqual(self.f.site_status("dc-a"), "alive")
        self.assertNotIn("lost (silent", self.f.hub.log_text())

    def test_site_restart_keeps_unacknowledged_results(self):
        self.f.start_site("dc-a", "dc", cores=2)
        # Stop the hub: results computed now can only wait in the site's outbox.
        ids = [int(x) for x in self.f.cli("submit", "--quiet", "--count", "3", "--", "sh", "-c",
                                          "sleep 1; echo out").stdout.split()]
        wait_for(lambda: all(self.f.job(i)["job"]["state"] in ("placed", "running")
                             for i in ids[:2]), 30, 0.2, "placement")
        self.f.hub.stop()
        time.sleep(2.5)  # jobs finish while the hub is down
        self.f.sites["dc-a"].stop()  # and the site restarts with its outbox on disk
        self.f.start_site("dc-a", wait=False)
        self.f.start_hub(site_lost_after_ms=2000, lease_ms=6000)
        states = self.f.wait_jobs_terminal(ids, 90)
        self.assertTrue(all(s == "succeeded" for s in states.values()), states)
        for jid in ids:
            self.assertEqual(len(applied_results(self.f.job(jid))), 1)


if __name__ == "__main__":
    unittest.main()
