"""The sandbox's own view of its size (issue 14, item 8): /proc/meminfo (so free,
psutil) reports the sandbox's memory limit and its cgroup's usage; nproc,
os.cpu_count() and sysconf report its CPU allowance; /etc/os-release exists.
Real jail sandboxes (src/jail/sysview.c, mnt.c; src/agent/meminfo.c)."""

import os

import pytest

MiB = 1024 * 1024


def meminfo(s):
    out = s.exec(["cat", "/proc/meminfo"]).stdout
    return {line.split(":")[0]: int(line.split()[1]) * 1024 for line in out.splitlines()}


def free_b(s):
    lines = s.exec(["free", "-b"]).stdout.splitlines()
    head = lines[0].split()
    mem = lines[1].split()[1:]
    return dict(zip(head, map(int, mem)))


@pytest.fixture(scope="module")
def small(daemon):
    s = daemon.sandbox(timeout=600, memory_mb=512, cpus=1)
    yield s
    s.close()


def test_meminfo_total_is_the_limit(small):
    m = meminfo(small)
    assert m["MemTotal"] == 512 * MiB
    assert 0 < m["MemFree"] <= m["MemAvailable"] <= m["MemTotal"]
    assert m["SwapTotal"] == 0
    f = free_b(small)
    assert f["total"] == 512 * MiB
    # procps 4 computes used as total - available, older ones as total - free - buff/cache
    assert f["used"] + f["available"] == f["total"] or f["used"] + f["free"] + f["buff/cache"] == f["total"], f
    assert f["used"] < 64 * MiB, f  # an idle sandbox, not the host
    # the REPL's view too (psutil-style readers open the same file)
    r = small.run_code("int(open('/proc/meminfo').readline().split()[1]) * 1024")
    assert r.text == str(512 * MiB)


def test_meminfo_follows_usage(small):
    before = free_b(small)
    small.run_code("hog = bytearray(128 * 1024 * 1024)\nfor i in range(0, len(hog), 4096): hog[i] = 1")
    held = free_b(small)
    assert held["used"] >= before["used"] + 100 * MiB, (before, held)
    assert held["available"] <= before["available"] - 100 * MiB
    small.exec(["sh", "-c", "head -c 67108864 /dev/zero > /tmp/tmpfs-file"])
    m = meminfo(small)
    assert m["Shmem"] >= 60 * MiB, m  # tmpfs files are the sandbox's memory
    small.run_code("del hog")
    small.exec(["rm", "/tmp/tmpfs-file"])
    after = free_b(small)
    assert after["used"] < held["used"] - 100 * MiB, (held, after)


def test_meminfo_is_read_only(small):
    r = small.run_code("""
import errno
res = []
for mode in ("w", "a", "r+"):
    try:
        open("/proc/meminfo", mode).write("MemTotal: 1 kB\\n")
        res.append("written")
    except OSError as e:
        res.append(errno.errorcode[e.errno])
res""")
    assert "written" not in r.text, r.text
    assert int(meminfo(small)["MemTotal"]) == 512 * MiB


def test_cpus_one(small):
    assert small.exec(["nproc"]).stdout == "1\n"  # OMP_NUM_THREADS=1 (src/agent/proc.c)
    code = "import os; (os.cpu_count(), os.sysconf('SC_NPROCESSORS_ONLN'), os.sysconf('SC_NPROCESSORS_CONF'))"
    assert small.run_code(code).text == "(1, 1, 1)"  # the REPL, forked from the zygote
    out = small.exec(["python3", "-c", "import os, multiprocessing as m; print((os.cpu_count(), m.cpu_count()))"])
    assert out.stdout == "(1, 1)\n"  # an exec'd process
    assert small.exec(["cat", "/sys/devices/system/cpu/online"]).stdout == "%d\n" % min(os.sched_getaffinity(0))
    # the affinity mask is left as the daemon's (sysview.c says why): a view, the quota is the limit
    assert small.run_code("import os; len(os.sched_getaffinity(0))").text == str(len(os.sched_getaffinity(0)))


def test_sys_holds_only_the_cpu_view(small):
    r = small.exec(["sh", "-c", "find /sys | sort; touch /sys/x 2>&1; echo 1 > /sys/devices/system/cpu/online 2>&1"])
    lines = r.stdout.splitlines()
    assert lines[:7] == ["/sys", "/sys/devices", "/sys/devices/system", "/sys/devices/system/cpu",
                         "/sys/devices/system/cpu/online", "/sys/devices/system/cpu/possible",
                         "/sys/devices/system/cpu/present"], lines
    assert "Read-only file system" in r.stdout or "Permission denied" in r.stdout


def test_cpus_rounded_up(daemon):
    host = len(os.sched_getaffinity(0))
    if host < 2:
        pytest.skip("needs a host with 2 CPUs")
    s = daemon.sandbox(timeout=120, cpus=1.5)
    try:
        assert s.run_code("import os; os.cpu_count()").text == "2"
        cpus = sorted(os.sched_getaffinity(0))[:2]
        assert s.exec(["cat", "/sys/devices/system/cpu/online"]).stdout == "%d-%d\n" % (cpus[0], cpus[1])
    finally:
        s.close()


def test_os_release(small):
    r = small.exec(["sh", "-c", ". /etc/os-release && echo $ID"])
    assert r.exit_code == 0 and r.stdout.strip(), r
