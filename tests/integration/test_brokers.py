"""A list of brokers and a bridged pair of mosquitto brokers (docs/brokers.md): the hub on
broker A, sites on broker B, the bridge between them; a broker SIGKILLed while jobs are in
flight, and every job finishes once; `outpost sites` shows the broker each site is on,
before and after it moves; a bad list refused with its reason. The attacks through
the bridge are in test_attack_bridge.py."""
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import UNCHECKED_POLICY, Fleet, wait_for  # noqa: E402


def applied(job):
    return [r for r in job["results"] if r["applied"]]


class PairHelpers:
    def tearDown(self):
        self.f.stop()

    def submit(self, n, seconds):
        out = self.f.cli("submit", "--quiet", "--count", str(n), "--", "sh", "-c",
                         f"sleep {seconds}; echo ok").stdout
        return [int(x) for x in out.split()]

    def assert_each_done_once(self, ids, timeout=120):
        states = self.f.wait_jobs_terminal(ids, timeout)
        bad = {i: self.f.job(i) for i, s in states.items() if s != "succeeded"}
        self.assertFalse(bad, f"{states}; the others in full: {bad}")
        for jid in ids:
            self.assertEqual(len(applied(self.f.job(jid))), 1, jid)

    def assert_audit_verifies(self):
        head = self.f.cli("audit", "head").stdout
        path = os.path.join(self.f.base, "head.json")
        with open(path, "w") as fh:
            fh.write(head)
        self.assertIn("audit log OK", self.f.cli("audit", "verify", "--trusted-head", path).stdout)

    def site_broker(self, name):
        """The broker `outpost sites --json` says the site is on."""
        return next(s for s in self.f.cli_json("sites")["sites"] if s["id"] == name)["broker"]

    def assert_site_shown_on(self, name, port, what):
        """Within a few heartbeats, `outpost sites` names 127.0.0.1:port for the site, in
        --json and in the table's BROKER column."""
        wait_for(lambda: self.site_broker(name) == f"127.0.0.1:{port}", 15, 0.2, what)
        lines = self.f.cli("sites").stdout.splitlines()
        column = lines[0].index("BROKER")
        row = next(line for line in lines if line.startswith(name + " "))
        self.assertEqual(row[column:].split()[0], f"127.0.0.1:{port}")



class BridgedPairTest(PairHelpers, unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.f.start_broker_pair()

    def test_site_on_b_moves_to_a_when_b_is_killed_and_loses_nothing(self):
        f = self.f
        f.start_hub(policy=UNCHECKED_POLICY, broker_host=f.brokers("a", "b"))
        f.start_site("dc-b", "dc", cores=3, broker_host=f.brokers("b", "a"),
                     broker_return_ms=1000)
        self.assertIn(f"connected to broker 127.0.0.1:{f.port_b}", f.sites["dc-b"].log_text())
        self.assert_site_shown_on("dc-b", f.port_b, "dc-b shown on B")
        ids = self.submit(9, 1.5)
        wait_for(lambda: sum(f.job(i)["job"]["state"] == "running" for i in ids) >= 2, 30, 0.2,
                 "jobs running on dc-b")
        f.broker_b.kill(signal.SIGKILL)
        f.broker_b.wait(10)
        wait_for(lambda: "moved from broker" in f.sites["dc-b"].log_text(), 20, 0.2,
                 "dc-b to move to A")
        self.assertIn(f"to 127.0.0.1:{f.port}", f.sites["dc-b"].log_text())
        self.assert_site_shown_on("dc-b", f.port, "dc-b shown on A after its move")
        more = self.submit(3, 0.5)   # placed while the site is on A
        self.assert_each_done_once(ids + more)
        self.assertEqual(f.site_status("dc-b"), "alive")
        stats = f.cli_json("stats")
        self.assertEqual(stats["results"]["applied"], len(ids) + len(more))
        self.assertEqual(stats["broker"]["main"], f"127.0.0.1:{f.port}")
        self.assert_audit_verifies()
        # B back: the site returns to its first broker after two good probes, once.
        f.start_broker_b()
        wait_for(lambda: f.sites["dc-b"].log_text().count("answers again") >= 1, 30, 0.3,
                 "dc-b to go back to B")
        wait_for(lambda: f.sites["dc-b"].log_text().count("moved from broker") >= 2, 20, 0.2,
                 "dc-b connected to B")
        self.assert_site_shown_on("dc-b", f.port_b, "dc-b shown on B again")
        last = self.submit(3, 0.2)
        self.assert_each_done_once(last)
        time.sleep(3)   # no flapping: B stays up, the site stays on it
        self.assertEqual(f.sites["dc-b"].log_text().count("moved from broker"), 2)

    def test_hub_moves_when_its_broker_is_killed_and_sites_stay(self):
        f = self.f
        f.start_hub(policy=UNCHECKED_POLICY, broker_host=f.brokers("a", "b"),
                    broker_return_ms=600000)
        f.start_site("dc-b", "dc", cores=3, broker_host=f.brokers("b", "a"))
        ids = self.submit(6, 1.5)
        wait_for(lambda: sum(f.job(i)["job"]["state"] == "running" for i in ids) >= 2, 30, 0.2,
                 "jobs running")
        f.broker.kill(signal.SIGKILL)
        f.broker.wait(10)
        wait_for(lambda: f.hub.log_text().count("moved from broker") >= 2, 20, 0.2,
                 "both hub connections to move to B")
        # The CLI's cli.conf lists both brokers: it reaches the hub through B.
        more = self.submit(3, 0.5)
        self.assert_each_done_once(ids + more)
        self.assertNotIn("moved from broker", f.sites["dc-b"].log_text())
        stats = f.cli_json("stats")
        self.assertEqual(stats["broker"]["main"], f"127.0.0.1:{f.port_b}")
        self.assertEqual(stats["broker"]["beats"], f"127.0.0.1:{f.port_b}")
        self.assertGreaterEqual(stats["broker"]["moves"], 2)
        self.assertEqual(f.site_status("dc-b"), "alive")
        self.assert_audit_verifies()

    def test_jobs_flow_across_the_bridge_between_sites_on_both_brokers(self):
        f = self.f
        f.start_hub(policy=UNCHECKED_POLICY, broker_host=f.brokers("a", "b"))
        f.start_site("dc-a", "dc", cores=2, broker_host=f.brokers("a", "b"))
        f.start_site("dc-b", "dc", cores=2, broker_host=f.brokers("b", "a"))
        ids = self.submit(8, 0.3)
        self.assert_each_done_once(ids)
        sites = {f.job(i)["job"]["site"] for i in ids}
        self.assertEqual(sites, {"dc-a", "dc-b"})


class SideBySideTest(PairHelpers, unittest.TestCase):
    """Two brokers with no bridge between them and a hub on both at once (broker_mode = all):
    each site is answered on the broker it was heard on, and a site whose broker dies moves
    to the other, where the hub already is."""

    def setUp(self):
        self.f = Fleet()
        self.f.start_broker_pair(bridge=None)

    def links(self):
        return {link["broker"]: link for link in self.f.cli_json("stats")["broker"]["links"]}

    def test_hub_on_both_brokers_serves_sites_on_each_and_keeps_a_site_that_moves(self):
        f = self.f
        a, b = f"127.0.0.1:{f.port}", f"127.0.0.1:{f.port_b}"
        f.start_hub(policy=UNCHECKED_POLICY, broker_host=f.brokers("a", "b"), broker_mode="all")
        wait_for(lambda: "ready: store open, every broker connected" in f.hub.log_text(), 20,
                 0.1, "the hub on both brokers")
        f.start_site("dc-a", "dc", cores=2, broker_host=f.brokers("a", "b"))
        f.start_site("dc-b", "dc", cores=2, broker_host=f.brokers("b", "a"),
                     broker_return_ms=1000)
        self.assert_site_shown_on("dc-b", f.port_b, "dc-b shown on B")
        wait_for(lambda: self.links()[b]["sites"] == 1 and self.links()[a]["sites"] == 1, 15,
                 0.2, "one site heard on each link")
        ids = self.submit(8, 0.3)
        self.assert_each_done_once(ids)
        self.assertEqual({f.job(i)["job"]["site"] for i in ids}, {"dc-a", "dc-b"})
        # B dies with jobs running on dc-b: it moves to A, where the hub hears it again
        ids = self.submit(6, 1.5)
        wait_for(lambda: any(f.job(i)["job"]["state"] == "running" and
                             f.job(i)["job"]["site"] == "dc-b" for i in ids), 30, 0.2,
                 "a job running on dc-b")
        f.broker_b.kill(signal.SIGKILL)
        f.broker_b.wait(10)
        wait_for(lambda: "moved from broker" in f.sites["dc-b"].log_text(), 20, 0.2,
                 "dc-b to move to A")
        self.assert_site_shown_on("dc-b", f.port, "dc-b shown on A after its move")
        wait_for(lambda: self.links()[a]["sites"] == 2, 15, 0.2, "dc-b heard on A's link")
        self.assertFalse(self.links()[b]["connected"])
        more = self.submit(4, 0.3)
        self.assert_each_done_once(ids + more)
        self.assertNotIn("site dc-b lost", f.hub.log_text())
        self.assertEqual(f.site_status("dc-b"), "alive")
        stats = f.cli_json("stats")
        self.assertEqual(stats["broker"]["mode"], "all")
        self.assertEqual(stats["results"]["applied"], 8 + len(ids) + len(more))
        self.assert_audit_verifies()
        # B back: the hub's link to it returns, dc-b goes back to it and is served there
        f.start_broker_b()
        wait_for(lambda: self.links()[b]["connected"], 30, 0.3, "the hub's link to B")
        wait_for(lambda: f.sites["dc-b"].log_text().count("moved from broker") >= 2, 30, 0.2,
                 "dc-b back on B")
        wait_for(lambda: self.links()[b]["sites"] == 1, 15, 0.2, "dc-b heard on B's link")
        last = self.submit(6, 0.2)
        self.assert_each_done_once(last)
        self.assertNotRegex(f.hub.log_text(), r"site \S+ (was )?lost|sites lost")

    def test_site_message_is_not_sent_twice_nor_heard_twice(self):
        """Each site's offers go out on one link only: every job is offered once (the sites'
        logs say so) and the hub's replay window drops nothing, there being no second copy."""
        f = self.f
        f.start_hub(policy=UNCHECKED_POLICY, broker_host=f.brokers("a", "b"), broker_mode="all",
                    beat_workers=2)
        wait_for(lambda: "heartbeats checked on 2 worker thread(s)" in f.hub.log_text(), 10,
                 0.1, "beat_workers = 2 in force")
        f.start_site("dc-b", "dc", cores=2, broker_host=f.brokers("b", "a"))
        ids = self.submit(5, 0.1)
        self.assert_each_done_once(ids)
        self.assertEqual(f.cli_json("stats")["messages"]["replayed"], 0)


class BrokerListTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()

    def tearDown(self):
        self.f.stop()

    def test_bad_broker_lists_are_refused_with_the_reason(self):
        f = self.f
        for bad in ("127.0.0.1:0", "a:b", ",", "127.0.0.1:1883,", "[::1", "h h:1"):
            path = f.site_conf("bad-list", broker_host=bad, broker_port=1883)
            r = subprocess.run(
                [f.binary, "site", "--config", path, "--data-dir",
                 os.path.join(f.base, "bad-list")], capture_output=True, text=True,
                env=f.env, timeout=30)
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn("broker_host", r.stderr)
        conf = os.path.join(f.base, "bad-hub.conf")
        with open(conf, "w") as fh:
            fh.write("broker_host = a:1, b:70000\n")
        r = subprocess.run([f.binary, "hub", "--data-dir", os.path.join(f.base, "bad-hub"),
                            "--config", conf], capture_output=True, text=True, env=f.env,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("broker_host: broker 'b:70000'", r.stderr)


if __name__ == "__main__":
    unittest.main()
