#!/usr/bin/python3
"""The cost of egress (docs/egress.md, docs/benchmarks.md), in one run:

  throughput  a 100 MB download by curl, direct from the daemon's network
              namespace ("the host"), from a sandbox through its proxy
              (allow-list), and from an open-egress sandbox over its veth
              (curl --noproxy: the kernel's forwarding and NAT, not the proxy)
  latency     one small request, median and p99 of N, the same three ways

Everything runs in network namespaces of its own (tests/e2e/egress_net.py):
nothing reaches a real network. Needs root.

  /usr/bin/python3 bench/egress_bench.py [--daemon build/airlockd] [--mb 100] [--n 50]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "e2e"), str(ROOT / "sdk" / "python")]
os.environ.setdefault("AIRLOCK_AGENT", str(ROOT / "build" / "airlock-agent"))
os.environ.setdefault("AIRLOCK_RUNNER", str(ROOT / "runner" / "airlock_runner.py"))
os.environ.setdefault("AIRLOCK_ZYGOTE", str(ROOT / "build" / "airlock-zygote"))

import e2e_support  # noqa: E402
from airlock import Sandbox  # noqa: E402
from egress_net import PUBLIC, EgressNet, NetnsDaemon, daemon_wrapper  # noqa: E402

CURL = "curl -s -o /dev/null -w '%{time_total} %{size_download}\\n' "


def timings(lines):
    out = []
    for line in lines.strip().splitlines():
        t, size = line.split()
        out.append((float(t), int(size)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=str(ROOT / "build" / "airlockd"))
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="egress-bench-") as tmp:
        net = EgressNet(tmp)
        try:
            info = net.info
            files = info["stats"] / "www" / "files"
            files.mkdir(parents=True)
            with open(files / "big.bin", "wb") as f:
                f.truncate(a.mb << 20)
            (files / "small.txt").write_text("ok\n")
            e2e_support.DAEMON = daemon_wrapper(info, a.daemon)
            d = NetnsDaemon(Path(tmp) / "daemon").start()
            try:
                url_big = "http://allowed.test/files/big.bin"
                url_small = "http://allowed.test/files/small.txt"
                host = ["nsenter", "--net=/run/netns/" + info["d_ns"], "sh", "-c"]
                # the host side resolves through the test's DNS too: by address, as the proxy connects
                direct_big = "for i in $(seq %d); do %s --resolve allowed.test:80:%s %s; done" % (
                    a.runs, CURL, PUBLIC, url_big)
                direct_small = "for i in $(seq %d); do %s --resolve allowed.test:80:%s %s; done" % (
                    a.n, CURL, PUBLIC, url_small)
                d_big = timings(subprocess.run(host + [direct_big], capture_output=True, text=True,
                                               check=True).stdout)
                d_small = timings(subprocess.run(host + [direct_small], capture_output=True, text=True,
                                                 check=True).stdout)
                with Sandbox(base_url=d.unix_url, api_key=d.key, egress={"allow": ["allowed.test:80"]},
                             memory_mb=512) as sb:
                    p_big = timings(sb.run_code("for i in $(seq %d); do %s %s; done" % (a.runs, CURL, url_big),
                                                language="bash", timeout=600).stdout)
                    p_small = timings(sb.run_code("for i in $(seq %d); do %s %s; done" % (a.n, CURL, url_small),
                                                  language="bash", timeout=600).stdout)
                    log = sb.egress_log()
                # open egress, direct: the same address the host used, no DNS in the loop
                direct_open = "for i in $(seq %d); do %s --noproxy '*' --resolve allowed.test:80:%s %s; done"
                with Sandbox(base_url=d.unix_url, api_key=d.key, egress=True, memory_mb=512) as sb:
                    o_big = timings(sb.run_code(direct_open % (a.runs, CURL, PUBLIC, url_big), language="bash",
                                                timeout=600).stdout)
                    o_small = timings(sb.run_code(direct_open % (a.n, CURL, PUBLIC, url_small), language="bash",
                                                  timeout=600).stdout)
                assert all(s == a.mb << 20 for _, s in d_big + p_big + o_big), (d_big, p_big, o_big)
                assert all(e["verdict"] == "allowed" for e in log), log
            finally:
                d.stop()
        finally:
            net.close()
    mbps = lambda rows: a.mb / statistics.median(t for t, _ in rows)  # noqa: E731
    med = lambda rows: statistics.median(t for t, _ in rows) * 1000  # noqa: E731

    def p99(rows):
        ts = sorted(t for t, _ in rows)
        return ts[min(len(ts) - 1, int(round(0.99 * (len(ts) - 1))))] * 1000

    res = {
        "download_mb": a.mb, "runs_big": a.runs, "n_small": a.n,
        "direct_MBps_median": round(mbps(d_big), 1), "proxy_MBps_median": round(mbps(p_big), 1),
        "open_MBps_median": round(mbps(o_big), 1),
        "small_direct_ms": [round(med(d_small), 3), round(p99(d_small), 3)],
        "small_proxy_ms": [round(med(p_small), 3), round(p99(p_small), 3)],
        "small_open_ms": [round(med(o_small), 3), round(p99(o_small), 3)],
        "small_added_ms_median": {"proxy": round(med(p_small) - med(d_small), 3),
                                  "open": round(med(o_small) - med(d_small), 3)},
    }
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
