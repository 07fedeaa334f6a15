#!/bin/sh
# `make bench`: micro benchmarks and end-to-end fleet figures, with baselines from the same run.
set -eu
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/e2e.py "$@"
