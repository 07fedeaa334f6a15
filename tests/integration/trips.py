"""Taxi trips of ../shared/data/learning as a site's exceptions (its delivery legs): the
features `outpost exception add` takes, the plan a planner without learning makes (distance
over the median speed of the first 200 trips) and what really happened. Shared by the
integration tests and demo/run.py."""
import calendar
import csv
import json
import os
import statistics
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "learning"))
NYC = os.path.join(DATA, "nyc_taxis_2019_03_seaborn.csv")
ZONES = os.path.join(DATA, "nyc_taxi_zones_seaborn.csv")
BOROUGHS = ["Manhattan", "Queens", "Brooklyn", "Bronx", "Staten Island", "EWR"]


def have_data():
    return os.path.exists(NYC) and os.path.exists(ZONES)


def _wall(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def nyc_legs(borough, limit=None):
    """The trips picked up in borough, oldest first, as exception dicts (planned_s from the
    static plan, actual_s, features), and the static speed in mph."""
    zones = {}
    with open(ZONES) as f:
        for row in csv.DictReader(f):
            zones[row["zone"]] = int(row["LocationID"])
    trips = []
    with open(NYC) as f:
        for row in csv.DictReader(f):
            if row["pickup_borough"] != borough:
                continue
            start, end = _wall(row["pickup"]), _wall(row["dropoff"])
            dist = float(row["distance"] or 0)
            if dist <= 0 or end <= start:
                continue
            feats = {"distance_miles": dist, "start": start}
            if row["pickup_zone"] in zones:
                feats["pickup_area"] = zones[row["pickup_zone"]]
            if row["dropoff_zone"] in zones:
                feats["dropoff_area"] = zones[row["dropoff_zone"]]
            feats["pickup_borough"] = BOROUGHS.index(borough)
            if row["dropoff_borough"] in BOROUGHS:
                feats["dropoff_borough"] = BOROUGHS.index(row["dropoff_borough"])
            trips.append((start, dist, end - start, feats))
    trips.sort(key=lambda t: t[0])
    speed = statistics.median(t[1] / (t[2] / 3600.0) for t in trips[:200])
    legs = [{"kind": "route-leg", "planned_s": round(t[1] / speed * 3600.0, 1),
             "actual_s": float(t[2]), "features": t[3], "at_ms": t[0] * 1000}
            for t in trips]
    return (legs[:limit] if limit else legs), speed


def write_jsonl(legs, path):
    with open(path, "w") as f:
        for leg in legs:
            f.write(json.dumps(leg) + "\n")
    return path
