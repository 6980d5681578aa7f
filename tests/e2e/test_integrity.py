"""Data integrity of transfers and inputs (issue 11): every case states what
must hold; each fails on a daemon/SDK/CLI without the corresponding check.

- a download cut short (the daemon SIGKILLed mid-transfer) raises a typed
  error in the SDK and a non-zero exit in the CLI, and leaves no partial file
  where the whole one was asked for;
- every download carries its length and sha256; an upload may carry its
  sha256, and a mismatch is refused and leaves nothing in place;
- a streamed run whose connection is cut raises instead of ending quietly;
- a path with a NUL or invalid UTF-8 is refused (400) before it can name
  another file;
- body limits are decided from the headers (413 before the body is sent),
  conflicting Content-Length headers are refused, and a head too large for
  the daemon still gets the JSON error envelope.

Raw-socket cases talk to 127.0.0.1 only.
"""

import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

import airlock
from airlock import Sandbox
from e2e_support import Daemon, stop_and_check, wait_until

BIG_MB = 64


# ---- helpers -----------------------------------------------------------------------

@pytest.fixture
def crashy(tmp_path):
    """A daemon of this test's own, which the test may SIGKILL; restarted and
    stopped cleanly afterwards so its teardown is checked."""
    d = Daemon(tmp_path / "crashy", name="crashy").start()
    yield d
    if d.proc.poll() is not None:
        d.start()
    stop_and_check(d)


def _make_big(sb, path, mb=BIG_MB):
    r = sb.exec("head -c %dM /dev/urandom > %s && sha256sum %s" % (mb, path, path), timeout=60)
    assert r.exit_code == 0, r
    return r.stdout.split()[0]


def _files_url(sb_id, path, route="/files", **extra):
    q = {"path": path}
    q.update(extra)
    return "/v1/sandboxes/%s%s?%s" % (sb_id, route, urllib.parse.urlencode(q))


def _raw(port, head, timeout=20.0):
    """Send raw request bytes (head only) to 127.0.0.1:port; return
    (status, headers dict, body) of the first response, read with the
    stdlib parser."""
    import http.client
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(head)
        r = http.client.HTTPResponse(s)
        r.begin()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        s.close()


def _json_error(body):
    err = json.loads(body)["error"]
    assert isinstance(err["code"], str) and isinstance(err["message"], str), err
    return err


# ---- item 1: downloads are verified ---------------------------------------------------

def test_download_carries_length_and_sha256(daemon, sb):
    """Every download announces Content-Length and X-Content-SHA256, and both
    match the bytes."""
    data = os.urandom(300_000)
    sb.upload(data, "/tmp/digest.bin")
    st, h, body, _ = daemon.request("GET", _files_url(sb.id, "/tmp/digest.bin"))
    assert st == 200
    assert int(h["content-length"]) == len(data) == len(body)
    assert h.get("x-content-sha256") == hashlib.sha256(data).hexdigest(), h
    sb.upload(b"", "/tmp/empty.bin")
    st, h, body, _ = daemon.request("GET", _files_url(sb.id, "/tmp/empty.bin"))
    assert st == 200 and body == b""
    assert h.get("x-content-sha256") == hashlib.sha256(b"").hexdigest(), h


class _KillAfter:
    """A writable that SIGKILLs the daemon once `after` bytes have arrived:
    the cut is real (the daemon's process dies mid-transfer)."""

    def __init__(self, d, after, sink):
        self.d, self.after, self.sink, self.n, self.killed = d, after, sink, 0, False

    def write(self, b):
        self.n += len(b)
        if self.n >= self.after and not self.killed:
            self.killed = True
            self.d.proc.send_signal(signal.SIGKILL)
        return self.sink.write(b)


def test_download_cut_by_daemon_kill_raises(crashy):
    """SIGKILL of the daemon mid-download: download() raises TransferError
    (an AirlockConnectionError), never returns a short body as whole."""
    s = crashy.sandbox(timeout=600)
    _make_big(s, "/tmp/big")
    import io
    sink = _KillAfter(crashy, 2 << 20, io.BytesIO())
    with pytest.raises(airlock.TransferError) as ei:
        s.download("/tmp/big", sink)
    assert sink.killed and sink.n < BIG_MB << 20, sink.n
    assert isinstance(ei.value, airlock.AirlockConnectionError)
    crashy.proc.wait()


def test_download_to_path_cut_leaves_no_file(crashy, tmp_path, monkeypatch):
    """download(path, local_path) cut mid-transfer: TransferError, and
    neither local_path nor a temporary file is left in its directory."""
    s = crashy.sandbox(timeout=600)
    _make_big(s, "/tmp/big")
    from airlock import _transport
    real = _transport.Transport.request_to_file

    def cut(self, method, path, out, timeout=60.0, **kw):
        return real(self, method, path, _KillAfter(crashy, 2 << 20, out), timeout, **kw)
    monkeypatch.setattr(_transport.Transport, "request_to_file", cut)
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "big").write_bytes(b"the old content")
    with pytest.raises(airlock.TransferError):
        s.download("/tmp/big", outdir / "big")
    assert sorted(os.listdir(outdir)) == ["big"], os.listdir(outdir)
    assert (outdir / "big").read_bytes() == b"the old content"
    crashy.proc.wait()


class _ExpireMidway:
    """A writable that, once `after` bytes have arrived, sets the sandbox's
    lifetime to 1 s and waits (not reading on) until the daemon reports it
    destroyed: the sandbox really expires mid-download."""

    def __init__(self, sb, daemon, after):
        self.sb, self.daemon, self.after, self.n, self.expired = sb, daemon, after, 0, False

    def _gone(self):
        # torn down, not only past its lifetime: an expired sandbox reads
        # "destroying" until the reaper has destroyed it
        st, _, _, j = self.daemon.request("GET", "/v1/sandboxes/" + self.sb.id)
        return st == 200 and j["state"] == "destroyed" or st in (404, 410)

    def write(self, b):
        self.n += len(b)
        if self.n >= self.after and not self.expired:
            self.expired = True
            self.sb.set_timeout(1)
            assert wait_until(self._gone, 30), "the sandbox did not expire"
        return len(b)


def test_download_cut_by_sandbox_expiry_raises(daemon, fresh, tmp_path):
    """The sandbox expires mid-download (the audit's 98.8 of 150 MB):
    TransferError, and to a path no file at all."""
    s = fresh(timeout=600)
    _make_big(s, "/tmp/big")
    w = _ExpireMidway(s, daemon, 2 << 20)
    with pytest.raises(airlock.TransferError):
        s.download("/tmp/big", w)
    assert w.expired and w.n < BIG_MB << 20, w.n


def test_download_to_path_whole(sb, tmp_path):
    """The success path of the temporary-name download: the file is there,
    whole, and nothing else is."""
    data = os.urandom(1 << 20)
    sb.upload(data, "/tmp/whole.bin")
    assert sb.download("/tmp/whole.bin", tmp_path / "w.bin") == len(data)
    assert (tmp_path / "w.bin").read_bytes() == data
    assert os.listdir(tmp_path) == ["w.bin"]


def test_cli_download_cut_fails_and_leaves_no_file(crashy, cli, tmp_path):
    """`airlock download` cut mid-transfer (the client is stopped, the daemon
    SIGKILLed, the client resumed): non-zero exit, a message, no LOCAL and no
    temporary file."""
    s = crashy.sandbox(timeout=600)
    _make_big(s, "/tmp/big", mb=256)
    outdir = tmp_path / "out"
    outdir.mkdir()
    env = dict(os.environ, AIRLOCK_URL=crashy.url, AIRLOCK_API_KEY=crashy.key)
    p = subprocess.Popen([str(cli), "download", s.id, "/tmp/big", str(outdir / "big")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def written():
        return sum(f.stat().st_size for f in outdir.iterdir())
    assert wait_until(lambda: written() > 0 or p.poll() is not None, 30, step=0.001)
    p.send_signal(signal.SIGSTOP)
    got = written()
    try:
        assert got < 256 << 20, "the download finished before it could be cut"
        crashy.kill9()
    finally:
        p.send_signal(signal.SIGCONT)
    out, err = p.communicate(timeout=60)
    assert p.returncode != 0, (out, err)
    assert err.strip(), "no message"
    assert os.listdir(outdir) == [], os.listdir(outdir)


def test_cli_download_verifies(daemon, sb, cli, tmp_path):
    data = os.urandom(500_000)
    sb.upload(data, "/tmp/cli.bin")
    env = dict(os.environ, AIRLOCK_URL=daemon.url, AIRLOCK_API_KEY=daemon.key)
    r = subprocess.run([str(cli), "download", sb.id, "/tmp/cli.bin", str(tmp_path / "c.bin")], env=env,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r
    assert (tmp_path / "c.bin").read_bytes() == data
    assert os.listdir(tmp_path) == ["c.bin"]


MARKER = b"<<airlock-flip-me>>"


class _Corrupter(threading.Thread):
    """A TCP relay on 127.0.0.1 that flips one byte of the daemon's answers
    on the way: the first byte of MARKER wherever it appears in the file's
    content. It forwards bytes and parses nothing."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.flipped = 0
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.url = "http://127.0.0.1:%d" % self.ls.getsockname()[1]

    def run(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.port))
            threading.Thread(target=self._pump, args=(c, up, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, c, True), daemon=True).start()

    def _pump(self, src, dst, flip):
        # (a MARKER split across two reads is not flipped: the test then
        # fails on `flipped`, it does not pass by accident)
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                if flip:
                    i = b.find(MARKER)
                    if i >= 0:
                        b = b[:i] + bytes([b[i] ^ 0xFF]) + b[i + 1:]
                        self.flipped += 1
                dst.sendall(b)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.ls.close()


def test_download_corrupted_in_transit_raises_integrity_error(daemon, sb, tmp_path):
    """One byte flipped between daemon and client: IntegrityError, and no
    file at the destination."""
    data = os.urandom(1000) + MARKER + os.urandom(200_000)
    sb.upload(data, "/tmp/flip.bin")
    relay = _Corrupter(daemon.port)
    relay.start()
    try:
        via = Sandbox.connect(sb.id, api_key=daemon.key, base_url=relay.url)
        with pytest.raises(airlock.IntegrityError):
            via.download("/tmp/flip.bin")
        with pytest.raises(airlock.IntegrityError):
            via.download("/tmp/flip.bin", tmp_path / "f.bin")
        assert relay.flipped == 2
        assert os.listdir(tmp_path) == []
    finally:
        relay.close()
        airlock.close_idle_connections()


def test_cli_download_corrupted_fails_and_leaves_no_file(daemon, sb, cli, tmp_path):
    data = os.urandom(1000) + MARKER + os.urandom(200_000)
    sb.upload(data, "/tmp/flipcli.bin")
    relay = _Corrupter(daemon.port)
    relay.start()
    try:
        env = dict(os.environ, AIRLOCK_URL=relay.url, AIRLOCK_API_KEY=daemon.key)
        r = subprocess.run([str(cli), "download", sb.id, "/tmp/flipcli.bin", str(tmp_path / "c.bin")], env=env,
                           capture_output=True, timeout=60)
    finally:
        relay.close()
    assert relay.flipped == 1
    assert r.returncode != 0, r
    assert b"digest_mismatch" in r.stderr, r.stderr
    assert os.listdir(tmp_path) == []


# ---- uploads: an optional digest the agent checks ----------------------------------------

def test_upload_digest_mismatch_refused_and_nothing_left(daemon, sb):
    sb.upload(b"original", "/data/keep_digest.txt")
    body = b"new content"
    st, _, _, j = daemon.request("PUT", _files_url(sb.id, "/data/keep_digest.txt"), body,
                                 headers={"X-Content-SHA256": hashlib.sha256(b"other").hexdigest()})
    assert st == 400 and j["error"]["code"] == "digest_mismatch", (st, j)
    assert sb.download("/data/keep_digest.txt") == b"original"
    st, _, _, j = daemon.request("PUT", _files_url(sb.id, "/data/fresh_digest.txt"), body,
                                 headers={"X-Content-SHA256": "0" * 64})
    assert st == 400 and j["error"]["code"] == "digest_mismatch", (st, j)
    assert not sb.files.exists("/data/fresh_digest.txt")
    assert not [e for e in sb.files.list("/data") if e["name"].startswith(".airlock")]
    st, _, _, j = daemon.request("PUT", _files_url(sb.id, "/data/fresh_digest.txt"), body,
                                 headers={"X-Content-SHA256": "not-hex"})
    assert st == 400, (st, j)
    st, _, _, j = daemon.request("PUT", _files_url(sb.id, "/data/fresh_digest.txt"), body,
                                 headers={"X-Content-SHA256": hashlib.sha256(body).hexdigest().upper()})
    assert st == 201, (st, j)
    assert sb.download("/data/fresh_digest.txt") == body


def test_upload_corrupted_in_transit_refused(daemon, sb, monkeypatch):
    """The SDK sends the digest of what it means to send: a byte flipped on
    the way (the relay flips the daemon->client direction only, so flip the
    client's own copy instead: the digest header names other bytes) is
    refused with IntegrityError."""
    from airlock import _transport
    real = _transport.Transport.request_raw

    def corrupt(self, method, path, body=None, headers=None, timeout=60.0):
        if method == "PUT" and isinstance(body, bytes) and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        return real(self, method, path, body, headers, timeout)
    monkeypatch.setattr(_transport.Transport, "request_raw", corrupt)
    with pytest.raises(airlock.IntegrityError):
        sb.upload(b"payload", "/data/corrupt_up.txt")
    monkeypatch.undo()
    assert not sb.files.exists("/data/corrupt_up.txt")


def test_upload_short_body_leaves_nothing(daemon, sb):
    """A client that declares 1 MiB and sends half, then closes: no file."""
    sb.upload(b"before", "/data/short.txt")
    s = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    s.sendall(("PUT %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
               % (_files_url(sb.id, "/data/short.txt"), daemon.key, 1 << 20)).encode())
    s.sendall(b"x" * (1 << 19))
    s.close()
    time.sleep(0.5)  # not an assertion on time: the daemon notices the close
    assert wait_until(lambda: sb.download("/data/short.txt") == b"before", 10)
    assert not [e for e in sb.files.list("/data") if e["name"].startswith(".airlock")]


# ---- item 2: NUL and invalid UTF-8 in paths ---------------------------------------------

BAD_PATHS = [
    "/data/keep.csv%00.tmp",
    "/data/keep.csv%00",
    "%00/data/keep.csv",
    "/data/keep.csv%C0%AE",       # overlong '.'
    "/data/%C0%AF..%C0%AFkeep",   # overlong '/'
    "/data/keep%FF.csv",          # not UTF-8 at all
    "/data/keep%ED%A0%80.csv",    # a surrogate
]


@pytest.mark.parametrize("raw", BAD_PATHS)
def test_bad_path_refused_on_every_files_route(daemon, sb, raw):
    sb.upload(b"precious", "/data/keep.csv")
    base = "/v1/sandboxes/%s" % sb.id
    for method, route, body in (("PUT", "/files", b"overwritten"), ("GET", "/files", None),
                                ("DELETE", "/files", None), ("GET", "/files/list", None)):
        st, h, data, j = daemon.request(method, "%s%s?path=%s" % (base, route, raw), body)
        assert st == 400, (method, route, raw, st, data)
        assert j and j["error"]["code"] == "invalid_request", j
        assert b"precious" not in data
    # the NUL also cannot hide in another query parameter
    st, _, _, j = daemon.request("DELETE", "%s/files?path=/data/x&recursive=true%%00" % base)
    assert st == 400, (st, j)
    assert sb.download("/data/keep.csv") == b"precious"


def test_nul_in_sandbox_id_segment_refused(daemon, sb):
    st, _, _, j = daemon.request("GET", "/v1/sandboxes/%s%%00junk" % sb.id)
    assert st in (400, 404), (st, j)
    assert st != 200


def test_sdk_refuses_bad_paths_before_sending(sb):
    sb.upload(b"precious", "/data/keep.csv")
    for bad in ("/data/keep.csv\x00.bak", "/data/keep\udcff.csv"):
        with pytest.raises(airlock.InvalidRequest):
            sb.files.remove(bad)
        with pytest.raises(airlock.InvalidRequest):
            sb.download(bad)
        with pytest.raises(airlock.InvalidRequest):
            sb.upload(b"x", bad)
        with pytest.raises(airlock.InvalidRequest):
            sb.files.list(bad)
    assert sb.download("/data/keep.csv") == b"precious"


# ---- item 3: a streamed run that is cut raises --------------------------------------------

def test_stream_cut_by_daemon_kill_raises(crashy):
    s = crashy.sandbox(timeout=600)
    events = s.run_code_stream("import time\nprint('started', flush=True)\ntime.sleep(60)\n", timeout=120)
    first = next(events)
    assert first["type"] == "stdout" and "started" in first["data"], first
    crashy.kill9()
    with pytest.raises(airlock.TransferError):
        for _ in events:
            pass


def test_stream_whole_ends_with_exit(sb):
    evs = list(sb.run_code_stream("print(1)"))
    assert evs[-1]["type"] == "exit", evs


# ---- item 8: body limits from the headers; conflicting Content-Length ----------------------

def _head(method, path, key, extra=""):
    return ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n%s\r\n"
            % (method, path, key, extra)).encode()


@pytest.mark.parametrize("expect", [False, True])
def test_declared_oversize_json_body_413_before_the_body(daemon, expect):
    """Only the head is sent: the 413 must come without the body (a daemon
    that waits for the 1 GiB never answers, and the read times out)."""
    extra = "Content-Type: application/json\r\nContent-Length: %d\r\n" % (1 << 30)
    if expect:
        extra += "Expect: 100-continue\r\n"
    st, h, body = _raw(daemon.port, _head("POST", "/v1/sandboxes", daemon.key, extra))
    assert st == 413, (st, body)
    assert _json_error(body)["code"] == "payload_too_large"


def test_declared_oversize_upload_413_before_the_body(daemon, sb):
    extra = "Content-Length: %d\r\n" % (1 << 40)
    st, h, body = _raw(daemon.port, _head("PUT", _files_url(sb.id, "/data/huge"), daemon.key, extra))
    assert st == 413, (st, body)
    assert _json_error(body)["code"] == "payload_too_large"


def test_conflicting_content_length_refused(daemon, sb):
    """A valid body, framed by two different lengths: refused, whichever
    length the parser would have believed (a daemon that believes the first
    answers 200, one that believes the second waits and times out)."""
    body = b'{"timeout_s":3600}'
    extra = ("Content-Type: application/json\r\nContent-Length: %d\r\nContent-Length: %d\r\n"
             % (len(body), len(body) + 40))
    st, h, body = _raw(daemon.port, _head("POST", "/v1/sandboxes/%s/timeout" % sb.id, daemon.key, extra) + body,
                       timeout=10)
    assert st == 400, (st, body)
    assert _json_error(body)["code"] == "invalid_request"


# ---- item 10: a head too large still gets the JSON envelope --------------------------------

def test_ten_thousand_headers_get_json(daemon):
    extra = "".join("X-Filler-%05d: v\r\n" % i for i in range(10000))
    st, h, body = _raw(daemon.port, _head("GET", "/v1/sandboxes", daemon.key, extra))
    assert st == 431, (st, body[:200])
    assert h.get("content-type", "").startswith("application/json"), h
    assert _json_error(body)["code"] == "headers_too_large"
