#!/bin/sh
# One integration test file, for tests/run.sh: its log, exit code and seconds go to
# build/test-logs/NAME.{log,rc} and its line to stdout.
# Usage: tests/run_one.sh NAME | pg:NAME   (pg: with the hub's state in PostgreSQL)
set -u
cd "$(dirname "$0")/.."
logdir=build/test-logs
case "$1" in
  pg:*) name=${1#pg:}; tag=pg-$name; label="integration (postgresql)"
        OUTPOST_TEST_STORE=postgresql; export OUTPOST_TEST_STORE ;;
  *)    name=$1; tag=$name; label=integration ;;
esac
log=$logdir/$tag.log
t0=$(date +%s)
OUTPOST_BIN="${OUTPOST_BIN:-build/asan/outpost}" timeout 900 \
  /usr/bin/python3 -m unittest -v "tests/integration/$name.py" >"$log" 2>&1
rc=$?
echo "$rc" >"$logdir/$tag.rc"
echo "$label $name: exit $rc ($(( $(date +%s) - t0 )) s)"
