"""--vm-accel: auto probes KVM with a real guest and a short deadline and falls
back to TCG saying why; a forced kvm that cannot boot the guest fails clearly
within that deadline, never hangs. On this machine /dev/kvm is a nested KVM
that cannot boot the guest kernel; on a host whose KVM works the same tests
check that KVM is chosen instead."""

import time

from e2e_support import Daemon, serving, wait_until
from vm_support import VM_DIR, vm_ready


def _daemon(tmp_path, accel):
    vm_ready()
    return Daemon(tmp_path / accel, extra_args=["--vm-dir", str(VM_DIR), "--vm-accel", accel, "--pool-size", "0"])


def test_forced_kvm_fails_clearly_or_runs_on_kvm(tmp_path):
    d = _daemon(tmp_path, "kvm").start()
    for _ in serving(d):
        t0 = time.monotonic()
        st, _, _, body = d.request("POST", "/v1/sandboxes", {"isolation": "vm", "memory_mb": 256}, timeout=60)
        took = time.monotonic() - t0
        if st == 201:  # a host whose KVM boots the guest
            assert "VMs run on KVM" in d.log_text() or "KVM works" in d.log_text()
            d.request("DELETE", "/v1/sandboxes/" + body["id"])
            return
        assert st >= 500, (st, body)
        msg = body["error"]["message"]
        assert "--vm-accel kvm" in msg and "KVM" in msg, msg
        assert took < 30, took
        # and it keeps failing at once rather than probing again
        t0 = time.monotonic()
        st, _, _, body = d.request("POST", "/v1/sandboxes", {"isolation": "vm", "memory_mb": 256}, timeout=60)
        assert st >= 500 and "--vm-accel kvm" in body["error"]["message"]
        assert time.monotonic() - t0 < 2
        # jail sandboxes are untouched
        st, _, _, body = d.request("POST", "/v1/sandboxes", {})
        assert st == 201 and body["isolation"] == "jail"


def test_auto_picks_an_accelerator_and_says_why(tmp_path):
    d = _daemon(tmp_path, "auto").start()
    for _ in serving(d):
        st, _, _, body = d.request("POST", "/v1/sandboxes", {"isolation": "vm", "memory_mb": 256}, timeout=90)
        assert st == 201, body
        log = d.log_text()
        assert ("VMs run on TCG" in log and "KVM unusable (" in log) or "VMs run on KVM" in log, log[-2000:]
        st, _, _, _ = d.request("DELETE", "/v1/sandboxes/" + body["id"])
        assert st == 200
