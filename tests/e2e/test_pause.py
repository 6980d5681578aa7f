"""Pause and resume (docs/api.md, "Pause and resume"): a paused sandbox keeps
its memory, files and REPL, runs nothing, and its lifetime clock stands
still; --max-paused bounds a pause; destroy, shutdown and a daemon crash
leave no frozen cgroup behind."""

import glob
import os
import threading
import time

import pytest

import airlock
from airlock import Sandbox
from e2e_support import Daemon, pid_alive, scope_cgroups, stop_and_check, wait_until


def _cgroup_dirs(d, sid):
    """The sandbox's cgroup directories, one per hierarchy (v1: memory,
    pids, cpu, freezer; v2: one)."""
    return [p for parent in scope_cgroups(d) for p in glob.glob(os.path.join(parent, sid))]


def _host_pids(d, sid):
    for dirpath in _cgroup_dirs(d, sid):
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            continue
    return []


def _cpu_ticks(pids):
    """utime + stime of the processes (clock ticks, /proc/PID/stat fields 14, 15)."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total


def _frozen_cgroups(d):
    """Sandbox cgroups under the daemon's scope that are frozen (v1
    freezer.state, v2 cgroup.freeze)."""
    out = []
    for parent in scope_cgroups(d):
        for sub in glob.glob(os.path.join(parent, "sb_*")):
            for name, frozen in (("freezer.state", ("FROZEN", "FREEZING")), ("cgroup.freeze", ("1",))):
                try:
                    with open(os.path.join(sub, name)) as f:
                        if f.read().strip() in frozen:
                            out.append(sub)
                except OSError:
                    pass
    return out


def _state(daemon, sid):
    return daemon.request("GET", "/v1/sandboxes/" + sid)[3]


def test_ten_cycles_lose_nothing(daemon, fresh, assert_alive):
    s = fresh()
    s.upload(b"tmp-0", "/tmp/t.txt")
    s.upload(b"data-0", "/data/d.txt")
    s.upload(b"home-0", "/home/user/h.txt")
    s.run_code("import hashlib\ncounter = 0\nblob = bytes(range(256)) * 40000\n"
               "digest = hashlib.sha256(blob).hexdigest()\nf = open('/tmp/open.txt', 'w')")
    for i in range(10):
        info = s.pause()
        assert info["state"] == "paused" and "paused_at" in info and "pause_expires_at" in info, info
        assert _state(daemon, s.id)["state"] == "paused"
        assert s.id in [x["id"] for x in Sandbox.list(state="paused")]
        assert s.id not in [x["id"] for x in Sandbox.list(state="running")]
        assert s.resume()["state"] == "running"
        r = s.run_code("counter += 1\nf.write('x'); f.flush()\n"
                       "(counter, hashlib.sha256(blob).hexdigest() == digest)")
        assert r.error is None, r
        assert r.text == "(%d, True)" % (i + 1), r
        assert s.download("/tmp/t.txt") == ("tmp-%d" % i).encode()
        assert s.download("/data/d.txt") == ("data-%d" % i).encode()
        assert s.download("/home/user/h.txt") == ("home-%d" % i).encode()
        s.upload(("tmp-%d" % (i + 1)).encode(), "/tmp/t.txt")
        s.upload(("data-%d" % (i + 1)).encode(), "/data/d.txt")
        s.upload(("home-%d" % (i + 1)).encode(), "/home/user/h.txt")
    assert s.exec(["cat", "/tmp/open.txt"]).stdout == "x" * 10
    actions = [e["action"] for e in s.logs()]
    assert actions.count("pause") == 10 and actions.count("resume") == 10, actions
    assert_alive()


def test_paused_sandbox_uses_no_cpu(daemon, fresh, assert_alive):
    s = fresh()
    r = s.run_code("import subprocess, sys\n"
                   "busy = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\nbusy.pid")
    assert r.error is None, r
    pids = _host_pids(daemon, s.id)
    assert len(pids) >= 3, pids  # agent, REPL, busy loop
    t0 = _cpu_ticks(pids)
    assert wait_until(lambda: _cpu_ticks(pids) > t0, 10), "the busy loop does not run"
    s.pause()
    frozen = _cpu_ticks(pids)
    time.sleep(1.5)
    assert _cpu_ticks(pids) == frozen, "a paused sandbox used CPU"
    assert all(pid_alive(p) for p in pids)
    s.resume()
    assert wait_until(lambda: _cpu_ticks(pids) > frozen, 10), "the busy loop did not run on after the resume"
    assert s.run_code("busy.poll() is None").text == "True"
    assert_alive()


def test_lifetime_clock_stops_while_paused(daemon, fresh, assert_alive):
    s = fresh(timeout=3)
    s.run_code("x = 41")
    s.pause()
    time.sleep(4.5)  # longer than its whole lifetime
    info = _state(daemon, s.id)
    assert info["state"] == "paused", info
    s.resume()
    assert s.run_code("x + 1").text == "42"
    # what was left of the lifetime runs on after the resume: it still ends
    assert wait_until(lambda: _state(daemon, s.id)["state"] == "destroyed", 15)
    assert _state(daemon, s.id)["destroy_reason"] == "expired"
    assert_alive()


def test_set_timeout_while_paused_counts_from_the_resume(daemon, fresh):
    s = fresh(timeout=600)
    s.pause()
    info = s.set_timeout(2)
    assert info["state"] == "paused"
    time.sleep(3)
    assert _state(daemon, s.id)["state"] == "paused"
    s.resume()
    assert wait_until(lambda: _state(daemon, s.id)["state"] == "destroyed", 15)


def test_calls_on_a_paused_sandbox(daemon, fresh, assert_alive):
    s = fresh()
    s.upload(b"x", "/tmp/x")
    s.pause()
    base = "/v1/sandboxes/" + s.id
    for method, path, body in (("POST", "/code", {"code": "1"}), ("POST", "/exec", {"cmd": ["true"]}),
                               ("GET", "/files?path=/tmp/x", None), ("PUT", "/files?path=/tmp/y", b"y"),
                               ("GET", "/files/list?path=/tmp", None), ("DELETE", "/files?path=/tmp/x", None),
                               ("GET", "/files/info?path=/tmp/x", None), ("POST", "/files/mkdir?path=/tmp/d", None)):
        st, _, _, b = daemon.request(method, base + path, body)
        assert (st, b and b["error"]["code"]) == (409, "sandbox_paused"), (method, path, st, b)
    with pytest.raises(airlock.SandboxPaused):
        s.run_code("1")
    # idempotent: pausing a paused sandbox, resuming a running one
    st, _, _, b = daemon.request("POST", base + "/pause")
    assert (st, b["state"]) == (200, "paused")
    assert s.resume()["state"] == "running"
    st, _, _, b = daemon.request("POST", base + "/resume")
    assert (st, b["state"]) == (200, "running")
    assert s.run_code("1 + 1").text == "2"
    # unknown ids, as for every other call
    for op in ("pause", "resume"):
        st, _, _, b = daemon.request("POST", "/v1/sandboxes/sb_%s/%s" % ("0" * 32, op))
        assert (st, b["error"]["code"]) == (404, "not_found"), b
        st, _, _, b = daemon.request("POST", base + "/" + op, key="ak_" + "0" * 32)
        assert st == 401
    assert_alive()


def test_pause_refused_while_a_call_runs(daemon, fresh, assert_alive):
    s = fresh()
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", s.run_code("import time; time.sleep(3); 'done'")))
    t.start()
    try:
        assert wait_until(lambda: s.exec(["pgrep", "-f", "airlock_runner"]).exit_code == 0, 10)
        time.sleep(0.5)
        with pytest.raises(airlock.SandboxBusy) as ei:
            s.pause()
        assert (ei.value.status, ei.value.code) == (409, "sandbox_busy")
    finally:
        t.join(30)
    assert out["r"].text == "'done'", out
    assert _state(daemon, s.id)["state"] == "running"
    # once the call is over, the pause goes through
    assert s.pause()["state"] == "paused"
    s.resume()
    assert_alive()


def test_other_sandboxes_run_while_one_is_paused(daemon, fresh, witness, assert_alive):
    a, b = fresh(), fresh()
    a.run_code("v = 'a'")
    b.run_code("v = 'b'")
    a.pause()
    assert b.run_code("v").text == "'b'"
    assert witness.run_code("witness_state").text == "1234"
    assert _state(daemon, b.id)["state"] == "running"
    a.resume()
    assert a.run_code("v").text == "'a'"
    assert_alive()


def test_destroy_a_paused_sandbox(daemon, fresh, assert_alive):
    s = fresh()
    s.run_code("import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'while True: pass'])")
    pids = _host_pids(daemon, s.id)
    assert len(pids) >= 3
    s.pause()
    assert _frozen_cgroups(daemon), "the paused sandbox's cgroup is not frozen"
    st, _, _, b = daemon.request("DELETE", "/v1/sandboxes/" + s.id)
    assert (st, b["state"]) == (200, "destroyed")
    assert wait_until(lambda: not any(pid_alive(p) for p in pids), 15), [p for p in pids if pid_alive(p)]
    assert wait_until(lambda: _cgroup_dirs(daemon, s.id) == [], 15), _cgroup_dirs(daemon, s.id)
    assert _state(daemon, s.id)["destroy_reason"] == "deleted"
    assert_alive()


def test_max_paused_and_shutdown_and_crash(tmp_path):
    d = Daemon(tmp_path / "paused", name="paused", extra_args=["--max-paused", "2"]).start()
    try:
        # --max-paused: a pause longer than it ends the sandbox as expired
        s = d.sandbox(timeout=600)
        s.run_code("1")
        pids = _host_pids(d, s.id)
        s.pause()
        assert wait_until(lambda: d.request("GET", "/v1/sandboxes/" + s.id)[3]["state"] == "destroyed", 15)
        info = d.request("GET", "/v1/sandboxes/" + s.id)[3]
        assert info["destroy_reason"] == "expired", info
        assert wait_until(lambda: not any(pid_alive(p) for p in pids), 15)
        assert wait_until(lambda: _cgroup_dirs(d, s.id) == [], 15)
        st, _, _, b = d.request("POST", "/v1/sandboxes/%s/resume" % s.id)
        assert (st, b["error"]["code"]) == (410, "sandbox_expired"), b

        # kill -9 of the daemon with a sandbox paused: its frozen processes
        # cannot act on their lost connection; the next start kills them
        # and removes the thawed cgroup
        s = d.sandbox(timeout=600)
        s.run_code("1")
        pids = _host_pids(d, s.id)
        s.pause()
        d.kill9()
        assert _frozen_cgroups(d)
        d.start()
        assert not any(pid_alive(p) for p in pids), [p for p in pids if pid_alive(p)]
        assert _frozen_cgroups(d) == [] and _cgroup_dirs(d, s.id) == []
        info = d.request("GET", "/v1/sandboxes/" + s.id)[3]
        assert (info["state"], info["destroy_reason"]) == ("destroyed", "daemon_restart"), info

        # SIGTERM with a sandbox paused: a clean shutdown all the same
        s = d.sandbox(timeout=600)
        s.pause()
        pids = _host_pids(d, s.id)
        stop_and_check(d)
        assert not any(pid_alive(p) for p in pids)
    finally:
        if d.proc.poll() is None:
            stop_and_check(d)


def test_cli_pause_resume(cli, daemon, fresh):
    import subprocess
    s = fresh()
    s.run_code("v = 7")
    env = dict(os.environ, AIRLOCK_URL=daemon.url, AIRLOCK_API_KEY=daemon.key)

    def run(*args):
        return subprocess.run([str(cli), *args], env=env, capture_output=True, text=True, timeout=60)
    p = run("pause", s.id)
    assert (p.returncode, p.stdout) == (0, "%s paused\n" % s.id), p
    p = run("exec", s.id, "--", "true")
    assert p.returncode == 1 and "(sandbox_paused)" in p.stderr, p
    assert "paused" in run("ls").stdout
    p = run("resume", s.id, "--json")
    assert p.returncode == 0 and '"state": "running"' in p.stdout.replace('":"', '": "'), p
    assert s.run_code("v").text == "7"
    p = run("pause", "sb_" + "0" * 32)
    assert p.returncode == 1 and "(not_found)" in p.stderr, p
