"""A site's claimed capacity checked against what it delivers, on a real fleet (a real
mosquitto, a hub and site agents as processes, probe = on with a short interval):

- an honest site (1 core claimed on this machine) passes its probe at enrollment and runs
  work;
- a site that claims 64 cores on this machine is ranked down to what its probe measured
  (a job bigger than that is refused at submission), `outpost sites` says it over-claims,
  the check is on the audit log; its second probe quarantines it (no work placed there,
  the explanation says why) until `outpost sites clear` lets it back, checked anew;
- a forged probe answer (wrong nonces, signed with the real site's key and sealed to the
  hub, sent before the site's own answer) quarantines the site at once; the real answer
  that follows is ignored.

The forger here is this test: it reads the site's inbox as a broker-wide eavesdropper,
opens the hub's challenge with the site's own key (taken from its data dir, as an owner
who controls the machine could), and answers with libsodium through ctypes: Ed25519
signature over topic and payload, sealed box to the hub's key, the MQTT 5 user properties
the hub reads.
"""
import ctypes
import ctypes.util
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet, Wire, wait_for  # noqa: E402

SEAL_MAGIC = b"\0OS1"
PROBE_MS = 1000
INTERVAL_MS = 5000
HUB_CONF = {"probe": "on", "probe_ms": PROBE_MS, "probe_interval_ms": INTERVAL_MS,
            "probe_timeout_ms": 8000}


class SiteKey:
    """A site's Ed25519 identity from its data dir, and the libsodium calls a site makes
    with it: sign, seal to the hub, open what the hub sealed to it."""

    def __init__(self, site_dir):
        self.na = ctypes.CDLL(ctypes.util.find_library("sodium"))
        assert self.na.sodium_init() >= 0
        with open(os.path.join(site_dir, "identity", "identity.key")) as f:
            self.sk = bytes.fromhex(f.read().strip())
        self.pk = self.sk[32:]
        self.xpk = self._buf(32)
        self.xsk = self._buf(32)
        assert self.na.crypto_sign_ed25519_pk_to_curve25519(self.xpk, self.pk) == 0
        assert self.na.crypto_sign_ed25519_sk_to_curve25519(self.xsk, self.sk) == 0

    @staticmethod
    def _buf(n):
        return ctypes.create_string_buffer(n)

    def sign(self, topic, payload):
        data = topic.encode() + b"\0" + payload
        sig = self._buf(64)
        assert self.na.crypto_sign_detached(sig, None, data, ctypes.c_ulonglong(len(data)),
                                            self.sk) == 0
        return sig.raw.hex()

    def seal(self, hub_pk, text):
        xpk = self._buf(32)
        assert self.na.crypto_sign_ed25519_pk_to_curve25519(xpk, hub_pk) == 0
        out = self._buf(len(text) + 48)
        assert self.na.crypto_box_seal(out, text, ctypes.c_ulonglong(len(text)), xpk) == 0
        return SEAL_MAGIC + out.raw

    def open(self, payload):
        if not payload.startswith(SEAL_MAGIC) or len(payload) < 4 + 48:
            return None
        box = payload[4:]
        out = self._buf(len(box) - 48)
        if self.na.crypto_box_seal_open(out, box, ctypes.c_ulonglong(len(box)), self.xpk,
                                        self.xsk) != 0:
            return None
        return json.loads(out.raw)


class ClaimsTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.f.start_broker()
        self.f.start_hub(**HUB_CONF)

    def tearDown(self):
        self.f.stop()

    def site(self, name):
        return next(s for s in self.f.cli_json("sites")["sites"] if s["id"] == name)

    def verdict(self, name):
        return self.site(name).get("claims", {}).get("verdict", "")

    def wait_verdict(self, name, prefix, timeout=30):
        return wait_for(lambda: self.verdict(name).startswith(prefix) and self.site(name), timeout,
                        0.2, f"{name}'s claims verdict '{prefix}...'")

    def submit(self, *args):
        return int(self.f.cli("submit", "--quiet", *args).stdout.split()[0])

    def test_honest_passes_overclaimer_ranked_down_then_quarantined(self):
        f = self.f
        f.start_site("honest", "pod", cores=1)
        s = self.wait_verdict("honest", "ok:")
        self.assertGreaterEqual(s["claims"]["measured_cores"], 1 / 8)
        self.assertEqual(s["claims"]["cores_counted"], 1)
        self.assertNotIn("held", s)
        jid = self.submit("--classes", "pod", "--", "true")
        self.assertEqual(f.wait_jobs_terminal([jid])[jid], "succeeded")

        f.start_site("liar", "dc", cores=64)
        s = self.wait_verdict("liar", "over-claims:")
        self.assertIn("64 cores claimed", s["claims"]["verdict"])
        counted = s["claims"]["cores_counted"]
        self.assertGreaterEqual(counted, 1)
        self.assertLessEqual(counted, os.cpu_count())
        self.assertEqual(s["cores"], 64)  # the claim itself is kept, and shown
        self.assertEqual(s["claims"]["failures"], 1)
        text = f.cli("sites").stdout
        self.assertIn("^ over-claims: 64 cores claimed", text)
        checks = f.cli("audit", "show", "--kind", "claims-checked", "--site", "liar").stdout
        self.assertIn("over-claims: 64 cores claimed", checks)
        self.assertIn('"solutions":', checks)
        # ranked down: the scheduler sees the measured cores, not the 64 claimed
        r = f.cli("submit", "--classes", "dc", "--cores", str(counted + 1), "--kind", "noop",
                  check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("too small", r.stderr + r.stdout)

        # the next probe (probe_interval_ms later) fails again: quarantined
        s = wait_for(lambda: self.site("liar").get("quarantined") and self.site("liar"),
                     INTERVAL_MS / 1000 + 20, 0.3, "liar quarantined")
        self.assertIn("over-claims again: 64 cores claimed", s["quarantined"])
        text = f.cli("sites").stdout
        row = next(line for line in text.splitlines() if line.startswith("liar "))
        self.assertIn("quarantined", row)
        self.assertIn("^ quarantined: over-claims again", text)
        self.assertIn("outpost sites clear liar", text)
        jid = self.submit("--classes", "dc", "--kind", "noop")
        explanation = wait_for(
            lambda: "held" in (f.job(jid)["job"].get("explanation") or "") and
            f.job(jid)["job"]["explanation"], 10, 0.2, "an explanation naming the hold")
        self.assertIn("liar: held (quarantined: over-claims again", explanation)
        self.assertEqual(f.job(jid)["job"]["state"], "queued")
        self.assertIn("over-claims again",
                      f.cli("audit", "show", "--kind", "site-quarantined").stdout)

        # an operator lets it back: checked anew (held until then), over-claims once more
        out = f.cli("sites", "clear", "liar").stdout
        self.assertIn("site liar cleared", out)
        s = self.site("liar")
        self.assertNotIn("quarantined", s)
        s = self.wait_verdict("liar", "over-claims:")
        self.assertEqual(s["claims"]["failures"], 1)
        self.assertNotIn("quarantined", s)
        self.assertIn('"site":"liar"', f.cli("audit", "show", "--kind", "site-cleared").stdout)
        # the honest site kept passing its checks all along
        self.assertTrue(self.verdict("honest").startswith("ok:"))
        r = f.cli("sites", "clear", "honest", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not quarantined", r.stderr)

    def test_forged_probe_answer_quarantines_at_once(self):
        f = self.f
        f.start_site("forger", "pod", cores=1)
        self.wait_verdict("forger", "ok:")
        key = SiteKey(os.path.join(f.base, "sites", "forger"))
        with open(os.path.join(f.hub_dir, "cli.conf")) as fh:
            conf = dict(line.split(" = ", 1) for line in fh.read().splitlines() if " = " in line)
        hub_pk = bytes.fromhex(conf["hub_pubkey"].strip())
        inbox = "outpost/v1/site/forger/inbox"
        wire = Wire(f, inbox)
        try:
            # the next challenge (probe_interval_ms after the first verdict), opened with the
            # site's key as soon as the broker delivers it
            def challenge():
                for _, payload, _ in list(wire.messages):
                    body = key.open(payload)
                    if body and body.get("type") == "probe":
                        return body
                return None
            probe = wait_for(challenge, INTERVAL_MS / 1000 + 20, 0.01, "the next challenge")
            topic = "outpost/v1/site/forger/event"
            now_ms = int(time.time() * 1000)
            # above the site's own numbering (it started from its start time in microseconds)
            body = {"probe": probe["probe"], "nonces": list(range(1, 201)), "from": "forger",
                    "type": "probe", "seq": now_ms * 1000, "ts": now_ms}
            payload = key.seal(hub_pk, json.dumps(body).encode())
            wire.publish(topic, payload, props={"kid": "forger", "sig": key.sign(topic, payload)},
                         as_="forger")
            s = wait_for(lambda: self.site("forger").get("quarantined") and self.site("forger"),
                         10, 0.1, "forger quarantined")
        finally:
            wire.close()
        self.assertIn("forged probe answer", s["quarantined"])
        self.assertIn("not a solution", s["quarantined"])
        # the site's own (true) answer, a moment later, changes nothing: dropped (the forger's
        # sequence number moved the site's window past it) or not in flight any more
        time.sleep(PROBE_MS / 1000 + 1)
        s = self.site("forger")
        self.assertIn("forged probe answer", s.get("quarantined", ""))
        log = f.hub.log_text()
        self.assertTrue("replayed seq" in log or "not in flight" in log, log[-2000:])
        self.assertIn("quarantined", f.cli("sites").stdout)


if __name__ == "__main__":
    unittest.main()
