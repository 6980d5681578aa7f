"""Shared kernel objects: channels between sandboxes (and to the host) that
need no network and no shared file, only a kernel object that every sandbox
reaches.

An audit found these; each case below is written the way a hostile tenant
would use it, with two sandboxes the attacker controls (a sender and a
receiver: the receiver stands for another tenant's sandbox whose output that
tenant reads) or with the host on one end. Deterministic kernel interfaces
only, never timing:

  - locks: /proc/locks lists every OFD lock on the host (with a 60-bit
    offset one sandbox sets and another reads); flock/OFD locks on files
    every sandbox opens (the template's /usr, the /etc binds, the runner,
    /dev nodes) are seen by every other sandbox;
  - fsnotify: inotify and dnotify watches on those files see other
    sandboxes' and the host's accesses;
  - the page cache: posix_fadvise(DONTNEED) evicts a shared file's pages,
    preadv2(RWF_NOWAIT), cachestat and mincore probe them;
  - host-wide pools and tables: fs.aio-max-nr (io_setup), the pty pool,
    socket buffer memory (tcp_mem / udp_mem), /proc files that count or list
    every tenant's objects.

The fixes: every sandbox gets its own inodes (a read-only overlay per
sandbox over the template's trees, copies of single files), the seccomp
filter refuses the page-cache probe and eviction and Linux AIO, each sandbox
has its own devpts with a `max`, socket memory is charged to the sandbox
(TCP on cgroup v1, everything on v2) and capped in its network namespace,
and /proc's host-wide tables are masked (docs/security.md, "Shared kernel
objects").

After every case the arena's shared check runs (daemon healthy, victim
untouched, no host listener reached).
"""

import ctypes
import fcntl
import json
import os
import secrets
import struct
import subprocess

import pytest

import airlock
from sec_support import ISOLATION, jail_only

pytestmark = pytest.mark.category("shared-objects")

# Files every sandbox of the host template opens the same way.
SHARED_FILES = [
    "/usr/lib/python3.11/os.py",
    "/usr/bin/python3.11",
    "/etc/ld.so.cache",
    "/etc/alternatives",
    "/opt/airlock/airlock_runner.py",
    "/dev/null",
    "/dev/urandom",
]
# A host file nothing else reads during the suite, for the page-cache cases.
CACHE_FILE = "/usr/share/common-licenses/GPL-3"


def run(sb, code, timeout=30):
    r = sb.run_code(code, timeout=timeout)
    assert r.error is None, "%s\nstdout: %s\nstderr: %s" % (r.error, r.stdout, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture
def pair(arena):
    """(sender, receiver): two sandboxes of the attacker; the receiver
    stands for another tenant. Destroyed after the case."""
    a, b = arena.new_sandbox(), arena.new_sandbox()
    try:
        yield a, b
    finally:
        for s in (a, b):
            try:
                s.close()
            except airlock.AirlockError:
                pass
    arena.check_after()


# ---- locks -------------------------------------------------------------------------------

def test_proc_locks_lists_nothing_of_the_host_or_other_sandboxes(arena, pair, tmp_path):
    """/proc/locks: OFD locks carry no pid, so the pid namespace does not
    filter them; the host's (and airlockd's uid-slot) locks and a value one
    sandbox sets are visible to all. Masked: the sandbox reads nothing."""
    sender, receiver = pair
    value = 0x5EC000 + secrets.randbelow(0xFFF)
    # the host holds one too, at an offset of its own
    host_file = tmp_path / "hostlock"
    host_file.write_bytes(b"x")
    hfd = os.open(str(host_file), os.O_RDWR)
    try:
        fcntl.fcntl(hfd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, value + 1, 1, 0))  # F_OFD_SETLK
        run(sender, '''
import fcntl, json, os, struct
fd = os.open("/tmp/sender-lock", os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, b"x")
fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, %d, 1, 0))  # F_OFD_SETLK at the value
HELD = fd
print(json.dumps("held"))
''' % value)
        got = run(receiver, '''
import json
try:
    text = open("/proc/locks").read()
except OSError as e:
    text = "ERR " + type(e).__name__
print(json.dumps(text))
''')
    finally:
        os.close(hfd)
    assert str(value) not in got and str(value + 1) not in got, "a lock's offset crossed sandboxes:\n" + got
    assert got.strip() == "" or got.startswith("ERR"), "/proc/locks lists the host's locks:\n" + got


LOCK_HOLD = '''
import fcntl, json, os, struct
HELD = []
out = {}
for p in %(paths)r:
    try:
        fd = os.open(p, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        HELD.append(fd)
        out[p] = "held"
    except OSError as e:
        out[p] = "ERR " + type(e).__name__
print(json.dumps(out))
'''

LOCK_TRY = '''
import fcntl, json, os
out = {}
for p in %(paths)r:
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError as e:
        out[p] = "open " + type(e).__name__
        continue
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        out[p] = "free"
    except BlockingIOError:
        out[p] = "LOCKED BY SOMEONE ELSE"
    except OSError as e:
        out[p] = "ERR " + type(e).__name__
    os.close(fd)
print(json.dumps(out))
'''


def test_flock_on_shared_files_stays_in_the_sandbox(pair):
    """One sandbox flock()s the template's files; another must not see it
    (a held or free lock per file is a bit between tenants)."""
    sender, receiver = pair
    held = run(sender, LOCK_HOLD % {"paths": SHARED_FILES})
    assert all(v == "held" for v in held.values()), held
    got = run(receiver, LOCK_TRY % {"paths": SHARED_FILES})
    leaked = {p: v for p, v in got.items() if v != "free"}
    assert not leaked, "locks crossed sandboxes: %r" % leaked


def test_host_flock_is_invisible_to_sandboxes(pair):
    """The host's own locks on /usr files (package managers, other daemons)
    must not show in a sandbox, nor a sandbox's on the host."""
    _, receiver = pair
    path = "/usr/lib/python3.11/os.py"
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        got = run(receiver, LOCK_TRY % {"paths": [path]})
        assert got[path] == "free", "the host's lock is visible inside: %r" % got
    finally:
        os.close(fd)
    held = run(receiver, LOCK_HOLD % {"paths": [path]})
    assert held[path] == "held", held
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the sandbox's lock reached the host
    finally:
        os.close(fd)


def test_ofd_lock_offset_does_not_cross(pair):
    """F_OFD_GETLK reports a conflicting lock's start: 63 bits per file."""
    sender, receiver = pair
    value = secrets.randbelow(1 << 40) + 1
    run(sender, '''
import fcntl, json, os, struct
fd = os.open("/usr/lib/python3.11/os.py", os.O_RDONLY)
fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_RDLCK, 0, %d, 1, 0))  # F_OFD_SETLK
HELD_OFD = fd
print(json.dumps("held"))
''' % value)
    got = run(receiver, '''
import fcntl, json, os, struct
fd = os.open("/usr/lib/python3.11/os.py", os.O_RDONLY)
res = fcntl.fcntl(fd, 36, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))  # F_OFD_GETLK, whole file
typ, _, start, length, _ = struct.unpack("hhqqi", res)
print(json.dumps({"type": typ, "start": start, "unlocked": typ == fcntl.F_UNLCK}))
''')
    assert got["unlocked"], "another sandbox's OFD lock (start %d) is visible: %r" % (value, got)


# ---- fsnotify ------------------------------------------------------------------------------

INOTIFY_WATCH = '''
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
IN_ACCESS, IN_OPEN = 0x1, 0x20
WATCH_FD = libc.inotify_init1(os.O_NONBLOCK)
watched = {}
for p in %(paths)r:
    w = libc.inotify_add_watch(WATCH_FD, p.encode(), IN_ACCESS | IN_OPEN)
    watched[p] = w
print(json.dumps(watched))
'''

INOTIFY_READ = '''
import json, os
try:
    data = os.read(WATCH_FD, 65536)
    n = len(data)
except BlockingIOError:
    n = 0
print(json.dumps(n))
'''

TOUCH = '''
import json, os
for p in %(paths)r:
    try:
        if os.path.isdir(p):
            os.listdir(p)
        else:
            with open(p, "rb") as f:
                f.read(64)
    except OSError:
        pass
print(json.dumps("touched"))
'''

FS_FILES = ["/usr/lib/python3.11/os.py", "/usr/lib/python3.11", "/etc/ld.so.cache",
            "/opt/airlock/airlock_runner.py", "/dev/null"]


def test_inotify_sees_no_other_sandbox_and_no_host(pair):
    sender, receiver = pair
    watched = run(receiver, INOTIFY_WATCH % {"paths": FS_FILES})
    assert all(w > 0 for w in watched.values()), watched
    assert run(receiver, INOTIFY_READ) == 0  # nothing yet
    run(sender, TOUCH % {"paths": FS_FILES})
    for p in FS_FILES:  # the host reads them too
        try:
            if os.path.isdir(p):
                os.listdir(p)
            else:
                with open(p, "rb") as f:
                    f.read(64)
        except OSError:
            pass
    n = run(receiver, INOTIFY_READ)
    assert n == 0, "inotify in one sandbox saw %d bytes of events from another sandbox or the host" % n


def test_dnotify_sees_no_other_sandbox(pair):
    sender, receiver = pair
    run(receiver, '''
import fcntl, json, os, signal
GOT = []
signal.signal(signal.SIGIO, lambda s, f: GOT.append(s))
DIR_FD = os.open("/usr/lib/python3.11", os.O_RDONLY | os.O_DIRECTORY)
fcntl.fcntl(DIR_FD, fcntl.F_NOTIFY, fcntl.DN_ACCESS | fcntl.DN_MULTISHOT)
print(json.dumps("armed"))
''')
    run(sender, TOUCH % {"paths": ["/usr/lib/python3.11/os.py", "/usr/lib/python3.11/abc.py"]})
    for p in ("/usr/lib/python3.11/os.py", "/usr/lib/python3.11/abc.py"):
        with open(p, "rb") as f:
            f.read(64)
    got = run(receiver, "import json, time; time.sleep(0.2); print(json.dumps(len(GOT)))")
    assert got == 0, "dnotify saw %d accesses from outside the sandbox" % got


# ---- the page cache --------------------------------------------------------------------

def _host_cached(path):
    """Is the first page of path in the page cache? (host side, RWF_NOWAIT)"""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _host_cache(path):
    with open(path, "rb") as f:
        f.read()


def _host_evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_fadvise_dontneed_evicts_nothing(pair):
    """Any sandbox could push the host's /usr out of the page cache (and a
    sender clears bits a receiver probes). DONTNEED is a no-op inside."""
    sender, _ = pair
    _host_cache(CACHE_FILE)
    assert _host_cached(CACHE_FILE)
    got = run(sender, '''
import json, os
fd = os.open(%r, os.O_RDONLY)
os.read(fd, 1 << 20)
try:
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    r = "ok"
except OSError as e:
    r = "ERR " + type(e).__name__
print(json.dumps(r))
''' % CACHE_FILE)
    assert got in ("ok", "ERR PermissionError"), got
    assert _host_cached(CACHE_FILE), "a sandbox evicted a host file's pages from the page cache"


PROBE = '''
import ctypes, errno, json, mmap, os
libc = ctypes.CDLL(None, use_errno=True)
out = {}
fd = os.open(%(path)r, os.O_RDONLY)
try:
    os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT)
    out["preadv2_nowait"] = "cached"
except BlockingIOError:
    out["preadv2_nowait"] = "not cached"
except OSError as e:
    out["preadv2_nowait"] = "refused " + errno.errorcode.get(e.errno, str(e.errno))
# cachestat(fd, &range, &stat, 0): nr 451
rng = (ctypes.c_uint64 * 2)(0, 0)
st = (ctypes.c_uint64 * 8)()
r = libc.syscall(451, fd, ctypes.byref(rng), ctypes.byref(st), 0)
out["cachestat"] = ("cached=%%d" %% st[0]) if r == 0 else "refused " + errno.errorcode.get(ctypes.get_errno(), "?")
vec = (ctypes.c_ubyte * 1)()
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
p = libc.mmap(None, 4096, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED; never touched
r = libc.mincore(ctypes.c_void_p(p), 4096, vec)
out["mincore"] = ("resident=%%d" %% (vec[0] & 1)) if r == 0 else "refused"
os.close(fd)
print(json.dumps(out))
'''


def test_page_cache_cannot_be_probed(pair):
    """Whether a page is cached must tell a sandbox nothing: the same probe,
    with the file evicted and then cached by the host, gives the same answer."""
    _, receiver = pair
    _host_evict(CACHE_FILE)
    cold = run(receiver, PROBE % {"path": CACHE_FILE})
    _host_cache(CACHE_FILE)
    warm = run(receiver, PROBE % {"path": CACHE_FILE})
    differ = {k: (cold[k], warm[k]) for k in cold if cold[k] != warm[k]}
    assert not differ, "page-cache state is visible inside (evicted vs cached): %r" % differ


# ---- host-wide pools ----------------------------------------------------------------------

def _read_int(path):
    with open(path) as f:
        return int(f.read().split()[0])


def test_io_setup_cannot_take_the_hosts_aio_pool(pair):
    """io_setup(65536) took all of fs.aio-max-nr: every other AIO user on
    the host got EAGAIN. Linux AIO is refused inside (ENOSYS: libraries fall
    back to threads)."""
    sender, _ = pair
    before = _read_int("/proc/sys/fs/aio-nr")
    got = run(sender, '''
import ctypes, errno, json
libc = ctypes.CDLL(None, use_errno=True)
ctxs = []
res = []
for _ in range(4):
    ctx = ctypes.c_ulong(0)
    r = libc.syscall(206, 65536, ctypes.byref(ctx))  # io_setup
    res.append("ok" if r == 0 else errno.errorcode.get(ctypes.get_errno(), "?"))
    ctxs.append(ctx)
HELD_AIO = ctxs
print(json.dumps(res))
''')
    during = _read_int("/proc/sys/fs/aio-nr")
    assert all(r != "ok" for r in got), "io_setup succeeded inside: %r" % got
    assert during - before < 65536, "the sandbox took %d AIO events of the host's pool" % (during - before)


PTY_HOLDER = r'''
import os, sys, time
fds = []
while len(fds) < 1000:
    try:
        fds.append(os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY))
    except OSError as e:
        break
print(len(fds), flush=True)
time.sleep(120)
'''


def test_pty_pool_is_per_sandbox(pair):
    """ptys are a host-wide pool (kernel.pty.max): one sandbox that opens all
    of them leaves the other tenants' openpty() with ENOSPC."""
    sender, receiver = pair
    held = run(sender, '''
import json, subprocess, sys
HOLDERS = [subprocess.Popen([sys.executable, "-c", %r], stdout=subprocess.PIPE, text=True) for _ in range(4)]
counts = [int(p.stdout.readline() or 0) for p in HOLDERS]
print(json.dumps(counts))
''' % PTY_HOLDER, timeout=60)
    try:
        got = run(receiver, '''
import json, os
try:
    m, s = os.openpty()
    r = "ok"
except OSError as e:
    r = "ERR " + type(e).__name__ + " " + str(e)
print(json.dumps(r))
''')
        assert got == "ok", "after another sandbox took %d ptys, openpty failed: %s" % (sum(held), got)
        if ISOLATION == "vm":
            return  # a guest's ptys are its own kernel's: none is the host's
        limit = _read_int("/proc/sys/kernel/pty/max") - _read_int("/proc/sys/kernel/pty/reserve")
        assert sum(held) < limit // 4, "one sandbox held %d of the host's %d ptys" % (sum(held), limit)
    finally:
        run(sender, "import json\nfor p in HOLDERS: p.kill(); p.wait()\nprint(json.dumps(1))")


def _sockstat_pages(proto):
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith(proto + ":"):
                parts = line.split()
                return int(parts[parts.index("mem") + 1])
    return 0


SOCK_FILL = r'''
import json, os, socket, sys
kind = %(kind)r
pairs = []
total = 0
for i in range(400):
    try:
        if kind == "tcp":
            ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
            a = socket.create_connection(ls.getsockname()); b, _ = ls.accept(); ls.close()
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 30)
            b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 30)
        else:
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("127.0.0.1", 0))
            b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 30)
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.connect(b.getsockname())
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 30)
    except OSError:
        break
    a.setblocking(False)
    chunk = b"x" * 65000
    # TCP: until the buffers refuse (EAGAIN); UDP drops what does not fit
    # the receiver's buffer, so a bounded number of datagrams per pair
    for _ in range(100000 if kind == "tcp" else 64):
        try:
            total += a.send(chunk)
        except (BlockingIOError, OSError):
            break
    pairs.append((a, b))
print(total, flush=True)
import time
time.sleep(120)
'''


def _socket_pin(sb, kind, procs):
    got = run(sb, '''
import json, subprocess, sys
PINNERS = [subprocess.Popen([sys.executable, "-c", %r], stdout=subprocess.PIPE, text=True) for _ in range(%d)]
print(json.dumps([int(p.stdout.readline() or 0) for p in PINNERS]))
''' % (SOCK_FILL % {"kind": kind}, procs), timeout=120)
    return got


@pytest.mark.parametrize("kind", ["tcp", "udp"])
def test_socket_buffers_are_bounded_by_the_sandbox(arena, kind):
    jail_only("socket_buffers")
    """A 128 MiB sandbox pinned 521 MiB of TCP and 515 MiB of UDP buffer
    memory over loopback: a few of them reach tcp_mem's hard limit and stall
    every TCP socket on the host. Socket memory must stay within the
    sandbox's own budget."""
    v1 = os.path.isdir("/sys/fs/cgroup/memory")
    cap = "charged to memory.kmem.tcp.limit_in_bytes (v1)" if v1 else "charged to memory.max (v2)"
    sb = arena.new_sandbox(memory_mb=128)
    proto = "TCP" if kind == "tcp" else "UDP"
    try:
        before = _sockstat_pages(proto)
        pinned = _socket_pin(sb, kind, 4)
        during = _sockstat_pages(proto)
        grew = (during - before) * 4096
        print("%s: the sandbox wrote %d bytes into unread sockets; %s memory grew %.1f MiB (%s)"
              % (kind, sum(pinned), proto, grew / 2**20, cap))
        assert grew <= 128 * 2**20, "a 128 MiB sandbox pinned %.0f MiB of %s buffers" % (grew / 2**20, proto)
    finally:
        sb.close()
    arena.check_after()


# ---- /proc: host-wide tables -------------------------------------------------------------

HOST_TABLES = [
    "/proc/locks",               # every OFD lock on the host
    "/proc/cgroups",             # cgroup counts: how many sandboxes exist
    "/proc/key-users",           # every uid's key quota use
    "/proc/sys/kernel/pty/nr",   # ptys in use host-wide: a counter another sandbox moves
    "/proc/sys/fs/file-nr",      # open files host-wide
    "/proc/sys/fs/inode-nr",
    "/proc/sys/fs/inode-state",
    "/proc/sys/fs/dentry-state",
    "/proc/sys/fs/aio-nr",
]


def test_proc_host_wide_tables_are_masked(arena):
    got = run(arena.attacker, '''
import json
out = {}
for p in %r:
    try:
        out[p] = open(p).read()
    except OSError as e:
        out[p] = "ERR " + type(e).__name__
print(json.dumps(out))
''' % HOST_TABLES)
    shown = {p: v[:80] for p, v in got.items() if v.strip() and not v.startswith("ERR")}
    assert not shown, "host-wide tables readable inside: %r" % shown
    arena.check_after()


def test_repl_exe_is_the_sandboxs_own_inode(pair):
    """A REPL forked from the zygote has the zygote's executable as
    /proc/self/exe: opening it gives a host inode every REPL shares (a lock
    or a watch on it crosses sandboxes)."""
    sender, receiver = pair
    run(sender, LOCK_HOLD % {"paths": ["/proc/self/exe"]})
    got = run(receiver, LOCK_TRY % {"paths": ["/proc/self/exe"]})
    assert got["/proc/self/exe"] in ("free", "open PermissionError", "open FileNotFoundError"), got


# ---- found after the audit: pseudo-filesystem inodes every process shares ----------------

PSEUDO_HOLD = '''
import fcntl, json, os, struct
out = {}
HELD_PSEUDO = []
def hold(name, fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        out[name + " flock"] = "held"
    except OSError as e:
        out[name + " flock"] = "ERR " + type(e).__name__
    try:
        fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_RDLCK, 0, %(value)d, 1, 0))  # F_OFD_SETLK
        out[name + " ofd"] = "held"
    except OSError as e:
        out[name + " ofd"] = "ERR " + type(e).__name__
    HELD_PSEUDO.append(fd)
hold("eventfd", os.eventfd(0))
try:
    hold("time ns", os.open("/proc/self/ns/time", os.O_RDONLY))
except OSError as e:
    out["time ns open"] = "ERR " + type(e).__name__
print(json.dumps(out))
'''

PSEUDO_PROBE = '''
import fcntl, json, os, struct
out = {}
def probe(name, fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        out[name + " flock"] = "free"
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as e:
        out[name + " flock"] = "ERR " + type(e).__name__
    try:
        res = fcntl.fcntl(fd, 36, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))  # F_OFD_GETLK
        typ, _, start, length, _ = struct.unpack("hhqqi", res)
        out[name + " getlk"] = "unlocked" if typ == fcntl.F_UNLCK else "start=%d len=%d" % (start, length)
    except OSError as e:
        out[name + " getlk"] = "ERR " + type(e).__name__
    os.close(fd)
probe("eventfd", os.eventfd(0))
try:
    probe("time ns", os.open("/proc/self/ns/time", os.O_RDONLY))
except OSError as e:
    out["time ns open"] = "ERR " + type(e).__name__
print(json.dumps(out))
'''


def test_pseudo_inode_locks_carry_nothing(pair):
    """Every eventfd, epoll, timerfd, signalfd and inotify descriptor on the
    host is a file of ONE anonymous inode, and a namespace a sandbox does not
    have of its own (time) is one nsfs inode: a lock on either, or its
    F_OFD_GETLK offset, crossed sandboxes (and reached the host). Whatever
    the sender does, the receiver must read the same thing as when the sender
    does nothing."""
    sender, receiver = pair
    quiet = run(receiver, PSEUDO_PROBE)
    value = secrets.randbelow(1 << 40) + 2
    run(sender, PSEUDO_HOLD % {"value": value})
    loud = run(receiver, PSEUDO_PROBE)
    assert loud == quiet, "a lock on a shared pseudo inode crossed sandboxes: %r -> %r" % (quiet, loud)
    assert not any(str(value) in v for v in loud.values()), loud


def _hugepages():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    return 0


def test_hugetlb_pool_cannot_be_taken(pair):
    """The hugetlb pool (vm.nr_hugepages) is one per host and not charged to
    the memory cgroup: on a host that reserves huge pages (databases do), one
    sandbox could take them all."""
    sender, _ = pair
    path = "/proc/sys/vm/nr_hugepages"
    with open(path) as f:
        saved = f.read().strip()
    try:
        with open(path, "w") as f:
            f.write("4")
        free = _hugepages()
        if free < 1:
            pytest.skip("the host could not reserve a huge page for the test")
        got = run(sender, '''
import ctypes, errno, json, mmap
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
res = []
HUGE = []
for _ in range(4):
    p = libc.mmap(None, 2 << 20, 3, 0x22 | 0x40000, -1, 0)  # PROT_RW, MAP_PRIVATE|ANON|HUGETLB
    if p in (None, ctypes.c_void_p(-1).value):
        res.append(errno.errorcode.get(ctypes.get_errno(), "?"))
        continue
    ctypes.memset(p, 1, 1)
    HUGE.append(p)
    res.append("ok")
print(json.dumps(res))
''')
        now = _hugepages()
        assert now == free, "a sandbox took %d of the host's %d free huge pages (%r)" % (free - now, free, got)
    finally:
        run(sender, "import json\nprint(json.dumps(0))")
        sender.close()
        with open(path, "w") as f:
            f.write(saved)
