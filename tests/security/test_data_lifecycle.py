"""Data lifecycle: when a sandbox ends (destroyed, or its daemon killed -9
and restarted), nothing of it remains on the host: no byte of a canary it
held (state dir, /tmp, /var/tmp, /dev/shm are searched, byte by byte), no
process, no namespace, no mount, no cgroup.
"""

import glob
import os
import secrets
import stat

import pytest

from sec_support import ISOLATION

import sec_support as conftest
from sec_support import Daemon, pid_alive, wait_until

pytestmark = pytest.mark.category("lifecycle")

NS_KINDS = ("mnt", "pid", "net", "ipc", "uts", "user", "cgroup")
SEARCH_ROOTS = ("/tmp", "/var/tmp", "/dev/shm")


def grep_host(needle, roots):
    """Files under roots whose bytes contain needle (/proc and /sys are
    never entered; unreadable files are skipped)."""
    needle = needle.encode()
    hits = []
    for root in roots:
        for dp, dns, fns in os.walk(root):
            dns[:] = [d for d in dns if not os.path.join(dp, d).startswith(("/proc", "/sys"))]
            for n in fns:
                p = os.path.join(dp, n)
                try:
                    if not stat.S_ISREG(os.lstat(p).st_mode):
                        continue
                    with open(p, "rb") as f:
                        tail = b""
                        while True:
                            chunk = f.read(1 << 20)
                            if not chunk:
                                break
                            if needle in tail + chunk:
                                hits.append(p)
                                break
                            tail = chunk[-len(needle):]
                except OSError:
                    pass
    return hits


def sandbox_pids(sb_id):
    """Host pids whose cgroup path names the sandbox."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/cgroup" % d) as f:
                    if sb_id in f.read():
                        out.append(int(d))
            except OSError:
                pass
    return out


def _start_time(pid):
    st = conftest.e2e.stat_fields(pid)
    return st and int(st[19])


def _describe(pid):
    out = {}
    for what in ("comm", "cgroup", "stat"):
        try:
            with open("/proc/%d/%s" % (pid, what)) as f:
                out[what] = f.read().strip()[:300]
        except OSError as e:
            out[what] = str(e)
    return out


def ns_inodes(pids):
    """The namespaces these processes live in, minus those the host's init shares."""
    host = set()
    for k in NS_KINDS:
        try:
            host.add((k, os.stat("/proc/1/ns/" + k).st_ino))
        except OSError:
            pass
    out = set()
    for p in pids:
        for k in NS_KINDS:
            try:
                out.add((k, os.stat("/proc/%d/ns/%s" % (p, k)).st_ino))
            except OSError:
                pass
    return out - host


def _ppid(pid):
    st = conftest.e2e.stat_fields(pid)
    return st and int(st[1])


def _below(pid, roots):
    """True if one of roots is pid's parent, grandparent, ..."""
    seen = set()
    while pid and pid not in seen:
        seen.add(pid)
        pid = _ppid(pid)
        if pid in roots:
            return True
    return False


def pids_in(namespaces, daemon_pids=()):
    """Processes in any of these (kind, inode) namespaces. A namespace's
    inode number is reused once it is freed (the kernel takes the lowest
    free one), so a sandbox the running daemon builds after the old one is
    gone can show up with an old number: processes below the daemon are
    its own sandboxes' and are left out; a leftover of the old sandbox
    would be an orphan, never below it."""
    found = []
    roots = set(daemon_pids)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        if roots and _below(int(d), roots):
            continue
        for k in NS_KINDS:
            try:
                if (k, os.stat("/proc/%s/ns/%s" % (d, k)).st_ino) in namespaces:
                    found.append((int(d), k))
                    break
            except OSError:
                pass
    return found


def cgroup_dirs(d, sb_id):
    return [p for parent in conftest.e2e.scope_cgroups(d) for p in glob.glob(os.path.join(parent, sb_id))]


def mounts_naming(needle, pids):
    hits = []
    for p in ["self", "1"] + [str(x) for x in pids]:
        try:
            with open("/proc/%s/mountinfo" % p) as f:
                hits += [line.strip() for line in f if needle in line]
        except OSError:
            pass
    return hits


class Footprint:
    """What a running sandbox leaves on the host, recorded while it runs."""

    def __init__(self, d, sb):
        self.d, self.sb_id = d, sb.id
        self.pids = sandbox_pids(sb.id)
        self.started = {p: _start_time(p) for p in self.pids}
        # a jail's agent and REPL, or a VM's VMM (its processes live in the guest)
        vm = ISOLATION == "vm"
        assert len(self.pids) >= (1 if vm else 2), "the sandbox's processes were not found by cgroup"
        self.namespaces = ns_inodes(self.pids)
        want = {"mnt", "pid", "net"} if vm else {"mnt", "pid", "net", "user"}
        assert {k for k, _ in self.namespaces} >= want, self.namespaces
        if vm:
            # the VMM has no user namespace of its own (it is an unprivileged
            # host uid, as Firecracker's jailer runs it): only the ones it has
            self.namespaces = {(k, i) for k, i in self.namespaces if k != "user"}
        self.cgroups = cgroup_dirs(d, sb.id)
        assert self.cgroups, "the sandbox's cgroup directories were not found"

    def assert_gone(self, canary, daemon_pids=()):
        assert wait_until(lambda: not sandbox_pids(self.sb_id), 10), \
            "sandbox processes remain: %r" % sandbox_pids(self.sb_id)
        # the same process, not a new one that got its pid (pid_max may be 32768,
        # and the suite forks thousands of processes). A task leaves its cgroups
        # when its exit begins, before its memory is torn down: wait for the end.
        def left():
            return [p for p in self.pids if pid_alive(p) and _start_time(p) == self.started.get(p)]
        assert wait_until(lambda: not left(), 10), \
            "sandbox processes remain: %r" % [(p, _describe(p)) for p in left()]
        assert wait_until(lambda: not pids_in(self.namespaces, daemon_pids), 10), \
            "processes remain in the sandbox's namespaces: %r" % [
                (p, k, _describe(p)) for p, k in pids_in(self.namespaces, daemon_pids)]
        assert wait_until(lambda: not [c for c in self.cgroups if os.path.exists(c)], 10), \
            "cgroup directories remain: %r" % [c for c in self.cgroups if os.path.exists(c)]
        assert mounts_naming(self.sb_id, daemon_pids) == []
        hits = grep_host(canary, [str(self.d.state_dir), *SEARCH_ROOTS])
        assert hits == [], "the canary is on the host's disk: %r" % hits


# The canary lives in /data and /tmp (uploaded), in the REPL's memory, and in
# the argv and memory of a process that ignores SIGTERM, in a session of its own.
HOLD = '''
import subprocess, sys
kept = open("/data/canary.txt").read()
holder = subprocess.Popen([sys.executable, "-c",
    "import signal, sys, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
    "data = open('/tmp/canary.txt').read() * 1000\\nwhile True: time.sleep(1)", "hold"],
    start_new_session=True)
print(len(kept))
'''


def _plant(sb, canary):
    sb.upload(("canary " + canary + "\n").encode() * 64, "/data/canary.txt")
    sb.upload(canary.encode(), "/tmp/canary.txt")
    sb.upload(canary.encode(), "/home/user/canary.txt")
    r = sb.run_code(HOLD, timeout=20)
    assert r.error is None and int(r.stdout) > 0, r


def test_destroy_leaves_nothing(arena):
    d = arena.daemon
    canary = secrets.token_hex(32)
    sb = d.sandbox(timeout=600)
    try:
        _plant(sb, canary)
        fp = Footprint(d, sb)
        # while it lives, its data is not on the host's disk either
        assert grep_host(canary, [str(d.state_dir), *SEARCH_ROOTS]) == []
    finally:
        sb.close()
    fp.assert_gone(canary, [d.proc.pid])
    arena.check_after()


def test_kill9_and_restart_leave_nothing(arena, tmp_path):
    d = Daemon(tmp_path / "crashd", name="crashd", extra_args=conftest.daemon_args()).start()
    try:
        canary = secrets.token_hex(32)
        sb = d.sandbox(timeout=600)
        _plant(sb, canary)
        fp = Footprint(d, sb)
        d.kill9()
        # the agents notice their daemon is gone and take their sandboxes down
        assert wait_until(lambda: not [p for p in fp.pids if pid_alive(p)], 15), \
            "sandbox processes outlived their daemon: %r" % [p for p in fp.pids if pid_alive(p)]
        d.start()
        info = d.request("GET", "/v1/sandboxes/" + sb.id)[3]
        assert (info["state"], info["destroy_reason"]) == ("destroyed", "daemon_restart"), info
        fp.assert_gone(canary, [d.proc.pid])
    finally:
        conftest.e2e.stop_and_check(d)
    arena.check_after()


def test_destroy_during_fork_storm_leaves_nothing(arena):
    """Destroyed while it forks and detaches SIGTERM-ignoring processes."""
    d = arena.daemon
    canary = secrets.token_hex(32)
    sb = d.sandbox(timeout=600)
    try:
        _plant(sb, canary)
        sb.exec(["sh", "-c", "for i in $(seq 50); do setsid sh -c 'trap \"\" TERM HUP INT; "
                             "while :; do sleep 0.01; done' & done; echo started"], timeout=10)
        fp = Footprint(d, sb)
        # a jail's processes are the host's; a VM's are its guest's (the host sees the VMM)
        assert len(fp.pids) >= (1 if ISOLATION == "vm" else 50), len(fp.pids)
    finally:
        sb.close()
    fp.assert_gone(canary, [d.proc.pid])
    arena.check_after()
