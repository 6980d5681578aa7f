"""Template numbers for docs/benchmarks.md (make bench-templates).

Against a running daemon (AIRLOCK_URL, AIRLOCK_API_KEY, an admin key) that
already has the templates named on the command line: for each, the first
create after the daemon started (it verifies the tree hash), then the median
and p99 create latency and `import pandas` where the template has it. Start
the daemon with --pool-size 0 to compare templates on the same (unpooled) path.

    python3 bench/templates_bench.py host python datasci
"""
import json
import os
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sdk", "python"))
from airlock import Sandbox  # noqa: E402

N = int(os.environ.get("N", "30"))


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def create_ms(template):
    t0 = time.perf_counter()
    sb = Sandbox(template=template)
    ms = (time.perf_counter() - t0) * 1000
    return sb, ms


def main():
    for name in sys.argv[1:] or ["host"]:
        sb, first = create_ms(name)
        has_pandas = sb.run_code("import importlib.util as u; print(u.find_spec('pandas') is not None)").stdout
        sb.close()
        times = []
        for _ in range(N):
            sb, ms = create_ms(name)
            times.append(ms)
            sb.close()
        line = "%-8s first create %.0f ms; create median %.2f ms p99 %.2f ms (n=%d)" % (
            name, first, statistics.median(times), pct(times, 99), N)
        if has_pandas.strip() == "True":
            imp = []
            for _ in range(5):
                with Sandbox(template=name) as sb:
                    t0 = time.perf_counter()
                    r = sb.run_code("import pandas")
                    imp.append((time.perf_counter() - t0) * 1000)
                    assert r.error is None, r
            line += "; first `import pandas` median %.0f ms" % statistics.median(imp)
        print(line, flush=True)


if __name__ == "__main__":
    main()
