"""Pause and resume on the vm backend: QMP stop / cont (docs/vm.md). The guest
keeps its RAM, files and REPL across ten cycles; its vCPU thread runs nothing
while paused; a paused VM is destroyed like a running one, and a daemon
killed with one paused leaves no VMM behind."""

import os
import time

import pytest

import airlock
from vm_support import _comm, pid_alive, qemu_pids, vm_cgroups, vm_daemon, wait_until


def _vcpu_ticks(pid):
    """utime + stime of QEMU's vCPU threads ("CPU 0/TCG", "CPU 0/KVM")."""
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                if not f.read().startswith("CPU "):
                    continue
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total


@pytest.fixture(scope="module")
def pd(tmp_path_factory):
    d = vm_daemon(tmp_path_factory.mktemp("vmpause")).start()
    try:
        # the shape's first create takes its snapshot (a minute under TCG on
        # a loaded host): longer than the SDK's request timeout
        st, _, _, b = d.request("POST", "/v1/sandboxes", {"isolation": "vm", "memory_mb": 512}, timeout=600)
        assert st == 201, b
        d.request("DELETE", "/v1/sandboxes/" + b["id"])
        yield d
    finally:
        if d.proc.poll() is None:
            d.stop()


def test_ten_cycles_and_no_cpu_while_paused(pd):
    before = set(qemu_pids(pd))
    s = pd.sandbox(isolation="vm", timeout=1800, memory_mb=512)
    try:
        (qemu,) = set(qemu_pids(pd)) - before
        s.upload(b"t0", "/tmp/t")
        s.upload(b"d0", "/data/d")
        s.upload(b"h0", "/home/user/h")
        s.run_code("n = 0\nimport threading, time\n"
                   "def spin():\n    while True: pass\n"
                   "threading.Thread(target=spin, daemon=True).start()")
        for i in range(10):
            assert s.pause()["state"] == "paused"
            with pytest.raises(airlock.SandboxPaused):
                s.run_code("n")
            if i == 0:
                t0 = _vcpu_ticks(qemu)
                time.sleep(1.5)
                assert _vcpu_ticks(qemu) == t0, "a paused VM's vCPU ran"
            assert s.resume()["state"] == "running"
            assert s.run_code("n += 1\nn").text == str(i + 1)
            assert s.download("/tmp/t") == b"t%d" % i
            assert s.download("/data/d") == b"d%d" % i
            assert s.download("/home/user/h") == b"h%d" % i
            s.upload(b"t%d" % (i + 1), "/tmp/t")
            s.upload(b"d%d" % (i + 1), "/data/d")
            s.upload(b"h%d" % (i + 1), "/home/user/h")
        t1 = _vcpu_ticks(qemu)
        assert wait_until(lambda: _vcpu_ticks(qemu) > t1, 10), "the guest's busy thread did not run on"
    finally:
        s.close()


def test_guest_clock_is_set_at_resume(pd):
    """Under TCG the guest's clocks stop with its vCPUs: without the resume's
    GUEST_SYNC its wall clock would be behind by the whole pause."""
    s = pd.sandbox(isolation="vm", timeout=1800, memory_mb=512)
    try:
        def skew():
            return float(s.run_code("import time; time.time()").text) - time.time()
        before = skew()
        s.pause()
        time.sleep(6)
        s.resume()
        after = skew()
        assert abs(after - before) < 3, (before, after)
    finally:
        s.close()


def test_destroy_paused_and_daemon_kill9(pd):
    before = set(qemu_pids(pd))
    s = pd.sandbox(isolation="vm", timeout=1800, memory_mb=512)
    (qemu,) = set(qemu_pids(pd)) - before
    s.pause()
    st = pd.request("DELETE", "/v1/sandboxes/" + s.id)[0]
    assert st == 200
    assert wait_until(lambda: not pid_alive(qemu), 15), "a paused VMM outlived its destroy"

    before = set(qemu_pids(pd))
    s = pd.sandbox(isolation="vm", timeout=1800, memory_mb=512)
    (qemu,) = set(qemu_pids(pd)) - before
    assert _comm(qemu) == "qemu-system-x86"
    s.pause()
    pd.kill9()
    assert wait_until(lambda: not pid_alive(qemu), 15), "a paused VMM outlived its daemon"
    pd.start()
    assert vm_cgroups(pd) == []
    info = pd.request("GET", "/v1/sandboxes/" + s.id)[3]
    assert (info["state"], info["destroy_reason"]) == ("destroyed", "daemon_restart")
