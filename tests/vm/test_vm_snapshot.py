"""Warm snapshots (src/vm/snapshot.c): the first VM of a shape is booted,
warmed and saved once; every later one is restored from it with its RAM
copy-on-write. What the warm-up seeded must not be shared after a restore,
and one VM's writes never reach another's."""

import time

from vm_support import qemu_pids


def _two(vmd):
    return [vmd.sandbox(isolation="vm", memory_mb=512, timeout=600) for _ in range(2)]


def test_restored_vms_are_warm_and_taken_from_one_snapshot(vmd, vm):
    a, b = _two(vmd)
    try:
        for s in (a, b):
            r = s.run_code("import sys; 'pandas' in sys.modules and 'numpy' in sys.modules")
            assert r.text == "True", r
        assert vmd.log_text().count("vm: snapshot taken") == 1, vmd.log_text()[-3000:]
    finally:
        a.close()
        b.close()


def test_two_restores_share_no_randomness_and_have_the_hosts_clock(vmd, vm):
    a, b = _two(vmd)
    try:
        code = ("import os, random, uuid, time, numpy\n"
                "print(os.urandom(16).hex(), random.random(), numpy.random.random(), uuid.uuid4(), time.time())")
        outs = []
        for s in (a, b):
            t_host = time.time()
            r = s.run_code(code)
            assert r.error is None, r.error
            *vals, t_guest = r.stdout.split()
            assert abs(float(t_guest) - t_host) < 1.0, (t_guest, t_host)
            outs.append(vals)
        for x, y in zip(*outs):
            assert x != y, outs
    finally:
        a.close()
        b.close()


def test_one_vms_writes_never_reach_another(vmd, vm):
    a, b = _two(vmd)
    try:
        a.upload(b"secret of a", "/data/a.txt")
        assert a.run_code("leaked = 'a-state'; open('/tmp/a', 'w').write('x')").error is None
        r = b.run_code("import os; print(os.path.exists('/data/a.txt'), os.path.exists('/tmp/a'), 'leaked' in dir())")
        assert r.stdout == "False False False\n"
        # a later restore starts from the snapshot too, not from a's memory
        a.close()
        c = vmd.sandbox(isolation="vm", memory_mb=512)
        r = c.run_code("import os; print(os.listdir('/data'), 'leaked' in dir())")
        assert r.stdout == "[] False\n"
        c.close()
    finally:
        b.close()


def test_restored_vmm_is_jailed_like_a_cold_one(vmd, vm):
    # every VMM under the daemon, restores included, passes the same checks
    for p in qemu_pids(vmd):
        st = dict(l.split(":\t", 1) for l in open("/proc/%d/status" % p).read().splitlines() if ":\t" in l)
        assert int(st["CapEff"], 16) == 0 and st["Seccomp"].strip() == "2" and st["NoNewPrivs"].strip() == "1"
