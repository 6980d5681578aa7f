"""The vm backend's arena: a real airlockd whose sandboxes are QEMU microvms.

The daemon runs with --vm-accel tcg (this machine's KVM cannot boot the guest;
test_vm_accel.py checks that `auto` finds that out) and --vm-dir pointing at
what `make vm` built. Every VM boots in seconds under TCG, so tests share a
module-scoped VM for checks that change nothing, and make their own only when
they must (a kill, a crash, a timeout).

Environment: as tests/e2e (AIRLOCK_DAEMON, AIRLOCK_AGENT, ...), plus
AIRLOCK_VM_DIR (default build/vm).
"""

import glob
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from e2e_support import Daemon, serving, wait_until, pid_alive, _comm  # noqa: E402,F401

VM_DIR = Path(os.environ.get("AIRLOCK_VM_DIR") or ROOT / "build" / "vm")


def vm_ready():
    need = [VM_DIR / "kernel" / "vmlinuz", VM_DIR / "initramfs.cpio", VM_DIR / "host.erofs"]
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        pytest.fail("the vm backend's files are missing (run `make vm`): %s" % ", ".join(missing))
    if not Path("/usr/bin/qemu-system-x86_64").exists():
        pytest.fail("qemu-system-x86_64 is missing (make deps installs qemu-system-x86)")


def vm_daemon(workdir, *extra):
    vm_ready()
    return Daemon(workdir, extra_args=["--vm-dir", str(VM_DIR), "--vm-accel", "tcg", "--pool-size", "0",
                                       *extra])


def qemu_pids(d=None):
    """Live QEMU processes (of daemon d when given)."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit() and _comm(int(p)) == "qemu-system-x86":
            if d is None or int(p) in d.descendants():
                out.append(int(p))
    return [p for p in out if pid_alive(p)]


def vm_cgroups(d):
    import hashlib
    h = hashlib.sha256(os.path.realpath(str(d.state_dir)).encode()).hexdigest()[:12]
    return glob.glob("/sys/fs/cgroup/*/airlock-%s-vm/sb_*" % h) + glob.glob("/sys/fs/cgroup/airlock-%s-vm/sb_*" % h)


@pytest.fixture(scope="module")
def vmd(tmp_path_factory):
    d = vm_daemon(tmp_path_factory.mktemp("vmd")).start()
    yield from serving(d)


@pytest.fixture(scope="module")
def vm(vmd):
    """One VM sandbox shared by the checks that change nothing."""
    s = vmd.sandbox(isolation="vm", timeout=1800, memory_mb=512)
    yield s
    s.close()
