"""The shape of the source tree, as rules the build keeps: includes point down the layers,
pure modules do no I/O (and the check refuses deliberate violations), no function over 80
lines, no source file over 1,000."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINT = os.path.join(ROOT, "scripts", "lint_layers.py")
SIZES = os.path.join(ROOT, "scripts", "sizes.py")


def run(*argv):
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120)


class LayoutTest(unittest.TestCase):
    def test_tree_keeps_the_layering_rules(self):
        r = run(LINT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_lint_refuses_deliberate_violations(self):
        r = run(LINT, "--self-test")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_lint_refuses_io_added_to_a_pure_module(self):
        # a copy of the real tree where the scheduler, a pure module, reads the clock and a file
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(os.path.join(ROOT, "src"), os.path.join(tmp, "src"))
            path = os.path.join(tmp, "src", "core", "sched.c")
            with open(path, "a") as fh:
                fh.write('\n#include "base/os.h"\nlong sched__peek(void)\n{\n'
                         '    return (long)os_now_ms();\n}\n')
            r = run(LINT, "--root", tmp)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("pure module core/sched includes base/os.h", r.stdout)
            self.assertIn("pure module core/sched calls os_now_ms()", r.stdout)

    def test_lint_refuses_an_include_pointing_up(self):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(os.path.join(ROOT, "src"), os.path.join(tmp, "src"))
            with open(os.path.join(tmp, "src", "io", "store.c"), "a") as fh:
                fh.write('\n#include "site/site.h"\n')
            r = run(LINT, "--root", tmp)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("io may not include site/site.h", r.stdout)

    def test_functions_and_files_stay_small(self):
        r = run(SIZES, "--max-function", "80", "--max-file", "1000")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
