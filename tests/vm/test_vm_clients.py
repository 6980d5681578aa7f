"""The vm backend through every client and setting: the CLI's --isolation,
healthz, the daemon's --isolation default with its warm pool, and a host
where the backend cannot start."""

import os
import subprocess
import time

from e2e_support import CLI, Daemon, serving, wait_until
from vm_support import VM_DIR, vm_daemon


def test_cli_runs_a_script_in_a_fresh_vm(vmd, vm, tmp_path):
    script = tmp_path / "where.py"
    script.write_text("import platform; print('kernel', platform.release())\n")
    env = dict(os.environ, AIRLOCK_URL=vmd.url, AIRLOCK_API_KEY=vmd.key)
    p = subprocess.run([str(CLI), "run", "--isolation", "vm", "--memory-mb", "512", str(script)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "cloud" in p.stdout and os.uname().release not in p.stdout
    p = subprocess.run([str(CLI), "create", "--isolation", "hypervisor"], capture_output=True, text=True,
                       env=env, timeout=30)
    assert p.returncode == 2 and "jail or vm" in p.stderr


def test_healthz_names_the_backends(vmd):
    h = vmd.healthz()
    assert h["isolation"]["default"] == "jail"
    assert h["isolation"]["available"] == ["jail", "vm"]
    assert "vm_unavailable" not in h["isolation"]


def test_a_host_without_the_vm_files_serves_jails_and_says_why(tmp_path):
    d = Daemon(tmp_path / "novm", extra_args=["--vm-dir", str(tmp_path / "missing"), "--pool-size", "0"]).start()
    for _ in serving(d):
        h = d.healthz()
        assert h["isolation"]["available"] == ["jail"]
        assert "make vm" in h["isolation"]["vm_unavailable"]
        st, _, _, body = d.request("POST", "/v1/sandboxes", {"isolation": "vm"})
        assert st == 400 and body["error"]["code"] == "isolation_unavailable"
        assert "missing" in body["error"]["message"] and "make vm" in body["error"]["message"]
        st, _, _, body = d.request("POST", "/v1/sandboxes", {})
        assert st == 201 and body["isolation"] == "jail"
    # and a daemon whose default is vm refuses to start without it
    bad = Daemon(tmp_path / "novm2", extra_args=["--vm-dir", str(tmp_path / "missing"), "--isolation", "vm"])
    try:
        bad.start(timeout=10)
        raise AssertionError("airlockd started with --isolation vm and no vm files")
    except RuntimeError as e:
        assert "vm" in str(e)


def test_isolation_vm_default_fills_the_pool_with_vms(tmp_path):
    d = Daemon(tmp_path / "vmpool", extra_args=["--vm-dir", str(VM_DIR), "--vm-accel", "tcg",
                                                  "--isolation", "vm", "--pool-size", "1"]).start()
    for _ in serving(d):
        def ready():
            st, _, _, p = d.request("GET", "/v1/pool")
            return st == 200 and p["ready"] >= 1 and p
        assert wait_until(ready, 120, step=0.5), d.log_tail()
        pool = ready()
        assert pool["shapes"][0]["isolation"] == "vm"
        t0 = time.monotonic()
        s = d.sandbox(timeout=300)
        took = time.monotonic() - t0
        info = d.request("GET", "/v1/sandboxes/" + s.id)[3]
        assert info["isolation"] == "vm"
        assert s.run_code("import platform; platform.release()").text.strip("'").endswith("cloud-amd64")
        st, _, _, p = d.request("GET", "/v1/pool")
        assert p["hits"] >= 1, p
        assert took < 5, took  # from the pool: no boot, no restore on the request's path
        s.close()


def test_a_vm_needs_256_mib(vmd):
    st, _, _, body = vmd.request("POST", "/v1/sandboxes", {"isolation": "vm", "memory_mb": 128})
    assert st == 400 and body["error"]["code"] == "invalid_request"
    assert "256" in body["error"]["message"]
