"""The warm pool (src/daemon/pool.c): creates of the default shape take a
ready sandbox, the pool refills, a pooled sandbox is handed out once, and it
gets its owner, env, metadata and quotas exactly like a freshly built one.

Each test runs its own daemon: the shared one's pool counters would depend on
the order of the other tests."""

import os
import signal

import pytest

import airlock
from e2e_support import Daemon, pid_alive, scope_cgroups, serving, stat_fields, stop_and_check, wait_until


def pool(d, key=...):
    st, _, _, j = d.request("GET", "/v1/pool", key=key)
    assert st == 200, (st, j)
    return j


def ready_at_least(d, n):
    return wait_until(lambda: pool(d)["ready"] >= n, 20)


@pytest.fixture
def pooled(tmp_path):
    d = Daemon(tmp_path / "pooled", name="pooled",
               extra_args=["--pool-size", "2", "--pool-max", "4"]).start()
    yield from serving(d)


def ns_ids(s):
    """Kernel namespace ids seen inside s: unique among live namespaces (a
    freed one's number is reused at once: compare live sandboxes only)."""
    return s.run_code("import os; (os.readlink('/proc/self/ns/mnt'), os.readlink('/proc/self/ns/pid'))").text


def test_pool_hit_fresh_sandbox_each_time(pooled):
    d = pooled
    assert ready_at_least(d, 2), pool(d)
    # waiting sandboxes belong to nobody: not listed, not counted
    assert d.request("GET", "/v1/sandboxes")[3]["sandboxes"] == []
    assert d.healthz()["sandboxes"] == 0

    a = d.sandbox(env={"WHO": "a"}, metadata={"n": 1})
    st = pool(d)
    assert st["hits"] == 1 and st["misses"] == 0, st
    assert "%s created" % a.id in d.log_text() and "from the warm pool" in d.log_text()
    events = d.request("GET", "/v1/sandboxes/%s/logs" % a.id)[3]["events"]
    assert any(e["action"] == "create" and e["detail"]["pooled"] for e in events), events

    # the request's env and metadata, assigned at take time
    assert a.run_code("import os; os.environ.get('WHO')").text == "'a'"
    assert d.request("GET", "/v1/sandboxes/" + a.id)[3]["metadata"] == {"n": 1}
    a.files.write("/tmp/left-by-a", "secret of a")
    a.run_code("open('/home/user/a.txt', 'w').write('x'); import builtins; builtins.LEFT = 1")

    # the next one is another sandbox, not a's again
    assert ready_at_least(d, 1), pool(d)
    b = d.sandbox(env={"WHO": "b"})
    assert pool(d)["hits"] == 2
    assert b.id != a.id
    assert ns_ids(a) != ns_ids(b)
    assert b.run_code("import os; os.path.exists('/tmp/left-by-a') or os.path.exists('/home/user/a.txt')"
                      ).text == "False"
    assert b.run_code("import builtins; hasattr(builtins, 'LEFT')").text == "False"
    assert b.run_code("import os; os.environ.get('WHO')").text == "'b'"

    # a destroyed pooled sandbox is gone for good, never handed out again
    # (not by namespace ids: the kernel reuses a freed namespace's inode
    # number at once, so a new sandbox may show a's numbers after a is gone)
    a.kill()
    seen = set()
    for _ in range(4):
        assert ready_at_least(d, 1), pool(d)
        s = d.sandbox()
        assert s.id not in seen and s.id not in (a.id, b.id)
        assert s.run_code("import os, builtins; os.path.exists('/tmp/left-by-a') or hasattr(builtins, 'LEFT')"
                          ).text == "False"
        seen.add(s.id)
        s.kill()
    assert pool(d)["hits"] == 6
    b.kill()


def test_pool_refills_and_reports_memory(pooled):
    d = pooled
    assert ready_at_least(d, 2), pool(d)
    st = pool(d)
    # an agent and its cgroup cost something; the sum is what the pool holds
    assert st["memory_bytes"] > 0, st
    assert (st["min"], st["max"], st["enabled"]) == (2, 4, True)
    boxes = [d.sandbox() for _ in range(3)]  # at least one beyond what was ready
    st = pool(d)
    assert st["hits"] >= 2 and st["hits"] + st["misses"] == 3, st
    # refilled in the background, up to the target that followed the demand
    assert wait_until(lambda: pool(d)["ready"] == pool(d)["target"] and pool(d)["ready"] >= 2, 20), pool(d)
    assert pool(d)["target"] <= 4
    for s in boxes:
        s.kill()


def test_dead_pooled_sandbox_is_replaced(pooled):
    d = pooled
    assert ready_at_least(d, 2), pool(d)
    # before any create every sandbox below the daemon is a pooled one: kill
    # their agents from the host, as the OOM killer or an operator might
    agents = [p for p in d.descendants() if os.path.exists("/proc/%d" % p)
              and open("/proc/%d/comm" % p).read().startswith("memfd:airlock")]
    assert len(agents) == 2, agents
    for p in agents:
        os.kill(p, signal.SIGKILL)
    assert wait_until(lambda: pool(d)["discarded_dead"] == 2 and pool(d)["ready"] == 2, 20), pool(d)
    s = d.sandbox()
    assert pool(d)["hits"] == 1
    assert s.run_code("6*7").text == "42"
    s.kill()


def test_pool_is_admin_only(pooled):
    d = pooled
    st, _, _, j = d.request("POST", "/v1/keys", {"name": "user"})
    assert st == 201, j
    assert d.request("GET", "/v1/pool", key=j["key"])[0] == 403
    assert d.request("GET", "/v1/pool", key=None)[0] == 401


def test_pool_hit_obeys_ownership_and_quotas(tmp_path):
    d = Daemon(tmp_path / "quota", name="quota",
               extra_args=["--pool-size", "2", "--max-sandboxes", "3", "--max-sandboxes-per-key", "1"]).start()
    try:
        assert ready_at_least(d, 2), pool(d)
        uk = d.request("POST", "/v1/keys", {"name": "user"})[3]
        user, other = uk["key"], d.request("POST", "/v1/keys", {"name": "other"})[3]["key"]
        u = d.sandbox(api_key=user)
        # the owner is the taker: the other key cannot see it, the admin sees who owns it
        assert d.request("GET", "/v1/sandboxes/" + u.id, key=other)[0] == 404
        assert d.request("GET", "/v1/sandboxes", key=other)[3]["sandboxes"] == []
        info = d.request("GET", "/v1/sandboxes/" + u.id)[3]
        assert info["key_id"] == uk["id"], info
        assert [x["id"] for x in d.request("GET", "/v1/sandboxes", key=user)[3]["sandboxes"]] == [u.id]
        # the per-key quota holds although the pool has one ready
        assert ready_at_least(d, 1), pool(d)
        with pytest.raises(airlock.AirlockError) as e:
            d.sandbox(api_key=user)
        assert e.value.status == 429
        # --max-sandboxes counts users' sandboxes, the pool's come on top
        o = d.sandbox(api_key=other)
        x = d.sandbox()
        assert d.healthz()["sandboxes"] == 3
        assert ready_at_least(d, 1), pool(d)
        hits = pool(d)["hits"]
        with pytest.raises(airlock.AirlockError) as e:
            d.sandbox()
        assert e.value.status == 429
        assert pool(d)["hits"] == hits  # a refused create does not consume a ready sandbox
        for s in (u, o, x):
            s.kill()
    finally:
        stop_and_check(d)


def test_pool_size_zero(tmp_path):
    d = Daemon(tmp_path / "nopool", name="nopool", extra_args=["--pool-size", "0"]).start()
    try:
        assert pool(d) == {"enabled": False}
        s = d.sandbox()
        # built for this create: not primed (the create was waiting), so
        # the user's first call is the REPL's first cell
        assert s.run_code("import sys; print(sys._getframe().f_code.co_filename)").stdout == "<cell-1>\n"
        assert s.run_code("1+1").text == "2"
        assert "from the warm pool" not in d.log_text()
        s.kill()
        # nothing built ahead: no process below the daemon once s is gone
        assert wait_until(lambda: d.descendants() == [], 10), d.descendants()
    finally:
        stop_and_check(d)


def test_shutdown_destroys_the_pool(tmp_path):
    d = Daemon(tmp_path / "down", name="down", extra_args=["--pool-size", "3"]).start()
    assert ready_at_least(d, 3), pool(d)
    s = d.sandbox()
    procs = d.descendants()
    assert len(procs) >= 3, procs  # the live one's agent and at least two pooled agents
    stop_and_check(d)  # no cgroup left, clean exit, no sanitizer report
    assert not [p for p in procs if pid_alive(p)]
    assert "warm pool: destroyed" in d.log_text()
    d.start()
    try:
        info = d.request("GET", "/v1/sandboxes/" + s.id)[3]
        assert (info["state"], info["destroy_reason"]) == ("destroyed", "shutdown")
    finally:
        stop_and_check(d)


def shape_of(st, memory_mb, cpus=1.0, egress=False, template="host"):
    """The entry of one shape in GET /v1/pool, or None."""
    for s in st["shapes"]:
        if (s["template"], s["memory_mb"], s["cpus"], s["egress"]) == (template, memory_mb, cpus, egress):
            return s
    return None


def test_pool_per_shape(tmp_path):
    """A shape other than the default gets its own pool after its first
    create: the next create of that shape is a hit, with that shape's limits,
    and the default shape's pool is not touched by it."""
    d = Daemon(tmp_path / "shapes", name="shapes", extra_args=["--pool-size", "1", "--pool-max", "6"]).start()
    try:
        assert ready_at_least(d, 1), pool(d)
        st = pool(d)
        assert [s["default"] for s in st["shapes"]] == [True], st
        assert shape_of(st, 1024)["ready"] == 1, st

        a = d.sandbox(memory_mb=256, cpus=0.5)   # first of its shape: a miss
        st = pool(d)
        small = shape_of(st, 256, 0.5)
        assert small is not None and not small["default"], st
        assert (small["hits"], small["misses"]) == (0, 1), small
        assert shape_of(st, 1024)["hits"] == 0, st
        assert wait_until(lambda: shape_of(pool(d), 256, 0.5)["ready"] >= 1, 20), pool(d)
        assert shape_of(pool(d), 256, 0.5)["memory_bytes"] > 0, pool(d)

        b = d.sandbox(memory_mb=256, cpus=0.5)   # now ready: a hit
        st = pool(d)
        assert shape_of(st, 256, 0.5)["hits"] == 1, st
        assert "%s created" % b.id in d.log_text()
        events = d.request("GET", "/v1/sandboxes/%s/logs" % b.id)[3]["events"]
        assert any(e["action"] == "create" and e["detail"]["pooled"] for e in events), events
        info = d.request("GET", "/v1/sandboxes/" + b.id)[3]
        assert (info["memory_mb"], info["cpus"]) == (256, 0.5), info
        # the cgroup limit is the shape's, not the default's (host side: v2 memory.max, v1 limit_in_bytes)
        limits = []
        for parent in scope_cgroups(d):
            for f in ("memory.max", "memory.limit_in_bytes"):
                path = os.path.join(parent, b.id, f)
                if os.path.exists(path):
                    limits.append(int(open(path).read()))
        assert limits == [256 << 20], limits
        # the default shape still hits
        c = d.sandbox()
        assert shape_of(pool(d), 1024)["hits"] == 1, pool(d)
        # totals are the sums over shapes
        st = pool(d)
        assert st["hits"] == sum(s["hits"] for s in st["shapes"]), st
        assert st["ready"] == sum(s["ready"] for s in st["shapes"]), st
        for s in (a, b, c):
            s.kill()
    finally:
        stop_and_check(d)


def test_pool_max_bounds_all_shapes(tmp_path):
    """--pool-max is the total over every shape: with room for 3 and four
    shapes asked for, the ready sandboxes never add up to more than 3, and the
    default shape keeps its --pool-size."""
    d = Daemon(tmp_path / "cap", name="cap", extra_args=["--pool-size", "1", "--pool-max", "3"]).start()
    try:
        assert ready_at_least(d, 1), pool(d)
        boxes = [d.sandbox(memory_mb=m) for m in (128, 192, 256, 320)]
        assert len(pool(d)["shapes"]) == 5, pool(d)
        # the refill settles: the budget (3) shared, default first
        assert wait_until(lambda: pool(d)["ready"] == 3, 20), pool(d)
        for _ in range(20):
            st = pool(d)
            assert st["ready"] <= 3 and st["target"] <= 3, st
            assert shape_of(st, 1024)["ready"] == 1, st
        for s in boxes:
            s.kill()
    finally:
        stop_and_check(d)


def test_idle_shape_drains(tmp_path):
    """A non-default shape nobody asks for drains to 0 and is forgotten
    (POOL_SHAPE_IDLE_MS, 30 s); the default shape keeps --pool-size."""
    d = Daemon(tmp_path / "drain", name="drain", extra_args=["--pool-size", "1", "--pool-max", "4"]).start()
    try:
        d.sandbox(memory_mb=200).kill()
        assert wait_until(lambda: (shape_of(pool(d), 200) or {}).get("ready") == 1, 20), pool(d)
        assert wait_until(lambda: shape_of(pool(d), 200) is None, 60), pool(d)
        st = pool(d)
        assert [s["default"] for s in st["shapes"]] == [True], st
        assert wait_until(lambda: pool(d)["ready"] == 1, 20), pool(d)
        # its ready sandbox was destroyed, not leaked: only the default's agent is left
        assert wait_until(lambda: len([p for p in d.descendants() if pid_alive(p) and
                                       open("/proc/%d/comm" % p).read().startswith("memfd:airlock")]) == 1,
                          20), d.descendants()
    finally:
        stop_and_check(d)


def test_pool_of_a_built_template(tmp_path):
    """A built template's shape is pooled like any other: the second create on
    it is a hit, on that template's root. Removing the template destroys its
    ready sandboxes (they have its tree mounted) instead of refusing or
    leaving them; the pool keeps the template's name, never a pointer into
    the template store. Uses the `python` template through the build cache."""
    import json as _json
    from e2e_support import ROOT
    from test_templates import _build
    d = Daemon(tmp_path / "tpool", name="tpool", extra_args=["--pool-size", "1", "--pool-max", "4"]).start()
    try:
        b = _build(d, _json.loads((ROOT / "templates" / "python.json").read_text()))
        assert b["state"] == "succeeded", b["all_progress"][-20:]
        a = d.sandbox(template="python")
        assert wait_until(lambda: (shape_of(pool(d), 512, template="python") or {}).get("ready") == 1, 30), pool(d)
        s = d.sandbox(template="python")
        st = shape_of(pool(d), 512, template="python")
        assert (st["hits"], st["misses"]) == (1, 1), st
        # on the template's root: its env, and no host-only python module path
        assert s.run_code("import os; os.environ.get('PYTHONDONTWRITEBYTECODE')").text == "'1'"
        assert d.request("GET", "/v1/sandboxes/" + s.id)[3]["template"] == "python"
        a.kill()
        s.kill()
        # the pool refilled one for the template; removal destroys it and forgets the shape
        assert wait_until(lambda: (shape_of(pool(d), 512, template="python") or {}).get("ready") == 1, 30), pool(d)
        st, _, _, j = d.request("DELETE", "/v1/templates/python")
        assert st == 200, j
        assert shape_of(pool(d), 512, template="python") is None, pool(d)
        # and it does not come back: creates on it are refused, the default shape still hits
        st, _, _, j = d.request("POST", "/v1/sandboxes", {"template": "python"})
        assert j["error"]["code"] == "template_not_found", (st, j)
        assert shape_of(pool(d), 512, template="python") is None, pool(d)
        assert ready_at_least(d, 1), pool(d)
        d.sandbox().kill()
    finally:
        stop_and_check(d)


def _nice(pid, task=None):
    """The nice value of a process (or of its thread task), None once it is gone."""
    st = stat_fields(pid, task)
    return st and int(st[16])


def _thread_nices(pid):
    nices = {t: _nice(pid, t) for t in os.listdir("/proc/%d/task" % pid)}
    return {t: n for t, n in nices.items() if n is not None}


def _sandbox_pids(d, sid):
    import glob
    pids = set()
    for parent in scope_cgroups(d):
        for procs in glob.glob("%s/%s/cgroup.procs" % (parent, sid)):
            pids.update(int(x) for x in open(procs).read().split())
    return pids


def test_builds_run_below_requests_and_sandboxes_do_not(pooled):
    """The refill thread builds at a lower priority, so that a request
    preempts a build on a small host; nothing it builds keeps that priority:
    not the agent, not the REPL, not what user code starts, nor the daemon
    thread that relays the sandbox's frames."""
    d = pooled
    assert ready_at_least(d, 2)
    nices = _thread_nices(d.proc.pid)
    assert sorted(nices.values()).count(10) == 1, nices  # the refill thread alone
    assert nices[str(d.proc.pid)] == 0
    before = pool(d)["hits"]
    with d.sandbox() as s:
        assert pool(d)["hits"] == before + 1
        inside = s.run_code("import os, subprocess\n"
                            "p = subprocess.Popen(['sleep', '30'])\n"
                            "print(os.nice(0), subprocess.run(['sh', '-c', 'nice'], capture_output=True,"
                            " text=True).stdout.strip())").stdout.split()
        assert inside == ["0", "0"], inside
        # seen from the host: agent, REPL and the sleep, all at the daemon's priority
        pids = _sandbox_pids(d, s.id)
        assert len(pids) >= 3, pids
        assert {p: _nice(p) for p in pids} == {p: 0 for p in pids}
    assert sorted(_thread_nices(d.proc.pid).values()).count(10) == 1


def test_pooled_host_repl_was_primed(pooled):
    """A pooled host-template REPL has already run one empty call (its
    copy-on-write faults paid at build time), so the user's first call is
    the REPL's second cell."""
    d = pooled
    assert ready_at_least(d, 1)
    with d.sandbox() as s:
        assert s.run_code("import sys; print(sys._getframe().f_code.co_filename)").stdout == "<cell-2>\n"
