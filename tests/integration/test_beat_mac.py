"""Heartbeats authenticated by a MAC, tried on a real fleet (a real mosquitto, a hub and a
site as processes).

Once the hub's welcome names the key the site sent in its sealed hello, the site's
heartbeats carry a MAC instead of an Ed25519 signature (docs/protocol.md). What must hold:

- on the broker, heartbeats carry a MAC ("m1." + 64 hex) and no message carries the key
  in clear; every other message is still sealed and signed;
- a heartbeat captured on the broker and sent again is refused as a replay; one altered
  and sent with its MAC is refused as a forgery; neither moves the site's state, and
  the site stays alive;
- the hub's store holds the key sealed (not the key itself);
- a hub restarted on the same store goes on taking the site's MAC'd heartbeats without
  asking for the key again;
- a hub whose store lost the key (the column emptied while it was down) asks the site
  for it again ("rekey"), the site says hello and signs meanwhile, and the MACs resume:
  the site is never lost.
"""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet, Wire, wait_for  # noqa: E402

MAC = re.compile(r"^m1\.[0-9a-f]{64}$")


class BeatMacTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Fleet()
        cls.f.start_broker()
        cls.f.start_hub()
        cls.wire = Wire(cls.f, "outpost/v1/#")
        cls.f.start_site("pod-1", "pod", cores=2)
        wait_for(lambda: cls.fleet_stats().get("beats_mac", 0) >= 3, 30, 0.2,
                 "MAC'd heartbeats taken")

    @classmethod
    def tearDownClass(cls):
        cls.wire.close()
        cls.f.stop()

    @classmethod
    def fleet_stats(cls):
        return cls.f.cli_json("stats").get("fleet", {})

    def messages(self):
        return self.f.cli_json("stats")["messages"]

    def beats(self):
        """The site's heartbeats heard on the broker: (topic, payload, properties)."""
        with self.wire.lock:
            return [m for m in self.wire.messages if m[0] == "outpost/v1/site/pod-1/state"
                    and json.loads(m[1]).get("type") == "state"]

    def restart_hub(self):
        self.f.hub.stop()
        self.f.start_hub()
        wait_for(lambda: self.f.site_status("pod-1") == "alive", 30, 0.2, "pod-1 back")

    def wait_stat(self, name, least, what):
        try:
            wait_for(lambda: self.fleet_stats().get(name, 0) >= least, 20, 0.2, what)
        except TimeoutError:
            print(self.fleet_stats(), self.f.hub.log_text()[-3000:],
                  self.f.sites["pod-1"].log_text()[-2000:], file=sys.stderr)
            raise

    def test_1_heartbeats_carry_a_mac_and_the_key_stays_sealed(self):
        beats = wait_for(lambda: [b for b in self.beats() if MAC.match(b[2].get("sig", ""))],
                         10, 0.1, "a MAC'd heartbeat on the broker")
        self.assertTrue(beats)
        self.assertEqual(beats[0][2].get("kid"), "pod-1")
        stored = self.f.hub_query("SELECT beat_key FROM sites WHERE id='pod-1'")[0][0]
        self.assertTrue(stored.startswith("k1."), stored)
        # the hello carrying the key is sealed; nothing in clear has a beat_key field
        with self.wire.lock:
            heard = list(self.wire.messages)
        hellos = [m for m in heard if m[0].endswith("/hello")]
        self.assertTrue(hellos)
        self.assertTrue(all(m[1].startswith(b"\0OS1") for m in hellos))
        self.assertFalse([m[0] for m in heard if b"beat_key" in m[1]])
        # whatever is not a heartbeat is still signed (128 hex digits), never MAC'd
        others = [m for m in heard if not m[0].endswith("/state")]
        self.assertTrue(others)
        self.assertFalse([m[0] for m in others if MAC.match(m[2].get("sig", ""))])

    def test_2_replayed_and_altered_heartbeats_refused(self):
        topic, payload, props = wait_for(
            lambda: [b for b in self.beats() if MAC.match(b[2].get("sig", ""))], 10, 0.1,
            "a MAC'd heartbeat")[-1]
        before = self.messages()
        self.wire.publish(topic, payload, props)
        body = json.loads(payload)
        body["free_cores"] = 64     # a site claiming far more than it has
        body["seq"] = body["seq"] + 1000000
        self.wire.publish(topic, json.dumps(body).encode(), props)
        wait_for(lambda: self.messages()["forged"] >= before["forged"] + 1, 10, 0.1,
                 "the altered heartbeat refused")
        after = self.messages()
        self.assertGreaterEqual(after["replayed"], before["replayed"] + 1)
        sites = {s["id"]: s for s in self.f.cli_json("sites")["sites"]}
        self.assertEqual(sites["pod-1"]["status"], "alive")
        self.assertLessEqual(sites["pod-1"].get("free_cores", 2), 2)

    def test_3_hub_restart_keeps_the_key(self):
        self.restart_hub()
        self.wait_stat("beats_mac", 3, "MAC'd heartbeats after the restart")
        self.assertEqual(self.fleet_stats().get("rekeys"), 0)

    def test_4_key_lost_from_the_store_is_asked_again(self):
        self.f.hub.stop()
        self.f.hub_execute("UPDATE sites SET beat_key=''")
        self.f.start_hub()
        self.wait_stat("rekeys", 1, "a rekey")
        self.wait_stat("beats_mac", 3, "MAC'd heartbeats after the rekey")
        self.assertEqual(self.f.site_status("pod-1"), "alive")
        stored = self.f.hub_query("SELECT beat_key FROM sites WHERE id='pod-1'")[0][0]
        self.assertTrue(stored.startswith("k1."), stored)
        log = self.f.sites["pod-1"].log_text()
        self.assertIn("hub asks for the heartbeat key again", log)


if __name__ == "__main__":
    unittest.main()
