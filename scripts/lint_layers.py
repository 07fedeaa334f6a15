#!/usr/bin/python3
"""The layering rules of src/, checked (part of `make lint`).

src/<layer>/<module>.[ch]. Layers, lowest first:
  base   err, util, jsonx, timer (pure); log, os, conf, runctl (the process and its files)
  wire   identities, signed envelopes, tokens, topics          (pure)
  core   job specs and states, scheduling, power, policy, audit (pure)
  learn  exceptions, features, static estimates, errors, adoption rules (pure)
  route  the routing solver and its formats                    (pure)
  sim    the fleet simulator                                   (pure)
  io     adapters: SQLite, MQTT, the sandbox, key files, the local socket, data files
  hub, site, cli   the roles; main.c picks one

Rules:
 1. includes point down: a file includes headers of its own layer or of lower ones,
    never of a role other than its own (route and sim do not include each other);
 2. a pure file (wire, core, learn, route, sim, and base/err, base/util, base/jsonx) includes
    only pure headers and a short list of system headers, and calls no I/O: no files,
    sockets, clocks, environment, processes, logging, SQLite or MQTT.
Usage: lint_layers.py [--root DIR]   exit 1 and one line per violation when broken
       lint_layers.py --self-test    checks that the fixtures in tests/fixtures/lint fail"""
import os
import re
import subprocess
import sys

RANK = {"base": 0, "wire": 1, "core": 2, "learn": 3, "route": 4, "sim": 4, "io": 5,
        "hub": 6, "site": 6, "cli": 6}
ROLES = {"hub", "site", "cli"}
PURE_LAYERS = {"wire", "core", "learn", "route", "sim"}
PURE_BASE = {"base/err", "base/util", "base/jsonx", "base/timer"}
SYSTEM_OK = {"stddef.h", "stdint.h", "stdio.h", "stdlib.h", "string.h", "math.h", "ctype.h",
             "stdarg.h", "limits.h", "errno.h", "float.h", "stdbool.h", "inttypes.h",
             "cJSON.h", "sodium.h", "openssl/evp.h",
             "pthread.h"}  # threads and a mutex are computation, not I/O (the route islands)
IO_CALLS = [
    # files and directories
    "fopen", "fdopen", "freopen", "fclose", "fread", "fwrite", "fgets", "fputs", "fflush",
    "fprintf", "vfprintf", "printf", "vprintf", "puts", "putchar", "perror", "open", "openat",
    "close", "read", "write", "pread", "pwrite", "unlink", "remove", "rename", "mkdir", "rmdir",
    "opendir", "readdir", "stat", "lstat", "fstat", "fsync", "ftruncate", "mmap",
    # sockets, processes, signals, environment
    "socket", "connect", "bind", "listen", "accept", "send", "recv", "getenv", "setenv",
    "system", "popen", "fork", "execv", "execve", "execvp", "kill", "signal", "sigaction",
    "exit", "abort",
    # clocks
    "time", "clock", "clock_gettime", "gettimeofday", "sleep", "usleep", "nanosleep",
]
IO_PREFIXES = ["os_", "log_", "sqlite3_", "mosquitto_", "store_", "bus_", "sandbox_",
               "auditlog_", "keyfile_", "opclient_", "simfiles_", "localsock_", "xgb_",
               "learndata_"]
CALL_RE = re.compile(r"(?<![\w.>])(" + "|".join(IO_CALLS) + r"|(?:" + "|".join(IO_PREFIXES)
                     + r")\w+)\s*\(")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def strip_comments_and_strings(text):
    """Blanks comments and string/char literals, keeping line numbers."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j]) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def module_of(rel):
    """'core/sched.c' -> ('core', 'core/sched'); 'main.c' -> (None, 'main')."""
    parts = rel.split("/")
    if len(parts) == 1:
        return None, os.path.splitext(rel)[0]
    return parts[0], parts[0] + "/" + os.path.splitext(parts[1])[0]


def is_pure(layer, module):
    return layer in PURE_LAYERS or module in PURE_BASE


def check_file(src_root, rel):
    problems = []
    layer, module = module_of(rel)
    text = open(os.path.join(src_root, rel), encoding="utf-8").read()
    pure = is_pure(layer, module)
    for m in INCLUDE_RE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        kind, name = m.group(1), m.group(2)
        where = f"src/{rel}:{line}"
        if kind == '"':
            inc_layer, inc_module = module_of(name)
            if inc_layer is None or inc_layer not in RANK:
                problems.append(f"{where}: include \"{name}\" names no layer (use \"layer/name.h\")")
                continue
            if layer is not None:
                if RANK[inc_layer] > RANK[layer]:
                    problems.append(f"{where}: {layer} may not include {name} ({inc_layer} is above it)")
                elif RANK[inc_layer] == RANK[layer] and inc_layer != layer:
                    problems.append(f"{where}: {layer} may not include {name} (a sibling layer)")
            if pure and not is_pure(inc_layer, inc_module):
                problems.append(f"{where}: pure module {module} includes {name}, which does I/O")
        elif pure and name not in SYSTEM_OK:
            problems.append(f"{where}: pure module {module} includes <{name}>")
    if pure:
        code = strip_comments_and_strings(text)
        for m in CALL_RE.finditer(code):
            line = code.count("\n", 0, m.start()) + 1
            problems.append(f"src/{rel}:{line}: pure module {module} calls {m.group(1)}()")
    return problems


def check_tree(root):
    src_root = os.path.join(root, "src")
    problems = []
    for dirpath, _, files in os.walk(src_root):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src_root)
            layer, _ = module_of(rel)
            if layer is not None and layer not in RANK:
                problems.append(f"src/{rel}: {layer}/ is not a known layer")
                continue
            problems += check_file(src_root, rel)
    return problems


def self_test(root):
    """Every fixture under tests/fixtures/lint/src must be refused, each for its reason."""
    fixtures = os.path.join(root, "tests", "fixtures", "lint")
    problems = "\n".join(check_tree(fixtures))
    expected = [
        "pure module core/bad_io includes base/os.h, which does I/O",
        "pure module core/bad_io includes <unistd.h>",
        "pure module core/bad_io calls fopen()",
        "pure module core/bad_io calls os_now_ms()",
        "pure module core/bad_io calls clock_gettime()",
        "base may not include core/sched.h (core is above it)",
        "io may not include hub/hub.h (hub is above it)",
    ]
    missing = [e for e in expected if e not in problems]
    # the fixture's comment and string that merely mention fopen must not count
    false = [p for p in problems.splitlines() if "bad_io.c:" in p and "calls" in p
             and int(p.split(":")[1]) < 10]
    if missing or false:
        print("lint self-test FAILED: the fixtures were not refused as expected", file=sys.stderr)
        for e in missing:
            print(f"  not reported: {e}", file=sys.stderr)
        for p in false:
            print(f"  reported from a comment or string: {p}", file=sys.stderr)
        print("  reported:\n    " + problems.replace("\n", "\n    "), file=sys.stderr)
        return 1
    print(f"lint self-test: the deliberate violations were refused ({len(problems.splitlines())} lines)")
    return 0


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if "--self-test" in argv:
        return self_test(root)
    if "--root" in argv:
        root = argv[argv.index("--root") + 1]
    problems = check_tree(root)
    for p in problems:
        print(p)
    if problems:
        print(f"lint: {len(problems)} layering violation(s); see scripts/lint_layers.py for the rules")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
