"""The swarm against a real hub and a real mosquitto: 500 virtual sites in one process
(build/rel/outpost-swarm), each with its own key and join token, enroll; noop jobs are
placed on them and their signed results accepted; a heartbeat forged by one swarm site for
another is refused and the victim stays alive. The broker is plain TCP, so the hub runs
with broker_tls = off. SwarmTlsTest: fewer sites on the fleet's TLS broker (client
certificates from the hub's CA, its ACL), each enrolling with its join bundle's own
certificate as a real site does."""
import json
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import ROOT, Fleet, Proc, free_port, wait_for  # noqa: E402

SWARM = os.environ.get("OUTPOST_SWARM", os.path.join(ROOT, "build", "rel", "outpost-swarm"))
POWER = os.path.join(os.path.dirname(ROOT), "shared", "data", "power")
SITES = int(os.environ.get("SWARM_TEST_SITES", "500"))
TLS_SITES = 100


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class SwarmCase(unittest.TestCase):
    """A swarm process against the fleet cls.f; its reports and the hub's fleet stats."""

    @classmethod
    def start_swarm(cls, sites, *args):
        cls.swarm = Proc("swarm", [SWARM, "--hub-dir", cls.f.hub_dir, "--sites", str(sites),
                                   "--heartbeat-ms", "2000", "--report-ms", "500", *args],
                         os.path.join(cls.f.base, "swarm.log"))
        cls.f.sites["swarm"] = cls.swarm

    @classmethod
    def tearDownClass(cls):
        codes = cls.f.stop()
        assert codes.get("hub") == 0, f"hub exited {codes.get('hub')} on SIGTERM"

    def report(self):
        """The swarm's last report (it prints one JSON line every 500 ms on its stdout,
        which Proc sends to the log with its stderr)."""
        last = {}
        for line in self.swarm.log_text().splitlines():
            if line.startswith("{"):
                try:
                    last = json.loads(line)
                except ValueError:
                    pass
        return last

    def fleet(self):
        return self.f.cli_json("stats", timeout=30).get("fleet", {})


class SwarmTest(SwarmCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(SWARM):
            raise unittest.SkipTest(f"{SWARM} not built (make build/rel/outpost-swarm)")
        cls.f = Fleet()
        cls.f.port = free_port()
        conf = os.path.join(cls.f.base, "mosquitto.conf")
        with open(conf, "w") as fh:
            fh.write(f"listener {cls.f.port} 127.0.0.1\nallow_anonymous true\n"
                     "max_connections -1\npersistence false\nmax_inflight_messages 1000\n"
                     "max_queued_messages 100000\nlog_type error\n")
            if os.geteuid() == 0:
                fh.write("user root\n")
        cls.f.broker = Proc("broker", ["mosquitto", "-c", conf],
                            os.path.join(cls.f.base, "broker.log"))
        wait_for(lambda: port_open(cls.f.port), 10, 0.05, "mosquitto to listen")
        cls.f.start_hub(broker_tls="off", site_lost_after_ms=6000, lease_ms=20000)
        cls.start_swarm(SITES, "--power", POWER, "--forge")

    def test_1_all_enroll_and_stay_alive(self):
        wait_for(lambda: self.report().get("enrolled", 0) >= SITES, 120, 0.5,
                 f"{SITES} swarm sites to enroll")
        wait_for(lambda: self.fleet().get("alive", 0) >= SITES, 60, 1, "every site heard")
        fleet = self.fleet()
        self.assertEqual(fleet["sites"], SITES)
        self.assertEqual(fleet["lost"], 0)
        r = self.report()
        self.assertEqual(r["refused"], 0)
        self.assertEqual(r["dropped"], 0)  # every message from the hub authenticated
        self.assertIn("power", r)

    def test_2_jobs_run_on_swarm_sites(self):
        wait_for(lambda: self.report().get("enrolled", 0) >= SITES, 120, 0.5, "enrollment")
        out = self.f.cli("submit", "--kind", "noop", "--count", "60", "--quiet").stdout
        ids = [int(x) for x in out.split()]
        self.assertEqual(len(ids), 60)
        states = self.f.wait_jobs_terminal(ids, 90)
        self.assertTrue(all(s == "succeeded" for s in states.values()), states)
        sites = set()
        for jid in ids[:10]:
            job = self.f.job(jid)
            self.assertTrue(job["job"]["site"].startswith("swarm-"))
            self.assertEqual(len([r for r in job["results"] if r["applied"]]), 1)
            sites.add(job["job"]["site"])
        self.assertGreater(len(sites), 1)  # spread, not all on one site
        wait_for(lambda: self.report().get("acks", 0) >= 60, 30, 0.5, "results acknowledged")

    def test_3_forged_heartbeat_refused(self):
        wait_for(lambda: "sent 2 forged heartbeats" in self.swarm.log_text(), 120, 0.5,
                 "the swarm's forgeries")
        stats = self.f.cli_json("stats", timeout=30)
        self.assertGreaterEqual(stats["messages"]["forged"], 2)
        hub_log = self.f.hub.log_text()
        self.assertIn("swarm-1", hub_log[hub_log.find("dropped"):])
        # the site named in the forgery is alive, on its own heartbeats
        sites = {s["id"]: s for s in self.f.cli_json("sites", timeout=30)["sites"]}
        self.assertEqual(sites["swarm-1"]["status"], "alive")


class SwarmTlsTest(SwarmCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(SWARM):
            raise unittest.SkipTest(f"{SWARM} not built (make build/rel/outpost-swarm)")
        cls.f = Fleet()
        cls.f.start_broker()
        cls.f.start_hub(site_lost_after_ms=6000, lease_ms=20000)
        cls.start_swarm(TLS_SITES, "--power", "none")

    def test_sites_enroll_over_tls_with_their_own_certificates_and_run_jobs(self):
        wait_for(lambda: self.report().get("enrolled", 0) >= TLS_SITES, 120, 0.5,
                 f"{TLS_SITES} swarm sites to enroll over TLS")
        wait_for(lambda: self.fleet().get("alive", 0) >= TLS_SITES, 60, 1, "every site heard")
        out = self.f.cli("submit", "--kind", "noop", "--count", "20", "--quiet").stdout
        ids = [int(x) for x in out.split()]
        states = self.f.wait_jobs_terminal(ids, 90)
        self.assertTrue(all(s == "succeeded" for s in states.values()), states)
        r = self.report()
        self.assertEqual(r["refused"], 0)
        self.assertEqual(r["connected"], TLS_SITES)
        # the broker took each site by its certificate: its user name is the site's id, which
        # the ACL gives its own topics only (a wrong name would have refused its hello)
        self.assertEqual(self.fleet()["lost"], 0)
        # its sites' keys lived in a directory of its own, gone once it stops
        log = self.swarm.log_text()
        tls_dir = log[log.index("TLS files in ") + 13:].split()[0]
        self.assertTrue(os.path.exists(os.path.join(tls_dir, "swarm-0.key")))
        self.swarm.stop()
        self.assertFalse(os.path.exists(tls_dir))

if __name__ == "__main__":
    unittest.main()
