"""The network of tests/e2e/test_egress.py and bench/egress_bench.py, all of
it the test's own: a namespace for the daemon (lo and one veth) and one for
the servers (egress_servers.py) behind that veth. No packet can reach a real
network from either."""
import http.client
import json
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

from e2e_support import Daemon

HERE = Path(__file__).resolve().parent
PUBLIC = "198.51.100.10"  # TEST-NET-2: "public" to the policy, but only in our namespaces
METADATA = "169.254.169.254"  # the cloud metadata address, served by the test's web server
HOST_PUBLIC = "203.0.113.7"  # TEST-NET-3: a public address of the daemon's own ("the host's")


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


class EgressNet:
    def __init__(self, work):
        tag = secrets.token_hex(3)
        n = 1 + os.getpid() % 250
        self.d_ns, self.s_ns = "alk-egd-" + tag, "alk-egs-" + tag
        d_if, s_if = "alkd" + tag, "alks" + tag
        sub = "10.77.%d" % n
        work = Path(work)
        stats = work / "stats"
        stats.mkdir(parents=True, exist_ok=True)
        self.servers = None
        # a certificate for tls.test, for the HTTPS server (the test trusts it by file)
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=tls.test",
           "-addext", "subjectAltName=DNS:tls.test", "-keyout", str(stats / "key.pem"), "-out", str(stats / "cert.pem"))
        (stats / "tls.pem").write_bytes((stats / "key.pem").read_bytes() + (stats / "cert.pem").read_bytes())
        sh("ip", "netns", "add", self.d_ns)
        sh("ip", "netns", "add", self.s_ns)
        try:
            sh("ip", "link", "add", d_if, "type", "veth", "peer", "name", s_if)
            sh("ip", "link", "set", d_if, "netns", self.d_ns)
            sh("ip", "link", "set", s_if, "netns", self.s_ns)
            for ns, ifc, addr in ((self.d_ns, d_if, sub + ".1/24"), (self.s_ns, s_if, sub + ".2/24")):
                sh("ip", "-n", ns, "link", "set", "lo", "up")
                sh("ip", "-n", ns, "addr", "add", addr, "dev", ifc)
                sh("ip", "-n", ns, "link", "set", ifc, "up")
            sh("ip", "-n", self.s_ns, "addr", "add", PUBLIC + "/32", "dev", "lo")
            sh("ip", "-n", self.d_ns, "route", "add", PUBLIC + "/32", "via", sub + ".2")
            # a metadata server behind the daemon's namespace, as on a cloud
            # host: open egress must never reach it
            sh("ip", "-n", self.s_ns, "addr", "add", METADATA + "/32", "dev", "lo")
            sh("ip", "-n", self.d_ns, "route", "add", METADATA + "/32", "via", sub + ".2")
            # the host's own public address: in no special range, still never reachable
            sh("ip", "-n", self.d_ns, "addr", "add", HOST_PUBLIC + "/32", "dev", "lo")
            self.servers = subprocess.Popen(
                ["ip", "netns", "exec", self.s_ns, "/usr/bin/python3", str(HERE / "egress_servers.py"), str(stats),
                 sub + ".2", "allowed.test=" + PUBLIC, "denied.test=" + PUBLIC, "tls.test=" + PUBLIC,
                 "private.test=" + sub + ".2", "loop.test=127.0.0.1"])
            deadline = time.monotonic() + 10
            while not (stats / "ready").exists():
                assert time.monotonic() < deadline, "test servers did not start"
                time.sleep(0.05)
            resolv = work / "resolv.conf"
            resolv.write_text("nameserver %s\noptions timeout:1 attempts:1\n" % (sub + ".2"))
        except BaseException:
            self.close()
            raise
        self.info = {"d_ns": self.d_ns, "sub": sub, "stats": stats, "resolv": resolv, "work": work}

    def close(self):
        if self.servers:
            self.servers.kill()
            self.servers.wait()
            self.servers = None
        subprocess.run(["ip", "netns", "del", self.d_ns], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.s_ns], capture_output=True)


def daemon_wrapper(info, daemon):
    """A script that runs `daemon` in the daemon's namespace. nsenter: only the
    network namespace (ip netns exec would also remount /sys, hiding the
    cgroup tree); a mount namespace of its own for the resolver, so the host's
    /etc/resolv.conf is never touched."""
    wrapper = info["work"] / "airlockd-in-netns"
    wrapper.write_text(
        "#!/bin/sh\nexec nsenter --net=/run/netns/%s unshare --mount --propagation slave "
        "sh -c 'mount --bind %s /etc/resolv.conf && exec \"$@\"' sh %s \"$@\"\n"
        % (info["d_ns"], info["resolv"], daemon))
    wrapper.chmod(0o755)
    return wrapper


class NetnsDaemon(Daemon):
    """airlockd inside the test's namespace, reached over its unix socket."""

    def healthz(self, timeout=5.0):
        c = _UnixConn(str(self.socket_path), timeout)
        try:
            c.request("GET", "/v1/healthz")
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def request(self, method, path, body=None, key=..., headers=None, timeout=30.0):
        c = _UnixConn(str(self.socket_path), timeout)
        h = dict(headers or {})
        h["Authorization"] = "Bearer " + (self.key if key is ... else key)
        if body is not None:
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, json.loads(data) if data else None
        finally:
            c.close()


class _UnixConn(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)
