"""What code inside a sandbox can and cannot see or do."""

import secrets


def test_runs_as_uid_1000(sb):
    r = sb.run_code("import os; print(os.getuid(), os.geteuid(), os.getgid(), os.getegid())")
    assert r.stdout == "1000 1000 1000 1000\n"
    assert sb.exec(["id", "-u"]).stdout == "1000\n"


def test_no_caps_no_new_privs_seccomp(sb):
    code = "print(open('/proc/self/status').read())"
    for out in (sb.run_code(code).stdout,
                sb.exec(["cat", "/proc/self/status"]).stdout,
                sb.run_code("cat /proc/self/status", language="bash").stdout):
        status = dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)
        assert status["CapEff"].strip() == "0000000000000000", status
        assert status["CapPrm"].strip() == "0000000000000000", status
        assert status["CapBnd"].strip() == "0000000000000000", status
        assert status["NoNewPrivs"].strip() == "1", status
        assert status["Seccomp"].strip() == "2", status


def test_no_network(sb):
    r = sb.run_code("""
import socket, time, errno
t = time.monotonic()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(('1.1.1.1', 53))
    res = 'connected'
except OSError as e:
    res = errno.errorcode.get(e.errno, repr(e))
print(res, time.monotonic() - t < 1.0)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b'x', ('8.8.8.8', 53))
    print('udp sent')
except OSError as e:
    print('udp', errno.errorcode.get(e.errno))
try:
    socket.getaddrinfo('example.com', 80)
    print('dns resolved')
except socket.gaierror as e:
    print('dns failed')
devs = [l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]]
print(devs)
""")
    assert r.error is None, r
    assert r.stdout.splitlines() == ["ENETUNREACH True", "udp ENETUNREACH", "dns failed", "['lo']"]


def test_loopback_works_inside(sb):
    r = sb.run_code("""
import socket
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname(), timeout=2)
a, _ = srv.accept(); c.sendall(b'ping'); print(a.recv(4).decode())
""")
    assert r.stdout == "ping\n"


def test_sandboxes_cannot_see_each_other(fresh):
    a, b = fresh(), fresh()
    marker = secrets.token_hex(12)
    b.upload(marker.encode(), "/data/secret-%s.txt" % marker)
    b.upload(marker.encode(), "/tmp/secret-%s.txt" % marker)
    b.run_code("import subprocess\np = subprocess.Popen(['sleep', '%d'])" % (600 + int(marker[:4], 16) % 100))
    find = """
import os
hits = []
for root in ('/data', '/tmp', '/home/user'):
    for dirpath, dirs, files in os.walk(root):
        hits += [f for f in files if %r in f]
procs = []
for p in os.listdir('/proc'):
    if p.isdigit():
        try:
            procs.append(open('/proc/%%s/cmdline' %% p, 'rb').read().replace(b'\\0', b' ').decode())
        except OSError:
            pass
print(len(hits), any('sleep' in c for c in procs))
""" % marker
    assert b.run_code(find).stdout == "2 True\n"   # the probe can see its own things
    assert a.run_code(find).stdout == "0 False\n"
    assert [e["name"] for e in a.files.list("/data")] == []
    r = a.exec(["sh", "-c", "ls /proc | grep -c '^[0-9]'"])
    assert int(r.stdout) < 10, r.stdout  # only the sandbox's own few processes


def test_readonly_root_and_no_host_paths(sb):
    r = sb.run_code("""
import os
res = []
for p in ('/usr/x', '/etc/x', '/x'):
    try:
        open(p, 'w'); res.append('wrote ' + p)
    except OSError as e:
        res.append(type(e).__name__)
print(res)
print(os.path.exists('/sys/kernel'), os.path.exists('/var/lib/airlock'), os.path.exists('/root'))
""")
    lines = r.stdout.splitlines()
    assert "wrote" not in lines[0], lines
    assert lines[1] == "False False False", lines


def test_no_icmp_no_ipv6_no_host_sockets(sb):
    """Beyond TCP/UDP/DNS: no ICMP, no IPv6 route, and the host's unix
    sockets (filesystem or abstract) are out of reach."""
    import socket as hsock
    import uuid
    # an abstract unix socket listening on the host, in the host's network namespace
    name = "\0airlock-test-" + uuid.uuid4().hex
    host = hsock.socket(hsock.AF_UNIX, hsock.SOCK_STREAM)
    host.bind(name)
    host.listen(1)
    try:
        r = sb.run_code("""
import socket, errno
def outcome(fn):
    try:
        fn()
        return 'ok'
    except OSError as e:
        return errno.errorcode.get(e.errno, repr(e))
def ping():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    s.sendto(b'\\x08\\x00\\xf7\\xff\\x00\\x00\\x00\\x00', ('1.1.1.1', 0))
def raw():
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def v6():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.connect(('2606:4700:4700::1111', 53))
def abstract():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(%r)
import os
print(outcome(ping), outcome(raw), outcome(v6), outcome(abstract))
print([p for p in ('/run', '/var/run', '/var/run/docker.sock', '/run/systemd') if os.path.exists(p)])
""" % name)
        assert r.error is None, r
        ping, raw, v6, abstract = r.stdout.splitlines()[0].split()
        assert ping in ("EACCES", "ENETUNREACH", "EPERM"), r.stdout   # no ICMP either way
        assert raw == "EPERM", r.stdout                              # no CAP_NET_RAW
        assert v6 in ("ENETUNREACH", "EADDRNOTAVAIL"), r.stdout
        assert abstract == "ECONNREFUSED", r.stdout                  # the sandbox's own netns
        assert r.stdout.splitlines()[1] == "[]", r.stdout
    finally:
        host.close()
