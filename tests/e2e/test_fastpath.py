"""Request fast paths: SDK keep-alive (one connection, safe reconnects) and the
daemon's per-request timing line at --log-level debug."""

import os
import re
import socket
import threading

import pytest

from airlock import AirlockConnectionError, AirlockError, NotFound, Sandbox, close_idle_connections
from airlock._transport import Transport

from e2e_support import Daemon, pid_alive, scope_cgroups, stop_and_check, wait_until


def _conn_ids(transport):
    """The local addresses of the transport's idle connections."""
    return [c.sock.getsockname() for c in transport._idle if c.sock is not None]


# ---- keep-alive against the real daemon --------------------------------------------------

def test_sdk_reuses_one_connection(fresh):
    sb = fresh()
    sb.run_code("1")
    first = _conn_ids(sb._http)
    assert len(first) == 1, first
    for i in range(5):
        r = sb.run_code("print(%d)" % i)
        assert r.stdout == "%d\n" % i
        sb.exec(["true"])
        sb.files.list("/home/user")
        assert _conn_ids(sb._http) == first, "a new connection was opened for request %d" % i


def test_sdk_replaces_idle_connection_the_daemon_closed(tmp_path, monkeypatch):
    """A restart closes every idle keep-alive connection; the next request
    must go through on a fresh one, even a POST (which is never re-sent once
    it may have reached the daemon). Over TCP, writing into a connection the
    peer closed succeeds, so only the check before reuse saves the POST."""
    import e2e_support as conftest
    d = Daemon(tmp_path / "d").start()
    port = d.port
    try:
        url = "http://127.0.0.1:%d" % port
        t = Transport(base_url=url, api_key=d.key)
        assert t.request_json("GET", "/v1/sandboxes")["sandboxes"] == []
        assert len(t._idle) == 1
        old = t._idle[0]
        assert d.stop() == 0
        monkeypatch.setattr(conftest, "free_port", lambda: port)  # same address again
        d.start()
        # A POST without a body is one write, which succeeds into the closed
        # connection: only the check before reuse gets it to the daemon,
        # which answers (400: no code) instead of the connection failing.
        with pytest.raises(AirlockError) as ei:
            t.request_json("POST", "/v1/sandboxes/sb_none/code")
        assert not isinstance(ei.value, AirlockConnectionError), ei.value
        assert old.sock is None, "the dead connection was reused"
        with Sandbox(base_url=url, api_key=d.key, _transport=t) as s:
            assert s.run_code("print(6*7)").stdout == "42\n"
        t.close()
    finally:
        stop_and_check(d)


# ---- reconnect rules: a peer that drops the connection at a chosen moment -----------------
# The real daemon never closes a connection after reading a whole request
# without answering, so this case needs a peer that does.

class _DroppingPeer:
    """HTTP/1.1 peer: answers the first request on a connection with
    keep-alive, then reads the second request whole and closes without
    answering (a daemon that died mid-request). Counts requests by method."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def _read_request(self, f):
        line = f.readline()
        if not line:
            return None
        length = 0
        while True:
            h = f.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode().partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        f.read(length)
        return line.split()[0].decode()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c, c.makefile("rb") as f:
                m = self._read_request(f)
                if m is None:
                    continue
                self.seen.append(m)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 2\r\n\r\n{}")
                m = self._read_request(f)
                if m is not None:
                    self.seen.append(m)
                # close without an answer

    def close(self):
        self.sock.close()


@pytest.fixture
def peer():
    p = _DroppingPeer()
    yield p
    p.close()


def test_lost_answer_to_post_is_not_sent_again(peer):
    t = Transport(base_url="http://127.0.0.1:%d" % peer.port, api_key="k")
    t.request_json("GET", "/x")
    with pytest.raises(AirlockConnectionError):
        t.request_json("POST", "/v1/sandboxes/s/code", {"code": "counter += 1"})
    assert peer.seen == ["GET", "POST"], "a POST whose answer was lost was sent again"


def test_lost_answer_to_get_is_retried_once(peer):
    t = Transport(base_url="http://127.0.0.1:%d" % peer.port, api_key="k")
    t.request_json("GET", "/x")
    assert t.request_json("GET", "/y") == {}
    assert peer.seen == ["GET", "GET", "GET"]


# ---- timing breakdown in the debug log -----------------------------------------------------

def _timing_lines(text):
    return [l for l in text.splitlines() if " timing " in l]


def test_debug_log_has_one_timing_line_per_request(tmp_path):
    d = Daemon(tmp_path / "d", extra_args=["--log-level", "debug"]).start()
    marker = "s3cret_marker_7f3a"
    try:
        with Sandbox(base_url=d.url, api_key=d.key) as s:
            s.run_code("print('%s')" % marker)
            s.exec(["echo", marker])
            s.upload(marker.encode(), "/data/%s.txt" % marker)
        # the line is written when the request ends, just after the client
        # has its answer
        assert wait_until(lambda: " timing DELETE " in d.log_text(), 10), d.log_tail()
        lines = _timing_lines(d.log_text())
        text = "\n".join(lines)
        num = r"=\d+\.\d{3}"
        create = [l for l in lines if "timing POST /v1/sandboxes -> 201" in l]
        assert len(create) == 1, text
        assert re.search(r": admission%s body%s create%s reply%s send%s total%s ms" % ((num,) * 6), create[0]), create[0]
        code = [l for l in lines if "timing POST /v1/sandboxes/*/code -> 200" in l]
        assert len(code) == 1, text
        assert re.search(r": admission%s body%s lookup%s agent%s reply%s send%s total%s" % ((num,) * 7), code[0]), code[0]
        assert len([l for l in lines if "timing POST /v1/sandboxes/*/exec -> 200" in l]) == 1, text
        assert len([l for l in lines if "timing PUT /v1/sandboxes/*/files -> " in l]) == 1, text
        assert len([l for l in lines if "timing DELETE /v1/sandboxes/* -> 200" in l]) == 1, text
        # no code, output, paths or keys in them
        assert marker not in text and d.key not in text, text
    finally:
        stop_and_check(d)


def test_no_timing_lines_at_info(daemon, sb):
    sb.run_code("1")
    assert _timing_lines(daemon.log_text()) == []


# ---- DELETE: teardown off the request path ------------------------------------------------

def _sandbox_cgroups(d, sid):
    import glob
    return [p for parent in scope_cgroups(d) for p in glob.glob("%s/%s" % (parent, sid))]


def test_delete_answers_then_releases_everything(tmp_path):
    # no warm pool: its ready sandboxes would be among the daemon's descendants
    d = Daemon(tmp_path / "d", extra_args=["--pool-size", "0"]).start()
    try:
        s = d.sandbox()
        s.run_code("import subprocess; p = subprocess.Popen(['sleep', '600'])")
        sid = s.id
        assert _sandbox_cgroups(d, sid), "the sandbox's cgroup was not found"
        pids = d.descendants()
        assert pids, "no sandbox processes seen"
        s.close()
        # unreachable and recorded destroyed as soon as DELETE has answered
        with pytest.raises(NotFound):
            s.run_code("1")
        st, _, _, info = d.request("GET", "/v1/sandboxes/" + sid)
        assert (st, info["state"], info["destroy_reason"]) == (200, "destroyed", "deleted"), info
        # and the teardown finishes in the background
        assert wait_until(lambda: not _sandbox_cgroups(d, sid), 20), _sandbox_cgroups(d, sid)
        assert wait_until(lambda: not any(pid_alive(p) for p in pids), 20), [p for p in pids if pid_alive(p)]
        assert d.sandbox().run_code("print(2)").stdout == "2\n"
    finally:
        stop_and_check(d)


def test_shutdown_finishes_queued_teardowns(tmp_path):
    """More deletes than the teardown queue holds (16), then SIGTERM at once:
    the daemon must finish every teardown before it exits (stop_and_check:
    no cgroup left, clean exit) and leave no process behind."""
    d = Daemon(tmp_path / "d", extra_args=["--max-sandboxes-per-key", "0"]).start()
    sbs = [d.sandbox() for _ in range(24)]
    for s in sbs:
        s.run_code("x = 1")
    pids = d.descendants()
    assert len(pids) >= 24
    for s in sbs:
        s.close()
    stop_and_check(d)
    assert [p for p in pids if pid_alive(p)] == []


def test_sdk_connection_pool_is_thread_safe(daemon, sb):
    """Threads sharing one Sandbox each get their own connection while they
    overlap, and every answer reaches the thread that asked."""
    sb.exec(["true"])
    errors = []

    def work(n):
        try:
            for i in range(20):
                r = sb.exec(["echo", str(n * 1000 + i)])  # one Python call at a time per REPL: exec
                if r.stdout != "%d\n" % (n * 1000 + i):
                    errors.append((n, i, r.stdout))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((n, repr(e)))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert 1 <= len(sb._http._idle) <= 4


# ---- one pool of idle connections per process ---------------------------------------------

def test_sandboxes_in_sequence_share_one_connection(daemon):
    """create, run and close of one sandbox and then the next one all go over
    one keep-alive connection: no connect and no daemon thread start per
    sandbox."""
    close_idle_connections()  # what earlier tests left in this process's pool
    with Sandbox() as a:
        a.run_code("1")
        first = _conn_ids(a._http)
    assert len(first) == 1, first
    for _ in range(3):
        with Sandbox() as b:
            assert b.run_code("print(3)").stdout == "3\n"
            assert _conn_ids(b._http) == first


def test_forked_child_gets_its_own_connections(daemon, sb):
    """After a fork the child must not write into the parent's sockets (two
    processes interleaving requests on one connection)."""
    close_idle_connections()
    sb.run_code("1")
    parent = _conn_ids(sb._http)
    assert len(parent) == 1, parent
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: same Sandbox object, its own pool
        try:
            ok = sb.run_code("print(5)").stdout == "5\n" and _conn_ids(sb._http) not in ([], parent)
            os.write(w, b"ok" if ok else b"shared")
        finally:
            os._exit(0)
    os.close(w)
    answer = os.read(r, 16)
    os.close(r)
    os.waitpid(pid, 0)
    assert answer == b"ok", answer
    # the parent's connection survived the child's exit
    assert sb.run_code("print(6)").stdout == "6\n"
    assert _conn_ids(sb._http) == parent
