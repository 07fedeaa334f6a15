#!/usr/bin/python3
"""`make test-security`: every attack in tests/integration/test_attack_*.py, run against a real
fleet (a real broker, hub and sites), each test one attack that must fail to get in.

Prints one line per attack and ends with "attacks tried N, succeeded M"; exits 1 when M > 0
or an attack could not be tried (an error in the harness counts as succeeded: nothing is
assumed safe that was not shown to be). `make test` runs the same files in their short form;
this target sets OUTPOST_SECURITY_FULL=1, which the attack files read to use the issue's full
sizes (for example the 300 x 6 MB bogus-signature flood).
When run as root (as CI does) it then runs every attack again with the whole fleet as an
unprivileged user (uid and gid 65534, through setpriv), where jobs are isolated with a user
namespace instead of per-slot uids, and adds both passes up.
Usage: tests/security/run.py [--no-unprivileged] [NAME_FILTER]"""
import glob
import os
import re
import shutil
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))


class Tally(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.tried = 0
        self.got_in = []

    def startTest(self, test):
        self.tried += 1
        super().startTest(test)

    def addFailure(self, test, err):
        self.got_in.append((test, "got in"))
        super().addFailure(test, err)

    def addError(self, test, err):
        self.got_in.append((test, "could not be tried (harness error)"))
        super().addError(test, err)


def unprivileged_pass(pattern):
    """The same attacks with every process as uid/gid 65534; (tried, succeeded) or None."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    print("\n== the same attacks with an unprivileged fleet (uid 65534)", flush=True)
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=/tmp",
            sys.executable, os.path.abspath(__file__), "--no-unprivileged"]
    r = subprocess.run(argv + ([pattern] if pattern else []), capture_output=True, text=True,
                       timeout=1800, cwd="/tmp")
    sys.stdout.write(r.stdout + r.stderr)
    m = re.search(r"attacks tried (\d+), succeeded (\d+)", r.stdout)
    if not m:
        return (1, 1)  # the pass did not run: counted as an attack that got in
    return (int(m.group(1)), int(m.group(2)))


def main(argv):
    unprivileged = "--no-unprivileged" not in argv
    argv = [a for a in argv if a != "--no-unprivileged"]
    os.environ.setdefault("OUTPOST_SECURITY_FULL", "1")
    os.environ.setdefault("OUTPOST_BIN", os.path.join(ROOT, "build", "asan", "outpost"))
    pattern = argv[0] if argv else ""
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    files = sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "test_attack_*.py")))
    for path in files:
        name = os.path.splitext(os.path.basename(path))[0]
        if pattern and pattern not in name:
            continue
        suite.addTests(loader.loadTestsFromName(name))
    if suite.countTestCases() == 0:
        print("no attack files matched (tests/integration/test_attack_*.py)")
        print("attacks tried 0, succeeded 0")
        return 1
    runner = unittest.TextTestRunner(verbosity=2, resultclass=Tally, stream=sys.stdout)
    result = runner.run(suite)
    for test, why in result.got_in:
        print(f"ATTACK {test.id()}: {why}")
    skipped = len(result.skipped)
    tried, succeeded = result.tried - skipped, len(result.got_in)
    second = unprivileged_pass(pattern) if unprivileged else None
    if second:
        tried, succeeded = tried + second[0], succeeded + second[1]
    print(f"attacks tried {tried}, succeeded {succeeded}"
          + (f" ({skipped} skipped in the first pass: see above)" if skipped else "")
          + (" (both passes: root and unprivileged)" if second else ""))
    return 1 if succeeded else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
