"""The warm pool (src/daemon/pool.c): creates of the default shape take a
ready sandbox, the pool refills, a pooled sandbox is handed out once, and it
gets its owner, env, metadata and quotas exactly like a freshly built one.

Each test runs its own daemon: the shared one's pool counters would depend on
the order of the other tests."""

import os
import signal

import pytest

import airlock
from conftest import Daemon, pid_alive, stop_and_check, wait_until


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
    try:
        yield d
    finally:
        if d.proc.poll() is None:
            stop_and_check(d)


def ns_ids(s):
    """Kernel namespace ids seen inside s: unique among live namespaces."""
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
    a_ns = ns_ids(a)
    a.kill()
    seen = set()
    for _ in range(4):
        assert ready_at_least(d, 1), pool(d)
        s = d.sandbox()
        assert s.id not in seen and s.id not in (a.id, b.id)
        assert ns_ids(s) != a_ns
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
