#!/usr/bin/python3
"""The vm backend beside the jail, in one run (docs/benchmarks.md, issue 13).

    /usr/bin/python3 bench/bench_vm.py [--daemon build/airlockd] [--vm-dir build/vm]
                                       [--accel tcg] [-n 200] [--idle 100]

Rows (p50 and p99 in ms unless noted; both backends measured by the same
client in the same run):
  cold boot to ready        vm create with --vm-no-snapshots (boot + REPL up)
  snapshot (first create)   boot + warm-up + save: once per shape
  restore to ready          a create of a VM from its snapshot (no pool)
  create from the pool      a create that a warm pool answers (both backends)
  run_code('print(1)')      round trip on a live sandbox
  create + run + close      a fresh sandbox per cycle, no pool
  PSS per idle sandbox      MiB, 10 idle sandboxes, every process of each
  N idle VMs alive          created one after another; then healthz and a
                            print(1) in every one of them
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (its Daemon, pct, timed, machine, PSS helpers)
from bench import Daemon, Sandbox, machine, pct, sandbox_pss_mib, timed  # noqa: E402


def row(name, jail, vm, unit="ms"):
    def cell(xs):
        if xs is None:
            return "-"
        if isinstance(xs, (int, float)):
            return "%.1f %s" % (xs, unit)
        return "%.1f / %.1f %s (n=%d)" % (pct(xs, 50), pct(xs, 99), unit, len(xs))
    print("| %s | %s | %s |" % (name, cell(jail), cell(vm)), flush=True)


def make(d, **kw):
    return Sandbox(base_url=d.url, api_key=d.key, timeout=3600, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=os.path.join(bench.ROOT, "build", "airlockd"))
    ap.add_argument("--vm-dir", default=os.path.join(bench.ROOT, "build", "vm"))
    ap.add_argument("--accel", default="tcg", help="--vm-accel of the daemons (auto probes KVM first)")
    ap.add_argument("-n", type=int, default=200, help="print(1) round trips per backend")
    ap.add_argument("--cycles", type=int, default=20, help="create+run+close cycles and restores per backend")
    ap.add_argument("--idle", type=int, default=100, help="idle VMs held at once")
    a = ap.parse_args()
    vm_args = ["--vm-dir", a.vm_dir, "--vm-accel", a.accel]
    print("machine: %s; accel %s" % (machine(), a.accel))
    print("| row | jail p50 / p99 | vm p50 / p99 |\n|---|---|---|")

    # cold boots: a daemon without snapshots
    d = Daemon(a.daemon, vm_args + ["--vm-no-snapshots", "--pool-size", "0"])
    try:
        def cold():
            make(d, isolation="vm", memory_mb=512).close()
        cold_ms = timed(cold, 5, warmup=1)
    finally:
        d.stop()
    row("cold boot to ready (create)", None, cold_ms)

    # no pool: builds and restores on the request path
    d = Daemon(a.daemon, vm_args + ["--pool-size", "0", "--max-sandboxes", str(a.idle + 50)])
    try:
        t = time.perf_counter()
        first = make(d, isolation="vm")
        snap_ms = (time.perf_counter() - t) * 1000.0
        first.close()
        row("snapshot: first create of a shape", None, snap_ms)
        jail_create = timed(lambda: make(d).close(), a.cycles)
        vm_restore = timed(lambda: make(d, isolation="vm").close(), a.cycles)
        row("create to ready, no pool (vm: a restore)", jail_create, vm_restore)

        sj, sv = make(d), make(d, isolation="vm")
        sj.run_code("1"), sv.run_code("1")
        row("run_code('print(1)') round trip", timed(lambda: sj.run_code("print(1)"), a.n),
            timed(lambda: sv.run_code("print(1)"), a.n))
        sj.close(), sv.close()

        def cycle(iso):
            def go():
                s = make(d, isolation=iso)
                assert s.run_code("print(1)").stdout == "1\n"
                s.close()
            return go
        row("create + run_code + close, no pool", timed(cycle("jail"), a.cycles), timed(cycle("vm"), a.cycles))

        idle_j = [make(d) for _ in range(10)]
        idle_v = [make(d, isolation="vm") for _ in range(10)]
        for s in idle_j + idle_v:
            s.run_code("1")
        time.sleep(2)
        row("PSS per idle sandbox (10 live)", sum(sandbox_pss_mib(idle_j)) / 10, sum(sandbox_pss_mib(idle_v)) / 10,
            unit="MiB")
        for s in idle_j + idle_v:
            s.close()

        # many idle VMs at once, the daemon still answering
        t = time.perf_counter()
        many = []
        for _ in range(a.idle):
            many.append(make(d, isolation="vm", memory_mb=256))
        made_s = time.perf_counter() - t
        time.sleep(3)
        health = d.get("/v1/healthz")
        answered = sum(1 for s in many if s.run_code("print(1)").stdout == "1\n")
        pss = sum(sandbox_pss_mib(many))
        print("| %d idle VMs alive | | created in %.1f s; healthz %s; %d/%d answered print(1); PSS %.0f MiB "
              "in all (%.1f each) |" % (a.idle, made_s, health["status"], answered, a.idle, pss, pss / a.idle),
              flush=True)
        for s in many:
            s.close()
    finally:
        d.stop()

    # pools: one daemon per backend as the default, so the default shape is pooled
    for iso in ("jail", "vm"):
        d = Daemon(a.daemon, vm_args + ["--isolation", iso, "--pool-size", "2"])
        try:
            d.wait_pool_ready(2, timeout=120)
            since = d.log_size()
            hits = []
            for _ in range(a.cycles):
                t = time.perf_counter()
                s = make(d)
                hits.append((time.perf_counter() - t) * 1000.0)
                s.close()
                d.wait_pool_ready(2, timeout=120)
            srv, _ = d.create_times(since)
            row("create from the pool (%s), client" % iso, hits if iso == "jail" else None,
                hits if iso == "vm" else None)
            if srv:
                row("create from the pool (%s), server-side" % iso, srv if iso == "jail" else None,
                    srv if iso == "vm" else None)
        finally:
            d.stop()


if __name__ == "__main__":
    main()
