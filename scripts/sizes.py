#!/usr/bin/python3
"""The longest functions and the largest files under src/ (`make sizes`).

A function is a definition whose body opens with '{' alone in column 0 and closes
with '}' in column 0 (the house style that clang-format keeps); its length counts
the lines from its signature's first line to the closing brace.
Usage: sizes.py [--top N] [--max-function LINES] [--max-file LINES]
With a maximum given, exits 1 when anything is over it."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME_RE = re.compile(r"([A-Za-z_]\w*)\s*\(")


def functions(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    out = []
    for i, line in enumerate(lines):
        if line != "{":
            continue
        # the signature: the lines above, back to a blank line, a '}' or a comment end
        start = i
        while start > 0 and lines[start - 1].strip() and not lines[start - 1].startswith(("}", " */", "#")) \
                and not lines[start - 1].rstrip().endswith(("*/", ";")):
            start -= 1
        sig = " ".join(lines[start:i])
        m = NAME_RE.search(sig)
        if not m or "=" in sig.split("(")[0]:
            continue
        end = i + 1
        while end < len(lines) and lines[end] != "}":
            end += 1
        out.append((end - start + 1, m.group(1), start + 1))
    return out


def main(argv):
    top = 15
    max_fn = max_file = None
    if "--top" in argv:
        top = int(argv[argv.index("--top") + 1])
    if "--max-function" in argv:
        max_fn = int(argv[argv.index("--max-function") + 1])
    if "--max-file" in argv:
        max_file = int(argv[argv.index("--max-file") + 1])
    fns, files = [], []
    for dirpath, _, names in os.walk(os.path.join(ROOT, "src")):
        for n in names:
            if not n.endswith((".c", ".h")):
                continue
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, ROOT)
            with open(p, encoding="utf-8") as fh:
                files.append((sum(1 for _ in fh), rel))
            if n.endswith(".c"):
                fns += [(length, name, f"{rel}:{line}") for length, name, line in functions(p)]
    fns.sort(reverse=True)
    files.sort(reverse=True)
    print(f"longest functions (of {len(fns)}):")
    for length, name, where in fns[:top]:
        print(f"  {length:5d}  {name:32s} {where}")
    print(f"largest files (of {len(files)}, {sum(f[0] for f in files)} lines):")
    for length, rel in files[:top]:
        print(f"  {length:5d}  {rel}")
    bad = 0
    if max_fn is not None:
        over = [f for f in fns if f[0] > max_fn]
        for length, name, where in over:
            print(f"sizes: {name} ({where}) is {length} lines, over {max_fn}")
        bad += len(over)
    if max_file is not None:
        over = [f for f in files if f[0] > max_file]
        for length, rel in over:
            print(f"sizes: {rel} is {length} lines, over {max_file}")
        bad += len(over)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
