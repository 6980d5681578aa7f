"""Kernel surface: every blocked syscall, called three ways, and the classic
privilege games.

The try-syscall model (bubblewrap tests/try-syscall.c): each blocked call is
made with harmless bad arguments, so that if the filter let it through it
would fail with an errno of the kernel's own (EFAULT, EBADF, EINVAL...)
rather than do anything. The sandbox must answer with the filter's errno.
test_try_syscall_native_baseline runs the same calls outside any sandbox as
an unprivileged user, and shows for which calls that errno differs from the
filter's (for the rest, the kernel's own capability check already says
EPERM, and the case shows only that the call failed).

The same calls through the x32 ABI (nr | 0x40000000) and the i386 ABI
(int 0x80) must kill the process (SIGSYS): the filter's rules are keyed on
native numbers, so any other ABI is refused outright.
"""

import json
import os
import re
import shlex
import subprocess

import pytest

from seclib import ERRNO_HELPER, Attack, params

CAT = "kernel"
ASM = "/usr/include/x86_64-linux-gnu/asm"

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64's")


def _syscall_numbers(header):
    """{name: number} from a kernel uapi header (libc6-dev / linux-libc-dev)."""
    out = {}
    try:
        with open(os.path.join(ASM, header)) as f:
            for line in f:
                m = re.match(r"#define __NR_(\w+)\s+\(?(?:__X32_SYSCALL_BIT \+ )?(\d+)\)?\s*$", line)
                if m:
                    out[m.group(1)] = int(m.group(2))
    except OSError:
        pass
    return out


NR64 = _syscall_numbers("unistd_64.h")
NRX32 = _syscall_numbers("unistd_x32.h")
NR32 = _syscall_numbers("unistd_32.h")

EPERM = frozenset({"EPERM"})
# The classes of docs/kernel-facts.md ("Hardening lessons") are refused with EPERM; a call that is simply not on
# the allow-list gets ENOSYS. Either way the call did nothing.
DENIED = frozenset({"EPERM", "ENOSYS"})

CLONE_NEWUSER, CLONE_THREAD = 0x10000000, 0x10000
NS_FLAGS = {"newuser": 0x10000000, "newns": 0x20000, "newnet": 0x40000000, "newpid": 0x20000000,
            "newipc": 0x08000000, "newuts": 0x04000000, "newcgroup": 0x02000000, "newtime": 0x80}

# (case name, syscall, args, errnos accepted in the sandbox, errno the call
#  gives natively to an unprivileged user, i.e. without the filter)
TRY_SYSCALLS = [
    ("setns", "setns", (-1, 0), EPERM, "EBADF"),
    ("mount", "mount", (0, 0, 0, 0, 0), EPERM, "EFAULT"),
    ("umount2", "umount2", (0, 0), EPERM, "EFAULT"),
    ("fsopen", "fsopen", (0, 0), EPERM, "EPERM"),
    ("fsconfig", "fsconfig", (-1, 0, 0, 0, 0), EPERM, "EINVAL"),
    ("fsmount", "fsmount", (-1, 0, 0), EPERM, "EPERM"),
    ("fspick", "fspick", (-1, 0, 0), EPERM, "EPERM"),
    ("move_mount", "move_mount", (-1, 0, -1, 0, 0), EPERM, "EPERM"),
    ("open_tree", "open_tree", (-1, 1, 0), EPERM, "EFAULT"),
    ("mount_setattr", "mount_setattr", (-1, 0, 0, 0, 0), EPERM, "EINVAL"),
    ("pivot_root", "pivot_root", (0, 0), EPERM, "EPERM"),
    ("chroot", "chroot", (1,), EPERM, "EFAULT"),
    ("keyctl", "keyctl", (9999, 0, 0, 0, 0), EPERM, "EOPNOTSUPP"),
    ("add_key", "add_key", (0, 0, 0, 0, 0), EPERM, "EFAULT"),
    ("request_key", "request_key", (0, 0, 0, 0), EPERM, "EFAULT"),
    ("bpf", "bpf", (9999, 0, 0), EPERM, "EINVAL"),
    ("perf_event_open", "perf_event_open", (0, 0, -1, -1, 0), EPERM, "EFAULT"),
    ("userfaultfd", "userfaultfd", (0xfffff,), EPERM, "EINVAL"),
    ("io_uring_setup", "io_uring_setup", (0, 0), EPERM, "EFAULT"),
    ("io_uring_enter", "io_uring_enter", (-1, 0, 0, 0, 0, 0), EPERM, "EBADF"),
    ("io_uring_register", "io_uring_register", (-1, 0, 0, 0), EPERM, "EINVAL"),
    ("ptrace", "ptrace", (9999, 0, 0, 0), EPERM, "ESRCH"),
    ("process_vm_readv", "process_vm_readv", (0, 0, 1, 0, 1, 0), EPERM, "EFAULT"),
    ("process_vm_writev", "process_vm_writev", (0, 0, 1, 0, 1, 0), EPERM, "EFAULT"),
    ("kcmp", "kcmp", (0, 0, 9999, 0, 0), EPERM, "ESRCH"),
    ("pidfd_getfd", "pidfd_getfd", (-1, 0, 0), DENIED, "EBADF"),
    ("open_by_handle_at", "open_by_handle_at", (-1, 0, 0), EPERM, "EFAULT"),
    ("name_to_handle_at", "name_to_handle_at", (-1, 0, 0, 0, 0), DENIED, "EFAULT"),
    ("kexec_load", "kexec_load", (0, 0, 0, 0xffff0000), EPERM, "ENOSYS"),
    ("kexec_file_load", "kexec_file_load", (-1, -1, 0, 0, 0xffff), EPERM, "ENOSYS"),
    ("init_module", "init_module", (0, 0, 0), EPERM, "ENOSYS"),
    ("finit_module", "finit_module", (-1, 0, 0xffff), EPERM, "ENOSYS"),
    ("delete_module", "delete_module", (0, 0), EPERM, "ENOSYS"),
    ("acct", "acct", (1,), EPERM, "EPERM"),
    ("swapon", "swapon", (0, 0), EPERM, "EPERM"),
    ("swapoff", "swapoff", (0,), EPERM, "EPERM"),
    ("reboot", "reboot", (0, 0, 0, 0), EPERM, "EPERM"),
    ("iopl", "iopl", (4,), EPERM, "ENOSYS"),
    ("ioperm", "ioperm", (0xffffffff, 1, 0), EPERM, "ENOSYS"),
    ("modify_ldt", "modify_ldt", (0, 0, 0), EPERM, "ok"),
    ("quotactl", "quotactl", (0, 0, 0, 0), EPERM, "ENODEV"),
    ("syslog", "syslog", (9999, 0, 0), EPERM, "EPERM"),
    ("lookup_dcookie", "lookup_dcookie", (0, 0, 0), DENIED, "ENOSYS"),
    ("vhangup", "vhangup", (), DENIED, "EPERM"),
    ("uselib", "uselib", (0,), DENIED, "ENOSYS"),
    ("settimeofday", "settimeofday", (0, 1), DENIED, "EFAULT"),
    ("clock_settime", "clock_settime", (9999, 0), DENIED, "EINVAL"),
    ("clock_adjtime", "clock_adjtime", (9999, 0), DENIED, "EFAULT"),
    ("adjtimex", "adjtimex", (0,), DENIED, "EFAULT"),
    ("clone3", "clone3", (0, 0), frozenset({"ENOSYS"}), "EINVAL"),
    ("clone_newuser", "clone", (CLONE_NEWUSER | CLONE_THREAD, 0, 0, 0, 0), EPERM, "EINVAL"),
    ("personality_read_implies_exec", "personality", (0x0400000,), EPERM, "ok"),
] + [
    # unshare of every namespace kind, with an extra invalid flag bit (1) so
    # that the kernel itself would say EINVAL
    ("unshare_" + kind, "unshare", (flag | 1,), EPERM, "EINVAL") for kind, flag in NS_FLAGS.items()
]

# Refused only by the allow-list (default ENOSYS): calls no sandboxed program
# needs, which a deny-list would let through.
# fanotify_init already fails natively with EPERM for an unprivileged user,
# so only the allow-list's ENOSYS tells that the filter refused it.
TRY_UNLISTED = [
    ("quotactl_fd", "quotactl_fd", (-1, 0, 0, 0), DENIED, "EBADF"),
    ("memfd_secret", "memfd_secret", (0xffff,), DENIED, "EINVAL"),
    ("fanotify_init", "fanotify_init", (0xffffffff, 0), frozenset({"ENOSYS"}), "EPERM"),
]

TRY_CODE = ERRNO_HELPER + '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_%(name)s = %(nr)d
ctypes.set_errno(0)
r = libc.syscall(ctypes.c_long(SYS_%(name)s), *[ctypes.c_long(a) for a in %(args)r])
err = ctypes.get_errno()
if r == 0 and SYS_%(name)s in (%(clone)d,):
    os._exit(0)  # a child, if clone had worked
if r != -1 and "%(name)s" == "personality":
    libc.syscall(ctypes.c_long(SYS_%(name)s), ctypes.c_long(0))
print("RESULT", "returned" if r != -1 else errno.errorcode.get(err, str(err)), r)
'''


def try_code(name, args):
    return TRY_CODE % {"name": name, "nr": NR64[name], "args": tuple(args), "clone": NR64["clone"]}


def try_attacks(table):
    return [Attack("try_" + case, CAT, try_code(name, args), exp,
                   doc="natively (no filter, unprivileged): %s" % native)
            for case, name, args, exp, native in table if name in NR64]


# ---- other ABIs: a tiny C program, compiled with the host's gcc inside the sandbox ---------

ABI_PROBE_C = r'''
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* abi_probe x32|i386 NR [ARG...]: make one system call through another ABI */
int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    long nr = strtol(argv[2], NULL, 0), a[6] = {0}, ret;
    for (int i = 3; i < argc && i < 9; i++)
        a[i - 3] = strtol(argv[i], NULL, 0);
    if (strcmp(argv[1], "x32") == 0) {
        register long r10 __asm__("r10") = a[3], r8 __asm__("r8") = a[4], r9 __asm__("r9") = a[5];
        __asm__ volatile("syscall" : "=a"(ret)
                         : "a"(nr | 0x40000000L), "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9)
                         : "rcx", "r11", "memory");
    } else {
        __asm__ volatile("int $0x80" : "=a"(ret)
                         : "a"(nr), "b"(a[0]), "c"(a[1]), "d"(a[2]), "S"(a[3]), "D"(a[4])
                         : "memory");
    }
    printf("returned %ld\n", ret);
    return 0;
}
'''

ABI_CODE = '''
import os, signal, subprocess
exe = "/tmp/abi_probe"
if not os.path.exists(exe):
    open("/tmp/abi_probe.c", "w").write(%(src)r)
    c = subprocess.run(["gcc", "-O0", "-o", exe, "/tmp/abi_probe.c"], capture_output=True, text=True)
    print(c.stdout, c.stderr)
p = subprocess.run([exe, %(abi)r, str(%(nr)d)] + [str(a) for a in %(args)r], capture_output=True, text=True)
print(p.stdout, p.stderr)
if p.returncode < 0:
    print("RESULT", signal.Signals(-p.returncode).name)
else:
    print("RESULT", "exit", p.returncode, p.stdout.strip())
'''

SIGSYS = frozenset({"SIGSYS"})


def abi_attacks():
    out = [Attack("x32_getpid", CAT, ABI_CODE % {"src": ABI_PROBE_C, "abi": "x32", "nr": NRX32["getpid"], "args": ()},
                  SIGSYS, doc="even a harmless call: the whole x32 ABI is refused"),
           Attack("i386_getpid", CAT, ABI_CODE % {"src": ABI_PROBE_C, "abi": "i386", "nr": NR32["getpid"], "args": ()},
                  SIGSYS, doc="even a harmless call: the whole i386 ABI is refused")]
    seen = set()
    for case, name, args, _, _ in TRY_SYSCALLS:
        if case in seen:
            continue
        seen.add(case)
        if name in NRX32:
            out.append(Attack("x32_" + case, CAT, ABI_CODE % {"src": ABI_PROBE_C, "abi": "x32", "nr": NRX32[name],
                                                              "args": tuple(args)}, SIGSYS))
        if name in NR32:
            out.append(Attack("i386_" + case, CAT, ABI_CODE % {"src": ABI_PROBE_C, "abi": "i386", "nr": NR32[name],
                                                               "args": tuple(args)}, SIGSYS))
    # i386 has no socket(): socketcall(SYS_SOCKET, {AF_NETLINK, SOCK_RAW, 0}) with a bad pointer
    out.append(Attack("i386_socketcall_netlink", CAT, ABI_CODE % {"src": ABI_PROBE_C, "abi": "i386",
                                                                  "nr": NR32["socketcall"], "args": (1, 0)}, SIGSYS))
    out.append(Attack("x32_via_ctypes_syscall", CAT, '''
import signal, subprocess, sys
code = "import ctypes; ctypes.CDLL(None).syscall(0x40000000 | %d, 0x10000000, 0, 0, 0, 0)"
p = subprocess.run([sys.executable, "-c", code])
print("RESULT", signal.Signals(-p.returncode).name if p.returncode < 0 else "exit %%d" %% p.returncode)
''' % NRX32["unshare"], SIGSYS, doc="no compiler needed: glibc's syscall() passes the x32 bit through"))
    return out


# ---- the classic games, written as a model would ------------------------------------------

def failed_cmd(name, cmd, must_say="", doc=""):
    """A shell command that must fail (and, with must_say, say why)."""
    code = '''
out=$( { %s ; } 2>&1 ); rc=$?
echo "$out" | tail -3
if [ $rc -eq 0 ]; then echo "RESULT succeeded"
elif [ -n %s ] && ! echo "$out" | grep -q -- %s; then echo "RESULT failed-otherwise $rc"
else echo "RESULT failed $rc"; fi
''' % (cmd, shlex.quote(must_say), shlex.quote(must_say))
    return Attack(name, CAT, code, frozenset({"failed"}), language="bash", doc=doc)


OTHERS = [
    failed_cmd("unshare_cmd_map_root", "unshare -Ur id",
               doc="user namespace with root mapped: the door to netfilter/fs_context bugs"),
    failed_cmd("unshare_cmd_net_mount", "unshare -rnm sh -c 'mount -t tmpfs x /tmp && id'"),
    failed_cmd("nsenter_pid1", "nsenter -t 1 -a id"),
    failed_cmd("chroot_cmd", "/usr/sbin/chroot /tmp /bin/true", must_say="Operation not permitted"),
    failed_cmd("su_root", "su -c id root < /dev/null"),
    failed_cmd("setuid_mount_binary", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m",
               doc="a setuid-root binary: nosuid /usr and no_new_privs make it run as the user"),
    failed_cmd("capsh_raise_caps", "/usr/sbin/capsh --caps=cap_sys_admin+eip -- -c id", must_say="Unable to set capabilities"),
    failed_cmd("setarch_no_aslr", "setarch x86_64 -R true", doc="personality(ADDR_NO_RANDOMIZE)"),
    failed_cmd("strace_pid1", "timeout 2 strace -p 1 -e trace=none -o /dev/null", must_say="Operation not permitted"),
    failed_cmd("gdb_attach_pid1", "gdb -p 1 -batch -ex 'info registers' 2>&1 | grep -q rip"),
    failed_cmd("dmesg_kernel_log", "dmesg | head -1 | grep -q ."),
    Attack("clone_newuser_sigchld", CAT, ERRNO_HELPER + '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
pid = libc.syscall(%d, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)
if pid == 0:
    os._exit(0)
print("RESULT", "cloned" if pid > 0 else errno.errorcode[ctypes.get_errno()])
''' % NR64["clone"], EPERM),
    Attack("clone3_newuser_struct", CAT, ERRNO_HELPER + '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
class CloneArgs(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal",
                                               "stack", "stack_size", "tls", "set_tid", "set_tid_size", "cgroup")]
args = CloneArgs(flags=0x10000000, exit_signal=17)
pid = libc.syscall(%d, ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
if pid == 0:
    os._exit(0)
print("RESULT", "cloned" if pid > 0 else errno.errorcode[ctypes.get_errno()])
''' % NR64["clone3"], frozenset({"ENOSYS"}), doc="ENOSYS, so that glibc falls back to clone, whose flags the filter sees"),
    Attack("io_uring_setup_real", CAT, ERRNO_HELPER + '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
params = (ctypes.c_char * 120)()
fd = libc.syscall(%d, 8, params)
print("RESULT", "ring" if fd >= 0 else errno.errorcode[ctypes.get_errno()])
''' % NR64["io_uring_setup"], EPERM, doc="io_uring is enabled for unprivileged users on this host (io_uring_disabled=0)"),
    Attack("userfaultfd_real", CAT, ERRNO_HELPER + '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(%d, os.O_CLOEXEC | os.O_NONBLOCK | 1)  # UFFD_USER_MODE_ONLY
res = ["uffd" if fd >= 0 else errno.errorcode[ctypes.get_errno()]]
try:
    os.open("/dev/userfaultfd", os.O_RDWR)
    res.append("devnode-opened")
except OSError as e:
    res.append(errname(e))
print("RESULT", *res)
''' % NR64["userfaultfd"], EPERM),
    Attack("bpf_map_create", CAT, ERRNO_HELPER + '''
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
attr = ctypes.create_string_buffer(struct.pack("IIII", 2, 4, 8, 16) + bytes(112))  # ARRAY map
fd = libc.syscall(%d, 0, attr, 128)  # BPF_MAP_CREATE
print("RESULT", "map" if fd >= 0 else errno.errorcode[ctypes.get_errno()])
''' % NR64["bpf"], EPERM),
    Attack("keyctl_join_session", CAT, ERRNO_HELPER + '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r = libc.syscall(%d, 1, b"evil-keyring")  # KEYCTL_JOIN_SESSION_KEYRING
print("RESULT", "joined" if r >= 0 else errno.errorcode[ctypes.get_errno()])
''' % NR64["keyctl"], EPERM, doc="keyrings are not namespaced: a shared kernel object"),
    Attack("perf_event_open_cycles", CAT, ERRNO_HELPER + '''
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
attr = ctypes.create_string_buffer(struct.pack("IIQ", 0, 128, 0) + bytes(112))  # HW cpu-cycles
fd = libc.syscall(%d, attr, 0, -1, -1, 0)
print("RESULT", "opened" if fd >= 0 else errno.errorcode[ctypes.get_errno()])
''' % NR64["perf_event_open"], EPERM),
    Attack("ptrace_attach_pid1", CAT, ERRNO_HELPER + '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(16, 1, 0, 0)  # PTRACE_ATTACH to the agent
print("RESULT", "attached" if r == 0 else errno.errorcode[ctypes.get_errno()])
''', EPERM),
    Attack("ptrace_traceme", CAT, ERRNO_HELPER + '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(0, 0, 0, 0)  # PTRACE_TRACEME
print("RESULT", "traced" if r == 0 else errno.errorcode[ctypes.get_errno()])
''', EPERM),
    Attack("process_vm_readv_pid1", CAT, ERRNO_HELPER + '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(4096)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 4096)
remote = iovec(0x400000, 4096)
n = libc.process_vm_readv(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
print("RESULT", "read" if n >= 0 else errno.errorcode[ctypes.get_errno()])
''', EPERM),
    Attack("shocker_open_by_handle", CAT, ERRNO_HELPER + '''
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
# a file handle for inode 2 (the root of most ext4 filesystems), as "Shocker" forged it
handle = ctypes.create_string_buffer(struct.pack("iiQ", 8, 1, 2))
fd = libc.open_by_handle_at(3, handle, 0)
res = ["opened" if fd >= 0 else errno.errorcode[ctypes.get_errno()]]
h2 = ctypes.create_string_buffer(128)
struct.pack_into("i", h2, 0, 120)
mount_id = ctypes.c_int()
r = libc.name_to_handle_at(-100, b"/usr", h2, ctypes.byref(mount_id), 0)
res.append("handle" if r == 0 else errno.errorcode[ctypes.get_errno()])
print("RESULT", *res)
''', EPERM),
    Attack("kill_pid1_agent", CAT, ERRNO_HELPER + '''
import os, signal
try:
    os.kill(1, signal.SIGKILL)
    print("RESULT killed")
except OSError as e:
    print("RESULT", errname(e))
''', EPERM),
    Attack("setuid_root", CAT, ERRNO_HELPER + '''
import os
res = []
for f in (lambda: os.setuid(0), lambda: os.setresuid(0, 0, 0), lambda: os.setgid(0), lambda: os.setgroups([0])):
    try:
        f()
        res.append("ok")
    except OSError as e:
        res.append(errname(e))
print("RESULT", "/".join(sorted(set(res))), os.getuid(), os.geteuid())
''', frozenset({"EPERM"})),
    Attack("capset_full", CAT, ERRNO_HELPER + '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)      # _LINUX_CAPABILITY_VERSION_3, this process
data = (ctypes.c_uint32 * 6)(*([0xffffffff] * 6))  # effective, permitted, inheritable x 2
r = libc.capset(hdr, data)
print("RESULT", "raised" if r == 0 else errno.errorcode[ctypes.get_errno()])
''', EPERM),
    Attack("drop_no_new_privs", CAT, ERRNO_HELPER + '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r = libc.prctl(38, 0, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS, 0
status = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\\t" in l)
print("RESULT", "dropped" if r == 0 else errno.errorcode[ctypes.get_errno()], status["NoNewPrivs"].strip())
''', frozenset({"EINVAL"}), doc="no_new_privs cannot be unset"),
    Attack("stack_allow_all_filter", CAT, ERRNO_HELPER + '''
import ctypes, struct, subprocess, sys
child = r"""
import ctypes, errno, struct
libc = ctypes.CDLL(None, use_errno=True)
insn = struct.pack("HBBI", 0x06, 0, 0, 0x7fff0000)  # BPF_RET | BPF_K, SECCOMP_RET_ALLOW
prog_buf = ctypes.create_string_buffer(insn)
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
prog = Prog(1, ctypes.cast(prog_buf, ctypes.c_void_p))
r = libc.syscall(317, 1, 0, ctypes.byref(prog))  # seccomp(SECCOMP_SET_MODE_FILTER)
installed = "installed" if r == 0 else errno.errorcode[ctypes.get_errno()]
r = libc.syscall(272, 0x10000000)  # unshare(CLONE_NEWUSER)
print(installed, "unshared" if r == 0 else errno.errorcode[ctypes.get_errno()])
"""
p = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
print(p.stdout, p.stderr)
installed, result = p.stdout.split()
print("RESULT", result, installed)
''', EPERM, doc="a second, allow-all filter stacks under the jail's: the strictest answer wins"),
    Attack("oom_score_adj_unkillable", CAT, ERRNO_HELPER + '''
try:
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("-1000")
    print("RESULT lowered")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EACCES", "EPERM"}), doc="making itself the OOM killer's last choice"),
    Attack("raise_hard_rlimits", CAT, '''
import resource
res = []
for name in ("RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_MEMLOCK"):
    lim = getattr(resource, name)
    soft, hard = resource.getrlimit(lim)
    try:
        resource.setrlimit(lim, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        res.append(name + "=raised")
    except (ValueError, OSError) as e:
        res.append(type(e).__name__)
print("RESULT", "refused" if all(not r.endswith("raised") for r in res) else "raised", *res)
''', frozenset({"refused"})),
    Attack("realtime_scheduler", CAT, ERRNO_HELPER + '''
import os
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(99))
    print("RESULT realtime")
except OSError as e:
    print("RESULT", errname(e))
''', EPERM, doc="SCHED_FIFO 99 would starve the host's own threads"),
    Attack("nice_minus_20", CAT, ERRNO_HELPER + '''
import os
try:
    os.setpriority(os.PRIO_PROCESS, 0, -20)
    print("RESULT raised-priority")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EACCES", "EPERM"})),
    Attack("ioprio_realtime", CAT, ERRNO_HELPER + '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r = libc.syscall(%d, 1, 0, (1 << 13) | 0)  # ioprio_set(PROCESS, self, RT class, level 0)
print("RESULT", "set" if r == 0 else errno.errorcode[ctypes.get_errno()])
''' % NR64["ioprio_set"], frozenset({"EPERM", "ENOSYS"})),
    Attack("seccomp_status_everywhere", CAT, '''
import subprocess
seen = set()
for cmd in (["cat", "/proc/self/status"], ["sh", "-c", "cat /proc/$$/status"],
            ["python3", "-c", "print(open('/proc/self/status').read())"]):
    st = dict(l.split(":\\t", 1) for l in subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()
              if ":\\t" in l)
    seen.add((st["Seccomp"].strip(), st["NoNewPrivs"].strip(), st["CapEff"].strip(), st["CapBnd"].strip(),
              st["Uid"].split()[0]))
print("RESULT", "jailed" if seen == {("2", "1", "0" * 16, "0" * 16, "1000")} else "loose", seen)
''', frozenset({"jailed"}), doc="every process user code starts carries the filter, no caps, uid 1000"),
]

# socket families that autoload kernel modules or open rarely-audited code
FAMILIES = {"AF_APPLETALK": 5, "AF_AX25": 3, "AF_IPX": 4, "AF_X25": 9, "AF_KEY": 15, "AF_RDS": 21,
            "AF_CAN": 29, "AF_TIPC": 30, "AF_BLUETOOTH": 31, "AF_ALG": 38, "AF_NFC": 39, "AF_XDP": 44,
            "AF_MCTP": 45, "AF_SMC": 43, "AF_LLC": 26, "AF_UNSPEC": 0}

SOCKET_FAMILIES = [Attack("socket_family_" + name.lower(), CAT, ERRNO_HELPER + '''
import socket
for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET):
    try:
        socket.socket(%d, kind, 0)
        print("RESULT opened", kind)
        break
    except OSError as e:
        if e.errno != errno.EAFNOSUPPORT:
            print("RESULT", errname(e), kind)
            break
else:
    print("RESULT EAFNOSUPPORT")
''' % fam, frozenset({"EAFNOSUPPORT"}), doc="socket() of an unused family can make the host kernel load its module")
    for name, fam in FAMILIES.items()]

ATTACKS = try_attacks(TRY_SYSCALLS) + try_attacks(TRY_UNLISTED) + abi_attacks() + OTHERS + SOCKET_FAMILIES


@pytest.mark.parametrize("attack", params(ATTACKS))
def test_kernel(arena, attack):
    arena.attack(attack)


NATIVE_PROBE = '''
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
out = {}
for case, nr, args in json.loads(sys.argv[1]):
    pid = os.fork()  # each call in a child of its own: nothing it does can stick
    if pid == 0:
        ctypes.set_errno(0)
        r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
        e = ctypes.get_errno()
        os.write(1, (json.dumps([case, "ok" if r != -1 else errno.errorcode.get(e, str(e))]) + "\\n").encode())
        os._exit(0)
    os.waitpid(pid, 0)
'''


def test_try_syscall_native_baseline():
    """The try-syscall arguments, outside any sandbox, as an unprivileged user
    (uid 65534): harmless, and for most calls an errno other than the
    filter's. That difference is what makes a sandboxed EPERM/ENOSYS proof
    that the filter, and not the kernel's own checks, refused the call."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to uid 65534")
    table = [(c, NR64[n], list(a)) for c, n, a, _, _ in TRY_SYSCALLS + TRY_UNLISTED if n in NR64]
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                        "/usr/bin/python3", "-c", NATIVE_PROBE, json.dumps(table)],
                       capture_output=True, text=True, timeout=60)
    native = dict(json.loads(line) for line in p.stdout.splitlines())
    assert len(native) == len(table), p.stderr
    want = {c: nat for c, _, _, _, nat in TRY_SYSCALLS + TRY_UNLISTED}
    distinct = {c for c, _, _, exp, _ in TRY_SYSCALLS + TRY_UNLISTED if native[c] not in exp}
    print("native results:", native)
    print("%d of %d calls are told apart from the filter's answer" % (len(distinct), len(native)))
    alias = {"ENOTSUP": "EOPNOTSUPP"}
    got = {c: alias.get(v, v) for c, v in native.items()}
    assert got == want, {c: (got[c], want[c]) for c in got if got[c] != want[c]}
