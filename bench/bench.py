#!/usr/bin/python3
"""Airlock benchmarks: latency of the operations an agent loop pays for.

Starts its own airlockd (the optimized build) on a free port with a temp state
dir, then measures, through the Python SDK (what users call):

  create          POST /v1/sandboxes until the sandbox answers
  run_code        a trivial Python call in a live sandbox (REPL round trip)
  exec            a fresh process (`true`) in a live sandbox
  upload_1mb      PUT of 1 MiB into /data (and 64 MiB, for throughput)
  cycle           create + run_code + close, end to end (the peers' headline number)
  burst_create    N concurrent creates (wall time for the whole burst)
  pandas          `import pandas` as the first call of a fresh sandbox, and again
  idle memory     cgroup memory of a sandbox after one run_code (agent + REPL + tmpfs)
  zygote rows     create + pandas describe() of 1,000 rows + close; proportional set
                  size (PSS, /proc/PID/smaps_rollup) of agent + REPL per idle sandbox
                  at 10 and 100 live sandboxes; sustained create+run+close per second.
                  --daemon-arg=--no-zygote gives the exec'd-REPL comparison;
                  --only-zygote measures just these rows.

Side by side, in the same run, the baseline most self-built sandboxes use:
bubblewrap (`bwrap --unshare-all`) starting a fresh python3 per request.

Prints a Markdown table (median, p99, mean, n) to stdout; docs/benchmarks.md
holds the numbers and the command.
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "sdk", "python"))

from airlock import Sandbox  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs, p):
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def timed(fn, n, warmup=2):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000.0)
    return out


BWRAP = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
         "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
         "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
         "/usr/bin/python3", "-c"]


def bwrap_rows(n):
    if not shutil.which("bwrap"):
        return ["| bwrap baseline | (bubblewrap not installed) | | | |"]
    out = []
    for label, code in (("bwrap + fresh python3 `1+1`", "print(1+1)"),
                        ("bwrap + fresh python3 `import pandas`", "import pandas")):
        out.append(row(label, timed(lambda: subprocess.run(BWRAP + [code], check=True, stdout=subprocess.DEVNULL), n)))
    return out


def sandbox_memory_mib(sandbox_id):
    """The sandbox cgroup's charged memory (v2 memory.current, v1 usage_in_bytes)."""
    import glob
    for pattern in ("/sys/fs/cgroup/*/%s/memory.current", "/sys/fs/cgroup/memory/*/%s/memory.usage_in_bytes"):
        for path in glob.glob(pattern % sandbox_id):
            with open(path) as f:
                return int(f.read()) / (1 << 20)
    return None


def row(name, xs):
    return "| %s | %.2f | %.2f | %.2f | %d |" % (name, statistics.median(xs), pct(xs, 99), statistics.mean(xs), len(xs))


def pool_stats(url, key):
    """GET /v1/pool (admin): the warm pool's counters, {"enabled": false} without one."""
    req = urllib.request.Request(url + "/v1/pool", headers={"Authorization": "Bearer " + key})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())
    except Exception:
        return {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build", "airlockd"))
    ap.add_argument("-n", type=int, default=50, help="iterations per measurement")
    ap.add_argument("--burst", type=int, default=10)
    ap.add_argument("--daemon-arg", action="append", default=[],
                    help="extra airlockd argument (repeat), e.g. --daemon-arg=--pool-size=0")
    ap.add_argument("--only-zygote", action="store_true",
                    help="measure only the zygote rows (pandas cycle, PSS per idle sandbox, sustained rate)")
    ap.add_argument("--only-roundtrip", action="store_true",
                    help="measure only the run_code `print(1)` round trip, with and without keep-alive")
    args = ap.parse_args()

    port = free_port()
    state = tempfile.mkdtemp(prefix="airlock-bench-")
    key = "ak_bench_" + os.urandom(8).hex()
    env = dict(os.environ, AIRLOCK_API_KEY=key)
    log = open(os.path.join(state, "airlockd.log"), "wb")
    d = subprocess.Popen([args.daemon, "--listen", "127.0.0.1:%d" % port, "--state-dir", state,
                          "--max-sandboxes", "256", "--max-sandboxes-per-key", "0",
                          # the per-key rate limit (100/s after a burst of 1000)
                          # would add 1 s Retry-After waits to long loops
                          "--rate-limit", "0", *args.daemon_arg], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    DAEMON_PID[0] = d.pid
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/v1/healthz", timeout=1)
            break
        except Exception:
            time.sleep(0.05)
    os.environ["AIRLOCK_URL"] = url
    os.environ["AIRLOCK_API_KEY"] = key
    results = []
    try:
        if args.only_roundtrip:
            results += roundtrip_rows(args.n * 20)
            return print_table(results)
        if args.only_zygote:
            results += zygote_rows(args.n)
            return print_table(results)
        def create_close():
            Sandbox().close()

        create = []
        for _ in range(args.n):
            t = time.perf_counter()
            sb = Sandbox()
            create.append((time.perf_counter() - t) * 1000.0)
            sb.close()
        results.append(row("create (POST /v1/sandboxes)", create))
        pool = pool_stats(url, key)
        if pool.get("enabled"):
            results.append("| create: warm pool hits / creates (min %d, max %d) | %d / %d | | | |"
                           % (pool["min"], pool["max"], pool["hits"], pool["hits"] + pool["misses"]))

        with Sandbox() as sb:
            results.append(row("run_code `1+1`", timed(lambda: sb.run_code("1+1"), args.n * 4)))
            results.append(row("exec `true`", timed(lambda: sb.exec(["true"]), args.n * 2)))
            blob = os.urandom(1 << 20)
            results.append(row("upload 1 MiB", timed(lambda: sb.upload(blob, "/data/blob.bin"), args.n)))
            results.append(row("download 1 MiB", timed(lambda: sb.download("/data/blob.bin"), args.n)))
            big = os.urandom(64 << 20)
            results.append(row("upload 64 MiB", timed(lambda: sb.upload(big, "/data/big.bin"), 10, warmup=1)))
            results.append(row("download 64 MiB", timed(lambda: sb.download("/data/big.bin"), 10, warmup=1)))

        cold, warm = [], []
        for _ in range(max(5, args.n // 5)):
            with Sandbox() as sb:
                sb.run_code("1")  # the REPL is up: measure the import alone
                t = time.perf_counter()
                sb.run_code("import pandas")
                cold.append((time.perf_counter() - t) * 1000.0)
                t = time.perf_counter()
                sb.run_code("import pandas; pandas.DataFrame({'a': [1, 2]}).a.sum()")
                warm.append((time.perf_counter() - t) * 1000.0)
        results.append(row("run_code `import pandas`, first time in a sandbox", cold))
        results.append(row("run_code using pandas again (REPL keeps it)", warm))

        sbs = [Sandbox() for _ in range(10)]
        for s in sbs:
            s.run_code("x = 1")
        mem = [m for m in (sandbox_memory_mib(s.id) for s in sbs) if m is not None]
        for s in sbs:
            s.close()
        if mem:
            results.append("| idle sandbox memory after one run_code (MiB, cgroup) | %.1f | %.1f | %.1f | %d |"
                           % (statistics.median(mem), pct(mem, 99), statistics.mean(mem), len(mem)))

        def cycle():
            with Sandbox() as sb:
                sb.run_code("print(1)")
        results.append(row("create + run_code + close", timed(cycle, args.n)))

        def burst():
            with concurrent.futures.ThreadPoolExecutor(args.burst) as ex:
                sbs = list(ex.map(lambda _: Sandbox(), range(args.burst)))
            for s in sbs:
                s.close()
        results.append(row("burst of %d concurrent creates (wall)" % args.burst, timed(burst, 5, warmup=1)))
        results += roundtrip_rows(args.n * 4)
        results += zygote_rows(args.n)
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=30)
    results += bwrap_rows(max(10, args.n // 2))
    print_table(results)


DESCRIBE = "import pandas as pd\nprint(pd.DataFrame({'a': range(1000), 'b': [i * 0.5 for i in range(1000)]}).describe())"


def sandbox_pids(sandbox_id):
    """Host pids in the sandbox's pids cgroup (v1) or its cgroup (v2): the
    agent, the REPL and whatever else runs there."""
    import glob
    for pattern in ("/sys/fs/cgroup/pids/*/%s/cgroup.procs", "/sys/fs/cgroup/*/%s/cgroup.procs"):
        for path in glob.glob(pattern % sandbox_id):
            with open(path) as f:
                return [int(x) for x in f.read().split()]
    return []


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def zygote_pss_kib(daemon_pid):
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                if st.split("(", 1)[1].startswith("airlock-zygote)") and int(st.rsplit(")", 1)[1].split()[1]) == daemon_pid:
                    return pss_kib(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return None


def pss_rows(code, what, live):
    sbs = [Sandbox() for _ in range(live)]
    out = []
    try:
        for s in sbs:
            s.run_code(code)
        time.sleep(0.5)  # let the pool refill settle: only idle sandboxes counted
        per = [sum(pss_kib(p) for p in sandbox_pids(s.id)) / 1024.0 for s in sbs]
        out.append("| PSS per idle sandbox (agent + REPL) %s, %d live (MiB) | %.1f | %.1f | %.1f | %d |"
                   % (what, live, statistics.median(per), pct(per, 99), statistics.mean(per), len(per)))
        z = zygote_pss_kib(DAEMON_PID[0])
        if z is not None:
            out.append("| zygote PSS with %d live (MiB; once per daemon) | %.1f | | | 1 |" % (live, z / 1024.0))
    finally:
        for s in sbs:
            s.close()
    return out


def zygote_rows(n):
    """The numbers the zygote is for (docs/benchmarks.md)."""
    out = []

    def cycle_pandas():
        with Sandbox() as sb:
            r = sb.run_code(DESCRIBE)
            assert "count" in r.stdout, (r.stdout, r.stderr)
    out.append(row("create + run_code(pandas describe(), 1,000 rows) + close", timed(cycle_pandas, n)))

    for code, what in (("x = 1", "after `x = 1`"), ("import pandas", "after `import pandas`")):
        for live in (10, 100):
            out += pss_rows(code, what, live)

    # sustained create + run_code + close from 4 client threads
    def worker(deadline):
        k = 0
        while time.monotonic() < deadline:
            with Sandbox() as sb:
                sb.run_code("1+1")
            k += 1
        return k
    seconds = 10
    deadline = time.monotonic() + seconds
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        total = sum(ex.map(worker, [deadline] * 4))
    out.append("| sustained create + run_code `1+1` + close, 4 client threads, %d s (per second) | %.0f | | | %d |"
               % (seconds, total / seconds, total))
    return out


DAEMON_PID = [None]


def roundtrip_rows(n):
    """run_code `print(1)` on the SDK's kept-alive connection, and with the
    connection dropped before every call (what a client without keep-alive
    pays: a TCP connect, and a thread start in airlockd, per request)."""
    out = []
    with Sandbox() as sb:
        out.append(row("run_code `print(1)`, keep-alive", timed(lambda: sb.run_code("print(1)"), n)))

        def fresh():
            sb._http.close()
            sb.run_code("print(1)")
        out.append(row("run_code `print(1)`, new connection per request", timed(fresh, n)))
    return out


def print_table(results):
    print("| operation | median ms | p99 ms | mean ms | n |")
    print("|---|---|---|---|---|")
    for r in results:
        print(r)


if __name__ == "__main__":
    main()
