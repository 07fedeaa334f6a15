"""VROOM-form problems made from the shared benchmark data, for the tests and bench/route.py.

- solomon_jobs: a Solomon (or Gehring-Homberger) file as VROOM jobs with a duration matrix,
  every value times SCALE and rounded (VROOM works in integers); the summary's cost divided
  by SCALE is then the Solomon distance up to rounding.
- solomon_shipments: the same customers paired into pickup-and-delivery shipments (customer
  2k picked up, 2k+1 delivered; windows and service kept, the pair's amount the first one's
  demand).
- with_rich: skills, priorities, a second capacity dimension, breaks and per-vehicle ends
  added to a jobs problem, so every feature is exercised on a real instance.
"""
import math
import os

SCALE = 100
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VRP = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "vrp"))


def read_solomon(path):
    with open(path) as f:
        lines = [l.split() for l in f.read().replace("\r", "").split("\n")]
    vehicles = capacity = None
    rows = []
    for i, l in enumerate(lines):
        if l[:2] == ["NUMBER", "CAPACITY"]:
            vehicles, capacity = int(lines[i + 1][0]), int(lines[i + 1][1])
        if len(l) == 7 and all(x.replace(".", "").isdigit() for x in l):
            rows.append([float(x) for x in l])
    return vehicles, capacity, rows


def _matrix(rows):
    n = len(rows)
    return [[int(round(SCALE * math.hypot(rows[i][1] - rows[j][1], rows[i][2] - rows[j][2])))
             for j in range(n)] for i in range(n)]


def _vehicles(count, capacity, depot, dims=1):
    return [{"id": v + 1, "start_index": 0, "end_index": 0, "capacity": [capacity] * dims,
             "time_window": [int(depot[4] * SCALE), int(depot[5] * SCALE)]} for v in range(count)]


def _tw(r):
    return [[int(r[4] * SCALE), int(r[5] * SCALE)]]


def solomon_jobs(path, vehicles=None):
    count, capacity, rows = read_solomon(path)
    jobs = [{"id": int(r[0]), "location_index": i, "delivery": [int(r[3])],
             "service": int(r[6] * SCALE), "time_windows": _tw(r)} for i, r in enumerate(rows) if i > 0]
    return {"vehicles": _vehicles(vehicles or count, capacity, rows[0]), "jobs": jobs,
            "matrices": {"car": {"durations": _matrix(rows)}}}


def solomon_shipments(path, vehicles=None):
    count, capacity, rows = read_solomon(path)
    ships = []
    for k in range(1, len(rows) - 1, 2):
        p, d = rows[k], rows[k + 1]
        ships.append({"amount": [int(p[3])],
                      "pickup": {"id": int(p[0]), "location_index": k, "service": int(p[6] * SCALE),
                                 "time_windows": [[0, int(rows[0][5] * SCALE)]]},
                      "delivery": {"id": int(d[0]), "location_index": k + 1,
                                   "service": int(d[6] * SCALE), "time_windows": _tw(d)}})
    return {"vehicles": _vehicles(vehicles or count, capacity, rows[0]), "shipments": ships,
            "matrices": {"car": {"durations": _matrix(rows)}}}


def with_rich(problem):
    """Skills on a third of the jobs, priorities, a second dimension, breaks, open ends."""
    for j in problem["jobs"]:
        j["delivery"] = j["delivery"] + [1]
        if j["id"] % 3 == 0:
            j["skills"] = [j["id"] % 2 + 1]
        j["priority"] = (j["id"] * 37) % 101
    for v in problem["vehicles"]:
        v["capacity"] = v["capacity"] + [12]
        v["skills"] = [1 + v["id"] % 2]
        start, end = v["time_window"]
        mid = (start + end) // 2
        v["breaks"] = [{"id": 1, "service": 30 * SCALE, "time_windows": [[max(start, mid - (end - start) // 4), mid + (end - start) // 4]]}]
        if v["id"] % 4 == 0:
            del v["end_index"]
        v["max_tasks"] = 12
    return problem
