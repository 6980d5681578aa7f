#!/usr/bin/python3
"""The daemon core's layering (docs/architecture.md, "The daemon core"):
registry -> pool -> build -> backend, and templates.c below the pool with
nothing of the pool or the registry in it. Fails naming the call that breaks
it; for another directory (src/vm, src/agent), that no two of its files
call each other. Usage: check_layers.py SRC_DIR"""
import collections
import os
import re
import sys

CORE = ["registry.c", "build.c", "record.c", "pool.c", "templates.c", "tmpl_build.c", "rmtree.c",
        "agent_client.c", "sandbox.c"]
# (caller, callee) pairs that must not exist: each would be a call upwards
FORBIDDEN = [("pool.c", "registry.c"), ("pool.c", "sandbox.c"), ("build.c", "registry.c"), ("build.c", "pool.c"),
             ("templates.c", "pool.c"), ("templates.c", "registry.c"), ("templates.c", "sandbox.c"),
             ("tmpl_build.c", "templates.c"), ("record.c", "registry.c")]


def strip(src):
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    src = re.sub(r"//[^\n]*", " ", src)
    return re.sub(r'"(\\.|[^"\\])*"', '""', src)


def exported(src):
    """Names of the non-static functions defined in src: a signature at
    column 0 whose body's brace is alone on the next line(s), or a one-line
    definition (accessors)."""
    names, lines = set(), src.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("static") or not re.match(r"[A-Za-z_]", line):
            continue
        one_line = re.match(r"[^=;]*?\b(\w+)\s*\([^;]*\)\s*\{.*\}\s*$", line)
        if one_line:
            names.add(one_line.group(1))
            continue
        m = re.match(r"[^=;(]*?\b(\w+)\s*\(", line)
        if not m:
            continue
        j = i
        while j < len(lines) and lines[j] != "{" and not lines[j].rstrip().endswith(";"):
            j += 1
        if j < len(lines) and lines[j] == "{":
            names.add(m.group(1))
    return names


def main(root):
    # the daemon core has its named layers; any other directory (src/vm, src/agent) is
    # checked for two-file loops among all of its files
    core = os.path.basename(os.path.normpath(root)) == "daemon"
    files = [f for f in (CORE if core else sorted(os.listdir(root))) if f.endswith(".c")
             and os.path.exists(os.path.join(root, f))]
    text = {f: strip(open(os.path.join(root, f)).read()) for f in files}
    defs = {name: f for f in files for name in exported(text[f])}
    edges = collections.defaultdict(set)
    for f in files:
        for name, owner in defs.items():
            if owner != f and re.search(r"\b" + re.escape(name) + r"\s*\(", text[f]):
                edges[(f, owner)].add(name)
    bad = []
    for (a, b), names in sorted(edges.items()):
        if (a, b) in FORBIDDEN:
            bad.append(f"{a} calls up into {b}: {', '.join(sorted(names))}")
        if (b, a) in edges and a < b:
            bad.append(f"{a} and {b} call each other")
    for line in bad:
        print(line, file=sys.stderr)
    if not bad:
        print(f"{len(files)} files, {len(edges)} caller->callee file pairs, no call upwards, no two-file loop")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "src/daemon"))
