"""Cross-sandbox: the attacker knows everything about the victim sandbox
(its id, its file names and canary, its canary process's host pid, its
abstract socket name, its TCP port, its SysV IPC key) and still reaches
nothing of it.

Each sandbox maps its uids onto its own host uid range, and its user
namespace is owned by that range's first uid; beyond that, what separates
them is the pid, network, IPC, mount and user namespaces: these cases go
after each of them. The shared check (conftest.Victim.check) then confirms
from the victim's side that it lost nothing and saw nothing.
"""

import subprocess
import sys

import pytest

from sec_support import ISOLATION
from seclib import ERRNO_HELPER, Attack, params

CAT = "cross-sandbox"


def xs(name, body, expect, **kw):
    return Attack(name, CAT, ERRNO_HELPER + body, frozenset(expect), **kw)


def _expect_repl_killed_and_back(outcome):
    e = outcome.execution
    assert e is not None, outcome.describe()
    if ISOLATION == "vm":
        # Linux's kill(-1) skips the caller, and in a guest the REPL (exec'd
        # by the agent, no zygote helper beside it) is the only process of
        # uid 1000: it may live on. What matters is checked after every
        # attack: the victim's processes, in another VM, are untouched.
        return
    assert e.error is not None or e.exit_code not in (0, None), "kill(-1) left the REPL running: " + outcome.describe()


def _attacker_recovers(arena, sb, outcome):
    r = sb.run_code("6 * 7", timeout=20)
    assert r.text == "42", r


def _nice_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    return int(s[s.rindex(")") + 2:].split()[16])


def _victim_nice_untouched(arena, sb, outcome):
    assert _nice_of(arena.victim.host_pid) == 0, "the attacker renice'd the victim's process"


# ---- per-user kernel counters ------------------------------------------------------------
# Some kernel limits count per user, and a user namespace charges its users'
# use to its owner as well, all the way up. Were every sandbox's user
# namespace owned by root (the daemon), their inotify instances, POSIX
# message queue bytes and queued signals would also count against the host's
# root user, and an attacker that fills such a counter would take it away
# from the other sandboxes and from every root process on the host. The
# jail makes each namespace's owner the sandbox's own host uid; these cases
# check that from the outside. Each case runs in a sandbox of
# its own (destroyed right after, which frees the counter) and probes both
# the victim and root on the host while the counter is held.

VICTIM_INOTIFY = '''
import ctypes, os
_libc = ctypes.CDLL(None, use_errno=True)
_fd = _libc.inotify_init1(0o2000000)
print("ok" if _fd >= 0 else "failed %d" % ctypes.get_errno())
if _fd >= 0:
    os.close(_fd)
'''

VICTIM_MQUEUE = '''
import ctypes, os
_rt = ctypes.CDLL("librt.so.1", use_errno=True)
class _Attr(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_long), ("maxmsg", ctypes.c_long), ("msgsize", ctypes.c_long),
                ("curmsgs", ctypes.c_long), ("pad", ctypes.c_long * 4)]
_q = _rt.mq_open(b"/victim-probe", os.O_CREAT | os.O_RDWR, 0o600, ctypes.byref(_Attr(0, 10, 8192, 0)))
print("ok" if _q >= 0 else "failed %d" % ctypes.get_errno())
if _q >= 0:
    os.close(_q)
    _rt.mq_unlink(b"/victim-probe")
'''

# in a child: the victim's REPL must not keep a blocked signal queued
VICTIM_SIGQUEUE = '''
import subprocess, sys
_child = "\\n".join([
    "import ctypes, os, signal",
    "libc = ctypes.CDLL(None, use_errno=True)",
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGRTMIN})",
    "r = libc.sigqueue(os.getpid(), signal.SIGRTMIN, ctypes.c_void_p(0))",
    "print('ok' if r == 0 else 'failed %d' % ctypes.get_errno(), flush=True)",
    "os._exit(0)"])
_p = subprocess.run([sys.executable, "-c", _child], capture_output=True, text=True)
print(_p.stdout.strip() or "failed: exit %d %s" % (_p.returncode, _p.stderr.strip()[-200:]))
'''


def _probe_victim_and_host(probe):
    """A `then`: the victim's and the host root's own attempt while the
    attacker holds the counter (the host probe runs as this test, root)."""
    def then(arena, sb, outcome):
        if outcome.first in ("ENOSYS", "EPERM", "EACCES") and outcome.tokens[1:2] == ["0"]:
            # the filter (or Landlock: a queue is a file of the mqueue
            # mount, outside every path it grants) refuses the very
            # first one: nothing is held
            return
        v = arena.victim.sb.run_code(probe, timeout=20)
        host = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=20)
        problems = []
        if v.stdout.strip() != "ok":
            problems.append("the victim sandbox (%s)" % v.stdout.strip())
        if host.stdout.strip() != "ok":
            problems.append("root on the host (%s %s)" % (host.stdout.strip(), host.stderr.strip()[-200:]))
        assert not problems, "the attacker's use is charged to a counter shared with " + " and ".join(problems)
    return then


ATTACKS = [
    # -- the victim's files -------------------------------------------------------------------
    xs("find_victim_files_by_name", '''
import os
hits = []
for top in ("/",):
    for dp, dns, fns in os.walk(top):
        if dp == "/":
            dns[:] = [d for d in dns if d not in ("proc", "usr")]
        hits += [os.path.join(dp, n) for n in dns + fns if "@VICTIM_MARK@" in n]
print("RESULT", "unseen" if not hits else "found", hits)
''', {"unseen"}),
    xs("grep_victim_canary_everywhere", '''
import os, stat
needle = b"@VICTIM_CANARY@"
hits = []
for dp, dns, fns in os.walk("/"):
    if dp == "/":
        dns[:] = [d for d in dns if d not in ("proc", "usr")]
    for n in fns:
        p = os.path.join(dp, n)
        try:
            if not stat.S_ISREG(os.lstat(p).st_mode):
                continue  # /dev/zero and friends never end
            with open(p, "rb") as f:
                if needle in f.read(1 << 24):
                    hits.append(p)
        except OSError:
            pass
for pid in [p for p in os.listdir("/proc") if p.isdigit() and p != str(os.getpid())]:
    for what in ("environ", "cmdline"):
        try:
            if needle in open("/proc/%s/%s" % (pid, what), "rb").read():
                hits.append("/proc/%s/%s" % (pid, what))
        except OSError:
            pass
print("RESULT", "unseen" if not hits else "found", hits)
''', {"unseen"}, doc="the canary's content, anywhere the attacker can read"),
    xs("read_victim_data_by_path", '''
res = []
for p in ("/data/victim-@VICTIM_MARK@.txt", "/tmp/victim-@VICTIM_MARK@.tmp", "/home/user/victim-@VICTIM_MARK@.home",
          "/dev/shm/victim-@VICTIM_MARK@.shm"):
    try:
        open(p).read()
        res.append("read")
    except OSError as e:
        res.append(errname(e))
print("RESULT", "/".join(sorted(set(res))))
''', {"ENOENT"}),
    xs("victim_data_via_proc_roots", '''
import glob
hits = glob.glob("/proc/*/root/data/victim-*") + glob.glob("/proc/*/cwd/victim-*")
print("RESULT", "unseen" if not hits else "found", hits)
''', {"unseen"}),
    # -- the victim's processes ---------------------------------------------------------------
    xs("kill_victim_by_host_pid", '''
import os, signal
try:
    os.kill(@VICTIM_HOSTPID@, signal.SIGKILL)
    print("RESULT signalled")
except OSError as e:
    print("RESULT", errname(e))
''', {"ESRCH"}, doc="the host pid of the victim's canary process, which the attacker is told"),
    xs("killpg_victim_by_host_pid", '''
import os, signal
try:
    os.killpg(@VICTIM_HOSTPID@, signal.SIGKILL)
    print("RESULT signalled")
except OSError as e:
    print("RESULT", errname(e))
''', {"ESRCH"}),
    xs("pidfd_open_victim", '''
import os
try:
    fd = os.pidfd_open(@VICTIM_HOSTPID@)
    print("RESULT opened")
except OSError as e:
    print("RESULT", errname(e))
''', {"ESRCH"}),
    xs("victim_in_proc", '''
import os
print("RESULT", "absent" if not os.path.exists("/proc/@VICTIM_HOSTPID@") else "present")
''', {"absent"}),
    xs("sched_setaffinity_victim", '''
import os
try:
    os.sched_setaffinity(@VICTIM_HOSTPID@, {0})
    print("RESULT pinned")
except OSError as e:
    print("RESULT", errname(e))
''', {"ESRCH"}),
    xs("signal_every_pid", '''
import os, signal
pid_max = int(open("/proc/sys/kernel/pid_max").read())
exists = set()
for pid in range(1, pid_max + 1):
    try:
        os.kill(pid, 0)
        exists.add(pid)
    except PermissionError:
        exists.add(pid)
    except ProcessLookupError:
        pass
own = {int(p) for p in os.listdir("/proc") if p.isdigit()}
print("RESULT", "only-own" if exists <= own else "foreign", sorted(exists - own)[:20], len(exists))
''', {"only-own"}, timeout=60, doc="signal 0 to every possible pid: only the attacker's own answer"),
    Attack("kill_minus_one", CAT, '''
import os, signal
print("RESULT sending", flush=True)
os.kill(-1, signal.SIGKILL)
''', _expect_repl_killed_and_back, then=_attacker_recovers,
        doc="kill(-1) reaches every process the caller may signal: here only its own sandbox's"),
    xs("renice_all_of_uid", '''
import os
try:
    os.setpriority(os.PRIO_USER, os.getuid(), 19)
    print("RESULT reniced")
except OSError as e:
    print("RESULT", errname(e))
''', {"reniced", "EPERM", "EACCES"}, fresh=True, then=_victim_nice_untouched,
        doc="both sandboxes' uid 1000 is one host uid: PRIO_USER must still stop at the pid namespace"),
    xs("proc_shows_only_own", '''
import os
cmds = []
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            cmds.append(open("/proc/%s/cmdline" % p, "rb").read().replace(b"\\0", b" ").decode())
        except OSError:
            pass
foreign = [c for c in cmds if "@VICTIM_MARK@" in c or "victim" in c]
print("RESULT", "own-only" if not foreign and len(cmds) < 10 else "foreign", len(cmds), foreign)
''', {"own-only"}),
    # -- the victim's sockets and IPC ---------------------------------------------------------
    xs("abstract_socket_victim", '''
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect("\\0victim-victim-canary-@VICTIM_MARK@")
    print("RESULT connected")
except OSError as e:
    print("RESULT", errname(e))
''', {"ECONNREFUSED"}),
    xs("tcp_victim_loopback_port", '''
import socket
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("127.0.0.1", @VICTIM_PORT@))
    print("RESULT connected")
except OSError as e:
    print("RESULT", errname(e))
''', {"ECONNREFUSED"}),
    xs("sysv_shm_victim", '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
shmid = libc.shmget(@VICTIM_IPCKEY@, 0, 0)
print("RESULT", "found" if shmid >= 0 else errno.errorcode[ctypes.get_errno()])
''', {"ENOENT", "ENOSYS", "EPERM"}),
    xs("sysv_msgq_victim", '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
q = libc.msgget(@VICTIM_IPCKEY@, 0)
print("RESULT", "found" if q >= 0 else errno.errorcode[ctypes.get_errno()])
''', {"ENOENT", "ENOSYS", "EPERM"}),
    xs("sysv_ipc_listing", '''
rows = []
for kind in ("shm", "msg", "sem"):
    rows += open("/proc/sysvipc/" + kind).read().splitlines()[1:]
keys = {int(r.split()[0]) for r in rows}
print("RESULT", "unseen" if @VICTIM_IPCKEY@ not in keys else "found", len(rows))
''', {"unseen"}),
    # -- identities ---------------------------------------------------------------------------
    xs("victim_sandbox_id_unseen", '''
import os
needle = "@VICTIM_ID@"
hits = []
for p in ("/proc/self/cgroup", "/proc/self/mountinfo", "/proc/self/environ", "/etc/hostname", "/etc/hosts",
          "/proc/sys/kernel/hostname"):
    try:
        if needle in open(p, errors="replace").read():
            hits.append(p)
    except OSError:
        pass
print("RESULT", "unseen" if not hits else "found", hits)
''', {"unseen"}),
    xs("api_key_unseen", '''
import hashlib, os, re
pat = re.compile(rb"ak_[0-9a-f]{32}")
found = set()
def scan(data):
    for m in pat.findall(data):
        found.add(hashlib.sha256(m).hexdigest())
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    for what in ("environ", "cmdline"):
        try:
            scan(open("/proc/%s/%s" % (pid, what), "rb").read())
        except OSError:
            pass
for top in ("/etc", "/opt", "/tmp", "/data", "/home/user"):
    for dp, dns, fns in os.walk(top):
        for n in fns:
            try:
                scan(open(os.path.join(dp, n), "rb").read(1 << 20))
            except OSError:
                pass
print("RESULT", "absent" if "@KEY_SHA@" not in found else "found", len(found))
''', {"absent"}, doc="the daemon's API key is nowhere a sandbox can read"),
    # -- per-user kernel limits shared through the common host uid ----------------------------
    xs("inotify_instances_exhaust", '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
held, err = [], None
for _ in range(100000):
    fd = libc.inotify_init1(0o2000000)
    if fd < 0:
        err = errno.errorcode[ctypes.get_errno()]
        break
    held.append(fd)
print("RESULT", err, len(held))
''', {"EMFILE", "ENOSYS", "EPERM"}, fresh=True, then=_probe_victim_and_host(VICTIM_INOTIFY),
        doc="fs.inotify.max_user_instances (128) per user"),
    xs("posix_mqueue_bytes_exhaust", '''
import ctypes, os
rt = ctypes.CDLL("librt.so.1", use_errno=True)
class Attr(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_long), ("maxmsg", ctypes.c_long), ("msgsize", ctypes.c_long),
                ("curmsgs", ctypes.c_long), ("pad", ctypes.c_long * 4)]
queues, err = [], None
for i in range(1000):
    q = rt.mq_open(b"/hog%d" % i, os.O_CREAT | os.O_RDWR, 0o600, ctypes.byref(Attr(0, 10, 8192, 0)))
    if q < 0:
        err = errno.errorcode[ctypes.get_errno()]
        break
    queues.append(q)
print("RESULT", err, len(queues))
''', {"EMFILE", "ENOSYS", "EPERM", "EACCES"}, fresh=True, then=_probe_victim_and_host(VICTIM_MQUEUE),
        doc="RLIMIT_MSGQUEUE (800 KiB of POSIX message queues) per user; Landlock denies opening any queue "
            "(EACCES), the jail tests show the counter is the sandbox's own without it"),
    xs("queued_signals_exhaust", '''
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGRTMIN})
n, err = 0, None
while n < 10000000:
    if libc.sigqueue(os.getpid(), signal.SIGRTMIN, ctypes.c_void_p(0)) != 0:
        err = errno.errorcode[ctypes.get_errno()]
        break
    n += 1
print("RESULT", err, n)
''', {"EAGAIN", "ENOSYS", "EPERM"}, fresh=True, timeout=30, then=_probe_victim_and_host(VICTIM_SIGQUEUE),
        doc="RLIMIT_SIGPENDING per user: while it is full, no root process on the host can queue a "
            "signal or create a POSIX timer"),
]


@pytest.mark.parametrize("attack", params(ATTACKS))
def test_cross_sandbox(arena, attack):
    arena.attack(attack)
