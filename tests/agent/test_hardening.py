"""The user-code boundary the agent sets up: the seccomp allow-list
(src/agent/seccomp.c) and the Landlock domain (src/agent/landlock.c).

Most checks run twice: in the sandbox, and as a CONTROL as plain uid 1000 on
the host (same interpreter, no seccomp, no Landlock), so each one shows that
the kernel would have answered differently without the policy: a check whose
control gives the expected answer too could not fail, and is refused below.

What the kernel refuses an unprivileged process anyway (init_module, acct,
reboot, fsopen...) cannot be told apart that way; for those the test reads
the BPF program the kernel actually holds for a user process back with
PTRACE_SECCOMP_GET_FILTER and runs it on each call of the policy table
(a classic-BPF evaluator of ~40 lines, itself checked against what the
kernel answered in the behavioural cases).

Run as root:  AIRLOCK_AGENT=build/airlock-agent /usr/bin/python3 -m pytest tests/agent/test_hardening.py
"""

import ctypes
import errno
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile

import pytest

from agent_support import AGENT, HELLO, OK, PYTHON, USER_UID, AgentClient, make_root

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent tests need root (setresuid to 1000)")


def control(code, cwd="/"):
    """Run Python code as uid 1000 on the host, outside any policy."""
    r = subprocess.run([PYTHON, "-c", code], user=USER_UID, group=USER_UID, extra_groups=[], cwd=cwd,
                       capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


# ---- seccomp: behaviour --------------------------------------------------------------

# Each call runs in a forked child (namespace calls change the caller, a clone
# that succeeds returns twice); the child reports (ret, errno name) back.
# "BUF" is the address of a scratch buffer, "PID" the child's pid.
SYSCALL_PROBE = r"""
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
BUF = ctypes.create_string_buffer(256)
def sc(nr, *args):
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        a = [ctypes.c_long(ctypes.addressof(BUF) if x == "BUF" else os.getpid() if x == "PID" else x) for x in args]
        ctypes.set_errno(0)
        r = libc.syscall(ctypes.c_long(nr), *a)
        if r == 0 and nr == 56:
            os._exit(0)  # the clone child
        e = ctypes.get_errno()
        os.write(wr, repr((-1, errno.errorcode.get(e, str(e))) if r == -1 else (0, 0)).encode())
        os._exit(0)
    os.close(wr)
    out = os.read(rd, 200)
    os.close(rd)
    os.waitpid(pid, 0)
    return eval(out)
"""

NS_ALL = 0x10000000 | 0x00020000 | 0x20000000 | 0x40000000 | 0x04000000 | 0x08000000 | 0x02000000
ERR = lambda name: (-1, name)  # noqa: E731
OK0 = (0, 0)

# (name, nr, args, expected in the sandbox, the control depends on the host's
# kernel config). Numbers are x86_64. Arguments are chosen so that the kernel
# without the filter fails differently (bad pointers, bad flags) or succeeds
# harmlessly.
SECCOMP_CASES = [
    # namespaces
    ("unshare newuser", 272, [0x10000000], ERR("EPERM"), False),
    ("unshare newuser|newns", 272, [0x10000000 | 0x00020000], ERR("EPERM"), False),
    ("unshare every namespace", 272, [NS_ALL | 0x80], ERR("EPERM"), False),
    ("clone newuser", 56, [0x10000000 | 17, 0, 0, 0, 0], ERR("EPERM"), False),
    ("clone every namespace", 56, [NS_ALL | 17, 0, 0, 0, 0], ERR("EPERM"), False),
    ("clone3", 435, [0, 0], ERR("ENOSYS"), False),  # EINVAL without the filter
    ("setns", 308, [0, 0], ERR("EPERM"), False),
    # mounts
    ("mount", 165, [1, 1, 1, 0, 0], ERR("EPERM"), False),  # EFAULT without
    ("umount2", 166, ["BUF", 0], ERR("EPERM"), False),  # ENOENT without
    ("open_tree", 428, [-100, 1, 0], ERR("EPERM"), False),
    ("mount_setattr", 442, [-1, "BUF", 0x80000000, "BUF", 32], ERR("EPERM"), False),
    ("fsconfig", 431, [-1, 0, 0, 0, 0], ERR("EPERM"), False),
    ("chroot", 161, [1], ERR("EPERM"), False),
    ("quotactl Q_SYNC", 179, [0x80000100, 0, 0, 0], ERR("EPERM"), True),
    ("quotactl_fd", 443, [-1, 0, 0, 0], ERR("EPERM"), False),
    ("swapon bad flags", 167, [1, 0x7fffffff], ERR("EPERM"), False),
    # kernel subsystems
    ("keyctl get keyring", 250, [0, -3, 0], ERR("EPERM"), False),
    ("add_key", 248, [1, 1, 0, 0, 0], ERR("EPERM"), False),
    ("request_key", 249, [1, 1, 0, 0], ERR("EPERM"), False),
    ("bpf bad cmd", 321, [0xffff, 0, 0], ERR("EPERM"), False),
    ("perf_event_open", 298, [0, 0, -1, -1, 0], ERR("EPERM"), False),
    ("userfaultfd user-mode", 323, [1], ERR("EPERM"), False),
    ("io_uring_setup", 425, [1, 0], ERR("EPERM"), True),  # EPERM too where io_uring_disabled=2
    # other processes
    ("ptrace seize", 101, [0x4206, 999999999, 0, 0], ERR("EPERM"), False),  # ESRCH without
    ("process_vm_readv self", 310, ["PID", 0, 0, 0, 0, 0], ERR("EPERM"), False),
    ("process_vm_writev self", 311, ["PID", 0, 0, 0, 0, 0], ERR("EPERM"), False),
    ("kcmp self", 312, ["PID", "PID", 0, 0, 0], ERR("EPERM"), False),
    ("pidfd_getfd", 438, [-1, 0, 0], ERR("EPERM"), False),
    ("name_to_handle_at", 303, [-100, "BUF", 1, 1, 0], ERR("EPERM"), False),
    ("open_by_handle_at", 304, [-100, 1, 0x7fffffff], ERR("EPERM"), False),
    # host-wide state
    ("kexec_load", 246, [0, 0, 0, 0xffff0000], ERR("EPERM"), True),
    ("kexec_file_load", 320, [-1, -1, 0, 0, 0xffff], ERR("EPERM"), True),
    ("init_module", 175, [0, 0, 0], ERR("EPERM"), True),
    ("finit_module", 313, [-1, 0, 0], ERR("EPERM"), True),
    ("delete_module", 176, [1, 0], ERR("EPERM"), True),
    ("iopl 4", 172, [4], ERR("EPERM"), False),  # EINVAL (or ENOSYS) without
    ("ioperm 0 0", 173, [0, 0, 1], ERR("EPERM"), False),
    ("modify_ldt read", 154, [0, 0, 0], ERR("EPERM"), False),
    ("lookup_dcookie", 212, [0, 0, 0], ERR("EPERM"), True),
    ("uselib", 134, [0], ERR("EPERM"), True),
    ("settimeofday bad ptr", 164, [1, 0], ERR("EPERM"), False),
    ("clock_settime bad ptr", 227, [0, 1], ERR("EPERM"), False),
    ("clock_adjtime bad ptr", 305, [0, 1], ERR("EPERM"), False),
    ("adjtimex bad ptr", 159, [1], ERR("EPERM"), False),
    # argument filters
    ("socket AF_PACKET", 41, [17, 3, 0], ERR("EAFNOSUPPORT"), False),  # EPERM without
    ("socket AF_NETLINK", 41, [16, 3, 0], ERR("EAFNOSUPPORT"), False),
    ("socket AF_VSOCK", 41, [40, 1, 0], ERR("EAFNOSUPPORT"), True),
    ("socket AF_INET, high bits", 41, [(1 << 32) | 2, 1, 0], ERR("EAFNOSUPPORT"), False),
    ("socketpair AF_INET", 53, [2, 1, 0, "BUF"], ERR("EAFNOSUPPORT"), False),  # EOPNOTSUPP without
    ("socketpair AF_NETLINK", 53, [16, 3, 0, "BUF"], ERR("EAFNOSUPPORT"), False),
    ("personality ADDR_NO_RANDOMIZE", 135, [0x0040000], ERR("EPERM"), False),
    ("personality, high bits", 135, [(1 << 32) | 0x0040000], ERR("EPERM"), False),
    ("ioctl TIOCSTI, high bits", 16, [0, (1 << 32) | 0x5412, 0], ERR("EPERM"), False),  # ENOTTY without
    ("ioctl TIOCLINUX", 16, [0, 0x541C, 0], ERR("EPERM"), False),
    # not in the allow-list: the default
    ("process_madvise (unlisted)", 440, [-1, 0, 0, 0, 0], ERR("ENOSYS"), False),  # EBADF without
    ("get_mempolicy (unlisted)", 239, [0, 0, 0, 0, 0], ERR("ENOSYS"), True),  # 0 with CONFIG_NUMA
    ("mbind (unlisted)", 237, [0, 0, 0, 0, 0, 0], ERR("ENOSYS"), True),
    # allowed, with the arguments the filters let through
    ("socket AF_INET", 41, [2, 1, 0], OK0, False),
    ("socket AF_UNIX", 41, [1, 1, 0], OK0, False),
    ("socket AF_INET6", 41, [10, 2, 0], OK0, False),
    ("socketpair AF_UNIX", 53, [1, 1, 0, "BUF"], OK0, False),
    ("personality query", 135, [0xffffffff], OK0, False),
    ("personality PER_LINUX", 135, [0], OK0, False),
    ("clone plain fork", 56, [17, 0, 0, 0, 0], OK0, False),
    ("unshare CLONE_FILES", 272, [0x400], OK0, False),
]


def probe_code(cases):
    calls = ", ".join("%r: sc(%d, %s)" % (name, nr, ", ".join(repr(a) for a in args)) for name, nr, args, _, _ in cases)
    return SYSCALL_PROBE + "print(repr({%s}))" % calls


@pytest.fixture(scope="module")
def control_results():
    return eval(control(probe_code(SECCOMP_CASES)))


def test_seccomp_refusals_and_errnos(agent, control_results):
    r = agent.py(probe_code(SECCOMP_CASES))
    assert r.result["error"] is None, r.stderr
    got = eval(r.stdout)
    wrong = {n: (got[n], exp) for n, _, _, exp, _ in SECCOMP_CASES if got[n] != exp}
    assert not wrong, "name: (sandbox, expected): %r" % wrong
    # every refusal must be one the kernel alone would not have given
    same = [n for n, _, _, exp, host_dep in SECCOMP_CASES if exp != OK0 and control_results[n] == exp and not host_dep]
    assert not same, "cases that cannot fail (the control answers the same): %r" % same


def test_seccomp_allow_list_runs_real_work(agent, root):
    """Threads, multiprocessing, asyncio, subprocess, numpy: what the
    allow-list must not break."""
    code = r"""
import asyncio, multiprocessing, os, subprocess, threading, numpy
ts = [threading.Thread(target=lambda: None) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
with multiprocessing.Pool(2) as p:
    mp = p.map(abs, [-1, -2, -3])
q = multiprocessing.Queue(); pr = multiprocessing.Process(target=q.put, args=(7,)); pr.start(); pr.join()
async def main():
    proc = await asyncio.create_subprocess_exec("echo", "sub", stdout=asyncio.subprocess.PIPE)
    out = (await proc.communicate())[0]
    srv = await asyncio.start_server(lambda r, w: (w.write(b"pong"), w.close()), "127.0.0.1", 0)
    rd, wr = await asyncio.open_connection(*srv.sockets[0].getsockname()[:2])
    got = await rd.read(); wr.close(); srv.close()
    return out, got
print(mp, q.get(), asyncio.run(main()), subprocess.run(["true"]).returncode, round(numpy.linalg.det(numpy.eye(3) * 2)))
"""
    r = agent.py(code, timeout_ms=60000)
    assert r.result["error"] is None, r.stderr
    assert r.stdout == b"[1, 2, 3] 7 (b'sub\\n', b'pong') 0 8\n", r.stderr


def test_seccomp_bash_pipeline_gcc_git(agent, root):
    tmp = root + "/tmp"
    env = {"TMPDIR": tmp, "HOME": root + "/home/user"}
    r = agent.run_code("seq 1 1000 | sort -rn | head -3 | tr '\\n' ' '; echo; ls /proc/self/fd > /dev/null && echo devnull",
                       language="bash", env=env)
    assert r.stdout == b"1000 999 998 \ndevnull\n", r.stderr
    r = agent.exec(shell="cd %s && printf 'int main(void){return 3;}\\n' > t.c && gcc -o t t.c && ./t" % tmp, env=env)
    assert r.result["exit_code"] == 3, r.stderr
    r = agent.exec(shell="cd %s && git init -q g && cd g && echo x > f && git add f && "
                   "git -c user.name=a -c user.email=a@b commit -qm one && git log --format=%%s" % tmp, env=env)
    assert r.stdout == b"one\n", r.stderr
    r = agent.exec(argv=[PYTHON, "-m", "pip", "--version"], env=env)
    assert r.result["exit_code"] == 0 and r.stdout.startswith(b"pip "), r.stderr


def test_seccomp_x32_call_kills(agent):
    # getpid through the x32 ABI (nr | 0x40000000): the kernel would answer
    # ENOSYS (or the pid, with CONFIG_X86_X32_ABI); the filter kills.
    probe = ("import ctypes\nlibc = ctypes.CDLL(None)\nlibc.syscall.restype = ctypes.c_long\n"
             "libc.syscall(ctypes.c_long(0x40000000 | 39))\nprint('survived')")
    res = agent.exec(argv=[PYTHON, "-c", probe]).result
    assert res["killed_signal"] == signal.SIGSYS, res
    assert control(probe) == b"survived\n"


# getpid via int 0x80 (the i386 ABI), from an executable page:
# mov eax, 20; int 0x80; ret
INT80_PROBE = r"""
import ctypes, mmap, os
code = b"\xb8\x14\x00\x00\x00\xcd\x80\xc3"
page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(code)
addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
print(ctypes.CFUNCTYPE(ctypes.c_int)(addr)() == os.getpid())
"""


def test_seccomp_foreign_arch_kills(agent):
    assert control(INT80_PROBE) == b"True\n"
    res = agent.exec(argv=[PYTHON, "-c", INT80_PROBE]).result
    assert res["killed_signal"] == signal.SIGSYS, res


def test_seccomp_policy_table(agent):
    """--seccomp-policy prints one row per rule with a reason; docs/kernel-facts.md's
    list is in it as refused."""
    rows = policy_rows()
    assert all(why.strip() for _, _, _, why in rows)
    names = [n for n, _, _, _ in rows]
    assert len(names) == len(set(names)), "a syscall listed twice"
    refused = {n: e for n, action, e, _ in rows if action.startswith("deny")}
    for n in ("setns", "mount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
              "mount_setattr", "pivot_root", "chroot", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
              "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv",
              "process_vm_writev", "kcmp", "open_by_handle_at", "kexec_load", "kexec_file_load", "init_module",
              "finit_module", "delete_module", "acct", "swapon", "swapoff", "reboot", "iopl", "ioperm", "modify_ldt",
              "quotactl", "syslog"):
        assert refused.get(n) == "EPERM", n
    assert refused["clone3"] == "ENOSYS"
    filtered = {n: (a, e) for n, a, e, _ in rows if a.startswith("allow ")}
    assert set(filtered) == {"clone", "unshare", "ioctl", "socket", "socketpair", "personality", "fadvise64",
                             "preadv2", "pwritev2", "mmap", "shmget", "memfd_create"}
    # the shared page cache and the host's AIO pool (issue 10)
    assert refused["cachestat"] == "EPERM"
    for n in ("io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents"):
        assert refused.get(n) == "ENOSYS", n


# ---- seccomp: the program the kernel holds ------------------------------------------------

AUDIT_ARCH_X86_64, AUDIT_ARCH_I386 = 0xC000003E, 0x40000003
RET_KILL_PROCESS, RET_ALLOW, RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
PTRACE_SECCOMP_GET_FILTER, PTRACE_SECCOMP_GET_METADATA = 0x420C, 0x420D
SECCOMP_FILTER_FLAG_LOG = 2
TIOCSTI, TIOCLINUX = 0x5412, 0x541C


def policy_rows():
    out = subprocess.run([AGENT, "--seccomp-policy"], capture_output=True, text=True, check=True).stdout
    return [tuple(line.split("\t")) for line in out.splitlines() if line and not line.startswith("#")]


def syscall_numbers():
    """name -> number from the kernel headers the agent was built with."""
    out = subprocess.run(["gcc", "-E", "-dM", "-include", "sys/syscall.h", "-x", "c", "/dev/null"],
                         capture_output=True, text=True, check=True).stdout
    nrs = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].startswith("__NR_") and parts[2].isdigit():
            nrs[parts[1][5:]] = int(parts[2])
    # newer than Debian 12's headers (defined in seccomp.c)
    nrs.update(cachestat=451, fchmodat2=452, futex_wake=454, futex_wait=455, futex_requeue=456, mseal=462)
    return nrs


def read_filters(pid):
    """[(instructions, flags)] of pid's seccomp filters, oldest first."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def ptrace(req, addr, data):
        r = libc.syscall(ctypes.c_long(101), ctypes.c_long(req), ctypes.c_long(pid), ctypes.c_void_p(addr),
                         ctypes.c_void_p(data))
        if r < 0:
            raise OSError(ctypes.get_errno(), "ptrace 0x%x: %s" % (req, os.strerror(ctypes.get_errno())))
        return r

    ptrace(PTRACE_SEIZE, 0, 0)
    try:
        ptrace(PTRACE_INTERRUPT, 0, 0)
        os.waitpid(pid, 0x40000000)  # __WALL
        filters = []
        for index in range(8):  # 0 is the first one loaded
            try:
                n = ptrace(PTRACE_SECCOMP_GET_FILTER, index, 0)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    break
                raise
            buf = ctypes.create_string_buffer(8 * n)
            ptrace(PTRACE_SECCOMP_GET_FILTER, index, ctypes.addressof(buf))
            meta = (ctypes.c_uint64 * 2)(index, 0)
            ptrace(PTRACE_SECCOMP_GET_METADATA, ctypes.sizeof(meta), ctypes.addressof(meta))
            insns = [struct.unpack_from("<HBBI", buf.raw, 8 * i) for i in range(n)]
            filters.append((insns, meta[1]))
        return filters
    finally:
        ptrace(PTRACE_DETACH, 0, 0)


def run_bpf(prog, nr, args=(), arch=AUDIT_ARCH_X86_64):
    """Classic BPF over struct seccomp_data, as the kernel runs it."""
    args = [a & 0xFFFFFFFFFFFFFFFF for a in list(args) + [0] * (6 - len(args))]
    data = struct.pack("<iIQ6Q", nr if nr < 0x80000000 else nr - (1 << 32), arch, 0, *args)
    a = x = pc = 0
    mem = [0] * 16
    while True:
        code, jt, jf, k = prog[pc]
        pc += 1
        cls, op = code & 7, code & 0xF0
        src = x if code & 0x08 else k
        if cls == 0 and code == 0x20:  # ld [k]
            a = struct.unpack_from("<I", data, k)[0]
        elif cls == 0 and code == 0x00:  # ld #k
            a = k
        elif cls == 0 and code == 0x60:  # ld M[k]
            a = mem[k]
        elif cls == 1 and code == 0x01:  # ldx #k
            x = k
        elif cls == 1 and code == 0x61:  # ldx M[k]
            x = mem[k]
        elif cls == 2:
            mem[k] = a
        elif cls == 3:
            mem[k] = x
        elif cls == 4:
            alu = {0x00: lambda: a + src, 0x10: lambda: a - src, 0x40: lambda: a | src, 0x50: lambda: a & src,
                   0x60: lambda: a << src, 0x70: lambda: a >> src, 0xA0: lambda: a ^ src}
            a = alu[op]() & 0xFFFFFFFF
        elif cls == 5:
            if op == 0x00:
                pc += k
            else:
                cond = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
                pc += jt if cond else jf
        elif cls == 6:
            return k if code & 0x18 == 0 else a
        elif cls == 7:
            if op == 0x00:
                x = a
            else:
                a = x
        else:
            raise AssertionError("opcode 0x%x not handled" % code)


def verdict(filters, nr, args=(), arch=AUDIT_ARCH_X86_64):
    """What the stack returns: the lowest action wins, the newest on a tie
    (seccomp_run_filters), and whether that filter logs."""
    best = None
    for insns, flags in reversed(filters):  # newest first
        ret = run_bpf(insns, nr, args, arch)
        if best is None or (ret & 0xFFFF0000) - (1 << 32 if ret & 0x80000000 else 0) < \
                (best[0] & 0xFFFF0000) - (1 << 32 if best[0] & 0x80000000 else 0):
            best = (ret, bool(flags & SECCOMP_FILTER_FLAG_LOG))
    return best


def errno_ret(name):
    return RET_ERRNO | (name if isinstance(name, int) else getattr(errno, name))


@pytest.fixture(scope="module")
def loaded_filters():
    """The filters of a real user process (the REPL), read from the kernel."""
    root = make_root()
    a = AgentClient(root)
    try:
        pid = int(a.py("import os; print(os.getpid())").stdout)
        yield read_filters(pid)
    finally:
        a.close()
        shutil.rmtree(root, ignore_errors=True)


def test_seccomp_filters_loaded_log_flags(loaded_filters):
    assert len(loaded_filters) == 2
    (main, main_flags), (quiet, quiet_flags) = loaded_filters
    assert main_flags & SECCOMP_FILTER_FLAG_LOG, "the allow-list must log its refusals"
    assert not quiet_flags & SECCOMP_FILTER_FLAG_LOG
    assert len(quiet) < 16


def test_seccomp_evaluator_agrees_with_kernel(loaded_filters):
    """The evaluator below gives what the kernel answered for every
    behavioural case (so its verdicts on the rest can be trusted)."""
    for name, nr, args, expected, _ in SECCOMP_CASES:
        args = [0 if a in ("BUF", "PID") else a for a in args]
        ret, _ = verdict(loaded_filters, nr, args)
        if expected == OK0:
            assert ret == RET_ALLOW, name
        else:
            assert ret == errno_ret(expected[1]), (name, hex(ret))


def test_seccomp_every_row_of_the_table(loaded_filters):
    nrs = syscall_numbers()
    rows = policy_rows()
    listed = set()
    for name, action, err, _ in rows:
        nr = nrs[name]
        listed.add(nr)
        ret, logged = verdict(loaded_filters, nr, {"clone": [17], "unshare": [0x400], "ioctl": [0, 0x5401],
                                                    "socket": [2, 1], "socketpair": [1, 1]}.get(name, []))
        if action == "allow" or action.startswith("allow "):
            assert ret == RET_ALLOW, name
        else:
            assert ret == errno_ret(err), (name, hex(ret))
            assert logged == (action != "deny quietly"), name
    # everything else: ENOSYS, logged
    for nr in range(0, 470):
        if nr not in listed:
            assert verdict(loaded_filters, nr) == (errno_ret("ENOSYS"), True), nr
    # x32 numbers and other architectures: killed
    for nr in (0, 39, 56, 435, 512, 547):
        assert verdict(loaded_filters, 0x40000000 | nr)[0] == RET_KILL_PROCESS, nr
        assert verdict(loaded_filters, nr, arch=AUDIT_ARCH_I386)[0] == RET_KILL_PROCESS, nr


def test_seccomp_argument_filters_exhaustively(loaded_filters):
    rnd = random.Random(7)
    high = [0, 1 << 32, 0xFFFFFFFF << 32] + [rnd.getrandbits(32) << 32 for _ in range(3)]
    eperm, allow = errno_ret("EPERM"), RET_ALLOW
    # ioctl: every 16-bit command, and the two refused ones with any upper half
    for cmd in range(0x10000):
        want = eperm if cmd in (TIOCSTI, TIOCLINUX) else allow
        assert verdict(loaded_filters, 16, [0, cmd])[0] == want, hex(cmd)
    for h in high:
        for cmd in (TIOCSTI, TIOCLINUX, 0x5401, rnd.getrandbits(32)):
            want = eperm if cmd in (TIOCSTI, TIOCLINUX) else allow
            assert verdict(loaded_filters, 16, [0, h | cmd])[0] == want, hex(h | cmd)
    # socket / socketpair: every family, and with upper bits
    for fam in list(range(0, 64)) + [h | 2 for h in high[1:]] + [0xFFFFFFFFFFFFFFFF]:
        want = allow if fam in (1, 2, 10) else errno_ret("EAFNOSUPPORT")
        assert verdict(loaded_filters, 41, [fam, 1])[0] == want, fam
        want = allow if fam == 1 else errno_ret("EAFNOSUPPORT")
        assert verdict(loaded_filters, 53, [fam, 1])[0] == want, fam
    # personality: only 0 and 0xffffffff in the low 32 bits
    values = [0, 0xFFFFFFFF] + [1 << i for i in range(64)] + [rnd.getrandbits(64) for _ in range(2000)]
    for v in values + [h | 0 for h in high] + [h | 0xFFFFFFFF for h in high]:
        want = allow if v & 0xFFFFFFFF in (0, 0xFFFFFFFF) else eperm
        assert verdict(loaded_filters, 135, [v])[0] == want, hex(v)
    # clone: any namespace flag (alone or with others), never CLONE_NEWTIME
    # (0x80 is the exit signal there); unshare: CLONE_NEWTIME too
    ns = [0x10000000, 0x00020000, 0x20000000, 0x40000000, 0x04000000, 0x08000000, 0x02000000]
    benign = [17, 0x80 | 17, 0x3D0F00 | 17, 0x400, 0x200]  # SIGCHLD, threads' flags, CLONE_FILES, CLONE_FS
    for b in benign:
        assert verdict(loaded_filters, 56, [b])[0] == allow, hex(b)
        for f in ns:
            assert verdict(loaded_filters, 56, [b | f])[0] == eperm, hex(b | f)
            assert verdict(loaded_filters, 272, [(b & ~0xFF) | f])[0] == eperm, hex(f)
    assert verdict(loaded_filters, 272, [0x80])[0] == eperm
    assert verdict(loaded_filters, 272, [0x400 | 0x200])[0] == allow
    # fadvise64: every advice but DONTNEED (4) allowed; DONTNEED answers 0
    # without running (SECCOMP_RET_ERRNO with errno 0); anything else ENOSYS
    for v in list(range(0, 16)) + [h | 4 for h in high[1:]] + [h | 0 for h in high[1:]]:
        want = allow if v in (0, 1, 2, 3, 5) else errno_ret(0) if v == 4 else errno_ret("ENOSYS")
        assert verdict(loaded_filters, 221, [0, 0, 0, v])[0] == want, hex(v)
    # one flag bit refused, alone or with others, whatever else is set:
    # preadv2 / pwritev2 RWF_NOWAIT (arg 5), mmap MAP_HUGETLB (arg 3),
    # shmget SHM_HUGETLB (arg 2), memfd_create MFD_HUGETLB (arg 1)
    for nr, arg, bit, err in ((327, 5, 0x8, "EOPNOTSUPP"), (328, 5, 0x8, "EOPNOTSUPP"), (9, 3, 0x40000, "EPERM"),
                              (29, 2, 0o4000, "EPERM"), (319, 1, 0x4, "EPERM")):
        for flags in [0, 1, 2, 4, 8, 16, bit, bit | 1, bit | 0x22, 0xFFFFFFFF, 0x22] + [h | bit for h in high] + high:
            args = [0] * 6
            args[arg] = flags
            want = errno_ret(err) if flags & bit else allow
            assert verdict(loaded_filters, nr, args)[0] == want, (nr, hex(flags))


# ---- Landlock ---------------------------------------------------------------------------


def landlock_abi():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(ctypes.c_long(444), None, ctypes.c_long(0), ctypes.c_long(1))


needs_landlock = pytest.mark.skipif(landlock_abi() < 6, reason="needs Landlock ABI 6 (scoping)")


def test_landlock_logged_at_start(agent):
    assert agent.call(HELLO, {}).type == OK
    logs = [f.payload.decode() for f in agent.pending.get(0, [])]
    abi = landlock_abi()
    if abi < 1:
        assert any("landlock unavailable:" in line for line in logs), logs
    else:
        assert any(line.startswith("info: landlock ABI %d: enforced" % abi) for line in logs), logs


WRITE_PROBE = r"""
import errno, os
def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
def write(path):
    with open(path, "w") as fh:
        fh.write("x")
out = {}
for name, path in TARGETS.items():
    out[name + " write"] = attempt(lambda: write(path + "/f"))
    out[name + " mkdir"] = attempt(lambda: os.mkdir(path + "/d"))
    out[name + " mkfifo"] = attempt(lambda: os.mkfifo(path + "/p"))
    out[name + " symlink"] = attempt(lambda: os.symlink("/etc", path + "/l"))
if OWNED:
    out["owned file append"] = attempt(lambda: open(OWNED, "a").close())
    out["owned file truncate"] = attempt(lambda: os.truncate(OWNED, 0))
    out["owned file unlink"] = attempt(lambda: os.unlink(OWNED))
print(repr(out))
"""


@pytest.mark.skipif(landlock_abi() < 1, reason="no Landlock")
def test_landlock_writes_only_beneath_the_writable_dirs(agent, root):
    """Outside tmp, data, home/user: EACCES, even where the mode (0777, or a
    file uid 1000 owns) would let uid 1000 write, as the control shows."""
    open_dir = os.path.join(root, "open")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    host_dir = tempfile.mkdtemp(prefix="airlock-landlock-")
    os.chmod(host_dir, 0o777)
    owned = os.path.join(open_dir, "owned.txt")
    open(owned, "w").close()
    os.chown(owned, USER_UID, USER_UID)
    try:
        outside = {"open dir": open_dir, "host dir": host_dir}
        code = "TARGETS = %r\nOWNED = %r\n" % (outside, owned) + WRITE_PROBE
        got = eval(agent.py(code).stdout)
        assert set(got.values()) == {"EACCES"}, got
        # the control: the same calls from uid 1000 without Landlock work
        ctl = eval(control(code))
        assert set(ctl.values()) == {"ok"}, ctl
        inside = {d: os.path.join(root, d) for d in ("tmp", "data", "home/user")}
        r = agent.py("TARGETS = %r\nOWNED = None\n" % inside + WRITE_PROBE)
        assert set(eval(r.stdout).values()) == {"ok"}, r.stdout
        # device files stay writable (O_TRUNC included)
        r = agent.run_code("echo x > /dev/null && : > /dev/null && echo y >> /dev/null && echo ok", language="bash")
        assert r.stdout == b"ok\n", r.stderr
    finally:
        subprocess.run(["rm", "-rf", host_dir])


ABSTRACT_CONNECT = r"""
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(NAME)
    print("connected")
except OSError as e:
    print(type(e).__name__, e.errno)
"""


@needs_landlock
def test_landlock_abstract_unix_sockets_scoped(agent):
    name = b"\0airlock-test-outside-%d" % os.getpid()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(name)
    srv.listen(4)
    try:
        code = "NAME = %r\n" % name + ABSTRACT_CONNECT
        assert control(code) == b"connected\n"
        assert agent.py(code).stdout == b"PermissionError %d\n" % errno.EPERM
    finally:
        srv.close()
    # inside the domain, across calls: the REPL listens, an exec'd process connects
    inner = b"\0airlock-test-inside-%d" % os.getpid()
    agent.py("import socket\nsrv = socket.socket(socket.AF_UNIX)\nsrv.bind(%r)\nsrv.listen(4)" % inner)
    r = agent.exec(argv=[PYTHON, "-c", "NAME = %r\n" % inner + ABSTRACT_CONNECT])
    assert r.stdout == b"connected\n", r.stderr


@needs_landlock
def test_landlock_signals_scoped(agent):
    outside = subprocess.Popen(["sleep", "60"], user=USER_UID, group=USER_UID, extra_groups=[])
    try:
        code = "import os\ntry:\n    os.kill(%d, 0)\n    print('sent')\nexcept OSError as e:\n    print(e.errno)" % outside.pid
        assert control(code) == b"sent\n"
        assert agent.py(code).stdout == b"%d\n" % errno.EPERM
    finally:
        outside.kill()
        outside.wait()
    # inside the domain, across calls: the REPL's child is signalled by an exec'd process
    pid = int(agent.py("import subprocess\nkid = subprocess.Popen(['sleep', '60'])\nprint(kid.pid)").stdout)
    r = agent.exec(argv=[PYTHON, "-c", "import os, signal; os.kill(%d, signal.SIGTERM); print('sent')" % pid])
    assert r.stdout == b"sent\n", r.stderr
    assert agent.py("print(kid.wait())").stdout == b"%d\n" % -signal.SIGTERM


def test_user_code_cannot_signal_the_agent(agent):
    sigs = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGCHLD, signal.SIGKILL]
    code = ("import os\nres = []\nfor s in %r:\n    try:\n        os.kill(%d, s)\n        res.append('sent')\n"
            "    except OSError as e:\n        res.append(e.errno)\nprint(res)") % ([int(s) for s in sigs], agent.proc.pid)
    assert agent.py(code).stdout == (repr([errno.EPERM] * len(sigs)) + "\n").encode()
    assert agent.call(HELLO, {}).type == OK


def test_agent_is_static_pie():
    """The agent is PID 1 of every sandbox: static (no loader, no libraries
    from the sandbox's /usr) and position-independent, so each sandbox's
    agent is mapped at its own random address (a plain -static binary sits
    at 0x400000 in all of them)."""
    with open(AGENT, "rb") as f:
        elf = f.read(64)
        assert elf[:4] == b"\x7fELF" and elf[4] == 2, "not a 64-bit ELF"
        e_type, = struct.unpack_from("<H", elf, 16)
        e_phoff, = struct.unpack_from("<Q", elf, 32)
        e_phentsize, e_phnum = struct.unpack_from("<HH", elf, 54)
        f.seek(e_phoff)
        phdrs = f.read(e_phentsize * e_phnum)
    types = [struct.unpack_from("<I", phdrs, i * e_phentsize)[0] for i in range(e_phnum)]
    assert e_type == 3, "ET_DYN expected (position-independent), got e_type %d" % e_type
    assert 3 not in types, "the agent has a PT_INTERP: it is not static"
    assert 2 in types, "no PT_DYNAMIC: not a static-pie"
