#!/bin/sh
# Runs every test, each in its own process with a time limit, and prints
# "N passed, N failed" (counting individual test cases) as its last line.
# Usage: tests/run.sh [unit|integration] [NAME...]   (NAME filters by file name)
set -u
cd "$(dirname "$0")/.."
which="${1:-all}"; [ $# -gt 0 ] && shift
filter="$*"
passed=0; failed=0; failed_names=""
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
    timeout 300 "$t" >"$log" 2>&1; rc=$?
    count_cmocka "$log" "$rc" "$name"
    echo "unit        $name: exit $rc"
    [ "$rc" -ne 0 ] && tail -30 "$log"
  done
  # the same tests again under ThreadSanitizer where they run threads (Makefile: TSAN_TESTS);
  # a race reported makes the program exit non-zero (66) after its tests
  for t in build/tsan/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t"); selected "$name" || continue
    log="$logdir/tsan-$name.log"
    TSAN_OPTIONS="second_deadlock_stack=1" timeout 300 "$t" >"$log" 2>&1; rc=$?
    count_cmocka "$log" "$rc" "tsan-$name"
    echo "unit (tsan) $name: exit $rc"
    [ "$rc" -ne 0 ] && tail -30 "$log"
  done
fi

if [ "$which" = all ] || [ "$which" = integration ]; then
  for t in tests/integration/test_*.py; do
    name=$(basename "$t" .py); selected "$name" || continue
    log="$logdir/$name.log"
    OUTPOST_BIN="${OUTPOST_BIN:-build/asan/outpost}" timeout 900 /usr/bin/python3 -m unittest -v "$t" >"$log" 2>&1; rc=$?
    count_unittest "$log" "$rc" "$name"
    echo "integration $name: exit $rc"
    [ "$rc" -ne 0 ] && tail -40 "$log"
  done
fi

# a few integration tests again with the hub's state in PostgreSQL (Makefile: PG_TESTS)
if [ "$which" = all ] && [ -n "${PG_TESTS:-}" ]; then
  for name in $PG_TESTS; do
    t=tests/integration/$name.py; [ -f "$t" ] || continue
    log="$logdir/pg-$name.log"
    OUTPOST_TEST_STORE=postgresql OUTPOST_BIN="${OUTPOST_BIN:-build/asan/outpost}" \
      timeout 900 /usr/bin/python3 -m unittest -v "$t" >"$log" 2>&1; rc=$?
    count_unittest "$log" "$rc" "pg-$name"
    echo "integration (postgresql) $name: exit $rc"
    [ "$rc" -ne 0 ] && tail -40 "$log"
  done
fi

[ -n "$failed_names" ] && echo "failed:$failed_names (logs in $logdir)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
