"""Outpost installs like a daemon: `make install`/`uninstall` into a DESTDIR, the systemd units
checked by systemd-analyze, the man pages rendered without a warning, the Debian package
checked by lintian, then installed for real with dpkg into a throwaway root (an overlay of this
machine's own root, in a mount namespace of its own, so nothing of it stays), where the
installed hub, run as the package's user with the installed configuration against a mosquitto
configured by the packaged snippet, reports READY=1 (and STOPPING=1) on a NOTIFY_SOCKET this
test binds, logs in journald's format, and the package then purges cleanly.

PID 1 here is not systemd, so the units themselves are not started: the test runs the unit's
command line as the unit's user instead."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import free_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
REL = os.path.join(BUILD, "rel", "outpost")
UNITS = ["outpost-hub.service", "outpost-site.service", "outpost-site@.service"]


def version():
    with open(os.path.join(ROOT, "src", "base", "version.h")) as f:
        return re.search(r'#define OUTPOST_VERSION "([^"]+)"', f.read()).group(1)


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kw)


def missing(*tools):
    return [t for t in tools if not shutil.which(t)]


class InstallTest(unittest.TestCase):
    deb = None

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(REL):
            raise unittest.SkipTest("build/rel/outpost is not built (make test builds it)")
        lacking = missing("dpkg-deb", "dpkg-shlibdeps")
        if lacking:
            raise unittest.SkipTest("cannot build the package here: %s missing "
                                    "(scripts/deps.sh package installs them)" % ", ".join(lacking))
        r = run(["scripts/mkdeb.sh", "build", version()], timeout=300)
        if r.returncode != 0:
            raise AssertionError("mkdeb failed: " + r.stdout + r.stderr)
        cls.deb = os.path.join(ROOT, r.stdout.strip().splitlines()[-1])

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="outpost-install-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_make_install_and_uninstall_into_destdir(self):
        dest = os.path.join(self.tmp, "dest")
        r = run(["make", "-s", "install", "DESTDIR=" + dest, "PREFIX=/usr"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for path in ["usr/bin/outpost", "usr/share/man/man1/outpost.1",
                     "usr/share/man/man8/outpost-hub.8", "usr/share/man/man8/outpost-site.8",
                     "usr/lib/systemd/system/outpost-hub.service",
                     "usr/lib/systemd/system/outpost-site@.service",
                     "usr/lib/sysusers.d/outpost.conf", "etc/outpost/hub.conf",
                     "etc/outpost/site.conf", "usr/share/doc/outpost/examples/mosquitto.conf",
                     "usr/share/doc/outpost/examples/mosquitto-outpost.conf",
                     "usr/share/doc/outpost/examples/acl"]:
            self.assertTrue(os.path.exists(os.path.join(dest, path)), path)
        with open(os.path.join(dest, "usr/lib/systemd/system/outpost-site.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/bin/outpost site --config /etc/outpost/site.conf", unit)
        self.assertIn("Delegate=yes", unit)
        with open(os.path.join(dest, "etc/outpost/site.conf")) as f:
            self.assertIn("\ncgroup_dir = delegated\n", f.read())  # what Delegate=yes is for
        self.assertNotRegex(unit, r"@[A-Z_]+@")  # every placeholder filled
        # a configuration edited by the operator is never overwritten by a second install
        with open(os.path.join(dest, "etc/outpost/hub.conf"), "a") as f:
            f.write("hub_id = mine\n")
        self.assertEqual(run(["make", "-s", "install", "DESTDIR=" + dest]).returncode, 0)
        with open(os.path.join(dest, "etc/outpost/hub.conf")) as f:
            self.assertIn("hub_id = mine", f.read())
        r = run(["make", "-s", "uninstall", "DESTDIR=" + dest, "PREFIX=/usr"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        run(["make", "-s", "uninstall", "DESTDIR=" + dest])
        left = sorted(os.path.relpath(os.path.join(d, f), dest)
                      for d, _, fs in os.walk(dest) for f in fs)
        self.assertEqual(left, ["etc/outpost/hub.conf", "etc/outpost/site.conf"])

    def test_man_pages_render_without_warnings(self):
        if missing("groff", "man"):
            self.skipTest("groff or man missing (scripts/deps.sh package installs them)")
        pages = [os.path.join(BUILD, "man", "outpost.1"),
                 os.path.join(ROOT, "man", "outpost-hub.8"),
                 os.path.join(ROOT, "man", "outpost-site.8")]
        for page in pages:
            r = run(["groff", "-man", "-ww", "-z", "-Tutf8", page])
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)
            r = run(["man", "-l", page], env=dict(os.environ, MANWIDTH="80", MAN_KEEP_STDERR="1"))
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)
            self.assertIn("SYNOPSIS", r.stdout)
        # outpost(1) holds every command of `outpost help`, each with its own --help text
        with open(pages[0]) as f:
            text = f.read()
        for command in ["submit", "jobs", "token", "audit", "ca", "backup", "route"]:
            self.assertIn(".SS %s\n" % command, text)

    def installed_units(self):
        """The units as the package installs them, ExecStart pointed at the built binary."""
        root = os.path.join(BUILD, "deb", "root")
        out = os.path.join(self.tmp, "units")
        os.mkdir(out)
        for unit in UNITS:
            with open(os.path.join(root, "lib/systemd/system", unit)) as f:
                text = f.read().replace("/usr/bin/outpost", REL)
            with open(os.path.join(out, unit), "w") as f:
                f.write(text)
        shutil.copy(os.path.join(out, "outpost-site@.service"),
                    os.path.join(out, "outpost-site@a.service"))
        return out, os.path.join(root, "usr/share/man")

    def test_units_verify_and_score(self):
        if missing("systemd-analyze"):
            self.skipTest("systemd-analyze missing (package systemd)")
        units, manpath = self.installed_units()
        env = dict(os.environ, MANPATH=manpath)
        for unit in ["outpost-hub.service", "outpost-site.service", "outpost-site@a.service"]:
            r = run(["systemd-analyze", "verify", os.path.join(units, unit)], env=env)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""), unit)
        # exposure scores (lower is safer); docs/operations.md quotes them
        for unit, ceiling in [("outpost-hub.service", 1.5), ("outpost-site.service", 3.5)]:
            r = run(["systemd-analyze", "security", "--offline=true", os.path.join(units, unit)])
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
            self.assertIsNotNone(m, r.stdout + r.stderr)
            self.assertLessEqual(float(m.group(1)), ceiling, unit)
            print("%s exposure %s" % (unit, m.group(1)))

    def test_lintian_finds_no_error(self):
        if missing("lintian"):
            self.skipTest("lintian missing (scripts/deps.sh package installs it)")
        r = run(["lintian", "--tag-display-limit", "0", self.deb], timeout=300)
        errors = [line for line in r.stdout.splitlines() if line.startswith("E:")]
        self.assertEqual(errors, [], r.stdout)
        print(r.stdout)

    def test_package_installs_and_the_hub_becomes_ready(self):
        if os.geteuid() != 0:
            self.skipTest("installing into a throwaway root needs root (mount namespaces)")
        lacking = missing("unshare", "chroot", "mosquitto", "setpriv")
        if lacking:
            self.skipTest("%s missing" % ", ".join(lacking))
        os.chmod(self.tmp, 0o755)  # the hub runs as the package's user and must reach the socket
        notify_path = os.path.join(self.tmp, "notify")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(notify_path)
        self.addCleanup(listener.close)
        os.chmod(notify_path, 0o666)
        port = free_port()
        script = os.path.join(self.tmp, "throwaway.sh")
        with open(script, "w") as f:
            f.write(THROWAWAY.format(tmp=self.tmp, deb=self.deb, port=port))
        proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", script],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        got = self.receive(listener, proc, "READY=1", 40)
        self.assertIn("STATUS=serving 0 sites through broker 127.0.0.1:%d" % port, got)
        with open(os.path.join(self.tmp, "hub.pid")) as f:
            os.kill(int(f.read()), signal.SIGTERM)
        self.receive(listener, proc, "STOPPING=1", 20)
        out, _ = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, out)
        for mark in ["users: outpost outpost-site", "hub enabled", "site not enabled",
                     "conffiles: /etc/outpost/hub.conf /etc/outpost/site.conf",
                     "hub exit 0", "purged: binary gone, state kept"]:
            self.assertIn(mark, out)
        with open(os.path.join(self.tmp, "hub.log")) as f:
            log = f.read()
        # stderr was the stream JOURNAL_STREAM named: priorities, no timestamps of our own
        self.assertRegex(log, r"(?m)^<6>INFO hub: ready: store open, broker connected, subscribed$")
        self.assertNotRegex(log, r"(?m)^\d{4}-\d\d-\d\dT")

    def receive(self, listener, proc, wanted, timeout):
        """Datagrams until one holds wanted; fails with the throwaway root's output if none."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listener.settimeout(max(0.1, min(1.0, deadline - time.monotonic())))
            try:
                text = listener.recv(4096).decode()
            except socket.timeout:
                if proc.poll() is not None:
                    break
                continue
            if wanted in text.split("\n"):
                return text
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate()[0]
        logs = ""
        for name in ["dpkg.log", "hub.log", "mosquitto.log"]:
            path = os.path.join(self.tmp, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    logs += "\n--- %s\n%s" % (name, f.read()[-3000:])
        self.fail("no %s in %d s\n%s%s" % (wanted, timeout, out, logs))


# Runs in a mount namespace of its own: an overlay of / (writes go to a tmpfs and vanish with
# the namespace), this test's directory bound inside, then the package's life in a chroot.
THROWAWAY = r"""
set -eu
T={tmp}
mkdir -p /run/outpost-overlay-$$
O=/run/outpost-overlay-$$
mount -t tmpfs tmpfs "$O"
mkdir "$O/upper" "$O/work" "$O/root"
mount -t overlay overlay -o lowerdir=/,upperdir="$O/upper",workdir="$O/work" "$O/root"
R="$O/root"
mount --rbind /dev "$R/dev"
mount -t proc proc "$R/proc"
mount -t tmpfs tmpfs "$R/run"
mkdir -p "$R$T"
mount --bind "$T" "$R$T"
cp {deb} "$T/outpost.deb"
cat > "$T/inside.sh" <<'EOF'
set -eu
T={tmp}
PORT={port}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
dpkg -i "$T/outpost.deb" > "$T/dpkg.log" 2>&1
echo "users: $(id -un outpost) $(id -un outpost-site)"
[ -L /etc/systemd/system/multi-user.target.wants/outpost-hub.service ] && echo "hub enabled"
[ -e /etc/systemd/system/multi-user.target.wants/outpost-site.service ] || echo "site not enabled"
echo "conffiles:" $(dpkg-query -W -f '${{Conffiles}}' outpost | awk '{{print $1}}')
# what the unit's StateDirectory= makes, then the broker's certificates from the hub's CA
install -d -o outpost -g outpost -m 0750 /var/lib/outpost/hub
install -d -o outpost -g outpost -m 0750 /run/broker
setpriv --reuid=outpost --regid=outpost --init-groups \
  outpost ca broker --hub-dir /var/lib/outpost/hub --out /run/broker --name 127.0.0.1 >/dev/null
mkdir -p /etc/mosquitto/outpost /etc/mosquitto/conf.d
cp /run/broker/* /etc/mosquitto/outpost/
chown -R mosquitto: /etc/mosquitto/outpost
sed "s/^listener 8883 /listener $PORT /" /usr/share/doc/outpost/examples/mosquitto-outpost.conf \
  > /etc/mosquitto/conf.d/outpost.conf
printf 'persistence false\nlog_dest stderr\ninclude_dir /etc/mosquitto/conf.d\n' > /run/m.conf
mosquitto -c /run/m.conf > "$T/mosquitto.log" 2>&1 &
BROKER=$!
# the unit's command line, as the unit's user, stderr as the journal stream
: > "$T/hub.log"
chmod 0666 "$T/hub.log"
export NOTIFY_SOCKET="$T/notify"
export JOURNAL_STREAM="$(stat -c %d:%i "$T/hub.log")"
setpriv --reuid=outpost --regid=outpost --init-groups \
  /usr/bin/outpost hub --config /etc/outpost/hub.conf --data-dir /var/lib/outpost/hub \
  --broker-port "$PORT" 2>> "$T/hub.log" &
HUB=$!
echo $HUB > "$T/hub.pid"
rc=0
wait $HUB || rc=$?
echo "hub exit $rc"
kill $BROKER; wait $BROKER || true
unset NOTIFY_SOCKET JOURNAL_STREAM
dpkg --purge outpost >> "$T/dpkg.log" 2>&1
[ ! -e /usr/bin/outpost ] && [ ! -e /etc/outpost/hub.conf ] && [ -e /var/lib/outpost/hub/hub.db ] &&
  echo "purged: binary gone, state kept"
EOF
chroot "$R" /bin/sh "$T/inside.sh"
"""

if __name__ == "__main__":
    unittest.main()
