#!/usr/bin/python3
"""Pause/resume round trip (docs/benchmarks.md, issue 16), both backends in one run.

    /usr/bin/python3 bench/pause_bench.py [--daemon build/airlockd] [--vm-dir build/vm]
                                          [--accel tcg] [-n 200] [--n-vm 50] [--no-vm]

Rows, p50 / p99 in ms:
  pause + resume, client     sb.pause(); sb.resume() through the Python SDK
                             (two HTTP round trips, the state writes included)
  pause, server-side         the backend's freeze alone (cgroup freezer / QMP
  resume, server-side        stop and cont), from the daemon's log lines
  pause + resume + print(1)  the round trip and a first call after it
The sandbox holds a live REPL with pandas imported (the zygote's warm-up), so
the freezer has its real set of tasks to stop.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import Daemon, Sandbox, machine, pct, timed  # noqa: E402


def cell(xs):
    return "%.2f / %.2f ms (n=%d)" % (pct(xs, 50), pct(xs, 99), len(xs)) if xs else "-"


def server_times(d, since):
    with open(d.log_path, "rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", "replace")
    p = [float(m) for m in re.findall(r"paused in ([0-9.]+) ms", text)]
    r = [float(m) for m in re.findall(r"resumed in ([0-9.]+) ms", text)]
    return p, r


def warm_vm_snapshot(d):
    """The shape's first VM create takes its snapshot (a minute under TCG on
    a loaded host, past the SDK's request timeout): once, with a long one."""
    import json
    import urllib.request
    h = {"Authorization": "Bearer " + d.key, "Content-Type": "application/json"}
    req = urllib.request.Request(d.url + "/v1/sandboxes", data=json.dumps({"isolation": "vm"}).encode(), headers=h)
    with urllib.request.urlopen(req, timeout=900) as r:
        sid = json.loads(r.read())["id"]
    req = urllib.request.Request(d.url + "/v1/sandboxes/" + sid, method="DELETE", headers=h)
    urllib.request.urlopen(req, timeout=60).close()


def measure(d, n, **kw):
    sb = Sandbox(base_url=d.url, api_key=d.key, timeout=3600, **kw)
    try:
        sb.run_code("x = 1")
        since = d.log_size()

        def cycle():
            sb.pause()
            sb.resume()
        rt = timed(cycle, n)
        sp, sr = server_times(d, since)
        first = timed(lambda: (cycle(), sb.run_code("print(1)")), max(10, n // 4))
        assert sb.run_code("x").text == "1"
        return rt, sp[2:], sr[2:], first
    finally:
        sb.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=os.path.join(bench.ROOT, "build", "airlockd"))
    ap.add_argument("--vm-dir", default=os.path.join(bench.ROOT, "build", "vm"))
    ap.add_argument("--accel", default="tcg")
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--n-vm", type=int, default=50)
    ap.add_argument("--no-vm", action="store_true")
    a = ap.parse_args()
    print("machine: %s; load average %s" % (machine(), open("/proc/loadavg").read().split()[0]))
    have_vm = not a.no_vm and os.path.exists(os.path.join(a.vm_dir, "initramfs.cpio"))
    extra = ["--pool-size", "0"] + (["--vm-dir", a.vm_dir, "--vm-accel", a.accel] if have_vm else [])
    d = Daemon(a.daemon, extra)
    try:
        jail = measure(d, a.n)
        vm = None
        if have_vm:
            warm_vm_snapshot(d)
            vm = measure(d, a.n_vm, isolation="vm")
    finally:
        d.stop()
    names = ["pause + resume, client (SDK)", "pause, server-side (freeze)", "resume, server-side (thaw)",
             "pause + resume + print(1), client"]
    print("| row | jail | vm (%s) | target |\n|---|---|---|---|" % a.accel)
    for i, name in enumerate(names):
        target = "<= 5 ms (jail)" if i == 0 else ""
        print("| %s | %s | %s | %s |" % (name, cell(jail[i]), cell(vm[i]) if vm else "-", target))
    if pct(jail[0], 50) > 5.0:
        print("# jail pause+resume p50 %.2f ms is over its 5 ms target" % pct(jail[0], 50))


if __name__ == "__main__":
    main()
