"""Sandbox lifetimes, destroy, and what survives (nothing) a daemon crash or stop."""

import secrets
import subprocess
import time

import pytest

import airlock
from airlock import Sandbox
from e2e_support import Daemon, pid_alive, stop_and_check, wait_until


def test_expiry_and_set_timeout(daemon, assert_alive):
    short = daemon.sandbox(timeout=2)
    shortened = daemon.sandbox(timeout=300)
    shortened.set_timeout(2)
    assert short.run_code("1").text == "1"
    time.sleep(4.5)
    for s in (short, shortened):
        with pytest.raises((airlock.SandboxTimeout, airlock.NotFound)) as ei:
            s.run_code("1")
        assert (ei.value.status, ei.value.code) == (410, "sandbox_expired"), ei.value
        info = s.info()
        assert info["state"] == "destroyed" and info["destroy_reason"] == "expired"
        assert s.id not in [x["id"] for x in Sandbox.list()]
        with pytest.raises(airlock.SandboxTimeout):
            Sandbox.connect(s.id)
        s.close()  # not an error
    assert_alive()


def test_delete_then_use(daemon, assert_alive):
    s = daemon.sandbox()
    sid = s.id
    st, _, _, body = daemon.request("DELETE", "/v1/sandboxes/" + sid)
    assert (st, body) == (200, {"id": sid, "state": "destroyed"})
    for call in (lambda: s.run_code("1"), lambda: s.exec(["true"]),
                 lambda: s.upload(b"x", "/tmp/x"), lambda: s.download("/tmp/x"),
                 lambda: s.files.list("/"), lambda: s.set_timeout(10)):
        with pytest.raises(airlock.NotFound) as ei:
            call()
        assert ei.value.status == 404
    assert daemon.request("DELETE", "/v1/sandboxes/" + sid)[0] == 404
    logs = daemon.request("GET", "/v1/sandboxes/%s/logs" % sid)[3]["events"]
    assert [e["action"] for e in logs][:1] == ["create"]
    assert "delete" in [e["action"] for e in logs]
    s.close()
    assert_alive()


def test_delete_during_run(daemon, assert_alive):
    import threading
    s = daemon.sandbox()
    out = {}

    def run():
        try:
            out["r"] = s.run_code("import time; time.sleep(30)")
        except airlock.AirlockError as e:
            out["e"] = e
    t = threading.Thread(target=run)
    t.start()
    time.sleep(1)
    t0 = time.monotonic()
    daemon.request("DELETE", "/v1/sandboxes/" + s.id)
    t.join(20)
    assert not t.is_alive()
    assert time.monotonic() - t0 < 10
    assert "e" in out and out["e"].status == 503, out
    assert_alive()


def _grep(marker, paths):
    p = subprocess.run(["timeout", "60", "grep", "-r", "-l", "-F", "-a", "-D", "skip", "-s",
                        "--exclude-dir=pytest-of-*-cache", marker, *paths],
                       capture_output=True, text=True)
    return [line for line in p.stdout.splitlines() if line]


def test_data_gone_after_destroy(daemon, assert_alive):
    marker = "AIRLOCK-MARK-" + secrets.token_hex(16)
    s = daemon.sandbox()
    s.upload(("payload " + marker + "\n").encode() * 100, "/data/marked.txt")
    s.upload(marker.encode(), "/tmp/marked2.txt")
    s.run_code("kept_in_memory = open('/data/marked.txt').read()")
    assert s.exec(["grep", "-c", marker, "/data/marked.txt"]).stdout == "100\n"
    # while it lives, uploaded data is not on the host disk either
    assert _grep(marker, [str(daemon.state_dir), "/tmp", "/var/tmp"]) == []
    s.close()
    assert _grep(marker, [str(daemon.state_dir), "/tmp", "/var/tmp"]) == []
    assert_alive()


def test_kill9_restart_and_sigterm(tmp_path, daemon):
    d = Daemon(tmp_path / "crashy", name="crashy").start()
    try:
        s = d.sandbox()
        assert s.run_code("import os; os.getpid() > 0").text == "True"
        procs = d.descendants()
        assert len(procs) >= 2, procs  # at least the agent and the Python runner
        d.kill9()
        assert wait_until(lambda: not any(pid_alive(p) for p in procs), 10), \
            [p for p in procs if pid_alive(p)]

        d.start()
        st, _, _, info = d.request("GET", "/v1/sandboxes/" + s.id)
        assert st == 200
        assert (info["state"], info["destroy_reason"]) == ("destroyed", "daemon_restart")
        assert d.healthz()["sandboxes"] == 0
        assert d.request("POST", "/v1/sandboxes/%s/code" % s.id, {"code": "1"})[0] == 404
        with pytest.raises(airlock.NotFound):
            Sandbox.connect(s.id, base_url=d.url, api_key=d.key)

        # the restarted daemon works; SIGTERM then destroys all its sandboxes
        a, b = d.sandbox(), d.sandbox()
        assert a.run_code("1+1").text == "2" and b.run_code("2+2").text == "4"
        procs = d.descendants()
        assert len(procs) >= 4, procs
        stop_and_check(d)
        assert not [p for p in procs if pid_alive(p)]
        d.start()
        for x in (a, b):
            info = d.request("GET", "/v1/sandboxes/" + x.id)[3]
            assert (info["state"], info["destroy_reason"]) == ("destroyed", "shutdown")
    finally:
        stop_and_check(d)


def test_concurrent_creates(daemon):
    import concurrent.futures as cf
    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(8) as ex:
        boxes = list(ex.map(lambda _: daemon.sandbox(), range(8)))
    try:
        assert len({b.id for b in boxes}) == 8
        with cf.ThreadPoolExecutor(8) as ex:
            outs = list(ex.map(lambda b: b.run_code("import os; os.getpid()").text, boxes))
        assert all(o is not None for o in outs)
    finally:
        with cf.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda b: b.close(), boxes))
    assert time.monotonic() - t0 < 30


def test_agent_log_reaches_the_daemon_log(daemon, fresh):
    """The agent's stderr is /dev/null inside the sandbox; its log lines
    (here: a REPL restart) travel as LOG frames into the daemon's log."""
    s = fresh()
    r = s.run_code("import os; os._exit(3)")
    assert r.exit_code == 3
    expect = "agent %s: info: python runner" % s.id

    def logged():
        with open(daemon.log_path, "rb") as f:
            return expect.encode() in f.read()
    deadline = time.monotonic() + 10
    while not logged():
        assert time.monotonic() < deadline, "no forwarded agent log line in the daemon log"
        time.sleep(0.1)
