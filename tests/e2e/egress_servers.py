"""The other end of tests/e2e/test_egress.py, run inside the test's own server
network namespace (never on a real network):

  HTTP  on :80   a wheel index under /simple and /files (STATS_DIR/www), else "hello <Host> <path>"
  sink  on :443  counts connections that sent bytes (a TLS ClientHello), then closes
  banner on :25  speaks first, then echoes a line
  HTTPS on :8443 the web server over TLS, when STATS_DIR/tls.pem exists
  DNS   on :53/udp   answers A records from NAMES, counts every query by name (every address: a query
                     open egress sends past the daemon's resolver would be counted too)

Counts go to STATS_DIR/dns.json and STATS_DIR/sink.json after each event.
Usage: egress_servers.py STATS_DIR DNS_ADDR name=ip ...
"""
import http.server
import json
import os
import socket
import socketserver
import struct
import sys
import threading

STATS, DNS_ADDR = sys.argv[1], sys.argv[2]
NAMES = dict(a.split("=", 1) for a in sys.argv[3:])
lock = threading.Lock()
dns_counts, sink = {}, {"hellos": 0, "connections": 0}


def dump(name, obj):
    tmp = os.path.join(STATS, name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, os.path.join(STATS, name))


class Web(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, unless the request says close

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        data = self.rfile.read(n)
        body = ("posted %d %s" % (len(data), data[:20].decode(errors="replace"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            sink.setdefault("gets", []).append(self.path)
            dump("sink.json", sink)
        # the wheel index: STATS_DIR/www/<path> (a directory's index.html)
        f = os.path.normpath(os.path.join(STATS, "www", self.path.split("?")[0].lstrip("/")))
        if f.startswith(os.path.join(STATS, "www")) and os.path.isdir(f):
            f = os.path.join(f, "index.html")
        if self.path.startswith(("/simple", "/files")) and os.path.isfile(f):
            body = open(f, "rb").read()
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if f.endswith(".html") else "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        body = ("hello %s %s" % (self.headers.get("Host"), self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Sink(socketserver.BaseRequestHandler):
    def handle(self):
        data = self.request.recv(65536)
        with lock:
            sink["connections"] += 1
            if data:
                sink["hellos"] += 1
            dump("sink.json", sink)


class Banner(socketserver.StreamRequestHandler):
    """A server that speaks first (SMTP-like): banner, then echoes one line."""

    def handle(self):
        self.wfile.write(b"220 banner\r\n")
        self.wfile.write(b"echo " + self.rfile.readline())


def qname(msg):
    labels, i = [], 12
    while msg[i]:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode())
        i += 1 + n
    qtype = struct.unpack("!H", msg[i + 1:i + 3])[0]
    return ".".join(labels).lower(), qtype, i + 5


def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 53))
    while True:
        msg, peer = s.recvfrom(4096)
        try:
            name, qtype, end = qname(msg)
        except (IndexError, struct.error, UnicodeDecodeError):
            continue
        with lock:
            dns_counts[name] = dns_counts.get(name, 0) + 1
            dump("dns.json", dns_counts)
        ip = NAMES.get(name)
        rcode = 0 if ip else 3
        answers = b""
        if ip and qtype == 1:
            answers = struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + socket.inet_aton(ip)
        flags = 0x8180 | rcode
        hdr = struct.pack("!HHHHHH", struct.unpack("!H", msg[:2])[0], flags, 1, 1 if answers else 0, 0, 0)
        s.sendto(hdr + msg[12:end] + answers, peer)


class Threaded(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


def https():
    """HTTPS on :8443 with STATS_DIR/tls.pem (made by the test), the web handler behind it."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(STATS, "tls.pem"))
    srv = Threaded(("0.0.0.0", 8443), Web)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


dump("dns.json", dns_counts)
if os.path.exists(os.path.join(STATS, "tls.pem")):
    threading.Thread(target=https, daemon=True).start()
dump("sink.json", sink)
threading.Thread(target=dns, daemon=True).start()
threading.Thread(target=Threaded(("0.0.0.0", 443), Sink).serve_forever, daemon=True).start()
threading.Thread(target=Threaded(("0.0.0.0", 25), Banner).serve_forever, daemon=True).start()
web = Threaded(("0.0.0.0", 80), Web)
open(os.path.join(STATS, "ready"), "w").close()
web.serve_forever()
