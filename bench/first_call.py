#!/usr/bin/python3
"""A fresh sandbox's first run_code: the create, then run_code("1"), then a
second run_code("2"), N times, through the Python SDK against a daemon of its
own (tests/e2e/e2e_support.Daemon). Measures what the REPL's engine costs at
start (issue 14: IPython), with the warm pool, without it, and without the
zygote:

  W=$PWD AIRLOCK_DAEMON=build/airlockd AIRLOCK_AGENT=build/airlock-agent \
    AIRLOCK_ZYGOTE=build/airlock-zygote AIRLOCK_RUNNER=runner/airlock_runner.py \
    N=20 EXTRA="--pool-size 0" /usr/bin/python3 bench/first_call.py

EXTRA: daemon arguments ("", "--pool-size 0", "--pool-size 0 --no-zygote").
Timings never go into tests; run it on a quiet machine.
"""
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.environ["W"], "tests/e2e"))
sys.path.insert(0, os.path.join(os.environ["W"], "sdk/python"))
import e2e_support as es
work = tempfile.mkdtemp(prefix="airlock-first-call-")
d = es.Daemon(work, extra_args=os.environ.get("EXTRA", "").split()).start()
os.environ["AIRLOCK_URL"] = d.url; os.environ["AIRLOCK_API_KEY"] = d.key
create, first, second = [], [], []
try:
    time.sleep(3)  # the zygote's warm-up and the pool's first builds
    for i in range(int(os.environ.get("N", "10"))):
        t = time.monotonic(); s = d.sandbox(timeout=120); create.append((time.monotonic() - t) * 1000)
        t = time.monotonic(); r = s.run_code("1"); first.append((time.monotonic() - t) * 1000)
        assert r.text == "1", r
        t = time.monotonic(); s.run_code("2"); second.append((time.monotonic() - t) * 1000)
        s.close()
        time.sleep(0.5)  # let the pool refill
finally:
    d.proc.terminate(); d.proc.wait()
    shutil.rmtree(work, ignore_errors=True)
m = statistics.median
print("%-28s create %6.1f ms | first run_code %6.1f ms (min %.1f max %.1f) | second %5.1f ms" % (
    os.environ.get("EXTRA", "") or "(pool, zygote)", m(create), m(first), min(first), max(first), m(second)))
