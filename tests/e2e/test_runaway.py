"""Runaway code is contained: the sandbox (and everything else) stays usable."""

import time

import pytest

MAX_STREAM = 10 * 1024 * 1024


def test_output_flood_is_truncated_and_bounded(fresh, assert_alive):
    s = fresh()
    t0 = time.monotonic()
    r = s.run_code("import sys\nchunk = 'x' * 65536\nwhile True:\n    sys.stdout.write(chunk)\n",
                   timeout=3)
    assert r.stdout_truncated is True, r
    assert MAX_STREAM // 2 <= len(r.stdout) <= MAX_STREAM, len(r.stdout)
    assert r.timed_out is True
    assert r.error is not None and r.error.name == "TimeoutError"
    assert time.monotonic() - t0 < 15
    # stderr floods are capped separately
    r = s.run_code("import sys\nsys.stderr.write('e' * (12 * 1024 * 1024))\nprint('done')")
    assert r.stderr_truncated is True and len(r.stderr) <= MAX_STREAM
    assert r.stdout == "done\n" and r.stdout_truncated is False
    assert s.run_code("'alive'").text == "'alive'"
    assert_alive()


def test_fork_bomb_hits_pids_limit(fresh, assert_alive):
    s = fresh()
    r = s.run_code("""
import os, time, errno
pids, err = [], None
for i in range(100000):
    try:
        pid = os.fork()
    except OSError as e:
        err = e
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    pids.append(pid)
print(len(pids), errno.errorcode.get(err.errno) if err else None)
for p in pids:
    os.kill(p, 9)
for p in pids:
    os.waitpid(p, 0)
""", timeout=60)
    assert r.error is None, r
    n, code = r.stdout.split()
    assert code == "EAGAIN", r.stdout
    assert 10 <= int(n) <= 4096, r.stdout
    # a real, unbounded bash fork bomb: the run times out, the whole process
    # tree is killed, and the sandbox is usable again
    t0 = time.monotonic()
    r = s.run_code(":(){ :|:& };:; sleep 30", language="bash", timeout=3)
    assert time.monotonic() - t0 < 20
    assert r.timed_out is True, r
    assert r.error is not None and r.error.name == "TimeoutError"

    def usable():
        x = s.exec(["echo", "ok"], timeout=10)
        return x.stdout == "ok\n"
    deadline = time.monotonic() + 15
    while not usable():
        assert time.monotonic() < deadline, "sandbox still saturated after the fork bomb"
        time.sleep(0.5)
    assert s.run_code("1+1").text == "2"
    assert_alive()


def test_big_allocation_is_memory_error(fresh, assert_alive):
    s = fresh()
    s.run_code("keep = 'me'")
    r = s.run_code("x = bytearray(4 * 1024**3)", timeout=30)
    assert r.error is not None, r
    assert r.error.name == "MemoryError", r.error
    assert s.run_code("keep").text == "'me'"
    assert_alive()


def test_gradual_memory_hog_is_out_of_memory(fresh, assert_alive):
    s = fresh(memory_mb=256)
    assert s.info()["memory_mb"] == 256
    r = s.run_code("chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))\n",
                   timeout=60)
    assert r.error is not None, r
    assert r.error.name == "OutOfMemory", r.error
    assert "256" in r.error.value
    # the REPL was restarted: usable, state gone
    r = s.run_code("'fresh'")
    assert r.text == "'fresh'"
    assert s.run_code("chunks").error.name == "NameError"
    assert s.exec(["echo", "ok"]).stdout == "ok\n"
    assert_alive()


def test_infinite_loop_timeout(fresh, assert_alive):
    s = fresh()
    s.run_code("before = 'kept'")
    t0 = time.monotonic()
    r = s.run_code("while True:\n    pass\n", timeout=2)
    elapsed = time.monotonic() - t0
    assert r.timed_out is True
    assert r.error is not None and r.error.name == "TimeoutError"
    assert 1.8 <= elapsed < 10, elapsed
    # the traceback shows the user's code, not the runner's interrupt handler
    assert "KeyboardInterrupt" in r.stderr and "airlock_runner" not in r.stderr, r.stderr
    assert "airlock_runner" not in r.error.traceback
    assert s.run_code("before").text == "'kept'"
    # a loop that swallows KeyboardInterrupt is killed; the REPL comes back
    t0 = time.monotonic()
    r = s.run_code("while True:\n    try:\n        while True: pass\n    except BaseException: pass\n",
                   timeout=2)
    assert r.timed_out is True and r.error.name == "TimeoutError"
    assert time.monotonic() - t0 < 15
    assert s.run_code("6*7").text == "42"
    # exec timeouts
    t0 = time.monotonic()
    r = s.exec(["sleep", "100"], timeout=2)
    assert r.timed_out is True
    assert time.monotonic() - t0 < 10
    assert_alive()


def test_concurrent_code_is_busy(fresh, assert_alive):
    import threading
    import airlock
    s = fresh()
    out = {}

    def slow():
        out["r"] = s.run_code("import time; time.sleep(2); 'slow'")
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    with pytest.raises(airlock.InvalidRequest) as ei:
        s.run_code("1")
    assert (ei.value.status, ei.value.code) == (409, "busy")
    # exec runs alongside
    assert s.exec(["echo", "parallel"]).stdout == "parallel\n"
    t.join()
    assert out["r"].text == "'slow'"
    assert_alive()


def test_filling_storage_is_no_space_not_a_crash(fresh, assert_alive):
    """Files live in tmpfs charged to the sandbox's memory. Storage is capped
    below the memory limit, so filling it is ENOSPC (507 no_space) and the
    agent, the REPL and their state survive; before the cap, the OOM killer
    took the agent and the sandbox died."""
    import airlock
    s = fresh(memory_mb=128)
    s.run_code("kept = 'yes'")
    blob = bytes(40 << 20)
    s.upload(blob, "/data/a.bin")
    with pytest.raises(airlock.AirlockError) as ei:
        for i in range(4):  # 160 MiB into a 128 MiB sandbox
            s.upload(blob, "/data/b%d.bin" % i)
    assert (ei.value.status, ei.value.code) == (507, "no_space"), ei.value
    # the failed upload left no partial file, and the sandbox is whole
    names = sorted(e["name"] for e in s.files.list("/data"))
    assert names[0] == "a.bin" and all(n.startswith(("a.bin", "b")) for n in names), names
    assert len(s.download("/data/a.bin")) == 40 << 20
    assert s.run_code("kept").text == "'yes'"
    # /tmp, /home/user and /dev/shm draw on the same budget
    r = s.run_code("open('/dev/shm/x', 'wb').write(bytes(100 << 20))")
    assert r.error is not None and r.error.name == "OSError" and "No space left" in r.error.value, r
    assert s.run_code("kept").text == "'yes'"
    assert_alive()


def _within(seconds, fn):
    """fn() on a thread; its result, or None if it did not return in time
    (the thread is left to finish on its own)."""
    import threading
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn()), daemon=True)
    t.start()
    t.join(seconds)
    return out.get("r")


def test_stalled_download_does_not_block_the_sandbox(daemon, fresh, assert_alive):
    """A download client that stops reading must stall only its download: the
    agent paces FILE_GET by the daemon's acknowledgements (FILE_ACK), so
    neither the daemon's reader for the sandbox nor the agent's loop waits
    on it. Before, both did, until the idle timeout (120 s) dropped the
    client."""
    import os
    import socket
    import urllib.parse
    s = fresh()
    blob = os.urandom(30 << 20)  # far more than the socket buffers on the way hold
    s.upload(blob, "/data/big.bin")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    stalled.connect(("127.0.0.1", daemon.port))
    try:
        q = urllib.parse.urlencode({"path": "/data/big.bin"})
        stalled.sendall(("GET /v1/sandboxes/%s/files?%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Authorization: Bearer %s\r\n\r\n" % (s.id, q, daemon.key)).encode())
        head = stalled.recv(4096)  # the status line; the body is never read
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        time.sleep(1.0)  # give the agent time to fill every buffer on the way
        t0 = time.monotonic()
        r = _within(10, lambda: s.run_code("1+1"))
        assert r is not None, "run_code stalled behind a download nobody reads"
        assert r.text == "2", r
        e = _within(10, lambda: s.exec(["echo", "ok"]))
        assert e is not None, "exec stalled behind a download nobody reads"
        assert e.stdout == "ok\n", e
        assert time.monotonic() - t0 < 10
    finally:
        stalled.close()
    # the cancelled download left the agent able to serve the same file again
    assert s.download("/data/big.bin") == blob
    assert s.run_code("'alive'").text == "'alive'"
    assert_alive()


def test_stalled_stream_reader_does_not_block_the_sandbox(daemon, fresh, assert_alive):
    """A client that streams a run (NDJSON) and stops reading must not stall
    the sandbox's other requests: the daemon queues the run's output (bounded
    by the agent's per-call cap) instead of making its reader wait."""
    import json
    import socket
    s = fresh()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    stalled.connect(("127.0.0.1", daemon.port))
    try:
        # an exec that floods 9 MiB of stdout, far more than the socket buffers hold
        body = json.dumps({"cmd": "head -c 9437184 /dev/zero | tr '\\0' x", "timeout_s": 60}).encode()
        stalled.sendall(("POST /v1/sandboxes/%s/exec HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Authorization: Bearer %s\r\nAccept: application/x-ndjson\r\n"
                         "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                         % (s.id, daemon.key, len(body))).encode() + body)
        head = stalled.recv(4096)  # the status line; the stream is never read
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        time.sleep(1.0)
        t0 = time.monotonic()
        r = _within(10, lambda: s.run_code("1+1"))
        assert r is not None, "run_code stalled behind a stream nobody reads"
        assert r.text == "2", r
        assert time.monotonic() - t0 < 10
    finally:
        stalled.close()
    assert s.exec(["echo", "ok"]).stdout == "ok\n"
    assert_alive()
