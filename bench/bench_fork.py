#!/usr/bin/python3
"""fork(n) through the SDK, on both backends (docs/benchmarks.md, issue 16).

    /usr/bin/python3 bench/bench_fork.py [--daemon build/airlockd] [--vm-dir build/vm]
                                         [--accel tcg] [--reps 5] [--df-mb 100]

Rows (p50 / p99 in ms, client-side unless noted):
  vm fork(1), fork(5)     a VM sandbox (1024 MiB) holding a DataFrame of
                          --df-mb MB; sb.fork(n) until every child answered its
                          fork (the children are ready: reseeded, greeted)
  vm parent paused        QEMU's downtime of the parent's live migration
                          (daemon log), and the migrate step in total
  vm PSS                  five children vs their parent, MiB (every process of
                          each sandbox; F, the frozen RAM copy, is shared
                          among the children's mappings)
  jail fork(1), fork(5)   files fork of a sandbox holding a 10 MB file and 50
                          small ones
"""

import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import Daemon, Sandbox, machine, pct, sandbox_pss_mib  # noqa: E402

DF = """
import numpy as np, pandas as pd
df = pd.DataFrame(np.random.default_rng(1).random((%d, 10)))
print(round(df.memory_usage().sum() / 1e6))
"""


def cell(xs, unit="ms"):
    return "%.1f / %.1f %s (n=%d)" % (pct(xs, 50), pct(xs, 99), unit, len(xs))


def forks(parent, n, reps, check):
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        kids = parent.fork(n)
        out.append((time.perf_counter() - t) * 1000.0)
        check(kids)
        for k in kids:
            k.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=os.path.join(bench.ROOT, "build", "airlockd"))
    ap.add_argument("--vm-dir", default=os.path.join(bench.ROOT, "build", "vm"))
    ap.add_argument("--accel", default="tcg")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--df-mb", type=int, default=100)
    a = ap.parse_args()
    print("machine: %s; accel %s" % (machine(), a.accel))
    print("| row | p50 / p99 |\n|---|---|")

    d = Daemon(a.daemon, ["--vm-dir", a.vm_dir, "--vm-accel", a.accel, "--pool-size", "0"])
    try:
        from airlock._transport import Transport
        t = Transport(base_url=d.url, api_key=d.key)
        info = t.request_json("POST", "/v1/sandboxes", {"isolation": "vm", "memory_mb": 1024, "timeout_s": 3600},
                              timeout=900)
        p = Sandbox(_info=info, _transport=t)
        rows = a.df_mb * 1000 * 1000 // 80
        mb = p.run_code(DF % rows, timeout=600).stdout.strip()
        print("| vm parent | DataFrame of %s MB |" % mb, flush=True)

        def check(kids):
            for k in kids:
                assert k.run_code("print(df.shape[0])").stdout.strip() == str(rows)

        since = d.log_size()
        f1 = forks(p, 1, a.reps, check)
        print("| vm fork(1), SDK | %s |" % cell(f1), flush=True)
        f5 = forks(p, 5, max(2, a.reps // 2), check)
        print("| vm fork(5), SDK | %s |" % cell(f5), flush=True)
        with open(d.log_path, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        paused = [float(m.group(2)) for m in re.finditer(r"migrate ([0-9.]+) with the parent paused (-?[0-9]+)", text)]
        migrate = [float(m.group(1)) for m in re.finditer(r"migrate ([0-9.]+) with the parent paused", text)]
        image = [float(m.group(1)) for m in re.finditer(r"fork image in ([0-9.]+) ms", text)]
        print("| vm parent paused (QEMU downtime) | %s |" % cell(paused), flush=True)
        print("| vm parent's RAM streamed live (migrate step) | %s |" % cell(migrate), flush=True)
        print("| vm fork image (allocate + loader + migrate + state) | %s |" % cell(image), flush=True)
        kids = p.fork(5)
        time.sleep(2)
        pp = sandbox_pss_mib([p])[0]
        kp = sandbox_pss_mib(kids)
        print("| vm PSS: parent / five children in all | %.0f MiB / %.0f MiB (%.0f each) |"
              % (pp, sum(kp), sum(kp) / 5), flush=True)
        for k in kids:
            k.close()
        p.close()

        j = Sandbox(base_url=d.url, api_key=d.key, timeout=3600)
        j.upload(os.urandom(10 << 20), "/data/big.bin")
        j.files.write_files([("/data/small/%d.txt" % i, b"x" * 100) for i in range(50)])

        def jcheck(kids):
            for k in kids:
                assert k.files.exists("/data/big.bin")
        j1 = forks(j, 1, a.reps * 2, jcheck)
        print("| jail fork(1) (files: 10 MB + 50 small), SDK | %s |" % cell(j1), flush=True)
        j5 = forks(j, 5, a.reps, jcheck)
        print("| jail fork(5) (files), SDK | %s |" % cell(j5), flush=True)
        j.close()
    finally:
        d.stop()


if __name__ == "__main__":
    main()
