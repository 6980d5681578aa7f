"""Nothing secret reaches airlockd's log, its database or its environment
block, and no file descriptor of the daemon reaches a sandbox."""

import http.client
import json
import os
import re
import secrets
import socket
import sqlite3

from airlock import Sandbox
from e2e_support import Daemon, stop_and_check, wait_until

O_CLOEXEC = 0o2000000


def canary(tag):
    return "cnry%s%s" % (tag, secrets.token_hex(12))


# ---- no secret in logs ----------------------------------------------------------------

def test_no_secret_in_log_audit_or_database(tmp_path):
    d = Daemon(tmp_path / "verbose", ["--log-level", "debug"], name="verbose")
    d.key = "ak_" + secrets.token_hex(16)  # the bootstrap admin key: a canary of its own
    d.start()
    c = {name: canary(name) for name in ("code", "out", "bash", "envc", "envx", "stdin", "argv",
                                           "shell", "file", "err", "wrongkey", "stream")}
    try:
        st, _, _, made = d.request("POST", "/v1/keys", {"name": "tenant"})
        assert st == 201
        user_key, user_id = made["key"], made["id"]
        st, _, _, made2 = d.request("POST", "/v1/keys", {"name": "revoked"})
        revoked_key = made2["key"]
        assert d.request("DELETE", "/v1/keys/" + made2["id"])[0] == 200

        s = Sandbox(api_key=user_key, base_url=d.url, env={"CANARY_ENV": c["envc"]})
        r = s.run_code("x = %r\nprint(x + %r)" % (c["code"], c["out"]))
        assert r.stdout == c["code"] + c["out"] + "\n"
        assert c["bash"] in s.run_code("echo %s" % c["bash"], language="bash").stdout
        events = list(s.run_code_stream("print(%r)" % c["stream"]))
        assert any(c["stream"] in e.get("data", "") for e in events)
        r = s.exec(["sh", "-c", "echo $CANARY_ENV $E $1; cat", "sh", c["argv"]],
                   env={"E": c["envx"]}, stdin=c["stdin"])
        assert r.stdout == "%s %s %s\n%s" % (c["envc"], c["envx"], c["argv"], c["stdin"])
        assert c["shell"] in s.exec("echo %s" % c["shell"]).stdout
        s.upload(c["file"].encode(), "/tmp/upload.txt")
        assert s.download("/tmp/upload.txt") == c["file"].encode()
        r = s.run_code("raise ValueError(%r)" % c["err"])
        assert r.error is not None and c["err"] in r.error.value
        # refused requests: a wrong key, a revoked key, a 413 carrying code
        assert d.request("GET", "/v1/sandboxes", key=c["wrongkey"])[0] == 401
        assert d.request("GET", "/v1/sandboxes", key=revoked_key)[0] == 401
        assert d.request("POST", "/v1/sandboxes/%s/code" % s.id,
                         {"code": c["code"] * (1 + (1 << 20) // len(c["code"]))},
                         key=user_key)[0] == 413
        sid = s.id
        s.close()

        # the initial environment block of the daemon no longer shows the key
        with open("/proc/%d/environ" % d.proc.pid, "rb") as f:
            environ = f.read()
        assert b"AIRLOCK_API_KEY=" in environ  # the variable was there ...
        assert d.key.encode() not in environ  # ... its value is gone
    finally:
        stop_and_check(d)

    secret_values = [d.key, user_key, revoked_key] + list(c.values())
    log = d.log_text(all_starts=True)
    assert sid in log and "created" in log  # the right log, and it says things
    for v in secret_values:
        assert v not in log, "secret %r in airlockd's log" % v

    db = sqlite3.connect(str(d.state_dir / "airlock.db"))
    try:
        audit = db.execute("SELECT ts, key_id, action, sandbox_id, detail FROM audit").fetchall()
    finally:
        db.close()
    text = json.dumps(audit)
    assert user_id in text  # the audit log names the key by its id ...
    for v in secret_values:
        assert v not in text, "secret %r in the audit table" % v  # ... never by the key
    # and no file of the state directory holds any of them (keys are stored hashed)
    for p in d.state_dir.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            for v in secret_values:
                assert v.encode() not in data, "secret %r in %s" % (v, p)


# ---- no daemon fd in a sandbox -----------------------------------------------------------

def ls_fds(out):
    """{fd: target} from `ls -l` of a /proc/<pid>/fd directory."""
    fds = {}
    for line in out.splitlines():
        m = re.match(r"^l\S+\s+.*\s(\d+) -> (.*)$", line)
        if m:
            fds[int(m.group(1))] = m.group(2)
    return fds


def fd_flags(pid, fd):
    with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    raise AssertionError("no flags in /proc/%d/fdinfo/%d" % (pid, fd))


def open_objects(pid):
    """{(st_dev, st_ino): (fd, target)} of a process's fds. Anonymous inodes
    (eventfd, signalfd...) all share one inode, so they say nothing and are left out."""
    objs = {}
    fd_dir = "/proc/%d/fd" % pid
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, name))
            st = os.stat(os.path.join(fd_dir, name))
        except OSError:
            continue  # closed meanwhile
        if target.startswith("anon_inode:"):
            continue
        objs[(st.st_dev, st.st_ino)] = (int(name), target)
    return objs


def test_no_daemon_fd_reaches_a_sandbox(daemon, fresh):
    # the daemon is busy: idle keep-alive connections, other sandboxes, and
    # a streamed run in flight in one of them
    conns = []
    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
        conn.request("GET", "/v1/healthz")
        conn.getresponse().read()
        conns.append(conn)
    others = [fresh(), fresh()]
    body = json.dumps({"code": "import time\nprint('up', flush=True)\ntime.sleep(20)"}).encode()
    stream = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
    stream.sendall(("POST /v1/sandboxes/%s/code HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    "Accept: application/x-ndjson\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n" % (others[0].id, daemon.key, len(body))).encode() + body)
    got = b""
    while b'"up' not in got:
        chunk = stream.recv(4096)
        assert chunk, got
        got += chunk
    try:
        s = fresh()

        # an exec'd program: 0, 1, 2 and the directory ls is reading
        fds = ls_fds(s.exec(["ls", "-l", "/proc/self/fd"]).stdout)
        assert set(fds) == {0, 1, 2, 3}, fds
        assert re.match(r"^/proc/\d+/fd$", fds[3]), fds
        # its parent, a shell (the agent above it is not readable: another uid)
        # (a second command keeps bash from exec-ing ls in its own place)
        fds = ls_fds(s.exec("ls -l /proc/$$/fd; true").stdout)
        assert set(fds) == {0, 1, 2}, fds
        r = s.exec("ls /proc/1/fd")
        assert r.exit_code != 0 and "Permission denied" in r.stderr, r
        # a bash run_code: the same
        fds = ls_fds(s.run_code("ls -l /proc/self/fd", language="bash").stdout)
        assert set(fds) == {0, 1, 2, 3}, fds
        # Python's REPL: 0, 1, 2, its two pipes to the agent (moved to 1000+
        # by the runner, close-on-exec), and the fd of the listing itself
        # (already closed when readlink looks, or a /proc/<pid>/fd directory)
        r = s.run_code("import os\n"
                       "out = {}\n"
                       "for n in os.listdir('/proc/self/fd'):\n"
                       "    try:\n"
                       "        out[int(n)] = os.readlink('/proc/self/fd/' + n)\n"
                       "    except OSError:\n"
                       "        out[int(n)] = None\n"
                       "print(repr(out))")
        assert r.error is None, r
        fds = eval(r.stdout)  # a dict literal of ints and strings, printed in the sandbox
        listing = [fd for fd, t in fds.items() if fd not in (0, 1, 2, 1000, 1001)]
        assert len(listing) == 1, fds
        t = fds.pop(listing[0])
        assert t is None or re.match(r"^/proc/\d+/fd$", t), (listing, t)
        assert {k: v[:5] for k, v in fds.items()} == {0: "pipe:", 1: "pipe:", 2: "pipe:",
                                                      1000: "pipe:", 1001: "pipe:"}, fds

        # from the host: every fd airlockd opened is close-on-exec ...
        pid = daemon.proc.pid
        for name in os.listdir("/proc/%d/fd" % pid):
            fd = int(name)
            if fd <= 2:
                continue
            try:
                flags = fd_flags(pid, fd)
                target = os.readlink("/proc/%d/fd/%d" % (pid, fd))
            except (OSError, FileNotFoundError):
                continue  # closed meanwhile
            assert flags & O_CLOEXEC, "airlockd fd %d (%s) is not close-on-exec" % (fd, target)
        # ... and no process below it (agents, runners, user code) holds one of
        # its files, sockets or pipes
        # (its stdio is the test's, and a device node like /dev/null is the same
        # inode whoever opens it: what the daemon opened itself is what counts)
        mine = {k: v for k, v in open_objects(pid).items() if v[0] > 2 and not v[1].startswith("/dev/")}
        assert any(t.startswith("socket:") for _, t in mine.values())
        assert any(t.endswith("airlock.db") for _, t in mine.values())
        below = daemon.descendants(include_zygote=True)
        assert len(below) >= 3 * 2, below  # three agents, and runners
        daemon_comm = open("/proc/%d/comm" % pid).read()
        for p in below:
            try:
                # A child the jail cloned but that has not exec'd the agent yet
                # is still airlockd's code, holding its (close-on-exec) fds
                # until the execve: the warm pool builds such children in the
                # background at any time. Only what runs after the exec is the
                # sandbox's. The name is read first: if it is airlockd's now,
                # the fds read next may still be the pre-exec ones.
                if open("/proc/%d/comm" % p).read() == daemon_comm:
                    continue
                theirs = open_objects(p)
            except OSError:
                continue  # exited meanwhile
            shared = set(theirs) & set(mine)
            if shared and open("/proc/%d/comm" % p).read().strip() == "airlock-zygote":
                # the zygote (or a REPL it is forking) may hold a sandbox's
                # channel end that the daemon is handing over (SCM_RIGHTS):
                # the daemon closes its copy right after the send
                shared = {k for k in shared if not wait_until(lambda k=k: k not in open_objects(pid), 5)}
            assert not shared, "pid %d holds airlockd's %s" % (p, [mine[k] for k in shared])
            for fd, target in theirs.values():
                assert str(daemon.state_dir) not in target, (p, fd, target)
    finally:
        stream.close()
        for conn in conns:
            conn.close()
