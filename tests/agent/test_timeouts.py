"""A call that times out stops everything it started; a call that ends
normally may leave processes and threads running (docs/api.md).

Processes are found on the host by a marker in their command line (the
agent runs here as an ordinary host process, a subreaper for its orphans)."""

import os
import time
import uuid

import pytest


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
