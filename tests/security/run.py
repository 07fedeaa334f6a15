#!/usr/bin/python3
"""`make test-security`: every attack in tests/integration/test_attack_*.py, run against a real
fleet (a real broker, hub and sites), each test one attack that must fail to get in.

Prints one line per attack and ends with "attacks tried N, succeeded M"; exits 1 when M > 0
or an attack could not be tried (an error in the harness counts as succeeded: nothing is
assumed safe that was not shown to be). `make test` runs the same files in their short form;
this target sets OUTPOST_SECURITY_FULL=1, which the attack files read to use the issue's full
sizes (for example the 300 x 6 MB bogus-signature flood).
Usage: tests/security/run.py [NAME_FILTER]"""
import glob
import os
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


def main(argv):
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
    print(f"attacks tried {result.tried - skipped}, succeeded {len(result.got_in)}"
          + (f" ({skipped} skipped: see above)" if skipped else ""))
    return 1 if result.got_in else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
