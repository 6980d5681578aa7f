#!/usr/bin/python3
"""First-call latency of a Python, an R and a JavaScript cell in a fresh
sandbox (issue 14, item 3), with R/JS runners started with the sandbox
(--warm-languages r,javascript) and without (each starts at its first call);
the PSS per idle sandbox either way; and create+run_code("1")+close for
Python, which a warm R/JS start must not slow. Each mode runs a daemon of
its own (tests/e2e/e2e_support.Daemon). Medians and p99 (of N: with small N,
p99 is the maximum).

  make bench-lang                     # or:
  W=$PWD N=20 /usr/bin/python3 bench/lang_bench.py

Timings never go into tests; run it on a quiet machine.
"""
import os
import shutil
import statistics
import sys
import tempfile
import time

W = os.environ.get("W", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(W, "tests/e2e"))
sys.path.insert(0, os.path.join(W, "sdk/python"))
sys.path.insert(0, os.path.join(W, "bench"))
for var, rel in (("AIRLOCK_DAEMON", "build/airlockd"), ("AIRLOCK_AGENT", "build/airlock-agent"),
                 ("AIRLOCK_ZYGOTE", "build/airlock-zygote"), ("AIRLOCK_RUNNER", "runner/airlock_runner.py")):
    os.environ.setdefault(var, os.path.join(W, rel))
import e2e_support as es  # noqa: E402
from bench import sandbox_pss_mib  # noqa: E402

N = int(os.environ.get("N", "20"))
CELLS = {"python": "1", "r": "1", "javascript": "1"}
EXPECT = {"python": "1", "r": "[1] 1", "javascript": "1"}


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def row(name, xs, unit="ms"):
    print("%-58s p50 %7.1f %s   p99 %7.1f %s   (n=%d)" % (name, statistics.median(xs), unit, pct(xs, 0.99), unit, len(xs)))


def run_mode(warm):
    work = tempfile.mkdtemp(prefix="airlock-lang-bench-")
    extra = ["--warm-languages", warm]
    d = es.Daemon(work, extra_args=extra).start()
    os.environ["AIRLOCK_URL"] = d.url
    os.environ["AIRLOCK_API_KEY"] = d.key
    label = "warm %s" % (warm or "(none)")
    try:
        time.sleep(3)  # the zygote's warm-up and the pool's first builds
        first = {lang: [] for lang in CELLS}
        for i in range(N):
            for lang in CELLS:
                s = d.sandbox(timeout=120)
                time.sleep(1.0 if warm else 0.2)  # a pooled sandbox: its runners had time to start
                t = time.monotonic()
                r = s.run_code(CELLS[lang], language=lang)
                first[lang].append((time.monotonic() - t) * 1000)
                assert r.text == EXPECT[lang], (lang, r)
                s.close()
        for lang in CELLS:
            row("first %s cell in a fresh sandbox, %s" % (lang, label), first[lang])
        # idle PSS: 5 sandboxes, their runners started (or not)
        sbs = [d.sandbox(timeout=120) for _ in range(5)]
        time.sleep(3)
        row("PSS per idle sandbox, %s" % label, sandbox_pss_mib(sbs), unit="MiB")
        for s in sbs:
            s.close()
        time.sleep(2)
        cyc = []
        for i in range(N * 5):
            t = time.monotonic()
            s = d.sandbox(timeout=60)
            s.run_code("1")
            s.close()
            cyc.append((time.monotonic() - t) * 1000)
        row("python create+run_code+close, %s" % label, cyc)
    finally:
        d.proc.terminate()
        d.proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    print("lang_bench: N=%d, %s, loadavg %s" % (N, os.uname().nodename, open("/proc/loadavg").read().split()[:3]))
    for warm in ("", "r,javascript"):
        run_mode(warm)


if __name__ == "__main__":
    main()
