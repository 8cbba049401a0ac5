#!/usr/bin/python3
"""Writes mounts/man/meshctl.1 from `meshctl --help` and every
`meshctl COMMAND --help`, so the man page says what --help says.
Usage: gen-meshctl-man.py MESHCTL [OUT]   (a test checks it is current)."""
import subprocess
import sys

HEAD = open(__file__.replace("gen-meshctl-man.py", "meshctl.1.head")).read()
TAIL = open(__file__.replace("gen-meshctl-man.py", "meshctl.1.tail")).read()


def esc(t):
    return t.replace("\\", "\\\\").replace("-", "\\-")


def main():
    meshctl = sys.argv[1]
    top = subprocess.run([meshctl, "--help"], capture_output=True, text=True).stdout
    table = top.split("commands:\n")[1].split("\n\n")[0].splitlines()
    out = [HEAD.rstrip("\n"), ".SH COMMANDS"]
    for line in table:
        cmd, summary = line.split()[0], " ".join(line.split()[1:])
        h = subprocess.run([meshctl, cmd, "--help"], capture_output=True, text=True)
        usage, rest = [], []
        for l in (h.stdout or h.stderr).rstrip("\n").splitlines():
            if not rest and (l.startswith("usage: ") or l.startswith("       ")):
                usage.append(l.replace("usage: ", "").strip())
            else:
                rest.append(l.strip())
        out += [".TP", ".B " + cmd, esc(summary[0].upper() + summary[1:]) + "."]
        for u in usage:
            out += [".br", "\\fB" + esc(u) + "\\fR"]
        body = " ".join(x for x in rest if x)
        if body:
            out += [".br", esc(body)]
    text = "\n".join(out) + "\n" + TAIL
    if len(sys.argv) > 2:
        open(sys.argv[2], "w").write(text)
    else:
        sys.stdout.write(text)


main()
