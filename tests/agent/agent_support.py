"""Fixtures for the airlock-agent tests: a scratch sandbox root and an agent
process speaking the framed protocol over a socketpair (docs/protocol.md)."""

import json
import os
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT = os.environ.get("AIRLOCK_AGENT", os.path.join(REPO, "build", "airlock-agent"))
RUNNER = os.environ.get("AIRLOCK_RUNNER", os.path.join(REPO, "runner", "airlock_runner.py"))
PYTHON = "/usr/bin/python3"

MAGIC = 0x314B4C41
HDR = struct.Struct("<IBBHII")
F_END = 1
MAX_PAYLOAD = 1 << 20
GET_WINDOW = 1 << 20  # PROTO_GET_WINDOW: unacknowledged FILE_DATA bytes per FILE_GET

HELLO, SHUTDOWN, RUN_CODE, EXEC, SIGNAL, STDIN = 0x01, 0x02, 0x10, 0x11, 0x12, 0x13
FILE_PUT, FILE_GET, FILE_LIST, FILE_DELETE, FILE_MKDIR, FILE_DATA, FILE_ACK = 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26
STDOUT, STDERR, RESULT, OK, ERROR = 0x40, 0x41, 0x42, 0x43, 0x44

USER_UID = 1000


class Frame:
    def __init__(self, ftype, flags, req_id, payload):
        self.type, self.flags, self.req_id, self.payload = ftype, flags, req_id, payload

    @property
    def end(self):
        return bool(self.flags & F_END)

    def json(self):
        return json.loads(self.payload)

    def __repr__(self):
        return "Frame(0x%02x, flags=%d, req=%d, %r)" % (self.type, self.flags, self.req_id, self.payload[:200])


class Reply:
    """Everything the agent sent for one request."""

    def __init__(self, frames):
        self.frames = frames
        self.stdout = b"".join(f.payload for f in frames if f.type == STDOUT)
        self.stderr = b"".join(f.payload for f in frames if f.type == STDERR)
        self.data = b"".join(f.payload for f in frames if f.type == FILE_DATA)
        last = frames[-1]
        self.type = last.type
        self.body = last.json() if last.type in (RESULT, OK, ERROR) else None
        self.first = frames[0]

    @property
    def result(self):
        assert self.type == RESULT, "expected RESULT, got %r" % (self.frames[-1],)
        return self.body

    @property
    def error_code(self):
        assert self.type == ERROR, "expected ERROR, got %r" % (self.frames[-1],)
        return self.body["code"]


class AgentClient:
    def __init__(self, root, extra_args=(), pass_fds=()):
        self.sock, child = socket.socketpair()
        self.proc = subprocess.Popen(
            [AGENT, "--fd", str(child.fileno()), "--root", root, "--runner", RUNNER, "--python", PYTHON, *extra_args],
            pass_fds=[child.fileno(), *pass_fds],
        )
        child.close()
        self.next_id = 1
        self.pending = {}  # req_id -> frames received but not yet collected
        self.buf = b""

    # -- framing --
    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, ftype, req_id, payload=b"", flags=0):
        if isinstance(payload, dict):
            payload = json.dumps(payload).encode()
        self.sock.sendall(HDR.pack(MAGIC, 1, ftype, flags, req_id, len(payload)) + payload)

    def _read_frame(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= HDR.size:
                magic, ver, ftype, flags, req_id, length = HDR.unpack_from(self.buf)
                assert magic == MAGIC and ver == 1 and length <= MAX_PAYLOAD, "agent sent a bad header"
                if len(self.buf) >= HDR.size + length:
                    payload = self.buf[HDR.size:HDR.size + length]
                    self.buf = self.buf[HDR.size + length:]
                    return Frame(ftype, flags, req_id, payload)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the agent within %.1f s" % timeout)
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise EOFError("agent closed the control stream")
                self.buf += chunk

    def ack(self, req_id, nbytes):
        self.send(FILE_ACK, req_id, {"bytes": nbytes})

    def collect(self, req_id, timeout=30, ack=False):
        """Frames of req_id up to and including its END frame. With ack, every
        FILE_DATA frame is acknowledged as it is taken (a download client)."""
        frames = self.pending.pop(req_id, [])
        if ack:
            for f in frames:
                if f.type == FILE_DATA:
                    self.ack(req_id, len(f.payload))
        deadline = time.monotonic() + timeout
        while not (frames and frames[-1].end):
            f = self._read_frame(max(0.01, deadline - time.monotonic()))
            if f.req_id == req_id:
                frames.append(f)
                if ack and f.type == FILE_DATA:
                    self.ack(req_id, len(f.payload))
            else:
                self.pending.setdefault(f.req_id, []).append(f)
        return Reply(frames)

    def frames_for(self, req_id, seconds):
        """Whatever arrives for req_id within `seconds` (other ids are kept
        for collect); does not wait for an END."""
        frames = self.pending.pop(req_id, [])
        deadline = time.monotonic() + seconds
        while not (frames and frames[-1].end):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                f = self._read_frame(left)
            except TimeoutError:
                break
            if f.req_id == req_id:
                frames.append(f)
            else:
                self.pending.setdefault(f.req_id, []).append(f)
        return frames

    def start(self, ftype, payload=b"", flags=0):
        req_id = self.next_id
        self.next_id += 1
        self.send(ftype, req_id, payload, flags)
        return req_id

    def call(self, ftype, payload=b"", timeout=30, flags=0):
        return self.collect(self.start(ftype, payload, flags), timeout)

    # -- helpers --
    def run_code(self, code, language="python", timeout=60, **kw):
        body = {"code": code, "language": language, **kw}
        return self.call(RUN_CODE, body, timeout=timeout)

    def py(self, code, **kw):
        r = self.run_code(code, **kw)
        assert r.type == RESULT, r.frames
        return r

    def exec(self, timeout=30, **kw):
        return self.call(EXEC, kw, timeout=timeout)

    def put(self, path, data, mode=None, chunk=256 * 1024, sha256=None):
        body = {"path": path}
        if mode is not None:
            body["mode"] = mode
        if sha256 is not None:
            body["sha256"] = sha256
        req = self.start(FILE_PUT, body)
        for i in range(0, len(data), chunk):
            last = i + chunk >= len(data)
            self.send(FILE_DATA, req, data[i:i + chunk], F_END if last else 0)
        if not data:
            self.send(FILE_DATA, req, b"", F_END)
        return self.collect(req)

    def get(self, path, timeout=30):
        return self.collect(self.start(FILE_GET, {"path": path}), timeout, ack=True)

    def wait_exit(self, timeout=10):
        return self.proc.wait(timeout)

    def close(self):
        try:
            self.sock.close()
        finally:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_root():
    """A sandbox root like the jail builds: tmp, data, home/user owned by 1000.
    The agent's Landlock domain lets user code write only beneath these (and
    the host's /dev/shm): tests that need a writable place use root + "/tmp"."""
    root = tempfile.mkdtemp(prefix="airlock-agent-root-")
    os.chmod(root, 0o755)
    for d in ("tmp", "data", "home", "home/user"):
        os.mkdir(os.path.join(root, d))
    for d in ("tmp", "data", "home/user"):
        os.chown(os.path.join(root, d), USER_UID, USER_UID)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    return root


@pytest.fixture
def root():
    r = make_root()
    yield r
    shutil.rmtree(r, ignore_errors=True)


@pytest.fixture
def agent(root):
    if not os.path.exists(AGENT):
        pytest.fail("agent binary not found at %s (set AIRLOCK_AGENT)" % AGENT)
    a = AgentClient(root)
    yield a
    a.close()
