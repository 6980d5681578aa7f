"""Egress mode 3, open egress (docs/egress.md), and runtime changes between
every mode, end to end.

The same closed world as test_egress.py (egress_net.py): the daemon runs in a
network namespace of the test's, whose only way anywhere is a veth to the
test's server namespace. There PUBLIC (198.51.100.10, TEST-NET-2) stands for
the internet, the servers' own veth address (10.77.n.2) for a private-range
host, 169.254.169.254 for a cloud's metadata server; the daemon's namespace's
own addresses stand for the host's. A broken filter can reach nothing real.
"""
import json
import os
import re
import subprocess
import time

import pytest

import e2e_support
from e2e_support import stop_and_check, wait_until
from airlock import Sandbox
from airlock.errors import InvalidRequest
from egress_net import HOST_PUBLIC, METADATA, PUBLIC, EgressNet, NetnsDaemon, daemon_wrapper

HOST_PORT = 8099  # a server on every address of the daemon's namespace (the "host")


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    n = EgressNet(tmp_path_factory.mktemp("egress-open"))
    host = None
    try:
        # the host's own services: on 0.0.0.0 of the daemon's namespace, so
        # its loopback, its veth address and a sandbox link's host end
        host = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + n.info["d_ns"], "/usr/bin/python3", "-c",
             "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             "s.bind(('0.0.0.0', %d))\ns.listen(16)\nwhile True:\n    c, _ = s.accept()\n"
             "    c.sendall(b'host service\\n')\n    c.close()\n" % HOST_PORT])
        yield n.info
    finally:
        if host:
            host.kill()
            host.wait()
        n.close()


def start_daemon(net, name=None, d=None):
    """A daemon in the test's namespace (a restart too: never on the host's)."""
    saved = e2e_support.DAEMON
    e2e_support.DAEMON = daemon_wrapper(net, e2e_support.DAEMON)
    try:
        return (d or NetnsDaemon(net["work"] / name)).start()
    finally:
        e2e_support.DAEMON = saved


@pytest.fixture(scope="module")
def daemon(net):
    d = start_daemon(net, "daemon")
    yield d
    stop_and_check(d)


def in_ns(net, *cmd):
    return subprocess.run(["ip", "netns", "exec", net["d_ns"]] + list(cmd), capture_output=True, text=True,
                          check=True).stdout


def links(net):
    """The daemons' open-egress links (not the test's own veth, alkd<tag>)."""
    own = "alkd" + net["d_ns"].rsplit("-", 1)[1]
    return [n for n in re.findall(r"^\d+: (alk[0-9a-f]+)", in_ns(net, "ip", "-o", "link"), re.M) if n != own]


def tables(net):
    return set(re.findall(r"table inet (airlock_[0-9a-f]+)", in_ns(net, "nft", "list", "tables")))


def dns(net):
    return json.loads((net["stats"] / "dns.json").read_text())


def open_box(daemon, **kw):
    return Sandbox(base_url=daemon.unix_url, api_key=daemon.key, egress=True, **kw)


PROBE = r'''
import socket, urllib.request, errno as _errno
def tcp(host, port):
    s = socket.socket()
    s.settimeout(10)
    try:
        s.connect((host, port))
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        return "open " + s.recv(64).decode(errors="replace").split("\r\n")[0].split("\n")[0]
    except OSError as e:
        return "refused %s" % (_errno.errorcode.get(e.errno, e.errno) if e.errno else type(e).__name__)
    finally:
        s.close()
def direct(url):
    o = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        return "OK " + o.open(url, timeout=10).read().decode()
    except Exception as e:
        return "ERR %s" % e
def proxied(url):
    try:
        return "OK " + urllib.request.urlopen(url, timeout=10).read().decode()
    except urllib.error.HTTPError as e:
        return "HTTP %d" % e.code
    except Exception as e:
        return "ERR %s" % e
def gateway():
    for line in open("/proc/net/route").read().splitlines()[1:]:
        f = line.split()
        if f[1] == "00000000":
            return socket.inet_ntoa(int(f[2], 16).to_bytes(4, "little"))
'''


def probe(sb, expr):
    r = sb.run_code(PROBE + "print(%s)" % expr)
    assert r.exit_code == 0, r.stderr
    return r.stdout.strip()


def test_open_reaches_a_public_host_directly_and_through_the_proxy(daemon, net):
    with open_box(daemon) as sb:
        assert sb.egress() == {"open": True, "allow": []}
        assert probe(sb, "direct('http://%s/d')" % PUBLIC) == "OK hello %s /d" % PUBLIC
        # HTTP_PROXY is set: the proxy, open now, resolves the name host side
        assert probe(sb, "proxied('http://allowed.test/p')") == "OK hello allowed.test /p"
        e = [e for e in sb.egress_log() if e["method"] == "GET"][-1]
        assert e["verdict"] == "allowed" and e["address"] == PUBLIC + ":80", e


def test_open_never_reaches_internal_addresses(daemon, net):
    sub = net["sub"]
    with open_box(daemon) as sb:
        gw = probe(sb, "gateway()")
        assert gw and gw.startswith("100."), gw
        for host in (sub + ".2", METADATA, sub + ".1", gw):  # private host, metadata, the host's own addresses
            out = probe(sb, "tcp(%r, 80)" % host)
            assert out.startswith("refused"), (host, out)
        for host in (sub + ".1", gw, HOST_PUBLIC, "127.0.0.1"):  # the host's service, wherever it answers
            out = probe(sb, "tcp(%r, %d)" % (host, HOST_PORT))
            assert out.startswith("refused"), (host, out)
        # the same from the daemon's side answers: the refusals are the filter's
        assert "host service" in in_ns(net, "/usr/bin/python3", "-c",
                                       "import socket; print(socket.create_connection(('127.0.0.1', %d)).recv(64))"
                                       % HOST_PORT)
        assert probe(sb, "tcp(%r, 80)" % PUBLIC) == "open HTTP/1.1 200 OK"
        # through the proxy: the same ranges are refused, by name or literal
        assert probe(sb, "proxied('http://private.test/')") == "HTTP 403"
        assert probe(sb, "proxied('http://%s/')" % METADATA) == "HTTP 403"
        assert probe(sb, "proxied('http://loop.test/')") == "HTTP 403"
        # the host's own public address is in no special range: the proxy asks the kernel
        assert probe(sb, "proxied('http://%s:%d/')" % (HOST_PUBLIC, HOST_PORT)) == "HTTP 403"
        e = sb.egress_log()[-1]
        assert e["verdict"] == "denied" and "host's own" in e["reason"] and e["address"] is None, e


def test_dns_goes_to_the_daemons_resolver_and_is_logged(daemon, net):
    with open_box(daemon) as sb:
        before = dns(net).get("allowed.test", 0)
        out = probe(sb, "socket.gethostbyname('allowed.test')")
        assert out == PUBLIC, out
        assert dns(net).get("allowed.test", 0) == before + 1  # the daemon asked the host's resolver, once
        try_missing = sb.run_code("import socket\ntry:\n    socket.gethostbyname('nosuch.test')\n"
                                  "except socket.gaierror as e:\n    print('gaierror', e.errno)\n")
        assert "gaierror" in try_missing.stdout, try_missing
        log = [e for e in sb.egress_log() if e["method"] == "DNS"]
        a = [e for e in log if e["host"] == "allowed.test"]
        assert a and a[-1]["verdict"] == "allowed" and a[-1]["address"] == PUBLIC, log
        assert a[-1]["reason"].startswith("A " + PUBLIC), a
        assert any(e["host"] == "nosuch.test" and "rcode 3" in e["reason"] for e in log), log
        # an answer in a private range is withheld: the host's internal names stay its own
        r = sb.run_code("import socket\ntry:\n    print(socket.gethostbyname('private.test'))\n"
                        "except socket.gaierror as e:\n    print('gaierror')\n")
        assert r.stdout.strip() == "gaierror", r.stdout
        e = [e for e in sb.egress_log() if e["host"] == "private.test"][-1]
        assert e["verdict"] == "denied" and "withheld" in e["reason"] and e["address"] is None, e
        events = [ev for ev in sb.logs() if ev["action"] == "egress" and ev["detail"]["method"] == "DNS"]
        assert events, "DNS queries are in the audit log too"


FLOOD = r'''
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
q = b"".join(bytes([len(p)]) + p.encode() for p in "flood.test".split(".")) + b"\0" + struct.pack(">HH", 1, 1)
rcodes = {}
s.settimeout(3)
# batches of 50, each sent when the last is answered: as fast as the daemon
# answers, and never more at once than its socket buffer holds
for b in range(20):
    for i in range(50):
        s.sendto(struct.pack(">HHHHHH", b * 50 + i, 0x0100, 1, 0, 0, 0) + q, ("127.0.0.1", 53))
    try:
        for i in range(50):
            r = s.recv(512)
            rcodes[r[3] & 15] = rcodes.get(r[3] & 15, 0) + 1
    except socket.timeout:
        pass
print(rcodes.get(3, 0), rcodes.get(5, 0))
'''


def test_a_flood_of_queries_is_refused_past_the_rate(daemon, net):
    """Every query is a log entry and an audit row: past 50 a second (a burst
    of 200) the resolver refuses unsent, and says so in one entry. (1000
    queries as fast as the daemon answers them: it answers far more than 50
    a second, so the limit is reached.)"""
    with open_box(daemon) as sb:
        before = dns(net).get("flood.test", 0)
        nx, refused = map(int, sb.run_code(FLOOD).stdout.split())
        sent_on = dns(net).get("flood.test", 0) - before
        assert refused > 0 and nx + refused <= 1000, (nx, refused)
        assert sent_on < 1000 - refused + 1, (sent_on, refused)  # the refused ones never left
        # one entry counts them, written once the flood pauses (no entry per refusal)
        assert wait_until(lambda: any("refused unsent" in e["reason"] for e in sb.egress_log()), 10)
        assert len([e for e in sb.egress_log() if e["method"] == "DNS"]) <= 1000 - refused + 1


def test_another_sandbox_is_unreachable(daemon, net):
    server = "import socket, threading\nsrv = socket.socket()\nsrv.bind(('0.0.0.0', 8000))\nsrv.listen(4)\n" \
             "def loop():\n    while True:\n        c, _ = srv.accept(); c.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\n'); c.close()\n" \
             "threading.Thread(target=loop, daemon=True).start()\n"
    with open_box(daemon) as a, open_box(daemon) as b:
        assert b.run_code(server).exit_code == 0
        # its own address, as the other one would need it
        b_addr = probe(b, "__import__('subprocess').run(['python3', '-c', \"import socket; "
                          "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(('198.51.100.10', 9)); "
                          "print(s.getsockname()[0])\"], capture_output=True, text=True).stdout.strip()")
        assert b_addr.startswith("100."), b_addr
        assert probe(b, "tcp('127.0.0.1', 8000)") == "open HTTP/1.0 200 OK"  # it serves
        assert probe(a, "tcp(%r, 8000)" % b_addr).startswith("refused")
        assert probe(a, "tcp(gateway(), 8000)").startswith("refused")


def test_runtime_changes_between_all_modes(daemon, net):
    with Sandbox(base_url=daemon.unix_url, api_key=daemon.key, egress={"allow": ["allowed.test:80"]}) as sb:
        assert probe(sb, "tcp(%r, 80)" % PUBLIC) == "refused ENETUNREACH"  # allow-list: no route
        # (a previous test's sandboxes are torn down off the request path)
        assert wait_until(lambda: not links(net), 10), links(net)
        p = sb.set_egress(True)
        assert p["open"] is True and p["closed"] == 0, p
        assert len(links(net)) == 1
        assert probe(sb, "tcp(%r, 80)" % PUBLIC) == "open HTTP/1.1 200 OK"
        assert probe(sb, "proxied('http://tls.test/')").startswith("OK hello tls.test")  # not on the old list
        # a direct connection held open across the change: the banner server speaks, then waits for a line
        r = sb.run_code("import socket\nheld = socket.create_connection(('%s', 25), timeout=20)\n"
                        "print(held.recv(64).decode().strip())" % PUBLIC)
        assert r.stdout.strip() == "220 banner", r
        p = sb.set_egress(["allowed.test:80"])
        assert p == {"allow": ["allowed.test:80"], "closed": 1}, p
        r = sb.run_code("try:\n    held.sendall(b'x\\n'); print('read', held.recv(64))\n"
                        "except OSError as e:\n    print('closed', type(e).__name__)\n")
        assert r.stdout.strip() in ("closed ConnectionAbortedError", "read b''"), r.stdout
        assert not links(net)  # switching back leaves no route
        assert not tables(net)  # nor a rule: the table goes with the daemon's last link
        assert probe(sb, "tcp(%r, 80)" % PUBLIC) == "refused ENETUNREACH"
        assert probe(sb, "proxied('http://tls.test/')") == "HTTP 403"
        assert probe(sb, "proxied('http://allowed.test/')").startswith("OK")
        revoked = [e for e in sb.egress_log() if e["method"] == "ROUTE"]
        assert revoked and revoked[-1]["verdict"] == "revoked" and "1 direct connection" in revoked[-1]["reason"]
        # false: nothing at all, no route; and open again after it
        p = sb.set_egress(False)
        assert p == {"allow": [], "closed": 0}, p
        assert probe(sb, "proxied('http://allowed.test/')") == "HTTP 403"
        assert sb.set_egress(True)["open"] is True
        assert probe(sb, "direct('http://%s/again')" % PUBLIC) == "OK hello %s /again" % PUBLIC
        modes = [ev["detail"] for ev in sb.logs() if ev["action"] == "egress_policy"]
        assert [m.get("open", False) for m in modes] == [True, False, False, True], modes
    assert wait_until(lambda: not links(net), 10), links(net)


def test_a_sandbox_created_sealed_switches_through_every_mode(daemon, net):
    with Sandbox(base_url=daemon.unix_url, api_key=daemon.key) as sb:
        assert wait_until(lambda: not links(net), 10), links(net)
        # sealed: the proxy variables point at nothing; no route, no listener
        assert sb.egress() == {"allow": []} and sb.egress_log() == []
        assert probe(sb, "tcp(%r, 80)" % PUBLIC) == "refused ENETUNREACH"
        assert probe(sb, "tcp('127.0.0.1', 3128)") == "refused ECONNREFUSED"
        assert probe(sb, "proxied('http://allowed.test/')").startswith("ERR")
        assert sb.set_egress(False) == {"allow": [], "closed": 0}  # stays sealed, still nothing listens
        assert probe(sb, "tcp('127.0.0.1', 3128)") == "refused ECONNREFUSED"
        # an allow-list: the proxy made now, the allowed host only
        assert sb.set_egress(["allowed.test:80"]) == {"allow": ["allowed.test:80"], "closed": 0}
        assert probe(sb, "proxied('http://allowed.test/a')").startswith("OK hello allowed.test /a")
        assert probe(sb, "proxied('http://tls.test/')") == "HTTP 403"
        assert probe(sb, "tcp(%r, 80)" % PUBLIC) == "refused ENETUNREACH" and not links(net)
        # sealed again: nothing reachable
        assert sb.set_egress(False) == {"allow": [], "closed": 0}
        assert probe(sb, "proxied('http://allowed.test/')") == "HTTP 403"
        assert probe(sb, "tcp(%r, 80)" % PUBLIC) == "refused ENETUNREACH"
        # open: the route made
        assert sb.set_egress(True)["open"] is True and len(links(net)) == 1
        assert probe(sb, "direct('http://%s/o')" % PUBLIC) == "OK hello %s /o" % PUBLIC
        # sealed again: the route gone
        assert sb.set_egress(False)["allow"] == []
        assert not links(net) and not tables(net)
        assert probe(sb, "tcp(%r, 80)" % PUBLIC) == "refused ENETUNREACH"
        assert probe(sb, "proxied('http://allowed.test/')") == "HTTP 403"
    with Sandbox(base_url=daemon.unix_url, api_key=daemon.key) as other:
        # the next sealed sandbox (perhaps from the pool) carries no policy
        assert other.egress() == {"allow": []}
        assert probe(other, "tcp('127.0.0.1', 3128)") == "refused ECONNREFUSED"
    assert wait_until(lambda: not links(net), 10), links(net)


def test_put_is_validated(daemon, net):
    with open_box(daemon) as sb:
        for body in ({"egress": "yes"}, {"egress": {"open": True}}, {"open": True}, [True]):
            st, out = daemon.request("PUT", "/v1/sandboxes/%s/egress" % sb.id, body)
            assert st == 400 and out["error"]["code"] in ("invalid_request", "invalid_json"), (body, st, out)
        assert sb.egress()["open"] is True


def test_cli_egress_on_and_egress_open(daemon, net):
    def cli(*args, check=0):
        p = subprocess.run([str(e2e_support.CLI), *args, "--url", daemon.unix_url, "--key", daemon.key],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == check, (args, p.stdout, p.stderr)
        return p.stdout
    sid = json.loads(cli("create", "--egress", "--json"))["id"]
    try:
        assert cli("egress", sid) == "open\n"
        assert wait_until(lambda: len(links(net)) == 1, 10), links(net)
        assert cli("egress", sid, "set", "allowed.test:80") == "0 open connection(s) closed\n"
        assert cli("egress", sid) == "allowed.test:80\n" and not links(net)
        assert cli("egress", sid, "open") == "0 open connection(s) closed\n"
        assert cli("egress", sid) == "open\n" and len(links(net)) == 1
    finally:
        cli("rm", sid)
    assert wait_until(lambda: not links(net), 10), links(net)


def test_vm_sandboxes_refuse_open_egress(daemon, net):
    st, out = daemon.request("POST", "/v1/sandboxes", {"egress": True, "isolation": "vm"})
    assert st == 400 and out["error"]["code"] == "egress_unavailable", out
    assert "no network interface" in out["error"]["message"], out


def test_nothing_left_after_destroy_and_after_kill9(net):
    assert wait_until(lambda: not links(net), 10), links(net)  # the module daemon's, torn down
    others = tables(net)  # the module daemon's, if it served open egress already
    d = start_daemon(net, "daemon-k9")
    try:
        assert tables(net) == others  # made at the first open sandbox, not at start
        sb = Sandbox(base_url=d.unix_url, api_key=d.key, egress=True)
        assert probe(sb, "direct('http://%s/k')" % PUBLIC).startswith("OK")
        tag = tables(net) - others
        assert len(tag) == 1 and len(links(net)) == 1, (tag, links(net))
        sb.close()
        assert wait_until(lambda: not links(net), 10), links(net)  # destroy removed the link
        assert wait_until(lambda: tables(net) == others, 10), tables(net)  # and, the last one, the table
        sb = Sandbox(base_url=d.unix_url, api_key=d.key, egress=True)
        agent = d.descendants()
        assert len(links(net)) == 1
        d.kill9()
        # the agent sees EOF and exits; its namespace, and the veth in it, go
        assert wait_until(lambda: not links(net), 20), links(net)
        assert wait_until(lambda: not any(e2e_support.pid_alive(p) for p in agent), 20)
        assert tables(net) - others == tag  # the rules a killed daemon cannot remove...
        start_daemon(net, d=d)
        assert tables(net) == others, "...its restart removes"
        assert not links(net)
        sb = Sandbox(base_url=d.unix_url, api_key=d.key, egress=True)  # and open egress works again
        assert probe(sb, "direct('http://%s/k2')" % PUBLIC).startswith("OK")
        sb.close()
    finally:
        stop_and_check(d)
    # a clean stop leaves nothing either
    assert tables(net) == others and not links(net)
