#!/usr/bin/python3
"""Code contexts (issue 14): the first call of a new context. In one sandbox,
N times: create_code_context() (its runner forked from the zygote before the
reply), then its first run_code("1"), then remove_code_context; beside it a
run_code("1") in the default context of the same sandbox, for reference.
Through the Python SDK against a daemon of its own (tests/e2e/e2e_support):

  /usr/bin/python3 bench/context_first_call.py --daemon build/airlockd [--n 200] [--no-zygote]

Prints median and p99 in ms. Timings never go into tests; run it on a quiet
machine (docs/benchmarks.md).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests/e2e"))
sys.path.insert(0, os.path.join(ROOT, "sdk/python"))


def pct(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build/airlockd"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--no-zygote", action="store_true")
    args = ap.parse_args()
    os.environ["AIRLOCK_DAEMON"] = os.path.abspath(args.daemon)
    build = os.path.dirname(os.path.abspath(args.daemon))
    os.environ.setdefault("AIRLOCK_AGENT", os.path.join(build, "airlock-agent"))
    os.environ.setdefault("AIRLOCK_ZYGOTE", os.path.join(build, "airlock-zygote"))
    os.environ.setdefault("AIRLOCK_RUNNER", os.path.join(ROOT, "runner/airlock_runner.py"))
    import e2e_support as es
    work = tempfile.mkdtemp(prefix="airlock-ctx-bench-")
    d = es.Daemon(work, extra_args=["--no-zygote"] if args.no_zygote else []).start()
    rows = {"create_code_context": [], "its first run_code(\"1\")": [], "create + first call": [],
            "remove_code_context": [], "run_code(\"1\") in the default context": []}
    try:
        time.sleep(3)  # the zygote's warm-up
        s = d.sandbox(timeout=3600)
        s.run_code("1")
        for i in range(args.n + 3):
            t0 = time.monotonic()
            c = s.create_code_context()
            t1 = time.monotonic()
            r = s.run_code("1", context=c)
            t2 = time.monotonic()
            assert r.text == "1", r
            s.remove_code_context(c)
            t3 = time.monotonic()
            s.run_code("1")
            t4 = time.monotonic()
            if i < 3:
                continue  # warm-up
            rows["create_code_context"].append((t1 - t0) * 1000)
            rows["its first run_code(\"1\")"].append((t2 - t1) * 1000)
            rows["create + first call"].append((t2 - t0) * 1000)
            rows["remove_code_context"].append((t3 - t2) * 1000)
            rows["run_code(\"1\") in the default context"].append((t4 - t3) * 1000)
        s.close()
    finally:
        d.proc.terminate()
        d.proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    print("code contexts (%s, n=%d, loadavg %s)" % ("exec'd runner" if args.no_zygote else "zygote",
                                                    args.n, open("/proc/loadavg").read().split()[0]))
    print("| measure | n | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for name, xs in rows.items():
        print("| %s | %d | %.2f | %.2f | %.2f |" % (name, len(xs), pct(xs, 50), pct(xs, 99), max(xs)))


if __name__ == "__main__":
    main()
