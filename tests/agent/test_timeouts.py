"""A call that times out stops everything it started; a call that ends
normally may leave processes and threads running (docs/api.md).

Processes are found on the host by a marker in their command line (the
agent runs here as an ordinary host process, a subreaper for its orphans)."""

import os
import time
import uuid

import pytest

from agent_support import STDOUT


def procs_with(marker):
    """Live (non-zombie) processes with marker as one of their arguments
    (not inside one: the bash -c CODE that starts them contains it too)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read()
            with open("/proc/%s/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmd.split(b"\0") and state != "Z":
            found.append(int(pid))
    return found


def wait_for(cond, seconds=10):
    """cond() true within `seconds` (a bound for a slow machine, not a
    measurement)."""
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def children_of(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    st = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(st[1]) == pid:
                out.append((int(p), st[0]))
    return out


@pytest.fixture
def marker():
    m = "airlock-mark-" + uuid.uuid4().hex[:12]
    yield m
    for pid in procs_with(m):  # do not leave a failed test's processes on the host
        try:
            os.kill(pid, 9)
        except OSError:
            pass


SPIN = "trap '' TERM INT HUP; while :; do sleep 0.05; done"


# ---- bash / exec jobs ---------------------------------------------------------------


def test_timed_out_job_kills_setsid_double_forked_grandchild(agent, marker):
    code = """
trap '' TERM INT HUP
( trap '' TERM INT HUP; setsid sh -c "%s" %s & ) &
( ( sh -c "%s" %s & ) & ) &
while :; do sleep 0.05; done
""" % (SPIN, marker, SPIN, marker)
    req = agent.start(0x10, {"code": code, "language": "bash", "timeout_ms": 800})
    assert wait_for(lambda: len(procs_with(marker)) == 2), procs_with(marker)
    res = agent.collect(req, timeout=20).result
    assert res["timed_out"] is True and res["exit_code"] == 124
    assert wait_for(lambda: procs_with(marker) == []), "survivors: %r" % procs_with(marker)
    # and nothing is left as a zombie of the agent
    assert wait_for(lambda: [c for c in children_of(agent.proc.pid) if c[0] != agent_runner(agent)] == [])


def agent_runner(agent):
    kids = [p for p, st in children_of(agent.proc.pid)]
    for p in kids:
        try:
            with open("/proc/%d/cmdline" % p, "rb") as f:
                if b"airlock_runner" in f.read():
                    return p
        except OSError:
            pass
    return None


def test_timed_out_exec_kills_escaped_session(agent, marker):
    res = agent.exec(argv=["sh", "-c", '(setsid sh -c "%s" %s &); sleep 100' % (SPIN, marker)], timeout_ms=600).result
    assert res["timed_out"] is True
    assert wait_for(lambda: procs_with(marker) == []), "survivors: %r" % procs_with(marker)


def test_normally_finished_job_keeps_background_process(agent, marker):
    # exec -a: the marker as argv[0] of a plain `sleep 100 &`
    res = agent.run_code("(exec -a %s sleep 100) &\n(setsid sh -c 'sleep 100; :' %s &)\necho started" % (marker, marker),
                         language="bash", timeout_ms=5000).result
    assert res["exit_code"] == 0 and res["timed_out"] is False
    assert wait_for(lambda: len(procs_with(marker)) == 2)
    # a later timeout of another job does not touch them
    res = agent.run_code("sleep 100", language="bash", timeout_ms=300).result
    assert res["timed_out"] is True
    time.sleep(0.5)
    assert len(procs_with(marker)) == 2


# ---- python calls -----------------------------------------------------------------------

THREADS = "[l.split()[1] for l in open('/proc/self/status') if l.startswith('Threads:')][0]"
# the runner's children, zombies included
CHILDREN = ("sorted(c for t in __import__('os').listdir('/proc/self/task') "
            "for c in open('/proc/self/task/' + t + '/children').read().split())")


def repl_threads(agent):
    return agent.py("print(%s)" % THREADS).stdout.decode().strip()


def test_timed_out_python_stops_spinning_threads_and_keeps_state(agent):
    agent.py("state = 'kept'")
    res = agent.py("""
import threading, time
def spin():
    n = 0
    while True:
        n += 1
        if n % 10000 == 0:
            time.sleep(0)
for _ in range(20):
    threading.Thread(target=spin, daemon=True).start()
time.sleep(100)
""", timeout_ms=800).result
    assert res["timed_out"] is True and res["repl_restarted"] is False
    assert res["error"]["name"] == "TimeoutError"
    assert wait_for(lambda: repl_threads(agent) == "1")
    assert agent.py("print(state)").stdout == b"kept\n"


def test_timed_out_python_kills_subprocesses_and_keeps_state(agent, marker):
    agent.py("state = 'kept'")
    res = agent.py("""
import os, subprocess, time
spin = "while :; do sleep 0.05; done"
kids = [subprocess.Popen(["sh", "-c", spin, "%(m)s"]) for _ in range(3)]
# detached: a session of its own, parent gone (double fork)
subprocess.run("(setsid sh -c '%%s' %(m)s &)" %% spin, shell=True)
time.sleep(100)
""" % {"m": marker}, timeout_ms=1500).result
    assert res["timed_out"] is True and res["error"]["name"] == "TimeoutError"
    assert wait_for(lambda: procs_with(marker) == []), "survivors: %r" % procs_with(marker)
    # no child of the runner is left, not even a zombie, and the state survived
    r = agent.py("print(state, " + CHILDREN + ")")
    assert r.stdout == b"kept []\n"


def test_timed_out_python_kills_multiprocessing_workers(agent, marker):
    """A Pool's worker processes are killed; its handler threads block in C
    (a queue's lock, a pipe's read), where SystemExit cannot reach them, so
    the REPL is restarted, and says so."""
    res = agent.py("""
import multiprocessing, time
pool = multiprocessing.Pool(2)
pool.map_async(time.sleep, [100, 100])
time.sleep(100)
""", timeout_ms=1500).result
    assert res["timed_out"] is True and res["error"]["name"] == "TimeoutError"
    if res["repl_restarted"]:
        assert "did not stop; the REPL was restarted" in res["error"]["value"]
    r = agent.py("print(" + CHILDREN + ", " + THREADS + ")")
    assert r.stdout == b"[] 1\n"


def test_thread_that_will_not_stop_restarts_the_repl(agent):
    agent.py("state = 'lost'")
    res = agent.py("""
import threading, time
threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()
while True:
    time.sleep(0.05)
""", timeout_ms=500).result
    assert res["timed_out"] is True and res["repl_restarted"] is True
    assert res["error"]["name"] == "TimeoutError"
    assert res["error"]["value"] == ("execution exceeded 0.5 s and was interrupted, but 1 thread it started did not "
                                     "stop; the REPL was restarted and its state is lost")
    assert agent.py("state").result["error"]["name"] == "NameError"
    assert repl_threads(agent) == "1"


def test_normal_python_call_keeps_its_threads_and_processes(agent, marker):
    res = agent.py("""
import subprocess, threading, time
server = subprocess.Popen(["sh", "-c", "while :; do sleep 0.05; done", "%s"])
ticks = []
def tick():
    while True:
        ticks.append(1)
        time.sleep(0.01)
threading.Thread(target=tick, daemon=True).start()
""" % marker).result
    assert res["error"] is None
    # another call times out: what the first one started keeps running
    res = agent.py("import time\ntime.sleep(100)", timeout_ms=300).result
    assert res["timed_out"] is True and res["repl_restarted"] is False
    assert len(procs_with(marker)) == 1
    r = agent.py("n = len(ticks); time.sleep(0.2); print(server.poll(), len(ticks) > n, %s)" % THREADS)
    assert r.stdout == b"None True 2\n"
    agent.py("server.kill(); server.wait()")


def test_python_sigint_from_the_user_keeps_threads(agent):
    """A SIGNAL request's SIGINT is the user's Ctrl-C, not a timeout: as in
    Jupyter, the threads the cell started keep running."""
    req = agent.start(0x10, {"code": "import threading, time\n"
                                     "threading.Thread(target=lambda: time.sleep(1000), daemon=True).start()\n"
                                     "print('started', flush=True)\n"
                                     "time.sleep(100)", "language": "python", "timeout_ms": 30000})
    # the thread runs (a fresh REPL may still be importing IPython when the call arrives)
    out = b""
    deadline = time.monotonic() + 20
    while b"started" not in out and time.monotonic() < deadline:
        out += b"".join(f.payload for f in agent.frames_for(req, 0.2) if f.type == STDOUT)
    assert b"started" in out
    assert agent.call(0x12, {"target": req, "signal": 2}).type == 0x43
    res = agent.collect(req, timeout=10).result
    assert res["error"]["name"] == "KeyboardInterrupt" and res["repl_restarted"] is False
    assert repl_threads(agent) == "2"
