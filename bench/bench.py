#!/usr/bin/python3
"""Airlock benchmarks: the issue-4 table, measured through the Python SDK.

Starts its own airlockd (the optimized build) on a free port with a temporary
state dir, and measures what an agent loop pays, over loopback:

  create (pool hit), server-side   the daemon's own "created ... in X ms" line
  run_code print(1)                on the SDK's kept-alive connection
  create + run_code + close        the peers' headline number
  create + pandas describe + close a 1,000-row frame, in a fresh sandbox
  50 concurrent creates            wall time of the whole burst, over rounds
  sustained create+run+destroy     several client processes for 60 s
  idle sandboxes                   1,000 alive, all answering, PSS per sandbox
  growth                           create p50 and memory at 10 / 100 / 1,000 live

`--only-zygote` measures only the zygote's rows (with `--daemon-arg=--no-zygote` for the
comparison). And, in the same run, the reference: bubblewrap (`bwrap --unshare-all`)
starting a fresh python3 for the same command. Prints the machine and a
Markdown table (measure | n | p50 | p99 | max | reference p50 | ratio | target
| met?), then the growth table. docs/benchmarks.md holds a full run.

Each row (and each reference) starts once the machine is quiet again
(settle(): the kernel frees a run's namespaces asynchronously, for seconds
after 1,000 of them); the waits are printed.

Timed results never go into `make test`; this is the only place they live.
"""
import argparse
import concurrent.futures
import json
import os
import platform
import re
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

PANDAS_CODE = ("import pandas as pd; df = pd.DataFrame({'a': range(1000), 'b': [i * 0.5 for i in range(1000)]}); "
               "print(df.describe().loc['mean', 'a'])")
PRINT_CODE = "print(1)"

BWRAP = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
         "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
         "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
         "/usr/bin/python3", "-c"]


# ---- statistics -----------------------------------------------------------------------

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


class Table:
    """Rows of the issue's table. A target is (p50 max, p99 max or None, unit)
    and `higher` says a bigger number is better (rates)."""

    def __init__(self):
        self.rows = []

    def add(self, name, xs, ref=None, target=None, unit="ms", higher=False, note=""):
        p50 = statistics.median(xs)
        p99, mx = pct(xs, 99), max(xs)
        if higher:
            p99, mx = pct(xs, 1), min(xs)  # the worst are the low ones
        ratio = ""
        if ref:
            ref_p50 = statistics.median(ref)
            ratio = "%.1fx" % ((p50 / ref_p50) if higher else (ref_p50 / p50)) if p50 else ""
        met = ""
        tgt = ""
        if target:
            t50, t99 = target
            if higher:
                tgt = ">= %g" % t50
                met = "yes" if p50 >= t50 else "no"
            else:
                tgt = "p50 <= %g" % t50 + (", p99 <= %g" % t99 if t99 is not None else "")
                ok = p50 <= t50 and (t99 is None or p99 <= t99)
                met = "yes" if ok else "no"
        self.rows.append(dict(name=name, n=len(xs), p50=p50, p99=p99, max=mx, unit=unit,
                              ref=statistics.median(ref) if ref else None, ratio=ratio, target=tgt, met=met,
                              note=note))

    def add_text(self, name, value, target="", met="", note=""):
        self.rows.append(dict(name=name, text=value, target=target, met=met, note=note))

    def markdown(self):
        out = ["| measure | n | p50 | p99 | max | reference p50 | ratio | target | met? |",
               "|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            if "text" in r:
                out.append("| %s | | %s | | | | | %s | %s |" % (r["name"], r["text"], r["target"], r["met"]))
                continue
            u = r["unit"]
            f = (lambda v: "%.3f %s" % (v, u)) if r["p50"] < 10 and u == "ms" else (lambda v: "%.1f %s" % (v, u))
            out.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                r["name"], r["n"], f(r["p50"]), f(r["p99"]), f(r["max"]),
                ("%.1f ms" % r["ref"]) if r["ref"] is not None else "", r["ratio"], r["target"], r["met"]))
        notes = [r for r in self.rows if r.get("note")]
        if notes:
            out.append("")
            for r in notes:
                out.append("- %s: %s" % (r["name"], r["note"]))
        return "\n".join(out)


# ---- the daemon -----------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, path, extra):
        self.port = free_port()
        self.state = tempfile.mkdtemp(prefix="airlock-bench-")
        self.key = "ak_bench_" + os.urandom(8).hex()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(self.state, "airlockd.log")
        log = open(self.log_path, "wb")
        # Limits opened for a benchmark that holds 1,000 sandboxes with one
        # key and calls in tight loops: the per-key defaults (20 sandboxes,
        # 100 requests/s) are for shared daemons, not for a load test.
        cmd = [path, "--listen", "127.0.0.1:%d" % self.port, "--state-dir", self.state,
               "--max-sandboxes", "2000", "--max-sandboxes-per-key", "0", "--rate-limit", "0",
               "--max-concurrent-requests", "0", "--pool-size", "2", "--pool-max", "64", *extra]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, env=dict(os.environ, AIRLOCK_API_KEY=self.key), stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url + "/v1/healthz", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        os.environ["AIRLOCK_URL"] = self.url
        os.environ["AIRLOCK_API_KEY"] = self.key

    def get(self, path):
        req = urllib.request.Request(self.url + path, headers={"Authorization": "Bearer " + self.key})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def pool(self):
        return self.get("/v1/pool")

    def wait_pool_ready(self, n, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pool().get("ready", 0) >= n:
                return True
            time.sleep(0.01)
        return False

    def log_size(self):
        return os.path.getsize(self.log_path)

    def create_times(self, since):
        """Server-side create times logged after byte offset `since`:
        (pool hits, builds) in ms."""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        hits, builds = [], []
        for m in re.finditer(r"created \(.*?(, from the warm pool)?\) in ([0-9.]+) ms", text):
            (hits if m.group(1) else builds).append(float(m.group(2)))
        return hits, builds

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)


# ---- processes and memory -------------------------------------------------------------

def children_map():
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(p))
    return kids


def smaps_kb(pid, field="Pss"):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sandbox_pids(sandbox_id):
    """Host pids in the sandbox's pids cgroup (v1) or its cgroup (v2): the
    agent, the REPL (which the zygote forks outside the agent's process
    tree) and whatever else runs there."""
    import glob
    for pattern in ("/sys/fs/cgroup/pids/*/%s/cgroup.procs", "/sys/fs/cgroup/*/%s/cgroup.procs"):
        for path in glob.glob(pattern % sandbox_id):
            with open(path) as f:
                return [int(x) for x in f.read().split()]
    return []


def sandbox_pss_mib(sandboxes):
    """PSS of each sandbox (every process in its cgroup), in MiB. PSS shares a
    page among the processes that map it, so the shared Python binary and
    libraries (and the pages a zygote-forked REPL shares with the zygote)
    are counted once over all of them, not once per sandbox."""
    return [sum(smaps_kb(p) for p in sandbox_pids(s.id)) / 1024.0 for s in sandboxes]


def zygote_pss_mib(daemon_pid):
    """The zygote's own PSS (once per daemon), or None without one."""
    for p in children_map().get(daemon_pid, []):
        try:
            with open("/proc/%d/comm" % p) as f:
                if f.read().strip() == "airlock-zygote":
                    return smaps_kb(p) / 1024.0
        except OSError:
            pass
    return None


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1]
    return "?"


def machine():
    model = "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    cg = "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1"
    return "%s, %d cores, %.0f GiB, kernel %s, cgroup %s" % (model, os.cpu_count(), mem, platform.release(), cg)


# ---- the measures ---------------------------------------------------------------------

def bwrap_times(code, n):
    if not shutil.which("bwrap"):
        return None
    return timed(lambda: subprocess.run(BWRAP + [code], check=True, stdout=subprocess.DEVNULL), n, warmup=1)


def _busy_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)  # (busy, total): idle and iowait apart


def settle(d, max_s=60.0, quiet=0.10, pool=2):
    """Before a row: wait until the previous row's aftermath is over, so that
    each row starts from the same state. The kernel tears namespaces down
    asynchronously (a netns is freed by a kworker, after RCU grace periods),
    so 1,000 bwrap runs or sandboxes keep both cores busy for seconds after
    they are gone. Waits for the pool to hold `pool` ready sandboxes and for
    the whole machine to be under `quiet` CPU use over half a second; gives
    up after max_s. Returns the seconds waited."""
    t0 = time.monotonic()
    if d is not None:
        d.wait_pool_ready(pool, timeout=max_s)
    b0, t_0 = _busy_jiffies()
    while time.monotonic() - t0 < max_s:
        time.sleep(0.5)
        b1, t_1 = _busy_jiffies()
        if t_1 > t_0 and (b1 - b0) / (t_1 - t_0) < quiet:
            break
        b0, t_0 = b1, t_1
    return time.monotonic() - t0


def measure_pool_hit(d, n):
    """create + close, one at a time, each once the pool has a ready sandbox:
    the daemon's own time for a hit, and the client's for the same creates."""
    since = d.log_size()
    client = []
    for _ in range(n):
        d.wait_pool_ready(1)
        t = time.perf_counter()
        sb = Sandbox()
        client.append((time.perf_counter() - t) * 1000.0)
        sb.close()
    hits, builds = d.create_times(since)
    return hits, builds, client


def cycle_print():
    with Sandbox() as sb:
        r = sb.run_code(PRINT_CODE)
        assert r.stdout == "1\n", r.stdout


def cycle_pandas():
    with Sandbox() as sb:
        r = sb.run_code(PANDAS_CODE)
        assert r.stdout.strip() == "499.5", (r.stdout, r.stderr)


def measure_burst(d, size, rounds):
    """`size` creates at once from `size` threads; the wall time of the whole
    burst, per round. Between rounds the sandboxes are closed and the pool
    is given time to refill (what it is for: bursts after a quiet moment)."""
    walls, pooled = [], 0
    with concurrent.futures.ThreadPoolExecutor(size) as ex:
        for _ in range(rounds):
            d.wait_pool_ready(size, timeout=60)
            before = d.pool()["hits"]
            t = time.perf_counter()
            sbs = list(ex.map(lambda _: Sandbox(), range(size)))
            walls.append((time.perf_counter() - t) * 1000.0)
            pooled += d.pool()["hits"] - before
            list(ex.map(lambda s: s.close(), sbs))
    return walls, pooled


def _sustain_worker(args):
    url, key, deadline = args
    os.environ["AIRLOCK_URL"], os.environ["AIRLOCK_API_KEY"] = url, key
    lat, errors = [], 0
    while time.time() < deadline:
        t = time.perf_counter()
        try:
            with Sandbox() as sb:
                sb.run_code(PRINT_CODE)
            lat.append((time.perf_counter() - t) * 1000.0)
        except Exception:
            errors += 1
    return lat, errors


def measure_sustained(d, seconds, workers):
    deadline = time.time() + seconds
    with concurrent.futures.ProcessPoolExecutor(workers) as ex:
        t = time.time()
        res = list(ex.map(_sustain_worker, [(d.url, d.key, deadline)] * workers))
        wall = time.time() - t
    lat = [x for r in res for x in r[0]]
    return lat, sum(r[1] for r in res), wall


def measure_growth(d, levels, per_level, table_rows):
    """Hold 10, 100, 1,000 live idle sandboxes (each ran one run_code); at
    each level: create p50 (server side: pool hits; client side), PSS per
    sandbox, the daemon's RSS, threads and descriptors, healthz latency. At
    the top level, every sandbox answers run_code once more."""
    live = []
    out = {}
    try:
        for level in levels:
            t0 = time.perf_counter()
            while len(live) < level:
                sb = Sandbox()
                sb.run_code("x = 1")
                live.append(sb)
            fill_s = time.perf_counter() - t0
            time.sleep(2)  # let the pool refill and the REPLs settle
            hits, _builds, client = measure_pool_hit(d, per_level)
            pss = sandbox_pss_mib(live)
            zyg = zygote_pss_mib(d.proc.pid)
            health = timed(lambda: d.get("/v1/healthz"), 20, warmup=1)
            # the newest sandbox: the last one any lookup by id reaches
            rc = timed(lambda: live[-1].run_code(PRINT_CODE), 200, warmup=5)
            out[level] = dict(
                fill_s=fill_s, hit_p50=statistics.median(hits) if hits else None,
                hits=len(hits), client_p50=statistics.median(client),
                client_p99=pct(client, 99),
                pss_p50=statistics.median(pss) if pss else None, pss_total=sum(pss), npss=len(pss), zygote_pss=zyg,
                rss_mib=int(proc_status(d.proc.pid, "VmRSS")) / 1024.0,
                threads=int(proc_status(d.proc.pid, "Threads")),
                fds=len(os.listdir("/proc/%d/fd" % d.proc.pid)),
                healthz_p50=statistics.median(health), run_code_p50=statistics.median(rc), sandboxes=d.get("/v1/healthz").get("sandboxes"))
            print("# growth %d: %s" % (level, json.dumps(out[level])), file=sys.stderr, flush=True)
        top = levels[-1]
        answered = 0
        t0 = time.perf_counter()
        for sb in live:
            answered += sb.run_code(PRINT_CODE).stdout == "1\n"
        out[top]["answered"] = answered
        out[top]["run_all_s"] = time.perf_counter() - t0
    finally:
        t0 = time.perf_counter()
        for sb in live:
            sb.close()
        out["close_all_s"] = time.perf_counter() - t0
    # destroyed cleanly: only the pool's agents (and the zygote) are left below the daemon
    deadline = time.monotonic() + 60
    left = None
    while time.monotonic() < deadline:
        left = len(children_map().get(d.proc.pid, []))
        if left <= d.pool()["ready"] + 3:  # + a build in flight, + the zygote
            break
        time.sleep(0.2)
    out["left_after_close"] = left
    return out


def zygote_table(d, n, sustain):
    """--only-zygote: the rows the zygote is for (docs/benchmarks.md, with and
    without --daemon-arg=--no-zygote): the pandas cycle, PSS per idle sandbox
    after `x = 1` and after `import pandas` at 10 and 100 live, the zygote's
    own PSS, the sustained rate."""
    t = Table()
    t.add("create + pandas describe() (1,000 rows) + close", timed(cycle_pandas, n, warmup=2))
    for code, what in (("x = 1", "after `x = 1`"), ("import pandas", "after `import pandas`")):
        for live in (10, 100):
            sbs = [Sandbox() for _ in range(live)]
            try:
                for sb in sbs:
                    sb.run_code(code)
                time.sleep(0.5)  # only idle sandboxes counted
                t.add("PSS per idle sandbox %s, %d live" % (what, live), sandbox_pss_mib(sbs), unit="MiB")
            finally:
                for sb in sbs:
                    sb.close()
    z = zygote_pss_mib(d.proc.pid)
    t.add_text("zygote PSS (once per daemon)", ("%.1f MiB" % z) if z is not None else "(no zygote)")
    lat, errors, wall = measure_sustained(d, sustain, 4)
    t.add_text("sustained create+run+destroy for %g s (4 client processes)" % sustain, "%.0f /s" % (len(lat) / wall),
               note="%d cycles, %d errors" % (len(lat), errors))
    return t


# ---- main -----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build", "airlockd"))
    ap.add_argument("--quick", action="store_true", help="short run: fewer iterations, 200 live, 10 s sustained")
    ap.add_argument("-n", type=int, default=None, help="iterations of the p50 rows (default 1000, quick 100)")
    ap.add_argument("--n-pandas", type=int, default=None, help="pandas cycles (default 200, quick 20)")
    ap.add_argument("--live", type=int, default=None, help="the most live sandboxes held (default 1000, quick 200)")
    ap.add_argument("--sustain-s", type=float, default=None, help="sustained phase (default 60, quick 10)")
    ap.add_argument("--workers", type=int, default=4, help="client processes of the sustained phase")
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=None, help="burst rounds (default 20, quick 5)")
    ap.add_argument("--daemon-arg", action="append", default=[],
                    help="extra airlockd argument (repeat), e.g. --daemon-arg=--pool-size=0")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--only", default=None,
                    help="comma-separated rows to run (pool_hit, run_code, cycle, pandas, burst, sustained, growth): "
                         "for A/B comparisons of one row")
    ap.add_argument("--no-favordynmods", action="store_true",
                    help="do not pass --cgroup-favordynmods (which remounts cgroup2 with favordynmods, "
                         "host-wide, and leaves it so: docs/benchmarks.md)")
    ap.add_argument("--only-zygote", action="store_true",
                    help="only the zygote's rows (pandas cycle, PSS per idle sandbox, sustained rate)")
    args = ap.parse_args()
    rows = ("pool_hit", "run_code", "cycle", "pandas", "burst", "sustained", "growth")
    only = set(args.only.split(",")) if args.only else set(rows)
    if only - set(rows):
        ap.error("--only: unknown row(s) %s" % ", ".join(sorted(only - set(rows))))
    q = args.quick
    n = args.n or (100 if q else 1000)
    n_pandas = args.n_pandas or (20 if q else 200)
    live = args.live or (200 if q else 1000)
    sustain = args.sustain_s or (10 if q else 60)
    rounds = args.rounds or (5 if q else 20)
    levels = [lv for lv in (10, 100, 1000) if lv < live] + [live]

    print("Machine: %s" % machine())
    print("Command: %s" % " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]))
    sys.stdout.flush()
    t_all = time.time()
    table = Table()
    raw = {}

    # references first, on a quiet machine, like the rows they are set against
    ref_print = ref_pandas = None
    if only & {"run_code", "cycle"}:
        settle(None)
        ref_print = bwrap_times(PRINT_CODE, n)
    if "pandas" in only:
        settle(None)
        ref_pandas = bwrap_times(PANDAS_CODE, max(10, n_pandas // 2))

    # The recommended host setting (docs/benchmarks.md): cgroup migrations
    # then never wait for an RCU grace period. It stays set after the run.
    extra = args.daemon_arg + ([] if args.no_favordynmods else ["--cgroup-favordynmods"])
    d = Daemon(args.daemon, extra)
    print("Daemon: %s" % " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(d.cmd)
                                  if not c.startswith("/tmp")))
    try:
        if args.only_zygote:
            table = zygote_table(d, args.n or 50, args.sustain_s or 10)
        else:
            waits = raw["settle_s"] = {}
            if "pool_hit" in only:
                waits["pool_hit"] = settle(d)
                hits, builds, client = measure_pool_hit(d, n)
                raw["pool_hit"] = dict(hits=hits, builds=builds, client=client)
                if hits:
                    table.add("create (pool hit), server-side", hits, target=(1, None),
                              note="%d of %d creates were hits; Podflare claims 7-11 ms server-side" % (len(hits), n))
                table.add("create (pool hit), client-side (SDK, new connection)", client)
                if builds:
                    # the jail's create, HELLO and the priming call: what a pool
                    # refill costs off the request path, and a miss on it
                    table.add("sandbox build (pool refill or miss), server-side", builds,
                              note="%d builds during the row" % len(builds))

            if "run_code" in only:
                waits["run_code"] = settle(d)
                with Sandbox() as sb:
                    sb.run_code("1")
                    rt = timed(lambda: sb.run_code(PRINT_CODE), n, warmup=10)
                raw["run_code"] = rt
                table.add("run_code('print(1)') round trip, SDK keep-alive", rt, ref=ref_print, target=(1, None),
                          note="Podflare claims 3-5 ms exec server-side")

            if "cycle" in only:
                waits["cycle"] = settle(d)
                since = d.log_size()
                cyc = timed(cycle_print, n, warmup=5)
                raw["cycle"] = cyc
                table.add("create + run_code('print(1)') + close", cyc, ref=ref_print, target=(5, 20))
                hits, builds = d.create_times(since)
                if builds and not hits:
                    # --daemon-arg=--pool-size=0: every create of the row was a miss
                    table.add("create (pool miss: built in the request), server-side", builds)

            if "pandas" in only:
                waits["pandas"] = settle(d)
                pd = timed(cycle_pandas, n_pandas, warmup=2)
                raw["pandas"] = pd
                table.add("create + pandas describe() (1,000 rows) + close", pd, ref=ref_pandas, target=(30, None))

            if "burst" in only:
                waits["burst"] = settle(d)
                walls, pooled = measure_burst(d, args.burst, rounds)
                raw["burst"] = walls
                table.add("%d concurrent creates, all returned (wall)" % args.burst, walls, target=(100, None),
                          note="%d of %d creates were pool hits (the pool refills between rounds); "
                          "E2B self-hosted: 20 concurrent in 1.6 s" % (pooled, args.burst * rounds))

            if "sustained" in only:
                waits["sustained"] = settle(d)
                lat, errors, wall = measure_sustained(d, sustain, args.workers)
                raw["sustained"] = dict(lat=lat, errors=errors, wall=wall)
                rate = len(lat) / wall
                table.add_text("sustained create+run+destroy for %g s (%d client processes)" % (sustain, args.workers),
                               "%.0f /s" % rate, target=">= 300 /s", met="yes" if rate >= 300 else "no",
                               note="%d cycles, %d errors; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms"
                               % (len(lat), errors, statistics.median(lat), pct(lat, 99), max(lat)))

            print("# settled before each row (s): %s" % json.dumps({k: round(v, 1) for k, v in waits.items()}))
        if not args.only_zygote and "growth" in only:
            settle(d)
            growth = measure_growth(d, levels, max(20, n // 10), table)
            raw["growth"] = growth
            top = growth[levels[-1]]
            healthy = d.proc.poll() is None and top["answered"] == levels[-1] and top["sandboxes"] == levels[-1]
            table.add_text("idle sandboxes alive at once", "%d (all answered run_code: %s)" % (
                levels[-1], "yes" if top["answered"] == levels[-1] else "%d" % top["answered"]),
                target="1,000, daemon healthy", met="yes" if healthy and levels[-1] >= 1000 else "no",
                note="healthz p50 %.2f ms at %d live; all closed in %.1f s, %s processes left below airlockd "
                "(the pool's); Podflare ~40 MB RSS per idle VM" % (
                    top["healthz_p50"], levels[-1], growth["close_all_s"], growth["left_after_close"]))
            table.add_text("PSS per idle sandbox at %d live (agent + REPL)" % levels[-1], "%.1f MiB" % top["pss_p50"],
                           note="the zygote's own %s is paid once per daemon" % (
                               ("%.0f MiB" % top["zygote_pss"]) if top["zygote_pss"] is not None else "(no zygote)"),
                           target="<= 10 MB", met="yes" if top["pss_p50"] * 1.048576 <= 10 else "no")
    finally:
        rc = d.stop()
    print("Daemon exit: %d; total %.0f s" % (rc, time.time() - t_all))
    print()
    print(table.markdown())
    if args.only_zygote or "growth" not in raw:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(raw, f)
        return
    growth = raw["growth"]
    print()
    print("Growth (each level: %d creates one at a time with the pool ready; PSS of the live sandboxes' "
          "cgroups; the zygote's own PSS is counted once, apart):" % max(20, n // 10))
    print()
    print("| live sandboxes | time to fill | create p50 server (hit) | create p50 / p99 client | PSS per sandbox p50 "
          "| PSS all sandboxes | zygote PSS | airlockd RSS | threads | fds | healthz p50 | run_code p50 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for lv in levels:
        g = growth[lv]
        print("| %d | %.1f s | %s | %.2f / %.2f ms | %.2f MiB | %.0f MiB | %s | %.0f MiB | %d | %d | %.2f ms | %.3f ms |" % (
            lv, g["fill_s"], ("%.3f ms" % g["hit_p50"]) if g["hit_p50"] is not None else "-", g["client_p50"],
            g["client_p99"], g["pss_p50"] or 0, g["pss_total"],
            ("%.0f MiB" % g["zygote_pss"]) if g["zygote_pss"] is not None else "-", g["rss_mib"], g["threads"], g["fds"],
            g["healthz_p50"], g["run_code_p50"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f)


if __name__ == "__main__":
    main()
