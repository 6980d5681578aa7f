"""Filesystem: the sandbox's view is fixed, read-only outside its scratch
directories, and no path (walked, linked, remounted or handed to the file
API) leads to the host.
"""

import pytest

import airlock
from seclib import ERRNO_HELPER, Attack, params

CAT = "filesystem"

DENIED = frozenset({"EACCES", "EPERM", "EROFS"})
MASKED = frozenset({"absent", "masked"})


def fs_attack(name, body, expect, **kw):
    return Attack(name, CAT, ERRNO_HELPER + body, frozenset(expect), **kw)


def try_write(name, path, data="x", expect=DENIED, **kw):
    return fs_attack(name, '''
try:
    with open(%r, "w") as f:
        f.write(%r)
    print("RESULT written")
except OSError as e:
    print("RESULT", errname(e))
''' % (path, data), expect, **kw)


def masked_read(name, path, **kw):
    """A /proc file that leaks host kernel state: absent, or masked by /dev/null."""
    return fs_attack(name, '''
import os, stat
p = %r
if not os.path.exists(p):
    print("RESULT absent")
else:
    st = os.stat(p)
    try:
        data = open(p, "rb").read(4096)
        masked = stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
        print("RESULT", "masked" if masked and not data else "readable", len(data), data[:120])
    except OSError as e:
        print("RESULT", errname(e))
''' % path, MASKED | kw.pop("also", set()), **kw)


RUNNER = "/opt/airlock/airlock_runner.py"


def _sandbox_sha(sb, path):
    r = sb.run_code("import hashlib\ntry:\n    print(hashlib.sha256(open(%r, 'rb').read()).hexdigest())\n"
                    "except OSError as e:\n    print(type(e).__name__)" % path, timeout=10)
    return r.stdout.strip()


def _api_refused(call, codes=("path_escape", "invalid_request", "not_found", "path_forbidden")):
    try:
        res = call()
    except airlock.AirlockError as e:
        assert e.code in codes, "refused, but with %r" % (e,)
        return e
    raise AssertionError("the file API did it: %r" % (res,))


# ---- SDK-level follow-ups: the attack code plants links, the file API is the target ---------

def then_upload_through_dir_link(target_dir):
    def then(arena, sb, outcome):
        _api_refused(lambda: sb.upload(b"\x7fELF evil", "/data/lnk/evil.so"))
        r = sb.run_code("import os; print(os.path.exists(%r))" % (target_dir + "/evil.so"), timeout=10)
        assert r.stdout == "False\n", r
    return then


def then_upload_leaf_link(arena, sb, outcome):
    before = _sandbox_sha(sb, RUNNER)
    try:
        sb.upload(b"import os; os.system('evil')\n", "/data/leaf")
    except airlock.AirlockError:
        pass  # refusing is fine; writing through the link is not
    assert _sandbox_sha(sb, RUNNER) == before, "the upload wrote through a symlink into the runner"
    r = sb.run_code("import os; print(os.path.islink('/data/leaf'), os.path.isfile('/data/leaf'))", timeout=10)
    assert r.stdout in ("False True\n", "True True\n"), r


def then_upload_paths(paths):
    def then(arena, sb, outcome):
        for p in paths:
            _api_refused(lambda: sb.upload(b"evil", p))
    return then


def then_download_refused_or_empty(path):
    def then(arena, sb, outcome):
        try:
            data = sb.download(path)
        except airlock.AirlockError as e:
            assert e.code in ("path_escape", "invalid_request", "not_found", "path_forbidden"), e
            return
        assert data == b"", "read through the agent: %r" % data[:200]
    return then


def then_download_refused(path, codes=("path_escape",)):
    def then(arena, sb, outcome):
        import time
        t0 = time.monotonic()
        _api_refused(lambda: sb.download(path), codes)
        assert time.monotonic() - t0 < 5, "the refusal took %.1fs" % (time.monotonic() - t0)
    return then


def then_list_refused(arena, sb, outcome):
    _api_refused(lambda: sb.files.list("/data/p1root"), ("path_escape",))


def then_delete_through_link(arena, sb, outcome):
    before = _sandbox_sha(sb, RUNNER)
    try:
        sb.files.remove("/data/optlink/airlock_runner.py")
    except airlock.AirlockError:
        pass
    try:
        sb.files.remove("/data/optlink", recursive=True)
    except airlock.AirlockError:
        pass
    assert _sandbox_sha(sb, RUNNER) == before


def then_hardlink_upload(arena, sb, outcome):
    sb.upload(b"replaced", "/data/hl")
    r = sb.run_code("print(open('/data/orig').read())", timeout=10)
    assert r.stdout == "original\n", "the upload wrote through a hard link: %r" % r.stdout


ATTACKS = [
    # -- /proc walks toward the host -------------------------------------------------------
    fs_attack("proc1_root_walk", '''
import os
try:
    print("RESULT listed", os.listdir("/proc/1/root"))
except OSError as e:
    print("RESULT", errname(e))
''', {"EACCES"}, doc="the agent (PID 1) is root in the sandbox: its root link is not the user's"),
    fs_attack("proc1_cwd_walk", '''
import os
try:
    print("RESULT listed", os.listdir("/proc/1/cwd"))
except OSError as e:
    print("RESULT", errname(e))
''', {"EACCES"}),
    fs_attack("proc_all_root_cwd_walk", '''
import os
mine = os.stat("/")
escapes, seen = [], 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    for link in ("root", "cwd"):
        p = "/proc/%s/%s" % (pid, link)
        try:
            st = os.stat(p)
            target = os.readlink(p)
        except OSError:
            continue
        seen += 1
        here = os.stat(target) if os.path.exists(target) else None
        if (link == "root" and (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino)) or \\
           here is None or (here.st_dev, here.st_ino) != (st.st_dev, st.st_ino):
            escapes.append((p, target))
print("RESULT", "contained" if not escapes else "escaped", seen, escapes)
''', {"contained"}, doc="every root/cwd link readable is this sandbox's own root or a path in it"),
    fs_attack("dotdot_past_root", '''
import os
os.chdir("/")
for _ in range(64):
    os.chdir("..")
a, b = os.stat("."), os.stat("/")
c = os.stat("/proc/self/root/../../..")
print("RESULT", "contained" if (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev) == (c.st_ino, c.st_dev) else "escaped")
''', {"contained"}),
    fs_attack("chroot_escape_classic", '''
import os
os.makedirs("/tmp/jail", exist_ok=True)
try:
    os.chroot("/tmp/jail")
    for _ in range(64):
        os.chdir("..")
    os.chroot(".")
    print("RESULT escaped", os.listdir("/"))
except OSError as e:
    print("RESULT", errname(e))
''', {"EPERM"}),
    fs_attack("leaked_directory_fds", '''
import os, stat
leaks = []
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        fds = os.listdir("/proc/%s/fd" % pid)
    except OSError:
        continue
    for fd in fds:
        p = "/proc/%s/fd/%s" % (pid, fd)
        try:
            st = os.stat(p)
            target = os.readlink(p)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        here = os.stat(target) if target.startswith("/") and os.path.exists(target) else None
        if here is None or (here.st_dev, here.st_ino) != (st.st_dev, st.st_ino):
            leaks.append((p, target))
print("RESULT", "clean" if not leaks else "leaked", leaks)
''', {"clean"}, doc="CVE-2024-21626: a host directory fd inherited by a sandboxed process"),
    # -- overwriting what runs -------------------------------------------------------------
    fs_attack("proc_self_exe_overwrite", '''
try:
    with open("/proc/self/exe", "r+b") as f:
        f.write(b"#!/bin/sh\\necho pwned\\n")
    print("RESULT overwritten")
except OSError as e:
    print("RESULT", errname(e))
''', DENIED | {"ETXTBSY"}, doc="CVE-2019-5736 (runc): the interpreter is the host's /usr/bin/python3"),
    fs_attack("proc_self_exe_reopen_fd", '''
import os
fd = os.open("/proc/self/exe", os.O_PATH)
try:
    w = os.open("/proc/self/fd/%d" % fd, os.O_WRONLY)
    print("RESULT opened-for-write")
except OSError as e:
    print("RESULT", errname(e))
''', DENIED | {"ETXTBSY"}),
    fs_attack("proc1_exe_overwrite", '''
try:
    open("/proc/1/exe", "r+b")
    print("RESULT opened")
except OSError as e:
    print("RESULT", errname(e))
''', DENIED | {"ETXTBSY"}, doc="the agent binary"),
    Attack("cp_over_python", CAT, '''
out=$(cp /bin/sh /usr/bin/python3 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] && echo "RESULT replaced" || echo "RESULT failed"
''', frozenset({"failed"}), language="bash"),
    try_write("write_runner", RUNNER, "import os\n"),
    try_write("write_etc_passwd", "/etc/passwd", "root::0:0::/root:/bin/sh\n"),
    try_write("write_etc_ld_preload", "/etc/ld.so.preload", "/tmp/evil.so\n"),
    try_write("write_usr_lib", "/usr/lib/evil.so"),
    try_write("write_root_dir", "/evil"),
    try_write("write_dev", "/dev/evil"),
    fs_attack("dirty_pipe_into_runner", '''
import hashlib, os
target = "/opt/airlock/airlock_runner.py"
before = hashlib.sha256(open(target, "rb").read()).hexdigest()
r, w = os.pipe()
page = 65536
os.write(w, b"A" * page)          # fill the pipe's buffers, then drain them: the
os.read(r, page)                  # "can merge" flag of CVE-2022-0847 is left set
fd = os.open(target, os.O_RDONLY)
try:
    os.splice(fd, w, 1, offset_src=0)
    os.write(w, b"import os; os.system('pwned')#")
except OSError as e:
    print("splice:", errname(e))
after = hashlib.sha256(open(target, "rb").read()).hexdigest()
print("RESULT", "unchanged" if before == after else "modified")
''', {"unchanged"}, doc="Dirty Pipe against a read-only bind (fixed in this kernel; the case keeps it so)"),
    # -- mounts and devices ------------------------------------------------------------------
    Attack("remount_root_rw", CAT, '''
out=$(mount -o remount,rw / 2>&1); rc=$?
out2=$(mount -o remount,rw /usr 2>&1); rc2=$?
echo "$out $out2"
[ $rc -eq 0 -o $rc2 -eq 0 ] && echo "RESULT remounted" || echo "RESULT failed"
''', frozenset({"failed"}), language="bash"),
    fs_attack("remount_usr_ctypes", '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
MS_REMOUNT, MS_BIND = 32, 4096
r = libc.mount(None, b"/usr", None, MS_REMOUNT | MS_BIND, None)
print("RESULT", "remounted" if r == 0 else errno.errorcode[ctypes.get_errno()])
''', {"EPERM"}),
    fs_attack("mount_new_proc", '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs("/tmp/p", exist_ok=True)
r = libc.mount(b"proc", b"/tmp/p", b"proc", 0, None)
print("RESULT", "mounted" if r == 0 else errno.errorcode[ctypes.get_errno()])
''', {"EPERM"}),
    fs_attack("cgroup_release_agent", '''
import ctypes, glob, os
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs("/tmp/cg", exist_ok=True)
r = libc.mount(b"cgroup", b"/tmp/cg", b"cgroup", 0, b"rdma")
res = ["mounted" if r == 0 else errno.errorcode[ctypes.get_errno()]]
agents = glob.glob("/sys/fs/cgroup/*/release_agent") + glob.glob("/tmp/cg/release_agent")
res.append("agents:%d" % len(agents))
print("RESULT", *res)
''', {"EPERM"}, doc="CVE-2022-0492: a cgroup v1 release_agent runs as root on the host"),
    # /sys is a read-only tmpfs with the sandbox's CPU list only (src/jail/sysview.c):
    # no sysfs, no cgroupfs, nothing writable
    fs_attack("sys_cpu_view_only", '''
import os
found = sorted(os.path.join(d, f) for d, ds, fs in os.walk("/sys") for f in fs)
try:
    open("/sys/devices/system/cpu/online", "w").write("0-63")
    wrote = "written"
except OSError as e:
    wrote = errname(e)
ok = found == ["/sys/devices/system/cpu/online", "/sys/devices/system/cpu/possible", "/sys/devices/system/cpu/present"]
print("RESULT", "cpu-view-only" if ok and not os.path.exists("/sys/fs") and wrote != "written" else "other %r %s" % (found, wrote))
''', {"cpu-view-only"}),
    fs_attack("meminfo_read_only", '''
import os
try:
    open("/proc/meminfo", "r+").write("MemTotal: 1 kB\\n")
    print("RESULT written")
except OSError as e:
    print("RESULT", errname(e))
''', {"EROFS", "EACCES"}),
    fs_attack("mknod_dev_mem", '''
import os, stat
try:
    os.mknod("/tmp/mem", stat.S_IFCHR | 0o666, os.makedev(1, 1))
    print("RESULT created")
except OSError as e:
    print("RESULT", errname(e))
''', {"EPERM", "EACCES"}),  # EACCES: Landlock refuses make_char/make_block first; EPERM: no CAP_MKNOD
    fs_attack("mknod_host_disk", '''
import os, stat
dev = os.stat("/usr").st_dev   # the host disk /usr lives on
try:
    os.mknod("/tmp/disk", stat.S_IFBLK | 0o600, dev)
    print("RESULT created", open("/tmp/disk", "rb").read(512)[:16])
except OSError as e:
    print("RESULT", errname(e))
''', {"EPERM", "EACCES"}),  # EACCES: Landlock refuses make_char/make_block first; EPERM: no CAP_MKNOD
    Attack("mknod_cmd", CAT, '''
out=$(mknod /tmp/sda b 8 0 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] && echo "RESULT created" || echo "RESULT failed"
''', frozenset({"failed"}), language="bash"),
    fs_attack("dev_nodes_absent", '''
import os
present = [p for p in ("/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/vda", "/dev/sda", "/dev/nvme0n1",
                       "/dev/kvm", "/dev/net/tun", "/dev/fuse", "/dev/userfaultfd", "/dev/vsock",
                       "/dev/vhost-vsock", "/dev/cpu/0/msr", "/dev/dri", "/dev/mapper/control", "/dev/loop0",
                       "/dev/loop-control") if os.path.exists(p)]
print("RESULT", "none" if not present else "present", present)
''', {"none"}),
    # -- /proc/sys, sysrq, kernel info -----------------------------------------------------
    try_write("proc_sys_hostname", "/proc/sys/kernel/hostname", "evil"),
    try_write("proc_sys_core_pattern", "/proc/sys/kernel/core_pattern", "|/tmp/evil"),
    try_write("proc_sys_drop_caches", "/proc/sys/vm/drop_caches", "3"),
    try_write("proc_sys_ip_forward", "/proc/sys/net/ipv4/ip_forward", "1"),
    Attack("sysctl_cmd", CAT, '''
out=$(/usr/sbin/sysctl -w kernel.modprobe=/tmp/evil 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] && echo "RESULT changed" || echo "RESULT failed"
''', frozenset({"failed"}), language="bash"),
    fs_attack("sysrq_trigger", '''
import os, stat
p = "/proc/sysrq-trigger"
if not os.path.exists(p):
    print("RESULT absent")
else:
    st = os.stat(p)
    if stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3:
        print("RESULT masked")
    else:
        try:
            open(p, "w").write("h")
            print("RESULT written")
        except OSError as e:
            print("RESULT", errname(e))
''', {"absent", "masked", "EACCES", "EROFS"}),
    masked_read("kallsyms_masked", "/proc/kallsyms"),
    fs_attack("kallsyms_no_kernel_addresses", '''
import os
try:
    lines = open("/proc/kallsyms").read().splitlines()
    nonzero = [l for l in lines if l.split()[0].strip("0")]
    print("RESULT", "zeroed" if lines and not nonzero else ("masked" if not lines else "leaks"), len(nonzero))
except OSError as e:
    print("RESULT", errname(e))
''', {"zeroed", "masked", "ENOENT", "EACCES"}, doc="kptr_restrict hides the addresses even where the file is readable"),
    masked_read("sched_debug_masked", "/proc/sched_debug"),
    masked_read("proc_keys_masked", "/proc/keys"),
    masked_read("proc_timer_list_masked", "/proc/timer_list"),
    masked_read("proc_kcore_masked", "/proc/kcore"),
    fs_attack("proc_root_only_files", '''
res = {}
for p in ("/proc/kpageflags", "/proc/kpagecount", "/proc/kmsg", "/proc/slabinfo", "/proc/vmallocinfo",
          "/proc/1/environ", "/proc/1/mem", "/proc/1/maps", "/proc/1/fd"):
    try:
        res[p] = "read" if open(p, "rb").read(64) else "empty"   # empty: masked by /dev/null
    except OSError as e:
        res[p] = errname(e)
bad = {p: v for p, v in res.items() if v not in ("EACCES", "EPERM", "ENOENT", "EISDIR", "empty")}
print("RESULT", "denied" if not bad else "read", bad)
''', {"denied"}),
    fs_attack("proc_submounts_readonly", '''
ro = {}
for line in open("/proc/self/mountinfo"):
    f = line.split()
    if f[4] in ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"):
        ro[f[4]] = "ro" in f[5].split(",")
want = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys")
print("RESULT", "ro" if all(ro.get(p) for p in want) else "rw", ro)
''', {"ro"}, doc="as Docker: /proc/bus, fs, irq and sys are read-only mounts"),
    try_write("proc_irq_affinity", "/proc/irq/default_smp_affinity", "1"),
    # -- exec from the scratch space (/data and /dev/shm are noexec) -------------
    fs_attack("exec_from_data", '''
import os, shutil, subprocess
shutil.copy("/bin/true", "/data/tool")
os.chmod("/data/tool", 0o755)
try:
    subprocess.run(["/data/tool"], check=True)
    print("RESULT executed")
except OSError as e:
    print("RESULT", errname(e))
finally:
    os.unlink("/data/tool")
''', {"EACCES"}),
    fs_attack("exec_from_dev_shm", '''
import os, shutil, subprocess
shutil.copy("/bin/true", "/dev/shm/tool")
os.chmod("/dev/shm/tool", 0o755)
try:
    subprocess.run(["/dev/shm/tool"], check=True)
    print("RESULT executed")
except OSError as e:
    print("RESULT", errname(e))
finally:
    os.unlink("/dev/shm/tool")
''', {"EACCES"}),
    fs_attack("mmap_exec_from_dev_shm", '''
import mmap, os
fd = os.open("/dev/shm/code", os.O_RDWR | os.O_CREAT, 0o700)
os.write(fd, b"\\xc3" * 4096)
try:
    m = mmap.mmap(fd, 4096, prot=mmap.PROT_READ | mmap.PROT_EXEC)
    print("RESULT mapped-exec")
except OSError as e:
    print("RESULT", errname(e))
finally:
    os.close(fd)
    os.unlink("/dev/shm/code")
''', {"EPERM", "EACCES"}),
    # -- terminals ---------------------------------------------------------------------------
    fs_attack("tiocsti_inject", '''
import fcntl, os, termios
master, slave = os.openpty()
try:
    fcntl.ioctl(slave, termios.TIOCSTI, b"x")
    print("RESULT injected")
except OSError as e:
    print("RESULT", errname(e))
''', {"EPERM"}, doc="the kernel alone (legacy_tiocsti=1 here) would let it through"),
    fs_attack("tiocsti_high_bits", '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
master, slave = os.openpty()
c = ctypes.c_char(b"x")
r = libc.ioctl(slave, ctypes.c_ulong((1 << 32) | 0x5412), ctypes.byref(c))  # TIOCSTI with upper bits set
print("RESULT", "injected" if r == 0 else errno.errorcode[ctypes.get_errno()])
''', {"EPERM"}, doc="the kernel reads cmd as 32 bits; the filter must too"),
    fs_attack("tioclinux", '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
master, slave = os.openpty()
sub = ctypes.c_char(b"\\x02")  # TIOCL_SETSEL
r = libc.ioctl(slave, ctypes.c_ulong(0x541C), ctypes.byref(sub))
print("RESULT", "done" if r == 0 else errno.errorcode[ctypes.get_errno()])
''', {"EPERM"}),
    fs_attack("controlling_tty", '''
try:
    open("/dev/tty", "w").write("x")
    print("RESULT written")
except OSError as e:
    print("RESULT", errname(e))
''', {"ENXIO"}, doc="no controlling terminal to inject into"),
    # -- links against the file API (upload/download/list/delete run as root in the agent) ---
    fs_attack("upload_through_dir_symlink_usr", '''
import os
os.symlink("/usr/lib", "/data/lnk")
print("RESULT planted")
''', {"planted"}, then=then_upload_through_dir_link("/usr/lib")),
    fs_attack("upload_through_dir_symlink_proc1_root", '''
import os
os.symlink("/proc/1/root/etc", "/data/lnk")
print("RESULT planted")
''', {"planted"}, then=then_upload_through_dir_link("/etc")),
    fs_attack("upload_leaf_symlink_to_runner", '''
import os
os.symlink("/opt/airlock/airlock_runner.py", "/data/leaf")
print("RESULT planted")
''', {"planted"}, then=then_upload_leaf_link),
    fs_attack("upload_dotdot_and_foreign_paths", '''
print("RESULT none-needed")
''', {"none-needed"}, then=then_upload_paths(["/data/../../etc/evil", "../../../usr/lib/evil", "/proc/1/root/tmp/x",
                                              "/proc/sys/kernel/hostname", "/opt/airlock/airlock_runner.py",
                                              "/proc/self/root/etc/x", "/dev/shm/../../etc/x"])),
    fs_attack("download_through_symlink_proc1_environ", '''
import os
os.symlink("/proc/1/environ", "/data/env")
print("RESULT planted")
''', {"planted"}, then=then_download_refused_or_empty("/data/env"),
        doc="the agent reads as root; what a /proc file holds must not come back"),
    fs_attack("download_through_symlink_proc1_root", '''
import os
os.symlink("/proc/1/root", "/data/p1root")
print("RESULT planted")
''', {"planted"}, then=then_download_refused("/data/p1root/etc/hostname")),
    fs_attack("list_through_symlink_proc1_root", '''
import os
os.symlink("/proc/1/root", "/data/p1root")
print("RESULT planted")
''', {"planted"}, then=then_list_refused),
    fs_attack("download_magic_link_fd", '''
print("RESULT none-needed")
''', {"none-needed"}, then=then_download_refused("/proc/self/fd/0", ("path_escape", "invalid_request", "path_forbidden"))),
    fs_attack("download_fifo_hangs_agent", '''
import os
os.mkfifo("/data/fifo")
print("RESULT planted")
''', {"planted"}, then=then_download_refused("/data/fifo", ("invalid_request",)),
        doc="a FIFO nobody writes would block a reader forever"),
    fs_attack("download_dev_zero", '''
print("RESULT none-needed")
''', {"none-needed"}, then=then_download_refused("/dev/zero", ("invalid_request", "path_forbidden")),
        doc="an endless file"),
    fs_attack("delete_through_symlink_opt", '''
import os
os.symlink("/opt/airlock", "/data/optlink")
print("RESULT planted")
''', {"planted"}, then=then_delete_through_link),
    fs_attack("upload_through_hardlink", '''
import os
open("/data/orig", "w").write("original")
os.link("/data/orig", "/data/hl")
print("RESULT planted")
''', {"planted"}, then=then_hardlink_upload, doc="an upload replaces the name, never writes into a linked inode"),
    fs_attack("hardlink_to_readonly_file", '''
import os
res = []
for src in ("/opt/airlock/airlock_runner.py", "/etc/passwd", "/usr/bin/python3"):
    try:
        os.link(src, "/tmp/hl-" + os.path.basename(src))
        res.append("linked")
    except OSError as e:
        res.append(errname(e))
print("RESULT", "/".join(sorted(set(res))))
''', {"EXDEV"}),
]


@pytest.fixture
def clean_links(arena):
    """Links and FIFOs planted by one case must not confuse the next."""
    yield
    sb = arena._attacker
    if sb is not None:
        try:
            sb.run_code("import os\nfor n in ('lnk', 'leaf', 'env', 'p1root', 'fifo', 'optlink', 'orig', 'hl'):\n"
                        "    p = '/data/' + n\n    if os.path.lexists(p): os.unlink(p)\n", timeout=10)
        except airlock.AirlockError:
            pass


@pytest.mark.parametrize("attack", params(ATTACKS))
def test_filesystem(arena, clean_links, attack):
    arena.attack(attack)

