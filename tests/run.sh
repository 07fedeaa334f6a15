#!/bin/sh
# Runs every test, each in its own process with a time limit, and prints
# "N passed, N failed" (counting individual test cases) as its last line.
# Usage: tests/run.sh [unit|integration] [NAME...]   (NAME filters by file name)
set -u
cd "$(dirname "$0")/.."
which="${1:-all}"; [ $# -gt 0 ] && shift
filter="$*"
passed=0; failed=0; failed_names=""; start=$(date +%s)
logdir=build/test-logs; mkdir -p "$logdir"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

selected() {
  [ -z "$filter" ] && return 0
  for f in $filter; do case "$1" in *"$f"*) return 0;; esac; done
  return 1
}

count_cmocka() { # log file, exit code
  p=$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -1)
  f=$(sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -1)
  p=${p:-0}; f=${f:-0}
  if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -gt 0 ] && failed_names="$failed_names $3"
}

count_unittest() { # log file, exit code, name
  ran=$(sed -n 's/^Ran \([0-9]*\) test.*/\1/p' "$1" | tail -1); ran=${ran:-0}
  skipped=$(sed -n 's/.*skipped=\([0-9]*\).*/\1/p' "$1" | tail -1); skipped=${skipped:-0}
  bad=$(grep -c -E '^(FAIL|ERROR):' "$1"); bad=${bad:-0}
  if [ "$2" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  passed=$((passed + ran - bad - skipped)); failed=$((failed + bad))
  [ "$skipped" -gt 0 ] && echo "   ($skipped skipped: see $1)"
  [ "$bad" -gt 0 ] && failed_names="$failed_names $3"
}

if [ "$which" = all ] || [ "$which" = unit ]; then
  for t in build/asan/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t"); selected "$name" || continue
    log="$logdir/$name.log"
    t0=$(date +%s); timeout 300 "$t" >"$log" 2>&1; rc=$?
    count_cmocka "$log" "$rc" "$name"
    echo "unit        $name: exit $rc ($(( $(date +%s) - t0 )) s)"
    [ "$rc" -ne 0 ] && tail -30 "$log"
  done
  # the same tests again under ThreadSanitizer where they run threads (Makefile: TSAN_TESTS);
  # a race reported makes the program exit non-zero (66) after its tests
  for t in build/tsan/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t"); selected "$name" || continue
    log="$logdir/tsan-$name.log"
    t0=$(date +%s); TSAN_OPTIONS="second_deadlock_stack=1" timeout 300 "$t" >"$log" 2>&1; rc=$?
    count_cmocka "$log" "$rc" "tsan-$name"
    echo "unit (tsan) $name: exit $rc ($(( $(date +%s) - t0 )) s)"
    [ "$rc" -ne 0 ] && tail -30 "$log"
  done
fi

# Integration test files run TEST_JOBS at a time (default: the number of cores), each with its
# own broker, ports and temporary directories; those in SERIAL_TESTS assert on timing (a flood
# answered within a bound, a signal not late) or race a real site (a forged probe answer must
# arrive before the site's own) and run afterwards, one at a time, alone.
# The files known to be long start first, so that the last ones are short.
SERIAL_TESTS="test_attack_wire test_power_signals test_route_scale test_claims"
SLOW_FIRST="test_faults test_fleet test_demo test_models test_failover test_storage_faults test_learn
  test_brokers test_install test_offline"
jobs=${TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
par=""; ser=""
add() { # job (NAME or pg:NAME), file name
  case " $SERIAL_TESTS " in *" $2 "*) ser="$ser $1";; *) par="$par $1";; esac
}
if [ "$which" = all ] || [ "$which" = integration ]; then
  for name in $SLOW_FIRST; do
    [ -f "tests/integration/$name.py" ] && selected "$name" && add "$name" "$name"
  done
  for t in tests/integration/test_*.py; do
    name=$(basename "$t" .py); selected "$name" || continue
    case " $SLOW_FIRST " in *" $name "*) continue;; esac
    add "$name" "$name"
  done
fi
# a few integration tests again with the hub's state in PostgreSQL (Makefile: PG_TESTS)
if [ "$which" = all ] && [ -n "${PG_TESTS:-}" ]; then
  for name in $PG_TESTS; do
    [ -f "tests/integration/$name.py" ] && add "pg:$name" "$name"
  done
fi
rm -f "$logdir"/*.rc
[ -n "$par" ] && printf '%s\n' $par | xargs -P "$jobs" -n 1 tests/run_one.sh
for job in $ser; do tests/run_one.sh "$job"; done
for job in $par $ser; do
  case "$job" in pg:*) tag=pg-${job#pg:};; *) tag=$job;; esac
  log="$logdir/$tag.log"
  rc=$(cat "$logdir/$tag.rc" 2>/dev/null || echo 1)
  count_unittest "$log" "$rc" "$tag"
  if [ "$rc" -ne 0 ]; then echo "--- $tag (exit $rc):"; tail -40 "$log"; fi
done

[ -n "$failed_names" ] && echo "failed:$failed_names (logs in $logdir)"
echo "all tests: $(( $(date +%s) - start )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
