"""The escape suite's arena: one real daemon, a victim sandbox, an attacker.

Every attack runs in the attacker sandbox through the SDK. After each one a
shared check (Arena.check_after) asserts, besides the attack's own
expectation:
  1. GET /v1/healthz answers ok and the daemon process is alive;
  2. the victim sandbox lost nothing and saw nothing: its canary files are
     intact, its canary process is alive (seen from inside and from the
     host), its files and its /proc list exactly what they held before;
  3. nothing reached the host: the listeners the host opened for the egress
     attacks (TCP/UDP on every host address, an abstract and a path unix
     socket) were never contacted.
The attacker is recreated when an attack kills or breaks it.

Environment (as for tests/e2e): AIRLOCK_DAEMON, AIRLOCK_AGENT, AIRLOCK_RUNNER.
The Daemon class comes from tests/e2e/e2e_support.py (imported, not copied).
tests/security/conftest.py makes these fixtures and hooks pytest's; tests import
helpers from this module by name (sec_support), never from "conftest".
"""

import dataclasses
import hashlib
import json
import os
import re
import secrets
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# The e2e suite's helpers (tests/e2e/e2e_support.py), imported by their own
# module name: "conftest" would be whichever suite's conftest loaded last.
sys.path.insert(0, str(HERE.parent / "e2e"))
import e2e_support as e2e  # noqa: E402

import airlock  # noqa: E402  (on sys.path through the e2e conftest)
import seclib  # noqa: E402

Daemon = e2e.Daemon
pid_alive = e2e.pid_alive
wait_until = e2e.wait_until


# ---- the host's side of the egress attacks --------------------------------------------

def host_addresses():
    """The host's own addresses, by family: {"4": [...], "6": [...], "6ll": [...]}."""
    out = {"4": [], "6": [], "6ll": []}
    try:
        p = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=10)
        ifaces = json.loads(p.stdout or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        ifaces = []
    for ifc in ifaces:
        for a in ifc.get("addr_info", []):
            addr, fam, scope = a.get("local"), a.get("family"), a.get("scope")
            if not addr or addr.startswith("127.") or addr == "::1":
                continue
            if fam == "inet":
                out["4"].append(addr)
            elif fam == "inet6":
                out["6ll" if scope == "link" else "6"].append(addr + ("%" + ifc["ifname"] if scope == "link" else ""))
    return out


def host_nameservers():
    try:
        with open("/etc/resolv.conf") as f:
            return [l.split()[1] for l in f if l.startswith("nameserver") and len(l.split()) > 1]
    except OSError:
        return []


class HostNet:
    """Listeners on the host that no sandbox may ever reach: TCP and UDP on
    all IPv4 and IPv6 addresses (127.0.0.1 and ::1 included), an abstract
    unix socket and a unix socket on the host's /tmp. A thread counts every
    connection and datagram."""

    def __init__(self):
        self.hits = []
        self.socks = {}
        self._stop = False
        tag = secrets.token_hex(6)
        t4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t4.bind(("0.0.0.0", 0))
        self._add("tcp4", t4, listen=True)
        u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u4.bind(("0.0.0.0", 0))
        self._add("udp4", u4)
        try:
            t6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            t6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            t6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t6.bind(("::", 0))
            self._add("tcp6", t6, listen=True)
            u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            u6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            u6.bind(("::", 0))
            self._add("udp6", u6)
        except OSError:
            pass  # no IPv6 on this host: the v6 attacks target a free port number then
        self.abstract = "airlock-sec-" + tag
        ab = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ab.bind("\0" + self.abstract)
        self._add("abstract", ab, listen=True)
        self.unix_path = "/tmp/airlock-sec-%s.sock" % tag
        ux = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ux.bind(self.unix_path)
        os.chmod(self.unix_path, 0o777)
        self._add("unixpath", ux, listen=True)
        self.ports = {k: s.getsockname()[1] for k, s in self.socks.items() if k[:3] in ("tcp", "udp")}
        self.ports.setdefault("tcp6", self.ports["tcp4"])
        self.ports.setdefault("udp6", self.ports["udp4"])
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _add(self, name, s, listen=False):
        if listen:
            s.listen(16)
        s.setblocking(False)
        self.socks[name] = s

    def _loop(self):
        by_fd = {s.fileno(): (n, s) for n, s in self.socks.items()}
        while not self._stop:
            r, _, _ = select.select(list(by_fd), [], [], 0.2)
            for fd in r:
                name, s = by_fd[fd]
                try:
                    if s.type == socket.SOCK_STREAM:
                        c, peer = s.accept()
                        c.close()
                    else:
                        _, peer = s.recvfrom(65536)
                    self.hits.append((name, peer, time.time()))
                except OSError:
                    pass

    def close(self):
        self._stop = True
        self.thread.join(2)
        for s in self.socks.values():
            s.close()
        try:
            os.unlink(self.unix_path)
        except OSError:
            pass


# ---- the victim ---------------------------------------------------------------------

# Started in the victim's REPL: a long-running canary process that also holds
# what an attacker might try to reach across sandboxes: an abstract unix
# socket, a TCP listener on the victim's 127.0.0.1, SysV shared memory and a
# message queue. Any connection it accepts is written down in /data, which
# the shared check would see as a new file.
VICTIM_CANARY_PROC = r'''
import ctypes, os, select, socket, sys, time
mark, port, key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
shm = libc.shmget(key, 4096, 0o1000 | 0o666)
msq = libc.msgget(key, 0o1000 | 0o666)
a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); a.bind('\0victim-' + mark); a.listen(8)
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(('127.0.0.1', port)); t.listen(8)
print('ready', shm, msq, flush=True)
while True:
    r, _, _ = select.select([a, t], [], [])
    for s in r:
        c, _ = s.accept(); c.close()
        open('/data/victim-hit-' + mark, 'a').write('hit\n')
'''

VICTIM_SETUP = r'''
import subprocess, sys
_victim_proc = subprocess.Popen([sys.executable, '-c', %r, 'victim-canary-@MARK@', '@PORT@', '@IPCKEY@'],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
print(_victim_proc.stdout.readline().decode().strip())
open('/tmp/victim-@MARK@.tmp', 'w').write('@CANARY@')
open('/dev/shm/victim-@MARK@.shm', 'w').write('@CANARY@')
open('/home/user/victim-@MARK@.home', 'w').write('@CANARY@')
victim_state = '@CANARY@'
''' % VICTIM_CANARY_PROC

VICTIM_CHECK = r'''
import hashlib, json, os
_files = []
for _root in ('/data', '/tmp', '/home/user', '/dev/shm'):
    for _dp, _dn, _fn in os.walk(_root):
        _files += [os.path.join(_dp, _f) for _f in _fn]
_canaries = {}
for _p in ('/data/victim-@MARK@.txt', '/tmp/victim-@MARK@.tmp', '/dev/shm/victim-@MARK@.shm',
           '/home/user/victim-@MARK@.home'):
    try:
        _canaries[_p] = hashlib.sha256(open(_p, 'rb').read()).hexdigest()
    except OSError as _e:
        _canaries[_p] = repr(_e)
print(json.dumps({"files": sorted(_files), "canaries": _canaries,
                  "pids": sorted(int(_p) for _p in os.listdir('/proc') if _p.isdigit()),
                  "proc_alive": _victim_proc.poll() is None, "state": victim_state}))
'''


# which backend the arena's sandboxes run on (make test-security-vm sets vm)
ISOLATION = os.environ.get("AIRLOCK_SECURITY_ISOLATION", "jail")

# Where a VM's right answer differs from a jail's, and why; the verdict is
# the same (refused, nothing reached), the errno or the view is the guest's.
VM_EXPECT = {
    # /proc is mounted hidepid=invisible in a guest: PID 1 does not exist for uid 1000
    "proc1_root_walk": {"ENOENT"},
    "proc1_cwd_walk": {"ENOENT"},
    "proc1_exe_overwrite": {"ENOENT"},
    # the guest kernel's own threads answer kill(pid, 0) with EPERM; no other
    # sandbox's process exists in this kernel to answer at all
    "signal_every_pid": {"foreign"},
}

# Jail mechanisms a VM does not have, so there is nothing to attack: the
# zygote (a guest's REPL is exec'd by its agent) and host socket-buffer
# accounting (a guest's sockets are its own kernel's, inside guest RAM).
VM_NOT_APPLICABLE = {
    "zygote": "a VM's REPL is exec'd by its agent in the guest; there is no host zygote",
    "socket_buffers": "a VM's socket buffers are its guest kernel's, inside its guest RAM",
    "egress_proxy": "allow-list egress is served on the jail backend only; a VM is always sealed",
    "host_processes": "a VM's processes live in its guest kernel: the host sees its VMM only",
}


def jail_only(what):
    """Skip a test of a jail mechanism under make test-security-vm."""
    if ISOLATION == "vm":
        pytest.skip(VM_NOT_APPLICABLE[what])


def latency_factor():
    """A VM's victim shares two cores with an attacker VM under TCG, where
    every guest instruction is emulated: its loaded latency may be 6x the
    idle one (the jail's 3x, measured 3.6-6.1x here), not unbounded."""
    return 6 if ISOLATION == "vm" else 3

class Victim:
    def __init__(self, daemon):
        self.mark = secrets.token_hex(8)
        self.canary = secrets.token_hex(32)
        self.port = 47000 + secrets.randbelow(1000)
        self.ipc_key = 0x5ec00000 + secrets.randbelow(0xffff)
        self.sb = daemon.sandbox(timeout=3600, metadata={"role": "victim"})
        self.sb.upload(self.canary.encode(), "/data/victim-%s.txt" % self.mark)
        r = self.sb.run_code(self._fill(VICTIM_SETUP), timeout=20)
        assert r.error is None and r.stdout.startswith("ready"), r
        # SysV IPC may be refused outright by the seccomp filter (-1): the
        # cross-sandbox IPC cases then find nothing either way
        self.sysv = r.stdout.split()[1:3]
        self.host_pid = self._find_host_pid(daemon)
        self.baseline = self.state()
        want = hashlib.sha256(self.canary.encode()).hexdigest()
        assert set(self.baseline["canaries"].values()) == {want}, self.baseline
        assert self.baseline["proc_alive"] is True

    def _fill(self, code):
        return (code.replace("@MARK@", self.mark).replace("@CANARY@", self.canary)
                .replace("@PORT@", str(self.port)).replace("@IPCKEY@", str(self.ipc_key)))

    def _find_host_pid(self, daemon):
        if ISOLATION == "vm":
            # the victim's processes live in its guest: on the host, they are
            # its VMM, the QEMU in the victim's own cgroup
            for pid in daemon.descendants():
                try:
                    with open("/proc/%d/cgroup" % pid) as f:
                        if "/" + self.sb.id in f.read():
                            return pid
                except OSError:
                    pass
            raise AssertionError("the victim's VMM is not among the daemon's descendants")
        want = ("victim-canary-" + self.mark).encode()
        for pid in daemon.descendants():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if want in f.read().split(b"\0"):
                        return pid
            except OSError:
                pass
        raise AssertionError("the victim's canary process is not among the daemon's descendants")

    def state(self):
        r = self.sb.run_code(self._fill(VICTIM_CHECK), timeout=20)
        assert r.error is None, "the victim's REPL lost its state: %r" % (r,)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def check(self):
        assert pid_alive(self.host_pid), "the victim's canary process (host pid %d) is gone" % self.host_pid
        now = self.state()
        assert now["proc_alive"] is True, "the victim's canary process died"
        assert now["canaries"] == self.baseline["canaries"], ("victim canaries changed", now["canaries"])
        assert now["state"] == self.canary, "the victim's REPL state changed"
        assert now["files"] == self.baseline["files"], ("the victim sees foreign or lost files",
                                                        sorted(set(now["files"]) ^ set(self.baseline["files"])))
        assert now["pids"] == self.baseline["pids"], ("the victim's /proc changed",
                                                      self.baseline["pids"], now["pids"])


# ---- the arena ----------------------------------------------------------------------

class Arena:
    def __init__(self, daemon, net, victim):
        self.daemon = daemon
        self.net = net
        self.victim = victim
        self._attacker = None
        self.recreated = 0
        addrs = host_addresses()
        # without an address of a family, a documentation address stands in (as unreachable)
        self.host4 = addrs["4"][0] if addrs["4"] else "192.0.2.1"
        self.host6 = addrs["6"][0] if addrs["6"] else "2001:db8::1"
        self.host6ll = addrs["6ll"][0] if addrs["6ll"] else "fe80::1%lo"
        ns = [n for n in host_nameservers() if ":" not in n]
        self.dns4 = ns[0] if ns else "8.8.8.8"

    # placeholders an attack's code may use
    def placeholders(self):
        v = self.victim
        return {
            "HOST4": self.host4, "HOST6": self.host6, "HOST6LL": self.host6ll, "DNS4": self.dns4,
            "TCP4": str(self.net.ports["tcp4"]), "TCP6": str(self.net.ports["tcp6"]),
            "UDP4": str(self.net.ports["udp4"]), "UDP6": str(self.net.ports["udp6"]),
            "DAEMON_PORT": str(self.daemon.port), "DAEMON_SOCK": str(self.daemon.socket_path),
            "ABSTRACT": self.net.abstract, "UNIXPATH": self.net.unix_path,
            "STATE_DIR": str(self.daemon.state_dir),
            "KEY_SHA": hashlib.sha256(self.daemon.key.encode()).hexdigest(),
            "VICTIM_MARK": v.mark, "VICTIM_PORT": str(v.port), "VICTIM_IPCKEY": str(v.ipc_key),
            "VICTIM_HOSTPID": str(v.host_pid), "VICTIM_ID": v.sb.id,
            "VICTIM_CANARY": v.canary,
        }

    def fill(self, code):
        for k, val in self.placeholders().items():
            code = code.replace("@%s@" % k, val)
        left = re.findall(r"@[A-Z0-9_]{3,}@", code)
        assert not left, "unfilled placeholders %s" % left
        return code

    def new_sandbox(self, **kw):
        kw.setdefault("timeout", 3600)
        kw.setdefault("metadata", {"role": "attacker"})
        return self.daemon.sandbox(**kw)

    @property
    def attacker(self):
        if self._attacker is None:
            self._attacker = self.new_sandbox()
        return self._attacker

    def _attacker_healthy(self):
        try:
            r = self._attacker.run_code("'alive'", timeout=5)
            return r.text == "'alive'"
        except airlock.AirlockError:
            return False

    def run(self, attack, sb):
        code = self.fill(attack.code)
        try:
            e = sb.run_code(code, language=attack.language, timeout=attack.timeout)
        except airlock.AirlockError as err:
            return seclib.Outcome(None, api_error=err)
        return seclib.Outcome(e, results=seclib.parse_results(e.stdout))

    def attack(self, attack):
        """Run one attack and every check; return its Outcome."""
        if ISOLATION == "vm" and attack.name in VM_EXPECT and not callable(attack.expect):
            attack = dataclasses.replace(attack, expect=frozenset(attack.expect) | VM_EXPECT[attack.name])
        own = attack.fresh or attack.sandbox is not None
        sb = self.new_sandbox(**(attack.sandbox or {})) if own else self.attacker
        try:
            outcome = self.run(attack, sb)
            # shown with -s, and in the report of a failing case
            print("%s -> %s" % (attack.name, outcome.results or outcome.describe()))
            seclib.check_expect(attack, outcome)
            if attack.then is not None:
                attack.then(self, sb, outcome)
        finally:
            if own:
                sb.close()
        self.check_after()
        return outcome

    def check_after(self):
        d = self.daemon
        assert d.proc.poll() is None, "airlockd died:\n" + d.log_tail()
        assert d.healthz()["status"] == "ok"
        self.victim.check()
        assert self.net.hits == [], "the host's listeners were reached: %r" % self.net.hits
        if self._attacker is not None and not self._attacker_healthy():
            try:
                self._attacker.close()
            except airlock.AirlockError:
                pass
            self._attacker = None
            self.recreated += 1


# ---- fixtures -----------------------------------------------------------------------

def daemon_args():
    """The suite makes hundreds of requests a second with one key; per-key
    rate limits (where the daemon has them) have tests of their own. With
    AIRLOCK_SECURITY_ISOLATION=vm (make test-security-vm) every sandbox,
    victim and attackers alike, is a QEMU microvm."""
    try:
        helptext = subprocess.run([str(e2e.DAEMON), "--help"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return []
    args = ["--rate-limit", "0"] if "--rate-limit" in helptext else []
    if ISOLATION == "vm":
        vm_dir = os.environ.get("AIRLOCK_VM_DIR") or str(e2e.ROOT / "build" / "vm")
        args += ["--isolation", "vm", "--vm-dir", vm_dir, "--vm-accel", "tcg"]
    return args


@pytest.fixture(scope="session")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("secd"), extra_args=daemon_args()).start()
    try:
        yield d
    finally:
        e2e.stop_and_check(d)


@pytest.fixture(scope="session")
def host_net():
    n = HostNet()
    yield n
    n.close()


@pytest.fixture(scope="session")
def victim(daemon):
    v = Victim(daemon)
    yield v
    v.sb.close()


@pytest.fixture(scope="session")
def arena(daemon, host_net, victim):
    a = Arena(daemon, host_net, victim)
    yield a
    if a._attacker is not None:
        a._attacker.close()


# ---- the summary table --------------------------------------------------------------

_META = {}      # nodeid -> category
_OUTCOME = {}   # nodeid -> "passed" | "failed" | "skipped"


def pytest_configure(config):
    config.addinivalue_line("markers", "category(name): the escape-suite category of an attack")


def pytest_collection_modifyitems(session, config, items):
    for it in items:
        m = it.get_closest_marker("category")
        if m:
            _META[it.nodeid] = m.args[0]


def pytest_runtest_logreport(report):
    if report.nodeid not in _META:
        return
    prev = _OUTCOME.get(report.nodeid)
    if report.failed:
        _OUTCOME[report.nodeid] = "failed"
    elif report.skipped and prev != "failed":
        _OUTCOME[report.nodeid] = "skipped"
    elif report.when == "call" and prev is None:
        _OUTCOME[report.nodeid] = "passed"


def pytest_terminal_summary(terminalreporter):
    if not _META:
        return
    tr = terminalreporter
    rows = []
    for cat in seclib.CATEGORIES:
        ids = [n for n, c in _META.items() if c == cat]
        if not ids:
            continue
        outs = [_OUTCOME.get(n) for n in ids]
        rows.append((cat, len(ids), outs.count("passed"), outs.count("failed"), outs.count("skipped")))
    tr.write_sep("=", "escape suite: attacks by category")
    tr.write_line("%-14s | %7s | %7s | %10s | %7s" % ("category", "attacks", "blocked", "not blocked", "skipped"))
    tr.write_line("-" * 58)
    for r in rows:
        tr.write_line("%-14s | %7d | %7d | %10d | %7d" % r)
    tr.write_line("-" * 58)
    tot = [sum(r[i] for r in rows) for i in range(1, 5)]
    tr.write_line("%-14s | %7d | %7d | %10d | %7d" % ("total", *tot))
    bad = [n for n in _META if _OUTCOME.get(n) == "failed"]
    for n in bad:
        tr.write_line("  NOT BLOCKED: %s" % n.split("::")[-1])
    if seclib.LATENCY_LOG:
        tr.write_sep("-", "victim run_code('print(1)') latency while an exhaustion attack runs")
        tr.write_line("%-28s | %9s | %10s | %9s | %s" % ("attack", "idle p50", "loaded p50", "bound", "samples"))
        for name, idle, loaded, bound, n in seclib.LATENCY_LOG:
            tr.write_line("%-28s | %7.1fms | %8.1fms | %7.1fms | %d"
                          % (name, idle * 1e3, loaded * 1e3, bound * 1e3, n))
