"""Many live sandboxes at once (issue 4): 200 idle sandboxes of one key, each
answering run_code, with the daemon healthy, and all of them destroyed
cleanly. bench/bench.py does the same with 1,000 (and measures it); this is
the functional check, with no timing in it.

Needs what 1,000 need, only less of it: the daemon raises its descriptor
limit (each sandbox holds two descriptors in airlockd, each client
connection one), a uid range slot per sandbox, and a per-key quota that
allows it (--max-sandboxes-per-key 0)."""

import os
import resource

import pytest

from e2e_support import Daemon, _proc_stat, serving, stop_and_check, wait_until

N = 200


def agents(d):
    """Direct children of airlockd: one agent per sandbox, pooled ones included."""
    # a pool agent can exit between the listing and the read: _proc_stat
    # says None for it instead of raising
    out = []
    for p in d.descendants():
        st = _proc_stat(p)
        if st is not None and st[1] != "Z" and st[2] == d.proc.pid:
            out.append(p)
    return out


def host_uid(pid):
    """The real uid of a live pid, or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            return [x for x in f if x.startswith("Uid:")][0].split()[1]
    except OSError:
        return None


@pytest.fixture
def many(tmp_path):
    d = Daemon(tmp_path / "many", name="many",
               extra_args=["--max-sandboxes", str(N + 10), "--max-sandboxes-per-key", "0",
                           "--rate-limit", "0", "--max-concurrent-requests", "0", "--pool-size", "2"])
    # started with a soft descriptor limit far below what N sandboxes need:
    # the daemon must raise it itself
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        d.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    yield from serving(d)


def test_200_live_sandboxes(many):
    d = many
    # the low soft limit it was started with does not cap the sandboxes
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with open("/proc/%d/limits" % d.proc.pid) as f:
        line = [x for x in f if x.startswith("Max open files")][0]
    assert int(line.split()[3]) >= min(hard, 65536), line

    boxes = []
    try:
        for i in range(N):
            s = d.sandbox()
            boxes.append(s)
        assert d.healthz()["sandboxes"] == N
        # every one answers, each in its own REPL
        for i, s in enumerate(boxes):
            assert s.run_code("n = %d; print(n)" % i).stdout == "%d\n" % i
        for i, s in enumerate(boxes[::37]):
            assert s.run_code("print(n)").stdout == "%d\n" % (i * 37)
        # one uid range each: no two agents share a host uid
        live = {p: host_uid(p) for p in agents(d)}
        live = {p: u for p, u in live.items() if u is not None}
        assert len(set(live.values())) == len(live) >= N, (len(set(live.values())), len(live))
        # the daemon is healthy: it lists them all and still serves new work
        st, _, _, j = d.request("GET", "/v1/sandboxes")
        assert st == 200 and len(j["sandboxes"]) == N
        extra = d.sandbox()
        assert extra.run_code("print(6*7)").stdout == "42\n"
        extra.kill()
    finally:
        for s in boxes:
            s.kill()
    assert d.healthz()["sandboxes"] == 0
    # destroyed cleanly: the teardown worker catches up, only the pool's agents remain
    assert wait_until(lambda: len(agents(d)) <= d.request("GET", "/v1/pool")[3]["ready"], 60), \
        (len(agents(d)), d.request("GET", "/v1/pool")[3])
    nfds = len(os.listdir("/proc/%d/fd" % d.proc.pid))
    assert nfds < 100, nfds  # the sandboxes' descriptors went with them
    stop_and_check(d)  # no cgroup left, clean exit, no sanitizer report
