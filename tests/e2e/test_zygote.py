"""The Python zygote (src/zygote/, src/jail/zygote.c, src/agent/zygote_client.c):
a host-template sandbox's REPL is forked from a pre-imported Python, confined
exactly like an exec'd runner, and the agent falls back to exec whenever the
zygote is not there.

How a test tells the two apart without trusting what the REPL says about
itself: a forked REPL's /proc/self/exe is the airlock-zygote binary, which
the exec path (execve of /usr/bin/python3) cannot produce; and it starts with
pandas in sys.modules, which the exec'd runner never imports.

Each test runs its own daemons: one with the zygote (the default) and one with
--no-zygote, the reference for "the same as an exec'd runner"."""

import json
import os
import signal

import pytest

from e2e_support import Daemon, pid_alive, serving, stat_fields, stop_and_check, wait_until

ORIGIN = """
import os, sys
print(json.dumps({"exe": os.path.basename(os.readlink("/proc/self/exe")),
                  "pandas": "pandas" in sys.modules, "pid": os.getpid(),
                  "pidns": os.readlink("/proc/self/ns/pid")}))
"""

# Everything the drop sequence decides, as seen from inside (the REPL's view
# of itself), compared between a forked and an exec'd REPL.
CONFINEMENT = r"""
import errno, json, os, resource, stat
status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
keys = ["Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs",
        "Seccomp", "Seccomp_filters"]
out = {k: status[k].strip() for k in keys}
out["oom_score_adj"] = open("/proc/self/oom_score_adj").read().strip()
out["cgroup"] = open("/proc/self/cgroup").read()
out["rlimits"] = {n: resource.getrlimit(getattr(resource, n)) for n in
                  ("RLIMIT_CORE", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_DATA",
                   "RLIMIT_NPROC", "RLIMIT_STACK")}
out["cwd"] = os.getcwd()
# PR_GET_DUMPABLE (3), and who owns /proc/<pid>/mem (root for a process that is
# not dumpable): the exec'd runner is dumpable, as execve makes any process
out["dumpable"] = __import__("ctypes").CDLL(None).prctl(3, 0, 0, 0, 0)
out["proc_owner"] = os.stat("/proc/%d/mem" % os.getpid()).st_uid
out["env"] = sorted(k for k in os.environ)
out["sid_is_pid"] = os.getsid(0) == os.getpid()
out["ppid"] = os.getppid()
out["ns"] = {n: os.readlink("/proc/self/ns/" + n) for n in ("user", "mnt", "pid", "net", "ipc", "uts", "cgroup")}
# fds: the runner moves its pipes to 1000+; what kind each one is, not which
fds = []
for f in os.listdir("/proc/self/fd"):
    try:
        fds.append((int(f), os.readlink("/proc/self/fd/" + f).split(":")[0]))
    except OSError:  # the listing's own fd, closed by now
        pass
out["fds"] = sorted(fds)
# Landlock refuses creating a device node anywhere (EACCES) before the
# kernel would refuse it for want of CAP_MKNOD (EPERM)
try:
    os.mknod("/tmp/zygote-probe-dev", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    out["mknod"] = "ok"
except OSError as e:
    out["mknod"] = errno.errorcode[e.errno]
print(json.dumps(out))
"""

BASH_NS = "for n in user mnt pid net ipc uts cgroup; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup"


def run_json(sb, code):
    r = sb.run_code("import json\n" + code)
    assert r.error is None and r.exit_code == 0, (r.stdout, r.stderr, r.error)
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def zd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("zygote"), name="zygote", extra_args=["--pool-size", "1"]).start()
    assert wait_until(lambda: "zygote: pid" in d.log_text(), 10), d.log_tail()
    yield from serving(d)


@pytest.fixture(scope="module")
def xd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("nozygote"), name="nozygote",
               extra_args=["--no-zygote", "--pool-size", "1"]).start()
    yield from serving(d)


def test_repl_is_forked_by_the_zygote(zd):
    with zd.sandbox() as s:
        o = run_json(s, ORIGIN)
        assert o["exe"] == "airlock-zygote" and o["pandas"] is True, o
        # the warm pandas works, and a describe() needs no import time
        r = s.run_code("import pandas as pd\nprint(pd.DataFrame({'a': range(1000)}).describe().loc['mean', 'a'])")
        assert r.stdout == "499.5\n", (r.stdout, r.stderr)
    assert zd.zygote_pid() is not None


def _arena_region(pid):
    """(Anonymous, AnonHugePages) KiB of the zygote's pymalloc arena region
    (hugeheap.c): its unnamed anonymous mapping with the most huge pages."""
    best, cur, anon = (0, 0), None, 0
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and ":" not in fields[0]:
                cur, anon = (fields[5] if len(fields) > 5 else ""), 0
            elif fields[0] == "Anonymous:":
                anon = int(fields[1])
            elif fields[0] == "AnonHugePages:" and cur == "" and int(fields[1]) > best[1]:
                best = (anon, int(fields[1]))
    return best


def _the_zygote(d):
    """The zygote itself: the daemon's child named airlock-zygote (its REPLs
    carry the same name, below the agents)."""
    for p in os.listdir("/proc"):
        if p.isdigit() and _comm(int(p)) == "airlock-zygote" and _ppid(int(p)) == d.proc.pid:
            return int(p)
    return None


def test_zygote_heap_stays_on_huge_pages(zd):
    """hugeheap.c lays the warm heap out on transparent huge pages (a fork
    then copies a few PMD entries instead of ~10,000 PTEs), and spawning
    REPLs does not split them in the zygote: it runs no Python at a spawn,
    whose writes would land on pages the live REPLs share."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            if "[never]" in f.read():
                pytest.skip("transparent huge pages are off on this host")
    except OSError:
        pytest.skip("no transparent huge pages on this kernel")
    z = _the_zygote(zd)
    assert z, zd.log_tail()
    anon, huge = _arena_region(z)
    # every arena the warm-up filled is on huge pages, even after the pool's
    # spawns so far: Python code run in the zygote at a spawn (the at-fork
    # callbacks) would have written to arenas the REPLs share and split some
    # (one extent of slack: a huge page the kernel could not find at the
    # collapse, on a fragmented host)
    assert huge >= 8 * 1024 and huge >= anon - 2048, (anon, huge)
    live = [zd.sandbox() for _ in range(4)]
    try:
        for s in live:  # each REPL writes all over its copy of the heap
            assert s.run_code("import gc; x = [str(i) for i in range(100000)]; gc.collect(); len(x)").text == "100000"
    finally:
        for s in live:
            s.kill()
    assert _arena_region(z) == (anon, huge)


def test_no_zygote_execs_the_runner(xd):
    assert "zygote off" in xd.log_text()
    assert xd.zygote_pid() is None
    with xd.sandbox() as s:
        o = run_json(s, ORIGIN)
        assert o["exe"].startswith("python3") and o["pandas"] is False, o


def test_confinement_equals_the_exec_runners(zd, xd):
    with zd.sandbox() as a, xd.sandbox() as b:
        fa, fb = run_json(a, ORIGIN), run_json(b, ORIGIN)
        assert fa["exe"] == "airlock-zygote" and fb["exe"] != "airlock-zygote", (fa, fb)
        ca, cb = run_json(a, CONFINEMENT), run_json(b, CONFINEMENT)
        na, nb = ca.pop("ns"), cb.pop("ns")
        assert ca == cb
        assert ca["Uid"] == "1000\t1000\t1000\t1000" and ca["CapEff"] == "0000000000000000", ca
        assert ca["NoNewPrivs"] == "1" and ca["Seccomp"] == "2" and ca["oom_score_adj"] == "1000", ca
        assert ca["mknod"] == "EACCES", ca  # Landlock, in both
        assert ca["ppid"] == 1, ca  # the agent's child: it waits for it and kills its tree
        # the forked REPL is in every namespace of its sandbox, as the agent's
        # exec'd children are (and its cgroups: same view as a bash child's)
        lines = a.run_code(BASH_NS, language="bash").stdout.splitlines()
        assert [na[n] for n in ("user", "mnt", "pid", "net", "ipc", "uts", "cgroup")] == lines[:7]
        assert "\n".join(lines[7:]) + "\n" == ca["cgroup"]


def test_forked_repl_is_in_the_sandbox_cgroup(zd):
    """Seen from the host: the REPL's host pid is in the sandbox's cgroups, so
    its memory and pids count against the sandbox, not the zygote."""
    with zd.sandbox() as s:
        o = run_json(s, ORIGIN)
        assert o["exe"] == "airlock-zygote"
        host = [p for p in zd.descendants() if _ns_pid(p) == o["pid"] and _pidns(p) == o["pidns"]]
        assert len(host) == 1, host
        cg = open("/proc/%d/cgroup" % host[0]).read()
        assert s.id in cg, cg
        # and it is the agent's child on the host too
        agent = _ppid(host[0])
        assert _comm(agent).startswith("memfd:airlock"), _comm(agent)


def test_timeout_restart_gives_a_fresh_zygote_repl(zd):
    with zd.sandbox() as s:
        first = run_json(s, ORIGIN)
        s.run_code("kept = 1")
        r = s.run_code("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)", timeout=1)
        assert r.error is not None, (r.stdout, r.stderr)
        second = run_json(s, ORIGIN)
        assert second["exe"] == "airlock-zygote" and second["pandas"] is True, second
        assert second["pid"] != first["pid"]
        assert s.run_code("'kept' in globals()").text == "False"


def test_two_sandboxes_cannot_see_each_other(zd):
    with zd.sandbox() as a, zd.sandbox() as b:
        a.run_code("import subprocess; p = subprocess.Popen(['sleep', '300']); secret = 'a-only'")
        pa = run_json(a, "import os; print(json.dumps(sorted(int(p) for p in os.listdir('/proc') if p.isdigit())))")
        pb = run_json(b, "import os; print(json.dumps([open('/proc/%s/cmdline' % p).read() for p in "
                         "os.listdir('/proc') if p.isdigit()]))")
        assert not any("sleep" in c for c in pb), pb
        assert len(pa) <= 5, pa  # agent, REPL, sleep (and a listing's own process)
        assert b.run_code("'secret' in globals()").text == "False"
        na = run_json(a, "import os; print(json.dumps(os.readlink('/proc/self/ns/pid')))")
        nb = run_json(b, "import os; print(json.dumps(os.readlink('/proc/self/ns/pid')))")
        assert na != nb
        # one sandbox's numpy randomness is not the other's (the zygote's
        # generator state is reseeded in every child)
        code = "import numpy; print(json.dumps(numpy.random.randint(0, 2**31, 4).tolist()))"
        assert run_json(a, code) != run_json(b, code)
        # nor the random module's (its after-in-child reseed runs in every
        # REPL even though the zygote skips the parent's at-fork callbacks)
        code = "import random; print(json.dumps(random.getrandbits(64)))"
        assert run_json(a, code) != run_json(b, code)


def test_killed_zygote_falls_back_then_comes_back(tmp_path):
    d = Daemon(tmp_path / "k", name="k", extra_args=["--pool-size", "0"]).start()
    try:
        zpid = d.zygote_pid()
        assert zpid, d.log_tail()
        before = d.sandbox()
        assert run_json(before, ORIGIN)["exe"] == "airlock-zygote"
        os.kill(zpid, signal.SIGKILL)
        assert wait_until(lambda: "zygote: pid %d killed by signal 9" % zpid in d.log_text(), 10), d.log_tail()
        # a sandbox made while it is down execs its REPL and works
        s = d.sandbox()
        o = run_json(s, ORIGIN)
        if o["exe"] == "airlock-zygote":  # the new zygote was already back: allowed, but then it is a new one
            assert d.zygote_pid() not in (None, zpid)
        assert s.run_code("6*7").text == "42"
        # the REPL forked before the kill does not depend on the zygote
        assert before.run_code("import pandas; 1+1").text == "2"
        # the daemon restarts it, and new sandboxes are forked again
        assert wait_until(lambda: d.zygote_pid() not in (None, zpid), 20), d.log_tail()
        assert wait_until(lambda: "zygote: pid %d ready" % d.zygote_pid() in d.log_text(), 20), d.log_tail()
        with d.sandbox() as t:
            assert run_json(t, ORIGIN)["exe"] == "airlock-zygote"
        s.kill()
        before.kill()
        zpid = d.zygote_pid()
        stop_and_check(d)
        assert not pid_alive(zpid)  # the daemon's stop takes the zygote with it
    finally:
        if d.proc.poll() is None:
            d.kill9()


def test_warmup_flag(tmp_path):
    d = Daemon(tmp_path / "w", name="w", extra_args=["--pool-size", "0", "--warmup", "import json, decimal"]).start()
    try:
        with d.sandbox() as s:
            o = run_json(s, "import sys; print(json.dumps(['decimal' in sys.modules, 'pandas' in sys.modules]))")
            assert o == [True, False]
    finally:
        stop_and_check(d)


def _ppid(pid):
    st = stat_fields(pid)
    return st and int(st[1])


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def _pidns(pid):
    try:
        return os.readlink("/proc/%d/ns/pid" % pid)
    except OSError:
        return None


def _ns_pid(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except OSError:
        pass
    return None


def test_threaded_zygote_refuses_to_fork(tmp_path):
    """A warm-up that leaves a thread running: fork would copy only the
    calling thread (and any lock the other one held), so the zygote refuses
    every spawn and the agents exec their REPLs."""
    warmup = "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,), daemon=True).start()"
    d = Daemon(tmp_path / "t", name="t", extra_args=["--pool-size", "0", "--warmup", warmup]).start()
    try:
        assert "spawns will be refused while more than one runs" in d.log_text(), d.log_tail()
        with d.sandbox() as s:
            o = run_json(s, ORIGIN)
            assert o["exe"].startswith("python3"), o
            assert s.run_code("6*7").text == "42"
        assert wait_until(lambda: "zygote: 2 threads, fork refused" in d.log_text(), 10), d.log_tail()
    finally:
        stop_and_check(d)
