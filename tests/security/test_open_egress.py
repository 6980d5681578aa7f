"""Egress category, open egress (`egress: true`, docs/egress.md): each bypass
of the filter we could think of, against a sandbox that does have a route.

Unlike the rest of this category, these never run on the host's network: an
open sandbox reaches whatever is "public", so the daemon runs in the closed
world of tests/e2e/egress_net.py (its own network namespace, whose only
neighbour is the test's server namespace). There the host's own services
listen on every address of the daemon's namespace (TCP and UDP), the test's
DNS server counts every query on every address, and a private-range host
(10.77.n.2) and a metadata server (169.254.169.254) answer HTTP. An attack
passes only if its call failed as expected AND none of those saw anything.
"""
import json
import os
import subprocess
import time

import pytest

import e2e_support
from airlock import Sandbox
from egress_net import METADATA, PUBLIC, EgressNet, NetnsDaemon, daemon_wrapper

CAT = "egress"
PORT = 8099  # the "host" listener, TCP and UDP, on every address of the daemon's namespace

LISTENER = r'''
import socket, sys, threading
log = open(sys.argv[1], "a", buffering=1)
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", %d)); s.listen(16)
    while True:
        c, a = s.accept(); log.write("tcp %%s\n" %% (a,)); c.close()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", %d))
    while True:
        d, a = s.recvfrom(4096); log.write("udp %%s\n" %% (a,))
threading.Thread(target=udp, daemon=True).start()
tcp()
''' % (PORT, PORT)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    n = EgressNet(tmp_path_factory.mktemp("sec-egress-open"))
    seen = n.info["work"] / "host-seen.log"
    seen.write_text("")
    host = subprocess.Popen(["nsenter", "--net=/run/netns/" + n.info["d_ns"], "/usr/bin/python3", "-c", LISTENER,
                             str(seen)])
    saved = e2e_support.DAEMON
    e2e_support.DAEMON = daemon_wrapper(n.info, e2e_support.DAEMON)
    d = None
    try:
        d = NetnsDaemon(n.info["work"] / "daemon").start()
        yield dict(n.info, daemon=d, seen=seen)
    finally:
        e2e_support.DAEMON = saved
        if d:
            e2e_support.stop_and_check(d)
        host.kill()
        host.wait()
        n.close()


ERRNO = '''
import errno, socket, struct
def errname(e):
    if isinstance(e, TimeoutError) and not e.errno:
        return "timeout"
    return errno.errorcode.get(e.errno, type(e).__name__) if getattr(e, "errno", None) else type(e).__name__
def gateway():
    for line in open("/proc/net/route").read().splitlines()[1:]:
        f = line.split()
        if f[1] == "00000000":
            return socket.inet_ntoa(int(f[2], 16).to_bytes(4, "little"))
def dns_query(name):
    hdr = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0"
    return hdr + q + struct.pack(">HH", 1, 1)
def tcp(host, port, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        return "connected"
    except OSError as e:
        return errname(e)
def udp(host, port, data=b"exfil", family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(1)
    try:
        s.sendto(data, (host, port))
        s.recvfrom(512)
        return "answered"
    except OSError as e:
        return errname(e)
'''

REFUSED = {"ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EACCES", "EPERM"}

# (name, code printing "RESULT <token>", tokens accepted, doc)
ATTACKS = [
    ("open_tcp_host_address", "print('RESULT', tcp('@SUB@.1', %d))" % PORT, REFUSED,
     "the host's own address on its LAN: the input hook refuses anything from a sandbox link"),
    ("open_tcp_gateway", "print('RESULT', tcp(gateway(), %d))" % PORT, REFUSED,
     "the link's host end, the one address a sandbox is given"),
    ("open_tcp_v4mapped_host", "print('RESULT', tcp('::ffff:@SUB@.1', %d, socket.AF_INET6))" % PORT,
     REFUSED | {"EAFNOSUPPORT", "EADDRNOTAVAIL"}, "the same address as a v4-mapped IPv6 literal"),
    ("open_udp_host_address", "print('RESULT', udp('@SUB@.1', %d))" % PORT, REFUSED | {"timeout"},
     "a datagram to the host's listener: refused, and the listener must see nothing"),
    ("open_udp_gateway", "print('RESULT', udp(gateway(), %d))" % PORT, REFUSED | {"timeout"}, ""),
    ("open_tcp_private_host", "print('RESULT', tcp('@SUB@.2', 80))", REFUSED,
     "an RFC 1918 host that answers HTTP to the daemon's namespace"),
    ("open_udp_private_other_port", "print('RESULT', udp('@SUB@.2', 9999))", REFUSED | {"timeout"},
     "UDP to a private host on a port other than DNS"),
    ("open_tcp_metadata", "print('RESULT', tcp('%s', 80))" % METADATA, REFUSED,
     "the metadata address, served here by the test's web server"),
    ("open_dns_to_private_resolver", "print('RESULT', udp('@SUB@.2', 53, dns_query('bypass-private.test')))",
     REFUSED | {"timeout"}, "a query straight to the host's resolver: never counted"),
    ("open_dns_to_public_server", "print('RESULT', udp('%s', 53, dns_query('bypass-public.test')))" % PUBLIC,
     REFUSED | {"timeout"}, "a query to a public server: only the daemon's resolver answers DNS"),
    ("open_dns_over_tcp_public", "print('RESULT', tcp('%s', 53))" % PUBLIC, REFUSED, "DNS over TCP, port 53"),
    ("open_dot_public", "print('RESULT', tcp('%s', 853))" % PUBLIC, REFUSED, "DNS over TLS, port 853"),
    ("open_rebound_name", '''
try:
    print("RESULT", tcp(socket.gethostbyname("private.test"), 80))
except socket.gaierror:
    print("RESULT gaierror")
''', {"gaierror"}, "a name whose answer is a private address: the daemon's resolver withholds it (and a connect "
                      "there would be refused anyway)"),
    ("open_reverse_lookup_internal", '''
try:
    print("RESULT", socket.gethostbyaddr("@SUB@.2")[0])
except (socket.herror, socket.gaierror) as e:
    print("RESULT", type(e).__name__)
''', {"herror", "gaierror"}, "PTR into a private range: not sent on, the host's internal names stay unknown"),
    ("open_ipv6_global", "print('RESULT', tcp('2001:db8::1', 80, socket.AF_INET6))",
     {"ENETUNREACH", "EADDRNOTAVAIL", "EHOSTUNREACH"}, "no IPv6 address, no IPv6 route"),
    ("open_ipv6_link_local", '''
try:
    idx = socket.if_nametoindex("eth0")
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); s.settimeout(3)
    s.connect(("ff02::1", 80, 0, idx)); print("RESULT connected")
except OSError as e:
    print("RESULT", errname(e))
''', {"ENETUNREACH", "EADDRNOTAVAIL", "EHOSTUNREACH", "EINVAL", "ENODEV"},
     "IPv6 is disabled on the link: not even link-local"),
    ("open_raw_socket", '''
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print("RESULT opened")
except OSError as e:
    print("RESULT", errname(e))
''', {"EPERM"}, "no CAP_NET_RAW: no raw IP, no spoofed sources"),
    ("open_packet_socket", '''
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0); print("RESULT opened")
except OSError as e:
    print("RESULT", errname(e))
''', {"EPERM", "EAFNOSUPPORT"}, "no layer-2 frames past the filter"),
    ("open_icmp_ping_socket", '''
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP); s.settimeout(2)
    s.sendto(b"\\x08\\0\\0\\0\\0\\1\\0\\1", ("%s", 0)); s.recv(64); print("RESULT answered")
except OSError as e:
    print("RESULT", errname(e))
''' % PUBLIC, {"EACCES", "EPERM", "EHOSTUNREACH", "timeout"},
     "ICMP: ping sockets are off (ping_group_range), and the filter passes only TCP and UDP"),
    ("open_multicast", "print('RESULT', udp('224.0.0.251', 5353))", REFUSED | {"timeout"},
     "mDNS multicast to the host's segment"),
    ("open_broadcast", '''
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); s.sendto(b"x", ("255.255.255.255", %d))
    print("RESULT sent")
except OSError as e:
    print("RESULT", errname(e))
''' % PORT, {"sent", "ENETUNREACH", "EACCES", "EPERM"},
     "a limited broadcast stays on the link (the host's listener must not see it)"),
    ("open_reconfigure_link", '''
import fcntl
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
req = struct.pack("16sH14s", b"eth0", 0, b"")
try:
    fcntl.ioctl(s, 0x8914, req); print("RESULT changed")  # SIOCSIFFLAGS: eth0 down
except OSError as e:
    print("RESULT", errname(e))
''', {"EPERM"}, "no CAP_NET_ADMIN in the sandbox: its link, addresses and routes are the daemon's"),
]


@pytest.mark.parametrize("name,code,expect,doc", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_egress_open(world, name, code, expect, doc):
    d = world["daemon"]
    code = code.replace("@SUB@", world["sub"])
    before_dns = json.loads((world["stats"] / "dns.json").read_text())
    before_seen = world["seen"].read_text()
    with Sandbox(base_url=d.unix_url, api_key=d.key, egress=True) as sb:
        r = sb.run_code(ERRNO + code, timeout=30)
        tokens = [l.split()[1:] for l in r.stdout.splitlines() if l.startswith("RESULT")]
        assert tokens, (name, r.stdout, r.stderr)
        print("%s: %s" % (name, " ".join(tokens[-1])))
        assert tokens[-1][0] in expect, (name, doc, r.stdout)
    time.sleep(0.2)  # a datagram in flight would reach its listener by now (no assertion on time)
    assert world["seen"].read_text() == before_seen, (name, "the host's listener saw it", world["seen"].read_text())
    after_dns = json.loads((world["stats"] / "dns.json").read_text())
    leaked = {k: v for k, v in after_dns.items() if before_dns.get(k, 0) != v and k.startswith("bypass")}
    assert not leaked, (name, "a query reached a DNS server past the daemon's resolver", leaked)


SEALED_PROBES = '''
for what, r in (("public", tcp('%s', 80)), ("private", tcp('@SUB@.2', 80)), ("metadata", tcp('%s', 80)),
                ("udp", udp('%s', 53, dns_query('bypass-resealed.test'))), ("proxy", tcp('127.0.0.1', 3128))):
    print("RESULT", what, r)
''' % (PUBLIC, METADATA, PUBLIC)


def sealed_results(sb, sub):
    r = sb.run_code(ERRNO + SEALED_PROBES.replace("@SUB@", sub), timeout=60)
    return {l.split()[1]: l.split()[2] for l in r.stdout.splitlines() if l.startswith("RESULT")}


def test_created_sealed_then_opened_and_resealed_has_no_route(world):
    """Sealed means no route, before and after any number of runtime switches
    of a sandbox created sealed (and the proxy left refuses everything)."""
    d = world["daemon"]
    before_seen = world["seen"].read_text()
    with Sandbox(base_url=d.unix_url, api_key=d.key) as sb:
        got = sealed_results(sb, world["sub"])
        assert set(got) == {"public", "private", "metadata", "udp", "proxy"}, got
        assert all(v in REFUSED | {"timeout"} for v in got.values()), ("created sealed", got)
        for mode in (True, ["allowed.test:80"], True):
            sb.set_egress(mode)
            sb.set_egress(False)
            got = sealed_results(sb, world["sub"])
            assert all(v in REFUSED | {"timeout"} for k, v in got.items() if k != "proxy"), (mode, got)
            # the proxy, once made, stays listening with the empty list: it refuses every request
            r = sb.run_code("import urllib.request\ntry:\n    urllib.request.urlopen('http://allowed.test/', "
                            "timeout=10); print('OK')\nexcept Exception as e:\n    print('ERR', e)")
            assert r.stdout.startswith("ERR"), (mode, r.stdout)
    assert world["seen"].read_text() == before_seen, world["seen"].read_text()
