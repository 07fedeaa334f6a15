#!/usr/bin/python3
"""Writes outpost(1), the CLI's manual page, from the binary's own help texts.

Usage: scripts/manpage.py OUTPOST_BINARY VERSION > outpost.1

The page is made at build time (make man) and never committed: the command list comes from
`outpost help`, and each command's section is its `--help` text, so the page cannot drift
from the binary. The roles have hand-written pages (man/outpost-hub.8, man/outpost-site.8).
"""
import re
import subprocess
import sys


def run(binary, *args):
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)
    return done.stdout if done.stdout else done.stderr


def roff_text(text):
    """Plain text as roff lines: backslashes escaped, no line read as a request."""
    out = []
    for line in text.rstrip("\n").split("\n"):
        line = line.replace("\\", "\\e")
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def commands(help_text):
    """The command words in `outpost help`, in order, without the roles."""
    seen = []
    for line in help_text.split("\n"):
        m = re.match(r"^  outpost ([a-z][a-z-]*)", line)
        if m and m.group(1) not in ("hub", "site") and m.group(1) not in seen:
            seen.append(m.group(1))
    return seen


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: manpage.py OUTPOST_BINARY VERSION")
    binary, version = sys.argv[1], sys.argv[2]
    overview = run(binary, "help")
    names = commands(overview)
    if not names:
        sys.exit("manpage.py: no commands found in `%s help`" % binary)
    page = [
        '.TH OUTPOST 1 2026-12-01 "outpost %s" "User Commands"' % version,
        ".SH NAME",
        "outpost \\- operate an Outpost fleet: submit jobs, watch sites, audit the hub",
        ".SH SYNOPSIS",
        ".B outpost",
        ".I COMMAND",
        ".RI [ OPTIONS ]",
        ".SH DESCRIPTION",
        "One binary runs the hub",
        ".RB ( outpost\\-hub (8)),",
        "the site agent",
        ".RB ( outpost\\-site (8))",
        "and the operator commands below. Operator commands sign each request with an",
        "operator key and reach the hub through the MQTT broker; site commands talk to a",
        "site agent on this machine through its local socket.",
        ".PP",
        ".nf",
        roff_text(overview),
        ".fi",
        ".SH COMMANDS",
    ]
    for name in names:
        page += [".SS %s" % name, ".nf", roff_text(run(binary, name, "--help")), ".fi"]
    page += [
        ".SH ENVIRONMENT",
        ".TP",
        ".B OUTPOST_HUB_DIR",
        "The hub's data directory, when",
        ".B \\-\\-hub\\-dir",
        "is not given: its",
        ".I cli.conf",
        "and",
        ".I admin/",
        "key are used.",
        ".SH SEE ALSO",
        ".BR outpost\\-hub (8),",
        ".BR outpost\\-site (8)",
    ]
    sys.stdout.write("\n".join(page) + "\n")


if __name__ == "__main__":
    main()
