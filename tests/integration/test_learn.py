"""`outpost learn replay` on the real taxi data (../shared/data/learning): a short replay runs to
the end, writes its CSV and SVG, gives the same figures twice, and its figures make sense (the
learned strategies beat the static estimate after the warm-up; the central model, which sees
every row, is no worse than the others within noise). Bad input gets a clear error. Nothing
here asserts a wall-clock time."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import ROOT  # noqa: E402

BIN = os.environ.get("OUTPOST_BIN", os.path.join(ROOT, "build", "asan", "outpost"))
REL = os.path.join(ROOT, "build", "rel", "outpost")
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "learning"))
HAVE_DATA = os.path.exists(os.path.join(DATA, "nyc_taxis_2019_03_seaborn.csv"))
STRATEGIES = ["static", "local", "pooled-ensemble", "pooled-cyclic", "outpost-ensemble",
              "outpost-cyclic", "central"]


def replay(binary, *args, timeout=400):  # a bound for a wedged run, not a speed check
    return subprocess.run([binary, "learn", "replay", "--dir", DATA, *args],
                          capture_output=True, text=True, timeout=timeout)


def overall(stdout):
    """The final table: strategy -> MAE in seconds."""
    table = {}
    for name in STRATEGIES:
        m = re.search(rf"^{re.escape(name)}\s+([0-9.]+)\s", stdout, re.M)
        if m:
            table[name] = float(m.group(1))
    return table


def read_csv(path):
    with open(path) as f:
        lines = f.read().splitlines()
    header = lines[0].split(",")
    return header, [dict(zip(header, line.split(","))) for line in lines[1:]]


@unittest.skipUnless(HAVE_DATA, f"{DATA} is missing (shared data sets not on this machine)")
class ReplayOnRealData(unittest.TestCase):
    def check_figures(self, out):
        mae = overall(out)
        self.assertEqual(sorted(mae), sorted(STRATEGIES), out)
        for name in STRATEGIES[1:]:
            self.assertLess(mae[name], mae["static"], f"{name} did not beat static:\n{out}")
        # the central model sees every row: no strategy should beat it by more than noise
        for name in STRATEGIES:
            self.assertGreaterEqual(mae[name], mae["central"] * 0.9, f"{name} vs central:\n{out}")
        self.assertIn("rows that left a site: 0", out)
        self.assertRegex(out, r"RESULT outpost-(ensemble|cyclic) below_static=")
        return mae

    def test_nyc_quick_replay(self):
        with tempfile.TemporaryDirectory() as tmp:
            r = replay(BIN, "--data", "nyc", "--quick", "--out", tmp)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("4 sites", r.stdout)
            self.check_figures(r.stdout)
            header, rows = read_csv(os.path.join(tmp, "learn_nyc.csv"))
            self.assertEqual(header[:3], ["period", "start", "trips"])
            self.assertEqual(len(rows), 10)  # day 0 (one trip on Feb 28) and nine days of March
            # after the warm-up, the sites' own models beat the static plan day after day
            late = [r for r in rows[5:] if int(r["trips"]) > 0]
            better = sum(float(r["mae_local_s"]) < float(r["mae_static_s"]) for r in late)
            self.assertEqual(better, len(late), rows)
            with open(os.path.join(tmp, "learn_nyc.svg")) as f:
                svg = f.read()
            self.assertTrue(svg.startswith("<svg") and svg.rstrip().endswith("</svg>"))
            self.assertEqual(svg.count("<path"), 5)  # static, local, two Outposts, central
            # the same data and options give the same figures: training is deterministic
            again = replay(BIN, "--data", "nyc", "--quick", "--quiet")
            self.assertEqual(again.returncode, 0, again.stderr)
            self.assertEqual(overall(again.stdout), overall(r.stdout))

    @unittest.skipUnless(os.path.exists(REL), "needs build/rel/outpost")
    def test_chicago_quick_replay(self):
        # weeks, not days: the sample is thin per company (the release binary keeps it short)
        r = replay(REL, "--data", "chicago", "--quick", "--quiet")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("periods of 7 day(s)", r.stdout)
        self.assertIn("(no company recorded)", r.stdout)
        self.assertIn("(other companies)", r.stdout)
        self.check_figures(r.stdout)


class ReplayRefusesBadInput(unittest.TestCase):
    def run_bin(self, *args):
        return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)

    def test_usage_errors(self):
        for args in (["learn"], ["learn", "frobnicate"], ["learn", "replay", "--data", "paris"],
                     ["learn", "replay", "--rounds", "0"], ["learn", "replay", "extra"],
                     ["learn", "replay", "--objective", "median"],
                     ["learn", "replay", "--rebuild", "-1"], ["learn", "replay", "--sticky", "2"],
                     ["learn", "replay", "--personal", "many"]):
            r = self.run_bin(*args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertTrue(r.stderr.strip(), args)
        r = self.run_bin("learn", "replay", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--data chicago|nyc", r.stdout)

    def test_missing_and_malformed_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            r = self.run_bin("learn", "replay", "--data", "nyc", "--dir", tmp)
            self.assertEqual(r.returncode, 4, r.stderr)
            self.assertIn("nyc_taxi_zones_seaborn.csv: cannot read it", r.stderr)
            path = os.path.join(tmp, "chicago_taxi_trips_tfx_sample.csv")
            with open(path, "w") as f:
                f.write("trip_seconds,trip_miles,trip_start_timestamp,trip_start_hour,"
                        "trip_start_day,trip_start_month,pickup_community_area,"
                        "dropoff_community_area,company\n"
                        "600,1.5,1400000000,9,2,5,8,32,Acme\n"
                        "600,one,1400000000,9,2,5,8,32,Acme\n")
            r = self.run_bin("learn", "replay", "--data", "chicago", "--dir", tmp)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("chicago_taxi_trips_tfx_sample.csv: line 3: trip_miles is not a number",
                          r.stderr)
            with open(path, "w") as f:
                f.write("trip_seconds,trip_miles\n600,1.5\n")
            r = self.run_bin("learn", "replay", "--data", "chicago", "--dir", tmp)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("no column 'trip_start_timestamp'", r.stderr)
            # well formed but too small to fit the static estimate on
            with open(path, "w") as f:
                f.write("trip_seconds,trip_miles,trip_start_timestamp,trip_start_hour,"
                        "trip_start_day,trip_start_month,pickup_community_area,"
                        "dropoff_community_area,company\n600,1.5,1400000000,9,2,5,8,32,Acme\n")
            r = self.run_bin("learn", "replay", "--data", "chicago", "--dir", tmp)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("1 usable trips, fewer than the 200", r.stderr)


if __name__ == "__main__":
    unittest.main()
