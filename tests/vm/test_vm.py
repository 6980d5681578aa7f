"""The vm backend end to end: the same API, SDK and agent, every sandbox a QEMU
microvm with its own kernel and no network device (docs/vm.md).

Under TCG here the first VM of a shape pays its snapshot (~17 s: boot, then
numpy and pandas imported); every later one is restored from it in ~0.2 s.
"""

import csv
import io
import os
import re
import signal
import socket
import time

import pytest

import airlock
from vm_support import qemu_pids, vm_cgroups, vm_daemon, wait_until


def test_create_says_vm_and_runs_the_brief_example(vmd, vm):
    info = vmd.request("GET", "/v1/sandboxes/" + vm.id)[3]
    assert info["isolation"] == "vm"
    # the brief's flow: upload data, analyse it, get the answer back
    rows = "region,amount\n" + "".join("%s,%d\n" % (r, a) for r, a in
                                       [("eu", 10), ("us", 5), ("eu", 7), ("apac", 1)])
    vm.upload(rows.encode(), "/data/sales.csv")
    r = vm.run_code("import csv, collections\n"
                    "t = collections.Counter()\n"
                    "for row in csv.DictReader(open('/data/sales.csv')):\n"
                    "    t[row['region']] += int(row['amount'])\n"
                    "print(dict(t))\n"
                    "max(t, key=t.get)")
    assert r.error is None, r.error
    assert r.stdout == "{'eu': 17, 'us': 5, 'apac': 1}\n"
    assert r.text == "'eu'"


def test_repl_state_persists_and_errors_have_the_jails_shape(vm):
    assert vm.run_code("counter = 41").error is None
    assert vm.run_code("counter += 1; counter").text == "42"
    r = vm.run_code("1/0")
    assert r.error.name == "ZeroDivisionError"
    assert r.error.value == "division by zero"
    assert "ZeroDivisionError" in r.error.traceback
    # the REPL survived the exception
    assert vm.run_code("counter").text == "42"


def test_user_code_is_unprivileged_inside_its_own_kernel(vm):
    r = vm.run_code("import os, platform\n"
                    "st = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
                    "print(os.getuid(), os.getgid(), st['CapEff'].strip(), st['CapBnd'].strip(), "
                    "st['NoNewPrivs'].strip(), st['Seccomp'].strip())\n"
                    "print(platform.release())\n"
                    "print(os.path.exists('/proc/1'), len([p for p in os.listdir('/proc') if p.isdigit()]) < 5)")
    assert r.error is None, r.error
    ids, release, init = r.stdout.splitlines()
    uid, gid, capeff, capbnd, nnp, seccomp = ids.split()
    assert (uid, gid) == ("1000", "1000")
    assert int(capeff, 16) == 0 and int(capbnd, 16) == 0
    assert nnp == "1" and seccomp == "2"
    # its own kernel: Debian's cloud kernel, not the host's
    assert "cloud" in release and release != os.uname().release
    # the guest kernel's threads and the agent (root) are hidden from uid 1000
    assert init.strip() == "False True"


def test_cpu_count_is_the_guests_vcpus_through_the_jails_sys_view(vm):
    # the jail's /sys view (src/jail/sysview.c) in the guest too: only the CPU
    # lists, from the guest kernel, so os.cpu_count() reads the vCPUs
    r = vm.run_code("import os\n"
                    "n = sum(1 for l in open('/proc/cpuinfo') if l.startswith('processor'))\n"
                    "print(os.cpu_count(), n)\n"
                    "print(sorted(os.listdir('/sys/devices/system/cpu')), os.listdir('/sys'))")
    assert r.error is None, r.error
    counts, listing = r.stdout.splitlines()
    count, procs = counts.split()
    assert int(count) == int(procs) >= 1
    assert listing == "['online', 'possible', 'present'] ['devices']"


def test_r_and_javascript_run_in_the_guest_with_their_state(vm):
    # the same runners as the jail's, from the initramfs; each language's
    # default context starts at its first call and keeps its state
    assert vm.run_code("x <- c(1, 2, 3)", language="r").error is None
    r = vm.run_code("cat(sum(x) * 2, '\\n')", language="r")
    assert r.error is None, r.error
    assert r.stdout.strip() == "12"
    assert vm.run_code("globalThis.n = 20", language="javascript").error is None
    r = vm.run_code("console.log(n + 22)", language="javascript")
    assert r.error is None, r.error
    assert r.stdout.strip() == "42"


def test_no_network_device_and_no_route_anywhere(vm):
    r = vm.run_code(
        "import socket, errno\n"
        "print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]))\n"
        "out = []\n"
        "for fam, kind, addr in [(socket.AF_INET, socket.SOCK_STREAM, ('1.1.1.1', 443)),\n"
        "                        (socket.AF_INET, socket.SOCK_DGRAM, ('8.8.8.8', 53)),\n"
        "                        (socket.AF_INET, socket.SOCK_STREAM, ('10.0.2.2', 22)),\n"
        "                        (socket.AF_INET6, socket.SOCK_STREAM, ('2606:4700::1111', 443))]:\n"
        "    s = socket.socket(fam, kind); s.settimeout(2)\n"
        "    try:\n"
        "        s.connect(addr); s.send(b'x'); out.append('sent')\n"
        "    except OSError as e:\n"
        "        out.append(errno.errorcode.get(e.errno, str(e.errno)))\n"
        "print(out)\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 443); print('resolved')\n"
        "except socket.gaierror as e:\n"
        "    print('gaierror')\n")
    assert r.error is None, r.error
    ifaces, results, dns = r.stdout.splitlines()
    assert ifaces == "['lo']"
    assert "sent" not in results and "ENETUNREACH" in results, results
    assert dns == "gaierror"


def test_the_control_port_and_disk_are_out_of_reach(vm):
    r = vm.exec(["/bin/sh", "-c", "ls /dev; ls /dev/vport* /dev/vda 2>&1; cat /proc/mounts"])
    assert "vport" not in r.stdout.split("ls:")[0]
    assert "No such file" in r.stdout
    # the initramfs (with the port's node) is not reachable from the new root
    assert " /newroot " not in r.stdout and "/img" not in r.stdout
    r = vm.run_code("import os\n"
                    "try:\n"
                    "    os.mknod('/tmp/port', 0o600 | 0o020000, os.makedev(250, 1)); print('made')\n"
                    "except OSError as e:\n"
                    "    print(e.errno)")
    assert r.stdout.strip() in ("1", "13")  # EPERM (no CAP_MKNOD) or EACCES (Landlock)


def test_rich_results_have_the_jails_shape(vm):
    r = vm.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3.5, 4.5]})")
    assert r.error is None, r.error
    main = r.results[-1]
    assert "text/html" in main.formats() and "<table" in main.html
    assert "a" in main.text and "4.5" in main.text


def test_upload_download_round_trip_and_tmpfs_lives_in_guest_ram(vm):
    data = os.urandom(100 << 20)
    vm.upload(data, "/data/blob.bin")
    assert vm.download("/data/blob.bin") == data
    r = vm.exec(["/bin/sh", "-c", "grep -E ' /data | /tmp | /home/user ' /proc/mounts | cut -d' ' -f1,3"])
    assert set(r.stdout.split("\n")[:-1]) == {"tmpfs tmpfs"}, r.stdout
    vm.files.remove("/data/blob.bin")


def test_timeout_interrupts_and_the_repl_lives_on(vm):
    r = vm.run_code("import time\nwhile True: time.sleep(0.01)", timeout=2)
    assert r.error is not None and r.error.name in ("TimeoutError", "KeyboardInterrupt"), r.error
    assert vm.run_code("counter if 'counter' in dir() else 'gone'").error is None


def test_output_flood_is_capped(vm):
    r = vm.run_code("import sys\nfor _ in range(400): sys.stdout.write('x' * 65536)")
    assert r.stdout_truncated
    assert len(r.stdout) < 64 << 20


def test_bad_input_is_refused_as_on_the_jail(vmd, vm):
    st, _, _, body = vmd.request("GET", "/v1/sandboxes/%s/files?path=/../../etc/shadow" % vm.id)
    assert 400 <= st < 500 and body["error"]["code"]
    st, _, _, body = vmd.request("POST", "/v1/sandboxes", {"isolation": "hypervisor"})
    assert st == 400 and body["error"]["code"] == "invalid_request"
    assert "jail" in body["error"]["message"] and "vm" in body["error"]["message"]


def test_the_vmm_is_jailed(vmd, vm):
    """QEMU itself, seen from the host: not root, no capabilities, no_new_privs,
    a seccomp filter, and namespaces of its own; its root holds /usr and /dev only."""
    pids = qemu_pids(vmd)
    assert pids, "no QEMU process under the daemon"
    p = pids[0]
    st = dict(l.split(":\t", 1) for l in open("/proc/%d/status" % p).read().splitlines() if ":\t" in l)
    uids = st["Uid"].split()
    assert all(int(u) >= 190000 for u in uids), uids
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
    assert st["NoNewPrivs"].strip() == "1"
    assert st["Seccomp"].strip() == "2"
    for ns in ("mnt", "pid", "net", "ipc", "uts", "cgroup"):
        assert os.readlink("/proc/%d/ns/%s" % (p, ns)) != os.readlink("/proc/self/ns/%s" % ns), ns
    assert sorted(os.listdir("/proc/%d/root" % p)) == ["bin", "dev", "lib", "lib64", "proc", "sbin", "usr"]
    assert sorted(os.listdir("/proc/%d/root/dev" % p)) == ["null", "urandom", "zero"]
    # its network namespace is empty: only lo
    ifaces = [l.split(":")[0].strip() for l in open("/proc/%d/net/dev" % p).read().splitlines()[2:]]
    assert ifaces == ["lo"], ifaces
    # its cgroup caps memory (guest RAM + overhead) and has no swap
    cg = [g for g in vm_cgroups(vmd) if "/memory/" in g]
    assert cg, vm_cgroups(vmd)
    limit = int(open(cg[0] + "/memory.limit_in_bytes").read())
    assert 512 << 20 < limit < 1024 << 20
    if os.path.exists(cg[0] + "/memory.memsw.limit_in_bytes"):
        assert int(open(cg[0] + "/memory.memsw.limit_in_bytes").read()) == limit


def test_a_vmm_killed_from_the_host_is_a_clear_error_and_others_live(vmd, vm):
    victim = vmd.sandbox(isolation="vm", memory_mb=512)
    assert victim.run_code("1+1").text == "2"
    before = set(qemu_pids(vmd))
    # the newest QEMU is the victim's
    newest = max(before, key=lambda p: os.stat("/proc/%d" % p).st_mtime)
    os.kill(newest, signal.SIGKILL)
    with pytest.raises(airlock.AirlockError) as ei:
        for _ in range(50):
            victim.run_code("1")
            time.sleep(0.1)
    assert "agent" in str(ei.value).lower() or "gone" in str(ei.value).lower() or ei.value.status in (410, 500, 502)
    assert vm.run_code("counter").text == "42"


def test_kill9_of_the_daemon_leaves_no_vmm_behind(tmp_path):
    # cold boots (no snapshot to take first): the crash path of both kinds is the same VMM
    d = vm_daemon(tmp_path / "k9", "--vm-no-snapshots").start()
    try:
        sbs = [d.sandbox(isolation="vm", memory_mb=256) for _ in range(3)]
        assert all(s.run_code("print(7)").stdout == "7\n" for s in sbs)
        pids = qemu_pids(d)
        assert len(pids) == 3
        d.kill9()
        assert wait_until(lambda: not any(os.path.exists("/proc/%d" % p) and _alive(p) for p in pids), 10), \
            "QEMU outlived its daemon"
        d.start()
        assert vm_cgroups(d) == []
        assert qemu_pids(d) == []
    finally:
        if d.proc.poll() is None:
            d.stop()


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_guest_oom_is_out_of_memory_and_the_vm_lives_on(vmd):
    s = vmd.sandbox(isolation="vm", memory_mb=512)
    try:
        s.run_code("keep = 'me'")
        r = s.run_code("chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))\n", timeout=120)
        assert r.error is not None, r
        assert r.error.name == "OutOfMemory", r.error
        assert "512" in r.error.value
        # the REPL was restarted: usable, state gone; the guest and its agent are fine
        assert s.run_code("'fresh'").text == "'fresh'"
        assert s.run_code("chunks").error.name == "NameError"
        assert s.exec(["echo", "ok"]).stdout == "ok\n"
    finally:
        s.close()
