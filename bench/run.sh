#!/bin/sh
# `make bench`: micro benchmarks and end-to-end fleet figures, with baselines from the same run,
# then the bytes a site writes to storage (bench/flash.py) and an offline backlog's drain
# (bench/offline.py), placement at fleet scale with the simulator (bench/fleet.py), a 1 GiB
# model to 8 site agents and a 32 MiB one to 50, from the hub and from peers
# (bench/artifacts.py), sites learning from their exceptions on real taxi data
# (bench/learn.py), and the HTTP API next to the MQTT CLI path (bench/api.py).
set -eu
cd "$(dirname "$0")/.."
/usr/bin/python3 bench/e2e.py "$@"
/usr/bin/python3 bench/fleet.py
/usr/bin/python3 bench/flash.py
/usr/bin/python3 bench/offline.py
/usr/bin/python3 bench/artifacts.py
/usr/bin/python3 bench/api.py
exec /usr/bin/python3 bench/learn.py
