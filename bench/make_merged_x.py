#!/usr/bin/python3
"""Writes a 2,000-customer CVRPLIB instance made from the shared set X.

The customers of X-n1001-k43 (its depot and capacity too), then those of
X-n979-k58 and the first 22 of X-n936-k151, each demand scaled to
X-n1001-k43's capacity (rounded up, at least 1). No best-known value exists;
it serves the solver's scaling tests (a first plan in under 0.1 s).
Usage: make_merged_x.py OUT.vrp   (reads ../shared/data/vrp/x)
"""
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
X = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "vrp", "x"))


def read(name):
    """(capacity, [(x, y)], [demand]) of set X's instance name, the depot first."""
    return read_cvrplib(os.path.join(X, name + ".vrp"))


def read_cvrplib(path):
    """(capacity, [(x, y)], [demand]) of a CVRPLIB file with integer coordinates, depot first."""
    cap, coords, demands, section = 0, [], [], None
    with open(path) as f:
        for line in f:
            t = line.split()
            if not t:
                continue
            if t[0].startswith("CAPACITY"):
                cap = int(t[-1])
            elif t[0] in ("NODE_COORD_SECTION", "DEMAND_SECTION", "DEPOT_SECTION", "EOF"):
                section = t[0]
            elif section == "NODE_COORD_SECTION":
                coords.append((int(t[1]), int(t[2])))
            elif section == "DEMAND_SECTION":
                demands.append(int(t[1]))
    return cap, coords, demands


def main(out):
    cap, coords, demands = read("X-n1001-k43")
    for name, count in (("X-n979-k58", 978), ("X-n936-k151", 22)):
        c2, xy, d = read(name)
        coords += xy[1:1 + count]
        demands += [max(1, math.ceil(v * cap / c2)) for v in d[1:1 + count]]
    n = len(coords)
    with open(out, "w") as f:
        f.write(f"NAME : X-n{n}-merged\nCOMMENT : customers of X-n1001-k43, X-n979-k58 and "
                f"X-n936-k151, demands scaled to capacity {cap}\nTYPE : CVRP\n"
                f"DIMENSION : {n}\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : {cap}\n"
                "NODE_COORD_SECTION\n")
        for i, (x, y) in enumerate(coords):
            f.write(f"{i + 1}\t{x}\t{y}\n")
        f.write("DEMAND_SECTION\n")
        for i, d in enumerate(demands):
            f.write(f"{i + 1}\t{d}\n")
        f.write("DEPOT_SECTION\n\t1\n\t-1\nEOF\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
