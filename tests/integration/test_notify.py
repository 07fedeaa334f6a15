"""Readiness as a service manager sees it (the sd_notify protocol, Type=notify units): a real
broker, hub and site, each started with NOTIFY_SOCKET pointing at a datagram socket this test
binds, as systemd would. The hub says READY=1 only once the broker has it subscribed (not while
the broker is down), a first-start site once it is enrolled and connected, an enrolled site
without a broker after its offline grace; both say STOPPING=1 at SIGTERM; jobs never see the
variable."""
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet, wait_for  # noqa: E402


class Listener:
    """A NOTIFY_SOCKET: what one process sends to the service manager."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.got = []

    def wait(self, line, timeout):
        """The first datagram holding line (a whole line), or None after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in self.got:
                if line in text.split("\n"):
                    return text
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self.got.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return next((t for t in self.got if line in t.split("\n")), None)

    def close(self):
        self.sock.close()


class NotifyTest(unittest.TestCase):
    def setUp(self):
        self.f = Fleet()
        self.addCleanup(self.cleanup)
        self.dir = tempfile.mkdtemp(prefix="outpost-notify-")
        self.hub_sock = Listener(os.path.join(self.dir, "hub"))
        self.site_sock = Listener(os.path.join(self.dir, "site"))

    def cleanup(self):
        self.f.stop()
        self.hub_sock.close()
        self.site_sock.close()
        shutil.rmtree(self.dir, True)

    def start_with(self, listener, start, *args, **kw):
        """Runs start (a Fleet method) with NOTIFY_SOCKET set for that process only."""
        self.f.env["NOTIFY_SOCKET"] = listener.path
        try:
            return start(*args, **kw)
        finally:
            self.f.env.pop("NOTIFY_SOCKET", None)

    def test_hub_ready_only_once_the_broker_has_it_subscribed(self):
        self.f.start_broker()
        self.f.broker.kill()
        self.f.broker.p.wait(10)
        hub = self.start_with(self.hub_sock, self.f.start_hub)
        self.assertIsNone(self.hub_sock.wait("READY=1", 2.5), "ready without a broker")
        self.f.start_broker(port=self.f.port)
        got = self.hub_sock.wait("READY=1", 20)
        self.assertIsNotNone(got, hub.log_text())
        self.assertIn("STATUS=serving 0 sites through broker 127.0.0.1:%d" % self.f.port, got)
        wait_for(lambda: "ready: store open, broker connected, subscribed" in hub.log_text(), 5,
                 0.05, "the hub's ready line")
        hub.p.send_signal(signal.SIGTERM)
        self.assertIsNotNone(self.hub_sock.wait("STOPPING=1", 10))
        self.assertEqual(hub.p.wait(15), 0)
        self.assertEqual(len([t for t in self.hub_sock.got if "READY=1" in t.split("\n")]), 1)

    def test_site_ready_when_enrolled_then_offline_after_its_grace(self):
        self.f.start_broker()
        self.f.start_hub()
        site = self.start_with(self.site_sock, self.f.start_site, "s1", cls="pod")
        got = self.site_sock.wait("READY=1", 20)
        self.assertIsNotNone(got, site.log_text())
        self.assertIn("STATUS=site s1 enrolled with hub hub, connected", got)
        # a job's environment holds nothing of the channel to the service manager
        jid = int(self.f.cli("submit", "--quiet", "--", "sh", "-c", "env; echo end").stdout)
        self.assertEqual(self.f.wait_jobs_terminal([jid], 60)[jid], "succeeded")
        out = self.f.cli_json("result", str(jid))["stdout"]
        self.assertIn("end", out)
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM"):
            self.assertNotIn(name, out)
        site.p.send_signal(signal.SIGTERM)
        self.assertIsNotNone(self.site_sock.wait("STOPPING=1", 10), site.log_text())
        self.assertEqual(site.p.wait(15), 0)
        # enrolled before, the broker gone: ready after the offline grace, saying so
        self.f.broker.kill()
        self.f.broker.p.wait(10)
        self.site_sock.got.clear()
        started = time.monotonic()
        site = self.start_with(self.site_sock, self.f.start_site, "s1", wait=False)
        got = self.site_sock.wait("READY=1", 20)
        self.assertIsNotNone(got, site.log_text())
        self.assertGreaterEqual(time.monotonic() - started, 4.5)
        self.assertIn("running offline (broker 127.0.0.1:%d unreachable)" % self.f.port, got)
        wait_for(lambda: "ready: running offline" in site.log_text(), 5, 0.05, "the ready line")

    def test_first_start_without_a_broker_is_never_ready(self):
        self.f.start_broker()
        self.f.start_hub()
        token = self.f.token("pod", "s2")
        self.f.broker.kill()
        self.f.broker.p.wait(10)
        site = self.start_with(self.site_sock, self.f.start_site, "s2", token=token, wait=False)
        self.assertIsNone(self.site_sock.wait("READY=1", 7), "ready before it was enrolled")
        self.assertTrue(site.alive())
        wait_for(lambda: "started" in site.log_text(), 10, 0.1, "site to start")


if __name__ == "__main__":
    unittest.main()
