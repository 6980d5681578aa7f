"""Egress mode 2, the allow-list proxy (docs/egress.md), end to end.

Nothing here can reach a real network. The daemon runs in a network namespace
this test creates, whose only interfaces are lo and a veth to a second
namespace, also the test's, holding the servers (egress_servers.py): a web
server, a TLS sink and a DNS server that counts queries. The daemon's resolver
(/etc/resolv.conf, bind-mounted in a mount namespace of its own) is that DNS
server. A sandbox's own namespace has no route at all: the proxy the daemon
serves inside it is its only way out.
"""
import json
import os
import subprocess

import pytest

import e2e_support
from e2e_support import stop_and_check, wait_until
from airlock import Sandbox
from egress_net import PUBLIC, EgressNet, NetnsDaemon, daemon_wrapper


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    n = EgressNet(tmp_path_factory.mktemp("egress"))
    try:
        yield n.info
    finally:
        n.close()


@pytest.fixture(scope="module")
def daemon(net):
    saved = e2e_support.DAEMON
    e2e_support.DAEMON = daemon_wrapper(net, e2e_support.DAEMON)
    try:
        d = NetnsDaemon(net["work"] / "daemon").start()
    finally:
        e2e_support.DAEMON = saved
    yield d
    stop_and_check(d)


def box(daemon, allow, **kw):
    return Sandbox(base_url=daemon.unix_url, api_key=daemon.key, egress={"allow": allow}, **kw)


def dns(net):
    return json.loads((net["stats"] / "dns.json").read_text())


def sink(net):
    return json.loads((net["stats"] / "sink.json").read_text())


FETCH = r'''
import urllib.request, urllib.error
def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return "OK %d %s" % (r.status, r.read().decode())
    except urllib.error.HTTPError as e:
        return "HTTP %d %s" % (e.code, e.read().decode())
    except Exception as e:
        return "ERR %s: %s" % (type(e).__name__, e)
'''


def fetch(sb, url):
    r = sb.run_code(FETCH + "print(fetch(%r))" % url)
    return r.stdout.strip()


def last(sb, n=1):
    return sb.egress_log()[-n:]


def test_allowed_host_through_the_proxy(daemon, net):
    with box(daemon, ["allowed.test:80"]) as sb:
        out = fetch(sb, "http://allowed.test/x?y=1")
        assert out == "OK 200 hello allowed.test /x?y=1", out
        e = last(sb)[0]
        assert e["verdict"] == "allowed" and e["method"] == "GET", e
        assert e["host"] == "allowed.test" and e["port"] == 80 and e["address"] == PUBLIC + ":80", e
        assert e["bytes_in"] > 0 and e["bytes_out"] > 0, e
        assert sb.egress() == {"allow": ["allowed.test:80"]}
        # and in the audit log
        events = [ev for ev in sb.logs() if ev["action"] == "egress"]
        assert events and events[-1]["detail"]["host"] == "allowed.test", events


def test_denied_host_fails_at_once_and_is_never_resolved(daemon, net):
    with box(daemon, ["allowed.test:80"]) as sb:
        out = fetch(sb, "http://denied.test/")
        assert out.startswith("HTTP 403 airlock egress proxy: GET denied.test:80 refused: no rule"), out
        assert "allowed.test:80" in out, out  # the body names the rule set
        out = fetch(sb, "https://denied.test/")
        assert out.startswith("ERR URLError") and "403" in out, out
        # the right name on the wrong port is another rule
        out = fetch(sb, "http://allowed.test:8080/")
        assert out.startswith("HTTP 403"), out
        assert dns(net).get("denied.test", 0) == 0, dns(net)
        log = last(sb, 3)
        assert [e["verdict"] for e in log] == ["denied"] * 3, log
        assert log[1]["method"] == "CONNECT" and log[1]["host"] == "denied.test" and log[1]["port"] == 443, log
        assert all(e.get("address") is None for e in log), log


def make_wheel(www):
    """airlockprobe 1.0, a pure-Python wheel, in a PEP 503 index at www."""
    import base64, hashlib, io, zipfile
    name = "airlockprobe-1.0-py3-none-any.whl"
    files = {"airlockprobe.py": b"VALUE = 42\n",
             "airlockprobe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: airlockprobe\nVersion: 1.0\n",
             "airlockprobe-1.0.dist-info/WHEEL":
                 b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = ""
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += "%s,sha256=%s,%d\n" % (path, digest, len(data))
    record += "airlockprobe-1.0.dist-info/RECORD,,\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
        z.writestr("airlockprobe-1.0.dist-info/RECORD", record)
    (www / "files").mkdir(parents=True, exist_ok=True)
    (www / "files" / name).write_bytes(buf.getvalue())
    (www / "simple" / "airlockprobe").mkdir(parents=True, exist_ok=True)
    (www / "simple" / "airlockprobe" / "index.html").write_text(
        '<html><body><a href="/files/%s">%s</a></body></html>' % (name, name))


PIP = r'''
import subprocess
r = subprocess.run(["pip", "install", "-vv", "--user", "--break-system-packages", "--no-cache-dir", "--retries", "0",
                    "--timeout", "10", "--index-url", INDEX, "--trusted-host", "allowed.test",
                    "airlockprobe"],
                   capture_output=True, text=True, timeout=120)
print("rc", r.returncode)
print(r.stdout[-3000:], r.stderr[-1500:])
'''


def test_pip_install_from_an_allowed_index(daemon, net):
    make_wheel(net["stats"] / "www")
    with box(daemon, ["allowed.test:80"]) as sb:
        out = sb.run_code("INDEX = 'http://allowed.test/simple/'\n" + PIP, timeout=150).stdout
        assert out.startswith("rc 0"), out
        r = sb.run_code("import site, sys; sys.path.append(site.getusersitepackages()); "
                        "import airlockprobe; print(airlockprobe.VALUE)")
        assert r.stdout.strip() == "42", r
        hosts = {(e["host"], e["verdict"]) for e in sb.egress_log()}
        assert hosts == {("allowed.test", "allowed")}, sb.egress_log()
    with box(daemon, ["other.test:80"]) as sb:
        out = sb.run_code("INDEX = 'http://allowed.test/simple/'\n" + PIP, timeout=150).stdout
        assert not out.startswith("rc 0") and "403" in out, out  # pip -vv shows the proxy's refusal
        assert {(e["host"], e["verdict"]) for e in sb.egress_log()} == {("allowed.test", "denied")}
        out = sb.run_code("INDEX = 'https://allowed.test/simple/'\n" + PIP, timeout=150).stdout
        assert "Tunnel connection failed: 403" in out, out


def test_ip_literal_needs_a_cidr_rule(daemon, net):
    with box(daemon, ["allowed.test:80"]) as sb:
        out = fetch(sb, "http://%s/" % PUBLIC)
        assert out.startswith("HTTP 403") and "IP address" in out, out
        assert last(sb)[0]["verdict"] == "denied"
    with box(daemon, ["198.51.100.0/24:80"]) as sb:
        out = fetch(sb, "http://%s/lit" % PUBLIC)
        assert out == "OK 200 hello %s /lit" % PUBLIC, out


def test_name_resolving_to_a_private_address(daemon, net):
    with box(daemon, ["private.test:80", "loop.test:80"]) as sb:
        out = fetch(sb, "http://private.test/")
        assert out.startswith("HTTP 403") and "private address" in out, out
        out = fetch(sb, "http://loop.test/")
        assert out.startswith("HTTP 403") and "loopback" in out, out
        log = last(sb, 2)
        assert [e["verdict"] for e in log] == ["denied", "denied"], log
    with box(daemon, ["private.test:80", net["sub"] + ".0/24:80"]) as sb:
        out = fetch(sb, "http://private.test/p")
        assert out == "OK 200 hello private.test /p", out


TLS = r'''
import socket, ssl
def tls(connect_host, sni):
    s = socket.create_connection(("127.0.0.1", 3128), timeout=20)
    s.sendall(b"CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n" % (connect_host.encode(), connect_host.encode()))
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    ctx = ssl.create_default_context()
    try:
        ctx.wrap_socket(s, server_hostname=sni)
        return "TLS up"
    except (ssl.SSLError, OSError) as e:
        return "%s | %s" % (head.split(b"\r\n")[0].decode(), type(e).__name__)
'''


def test_sni_must_match_the_connect_host(daemon, net):
    with box(daemon, ["tls.test:443"]) as sb:
        before = sink(net)["hellos"]
        out = sb.run_code(TLS + "print(tls('tls.test', 'evil.example'))").stdout.strip()
        assert out.startswith("HTTP/1.1 200"), out  # the tunnel opened, then the hello was refused
        e = last(sb)[0]
        assert e["verdict"] == "denied" and "evil.example" in e["reason"], e
        assert sink(net)["hellos"] == before  # no byte of it reached the server
        out = sb.run_code(TLS + "print(tls('tls.test', 'tls.test'))").stdout.strip()
        assert out.startswith("HTTP/1.1 200"), out  # the sink is no TLS server: only the hello matters
        assert wait_until(lambda: sink(net)["hellos"] == before + 1, 10), sink(net)
        assert last(sb)[0]["verdict"] == "allowed"


BANNER = r'''
import socket
s = socket.create_connection(("127.0.0.1", 3128), timeout=20)
s.sendall(b"CONNECT allowed.test:25 HTTP/1.1\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
f = s.makefile("rb")
banner = f.readline()
s.sendall(b"QUIT\r\n")
print(banner.decode().strip(), "|", f.readline().decode().strip())
'''


def test_a_server_that_speaks_first_is_relayed(daemon, net):
    """No ClientHello to wait for: a tunnel whose server speaks first is not TLS."""
    with box(daemon, ["allowed.test:25"]) as sb:
        out = sb.run_code(BANNER).stdout.strip()
        assert out == "220 banner | echo QUIT", out
        sb.run_code("f.close(); s.close()")  # an entry is written when its connection ends
        assert wait_until(lambda: sb.egress_log(), 10)
        e = last(sb)[0]
        assert e["verdict"] == "allowed" and e["bytes_in"] == len("220 banner\r\necho QUIT\r\n"), e


DIRECT = r'''
import socket
try:
    socket.create_connection((%r, 80), timeout=5)
    print("connected")
except OSError as e:
    print("direct", e.errno)
try:
    socket.getaddrinfo("allowed.test", 80)
    print("resolved")
except OSError as e:
    print("noresolve")
'''


def test_https_through_the_proxy(daemon, net):
    """A real TLS handshake and request through CONNECT, the server name checked on the way."""
    with box(daemon, ["tls.test:8443"]) as sb:
        sb.upload((net["stats"] / "cert.pem").read_bytes(), "/tmp/ca.pem")
        out = sb.run_code("import ssl, urllib.request\n"
                          "ctx = ssl.create_default_context(cafile='/tmp/ca.pem')\n"
                          "print(urllib.request.urlopen('https://tls.test:8443/secure', context=ctx, "
                          "timeout=20).read().decode())").stdout.strip()
        assert out == "hello tls.test:8443 /secure", out
        e = last(sb)[0]
        assert e["verdict"] == "allowed" and e["method"] == "CONNECT" and e["address"] == PUBLIC + ":8443", e
        assert e["bytes_in"] > 1000, e  # the server's certificate came back through the tunnel


def test_no_way_out_without_the_proxy(daemon, net):
    with box(daemon, ["allowed.test:80"]) as sb:
        q = dns(net).get("allowed.test", 0)
        out = sb.run_code(DIRECT % PUBLIC).stdout.split("\n")
        assert out[0] == "direct 101", out  # ENETUNREACH: no route at all
        assert out[1] == "noresolve", out
        assert dns(net).get("allowed.test", 0) == q


def test_runtime_change_between_two_connections(daemon, net):
    with box(daemon, ["allowed.test:80"]) as sb:
        assert fetch(sb, "http://allowed.test/1").startswith("OK 200")
        p = sb.set_egress(["tls.test:443"])
        assert p["allow"] == ["tls.test:443"] and p["closed"] == 0, p
        out = fetch(sb, "http://allowed.test/2")
        assert out.startswith("HTTP 403") and "tls.test:443" in out, out
        sb.set_egress({"allow": ["allowed.test:80"]})
        assert fetch(sb, "http://allowed.test/3").startswith("OK 200")
        assert [e["verdict"] for e in last(sb, 3)] == ["allowed", "denied", "allowed"]
        changes = [ev for ev in sb.logs() if ev["action"] == "egress_policy"]
        assert len(changes) == 2 and changes[0]["detail"] == {"allow": ["tls.test:443"]}, changes


RAW = r'''
import socket
def raw(data, want_close=True):
    s = socket.create_connection(("127.0.0.1", 3128), timeout=20)
    s.sendall(data)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    return out.decode(errors="replace")
'''


def test_plain_http_is_one_checked_request(daemon, net):
    with box(daemon, ["allowed.test:80"]) as sb:
        # a Host header naming another virtual host is replaced by the checked one,
        # and a second, pipelined request on the same connection is never sent on
        req = (b"GET http://allowed.test/front HTTP/1.1\r\nHost: evil.example\r\n\r\n"
               b"GET http://allowed.test/second HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        out = sb.run_code(RAW + "print(raw(%r))" % req).stdout
        assert "hello allowed.test /front" in out and "evil" not in out and "second" not in out, out
        assert "/second" not in sink(net).get("gets", []), sink(net)
        post = sb.run_code(FETCH + "import urllib.request\n"
                           "print(urllib.request.urlopen(urllib.request.Request('http://allowed.test/p', "
                           "data=b'x' * 100000), timeout=20).read().decode())").stdout.strip()
        assert post.startswith("posted 100000 xxxx"), post
        chunked = (b"POST http://allowed.test/c HTTP/1.1\r\nHost: allowed.test\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
        out = sb.run_code(RAW + "print(raw(%r))" % chunked).stdout
        assert out.startswith("HTTP/1.1 501"), out


HOLD = r'''
import socket, urllib.request, json, os
s = socket.create_connection(("127.0.0.1", 3128), timeout=20)
s.sendall(b"CONNECT allowed.test:80 HTTP/1.1\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
s.sendall(b"GET /held HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
first = b""
while b"/held" not in first:  # the whole answer, which may come in pieces
    first += s.recv(65536)
'''


def test_runtime_change_closes_what_it_no_longer_allows(daemon, net):
    with box(daemon, ["allowed.test:80"]) as sb:
        out = sb.run_code(HOLD + "print(first.split(b'\\r\\n')[0].decode())").stdout.strip()
        assert out == "HTTP/1.0 200 OK" or out == "HTTP/1.1 200 OK", out
        p = sb.set_egress(["tls.test:443"])
        assert p["closed"] == 1, p
        out = sb.run_code("print(repr(s.recv(100)))").stdout.strip()
        assert out == "b''", out  # closed under it
        assert wait_until(lambda: last(sb)[0]["verdict"] == "revoked", 10), last(sb)
        assert "policy changed" in last(sb)[0]["reason"]


def test_create_and_put_are_validated(daemon, net):
    # egress true (open egress) is test_egress_open.py's
    for bad in ({"allow": ["no-port.example"]}, {"allow": "x:1"}, {"allow": ["*.example:443"]},
                {"allow": ["10.0.0.1/8:1"]}, {"deny": []}, "yes"):
        st, body = daemon.request("POST", "/v1/sandboxes", {"egress": bad})
        assert st == 400 and body["error"]["code"] == "invalid_request", (bad, body)
    st, body = daemon.request("POST", "/v1/sandboxes", {"egress": {"allow": []}, "isolation": "vm"})
    assert st == 400 and body["error"]["code"] in ("egress_unavailable", "isolation_unavailable"), body
    with Sandbox(base_url=daemon.unix_url, api_key=daemon.key) as sealed:
        # sealed, but switchable: the variables point at a proxy not made yet
        assert sealed.egress() == {"allow": []} and sealed.egress_log() == []
        env = sealed.run_code("import os; print(os.environ.get('HTTPS_PROXY'))").stdout.strip()
        assert env == "http://127.0.0.1:3128", env
        st, body = daemon.request("PUT", "/v1/sandboxes/%s/egress" % sealed.id, {"allow": ["bad"]})
        assert st == 400 and body["error"]["code"] == "invalid_request", body
    with box(daemon, []) as sb:
        env = sb.run_code("import os; print(os.environ['HTTPS_PROXY'], os.environ['no_proxy'])").stdout.strip()
        assert env == "http://127.0.0.1:3128 localhost,127.0.0.1,::1", env
        st, body = daemon.request("PUT", "/v1/sandboxes/%s/egress" % sb.id, {"allow": ["bad"]})
        assert st == 400 and body["error"]["code"] == "invalid_request", body
        assert sb.egress() == {"allow": []}


def test_cli_allow_and_egress_command(daemon, net):
    def cli(*args, check=0):
        p = subprocess.run([str(e2e_support.CLI), *args, "--url", daemon.unix_url, "--key", daemon.key],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == check, (args, p.stdout, p.stderr)
        return p.stdout
    sid = json.loads(cli("create", "--allow", "allowed.test:80", "--allow", "*.corp.test:443", "--json"))["id"]
    try:
        assert cli("egress", sid) == "allowed.test:80\n*.corp.test:443\n"
        assert cli("egress", sid, "set", "tls.test:443") == "0 open connection(s) closed\n"
        assert cli("egress", sid) == "tls.test:443\n"
        assert cli("egress", sid, "log") == ""
        sb = Sandbox(base_url=daemon.unix_url, api_key=daemon.key, _info={"id": sid})
        fetch(sb, "http://allowed.test/")
        log = cli("egress", sid, "log")
        assert "denied" in log and "allowed.test:80" in log, log
        cli("egress", sid, "bogus", check=2)
        cli("create", "--allow", "a.test:1", "--egress", check=2)
    finally:
        cli("rm", sid)


SOCKS_RAW = r'''
import socket, struct
def socks(greeting, request=None):
    s = socket.create_connection(("127.0.0.1", 3128), timeout=20)
    s.sendall(greeting)
    out = [s.recv(2).hex()]
    if request is not None and out[0] == "0500":
        s.sendall(request)
        out.append(s.recv(10)[:2].hex())
    s.close()
    return " ".join(out)
def name(host, port):
    return b"\x05\x01\x00\x03" + bytes([len(host)]) + host.encode() + struct.pack(">H", port)
'''


def test_socks5_through_the_same_proxy(daemon, net):
    """ALL_PROXY=socks5h://127.0.0.1:3128: the same port, the same checks; the
    name comes unresolved and is matched before any lookup."""
    with box(daemon, ["allowed.test:80"]) as sb:
        q = dns(net).get("denied.test", 0)
        r = sb.run_code("env -u http_proxy -u HTTP_PROXY -u all_proxy ALL_PROXY=socks5h://127.0.0.1:3128 "
                        "curl -s -w ' %{http_code}' "
                        "http://allowed.test/s; echo; "
                        "curl -s --socks5-hostname 127.0.0.1:3128 http://denied.test/ ; echo \"rc=$?\"",
                        language="bash")
        lines = r.stdout.strip().splitlines()
        assert lines[0] == "hello allowed.test /s 200", r.stdout
        assert lines[-1] == "rc=97", r.stdout  # curl: the SOCKS connection was refused
        assert dns(net).get("denied.test", 0) == q  # never looked up
        log = [e for e in sb.egress_log() if e["method"] == "SOCKS5"]
        assert [e["verdict"] for e in log] == ["allowed", "denied"], log
        assert log[0]["host"] == "allowed.test" and log[0]["address"] == PUBLIC + ":80", log
        assert "no rule" in log[1]["reason"], log
        # the protocol's own refusals: no acceptable method, BIND, an IP literal no rule allows
        out = sb.run_code(SOCKS_RAW + r'''
print(socks(b"\x05\x01\x02"))
print(socks(b"\x05\x01\x00", b"\x05\x02\x00\x03\x0callowed.test\x00\x50"))
print(socks(b"\x05\x01\x00", b"\x05\x01\x00\x01" + socket.inet_aton("%s") + b"\x00\x50"))
print(socks(b"\x05\x01\x00", name("allowed.test", 8080)))
''' % PUBLIC).stdout.split("\n")
        assert out[:4] == ["05ff", "0500 0507", "0500 0502", "0500 0502"], out
