"""Attacks through a bridged pair of brokers (docs/brokers.md), each one that must fail to get
in: a rogue client on broker B reads nothing of others' topics and what it writes under
others' names never reaches broker A, where the hub is (the bridge carries, the ACL decides);
the hub makes no join token for a bridge's name, whose certificate would carry every site's
topics."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import UNCHECKED_POLICY, Fleet, wait_for  # noqa: E402


class BridgeAclTest(unittest.TestCase):
    """What the ACL denies a client on one broker it cannot reach through the bridge."""

    @classmethod
    def setUpClass(cls):
        cls.f = Fleet()
        cls.f.start_broker_pair()
        cls.f.start_hub(policy=UNCHECKED_POLICY, broker_host=cls.f.brokers("a", "b"))
        cls.f.start_site("victim", "dc", cores=2, broker_host=cls.f.brokers("a", "b"))

    @classmethod
    def tearDownClass(cls):
        cls.f.stop()

    def test_a_rogue_on_b_reads_and_writes_nothing_of_others_on_a(self):
        f = self.f
        heard, crossed = [], []
        rogue = f.mqtt_client("rogue")
        rogue.on_message = lambda c, u, m: heard.append(m.topic)
        rogue.connect("127.0.0.1", f.port_b)
        rogue.loop_start()
        tap = f.broker_client(f"tap-bridge-{time.monotonic_ns()}")   # everything on A
        tap.on_message = lambda c, u, m: crossed.append((m.topic, m.payload))
        tap.loop_start()
        try:
            for topic in ("outpost/v1/site/victim/inbox", "outpost/v1/op/+/resp", "#",
                          "outpost/v1/site/+/result", "outpost/v1/site/+/state", "$SYS/#"):
                rogue.subscribe(topic, 1)
            tap.subscribe("#", 1)
            time.sleep(0.5)
            # Traffic for and from the victim and the operator flows on A meanwhile.
            ids = [int(x) for x in f.cli("submit", "--quiet", "--count", "2", "--", "echo",
                                         "x").stdout.split()]
            f.wait_jobs_terminal(ids, 60)
            f.cli("stats")
            marker = b'{"from":"victim","type":"state","rogue-marker":1}'
            for topic in ("outpost/v1/site/victim/state", "outpost/v1/site/victim/result",
                          "outpost/v1/site/victim/inbox", "outpost/v1/op/op-0123456789abcdef/req",
                          "outpost/v1/op/op-0123456789abcdef/resp", "outpost/v1/peer/victim/x",
                          "outpost/v1/meter/victim/m1", "outpost/v1/site/rogue/inbox",
                          "outpost/v1/elsewhere", "outpost/v1/site/hub/hello"):
                rogue.publish(topic, marker, qos=1).wait_for_publish(5)
            # ... while its own topic does cross: the bridge carries, the ACL decides.
            rogue.publish("outpost/v1/site/rogue/event", marker, qos=1).wait_for_publish(5)
            wait_for(lambda: any(p == marker for _, p in crossed), 10, 0.05, "own topic on A")
            time.sleep(1.0)
            self.assertEqual(sorted({t for t, p in crossed if p == marker}),
                             ["outpost/v1/site/rogue/event"])
            self.assertEqual(heard, [])
        finally:
            for c in (rogue, tap):
                c.loop_stop()
                c.disconnect()
        self.assertEqual(f.site_status("victim"), "alive")

    def test_the_hub_makes_no_token_for_a_bridge_name(self):
        r = self.f.cli("token", "create", "--class", "dc", "--site", self.f.bridge_name,
                       check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("bridge", r.stderr)


if __name__ == "__main__":
    unittest.main()
