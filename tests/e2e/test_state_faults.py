"""The state store under faults (issue 11): a full state disk, an empty or
damaged database at start, a REPL lost between calls, a sandbox read while
it is torn down. Real faults only: the full disk is a small tmpfs mounted
as the daemon's --state-dir and filled to the last byte, the damage is
bytes written over the database file."""

import errno
import json
import os
import subprocess
import threading
import time
import warnings

import pytest

import airlock
from e2e_support import Daemon, serving, stop_and_check, wait_until


def _mount_tmpfs(path, size):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", str(path)], check=True)


def _umount(path):
    subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(dirpath):
    """Write a file in dirpath until the filesystem refuses (ENOSPC)."""
    fill = dirpath / "fill"
    with open(fill, "wb", buffering=0) as f:
        for size in (1 << 20, 4096, 512, 1):
            chunk = b"\0" * size
            while True:
                try:
                    f.write(chunk)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
    return fill


@pytest.fixture
def small_disk_daemon(tmp_path):
    d = Daemon(tmp_path / "d", extra_args=["--pool-size", "0"])
    _mount_tmpfs(d.state_dir, "8m")
    try:
        d.start()
        yield from serving(d)
    finally:
        _umount(d.state_dir)


def _events(d, sid):
    st, _, _, body = d.request("GET", "/v1/sandboxes/%s/logs" % sid)
    assert st == 200, body
    return body["events"]


def test_full_state_disk_fails_closed_and_recovers(small_disk_daemon):
    """With the state disk full: healthz says degraded (and why); a code run,
    an exec, a new lifetime, a create, an upload, a download and a file
    delete whose audit record cannot be written are refused with 503
    audit_unavailable and do not happen; a
    DELETE destroys the sandbox (202, recorded: false) and GET says
    destroyed, not running. Once space is back: healthz is ok, the DELETE's
    record and audit event are written with its own reason (and survive a
    restart as "deleted", not daemon_restart), and every call that was
    answered 200 has its audit event. Fails on the old code: calls were
    served unaudited, set_timeout took effect on a 500, DELETE's record
    stayed running, healthz said ok."""
    d = small_disk_daemon
    sb = d.sandbox(timeout=600)
    victim = d.sandbox(timeout=600)
    sb.run_code("n = 0")
    sb.upload(b"recorded", "/data/recorded.txt")
    before = sb.info()
    fill = _fill(d.state_dir)
    try:
        h = d.healthz()
        assert h["status"] == "degraded" and h["reasons"], h

        # runs until one is refused: the WAL may still have room for a few
        ok_runs = 0
        refused = None
        for _ in range(2000):
            st, _, _, body = d.request("POST", "/v1/sandboxes/%s/code" % sb.id, {"code": "n += 1"})
            if st == 200:
                ok_runs += 1
                continue
            refused = (st, body)
            break
        assert refused is not None, "2000 runs served on a full state disk"
        assert refused[0] == 503 and refused[1]["error"]["code"] == "audit_unavailable", refused
        with pytest.raises(airlock.AuditUnavailable):
            sb.run_code("n += 1")
        with pytest.raises(airlock.AuditUnavailable):
            sb.exec(["true"])
        st, _, _, body = d.request("POST", "/v1/sandboxes/%s/timeout" % sb.id, {"timeout_s": 5})
        assert st == 503 and body["error"]["code"] == "audit_unavailable", body
        assert sb.info()["expires_at"] == before["expires_at"]
        # a pause is written before the freeze: refused, the sandbox runs on
        st, _, _, body = d.request("POST", "/v1/sandboxes/%s/pause" % sb.id)
        assert st == 503 and body["error"]["code"] == "audit_unavailable", body
        assert sb.info()["state"] == "running"
        # the file calls too: refused before anything reaches the sandbox
        with pytest.raises(airlock.AuditUnavailable):
            sb.upload(b"unrecorded", "/data/unrecorded.txt")
        with pytest.raises(airlock.AuditUnavailable):
            sb.download("/data/recorded.txt")
        with pytest.raises(airlock.AuditUnavailable):
            sb.files.remove("/data/recorded.txt")
        live = len(airlock.Sandbox.list(api_key=d.key, base_url=d.url))
        st, _, _, body = d.request("POST", "/v1/sandboxes", {})
        assert st == 503 and body["error"]["code"] == "audit_unavailable", body
        assert len(airlock.Sandbox.list(api_key=d.key, base_url=d.url)) == live

        st, _, _, body = d.request("DELETE", "/v1/sandboxes/" + victim.id)
        assert st == 202 and body == {"id": victim.id, "state": "destroyed", "recorded": False}, (st, body)
        st, _, _, body = d.request("GET", "/v1/sandboxes/" + victim.id)
        assert st == 200 and body["state"] in ("destroying", "destroyed"), body
        assert body["destroy_reason"] == "deleted"
        st, _, _, body = d.request("POST", "/v1/sandboxes/%s/code" % victim.id, {"code": "1"})
        assert st == 404, body
        assert d.healthz()["status"] == "degraded"
    finally:
        fill.unlink()

    wait_until(lambda: d.healthz()["status"] == "ok", 10)
    full = json.loads(d.request("GET", "/v1/healthz?full=1")[2])
    assert full["store"]["writable"] is True and full["disk"]["free_bytes"] > 0, full
    assert "pools" in full and full["zygote"]["ready"] is True and full["zygote"]["pid"] > 0, full
    # the refused runs did not run: n counts the ones answered 200
    assert sb.run_code("n").text == str(ok_runs)
    codes = [e for e in _events(d, sb.id) if e["action"] == "code"]
    assert len(codes) == 1 + ok_runs + 1, codes  # "n = 0", the 200s, "n" just now
    assert not [e for e in _events(d, sb.id) if e["action"] in ("timeout", "pause")]
    # the refused file calls did not happen
    assert sb.files.exists("/data/recorded.txt") and not sb.files.exists("/data/unrecorded.txt")
    ups = [e for e in _events(d, sb.id) if e["action"] == "upload"]
    assert [e["detail"]["path"] for e in ups] == ["/data/recorded.txt"], ups
    assert ups[0]["detail"].get("completed") is True, ups
    # the DELETE's record, written late, with its reason
    wait_until(lambda: any(e["action"] == "delete" for e in _events(d, victim.id)), 10)
    st, _, _, body = d.request("GET", "/v1/sandboxes/" + victim.id)
    assert (body["state"], body["destroy_reason"]) == ("destroyed", "deleted"), body
    stop_and_check(d)
    d.start()
    st, _, _, body = d.request("GET", "/v1/sandboxes/" + victim.id)
    assert (body["state"], body["destroy_reason"]) == ("destroyed", "deleted"), body


def _start_fails(d, *extra):
    """Start d's binary on its state dir with extra flags; it must exit
    non-zero. Its log."""
    d.extra_args = list(extra)
    with pytest.raises(RuntimeError) as ei:
        d.start(timeout=30)
    return str(ei.value)


@pytest.mark.parametrize("damage", ["empty", "garbage", "pages"])
def test_damaged_database_is_refused_not_replaced(tmp_path, damage):
    """An existing state database that is empty (0 bytes), not a database,
    or has damaged pages stops the start with a message that says what to
    do; the file is left as it was. --init-state keeps it aside and starts
    anew. Fails on the old code: a 0-byte file silently became a fresh
    database (every key and record gone), damage served with health ok."""
    d = Daemon(tmp_path / "d", extra_args=["--pool-size", "0"])
    d.start()
    for i in range(40):
        d.request("POST", "/v1/keys", {"name": "k%d" % i})
    stop_and_check(d)
    db = d.state_dir / "airlock.db"
    if damage == "empty":
        db.write_bytes(b"")
    elif damage == "garbage":
        db.write_bytes(os.urandom(64 * 1024))
    else:
        with open(db, "r+b") as f:
            size = f.seek(0, 2)
            assert size > 8192
            f.seek(4096)  # page 1 (the header and schema) stays
            f.write(b"\x5a" * (size - 4096))
    before = db.read_bytes()
    msg = _start_fails(d)
    assert "--init-state" in msg and "airlock.db" in msg, msg
    assert db.read_bytes() == before
    d.extra_args = ["--pool-size", "0", "--init-state"]
    d.start()
    try:
        kept = [p.name for p in d.state_dir.iterdir() if p.name.startswith("airlock.db.bad-")]
        assert kept, list(d.state_dir.iterdir())
        assert (d.state_dir / kept[0]).read_bytes() == before
        assert d.healthz()["status"] == "ok"
    finally:
        stop_and_check(d)


def test_check_integrity_verifies_the_audit_chain(tmp_path):
    """--check-integrity at start runs integrity_check and walks the audit
    hash chain: an audit event changed behind the daemon's back stops the
    start. Without the chain, the change is invisible."""
    d = Daemon(tmp_path / "d", extra_args=["--pool-size", "0"])
    d.start()
    for i in range(5):
        d.request("POST", "/v1/keys", {"name": "k%d" % i})
    stop_and_check(d)
    d.extra_args = ["--pool-size", "0", "--check-integrity"]
    d.start()
    stop_and_check(d)
    import sqlite3
    c = sqlite3.connect(str(d.state_dir / "airlock.db"))
    c.execute("UPDATE audit SET detail = '{\"id\":\"key_forged\"}' WHERE rowid = 2")
    c.commit()
    c.close()
    msg = _start_fails(d, "--pool-size", "0", "--check-integrity")
    assert "does not verify" in msg, msg


def test_repl_lost_between_calls_is_reported(daemon):
    """A REPL that dies between calls (here: a timer in it calls os._exit
    after the call returned) is reported on the next call: repl_restarted
    true on the result, a ReplRestarted warning from the SDK, and a
    repl_restarted event in the sandbox's logs. One that dies inside a call
    (os._exit) says so on that call's result. Fails on the old code: the
    next call ran in a fresh REPL and said nothing (NameError only), and
    the daemon and the SDK dropped repl_restarted."""
    with daemon.sandbox() as s:
        # the shared daemon's log has other sandboxes' REPL exits: count
        exits = lambda: daemon.log_text().count("exited with status 77 ")
        before = exits()
        assert s.run_code("x = 41; import os, threading; threading.Timer(0.3, lambda: os._exit(77)).start()").ok
        wait_until(lambda: exits() > before, 10)
        with pytest.warns(airlock.ReplRestarted):
            r = s.run_code("x")
        assert r.repl_restarted is True and r.error is not None and r.error.name == "NameError", r
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            r = s.run_code("x = 1")
        assert r.repl_restarted is False
        with pytest.warns(airlock.ReplRestarted):
            r = s.run_code("import os; os._exit(1)")
        assert r.repl_restarted is True
        actions = [e["action"] for e in _events(daemon, s.id)]
        assert actions.count("repl_restarted") == 2, actions


def test_teardown_at_expiry_reads_destroying_and_410(daemon):
    """While a sandbox is torn down at its expiry (with 300 MB resident it
    takes a while), GET never says running once a call was answered 410,
    and every call answers 410 sandbox_expired (the SDK's SandboxTimeout),
    never 404. Fails on the old code: GET said running and calls got
    404 not_found during the teardown."""
    s = daemon.sandbox(timeout=3, memory_mb=1024)
    s.run_code("b = bytearray(300 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1")
    samples = []
    gone_seen = False
    while True:
        time.sleep(0.01)  # under the shared daemon's per-key rate limit
        st, _, _, info = daemon.request("GET", "/v1/sandboxes/" + s.id)
        assert st == 200, info
        cst, _, _, cbody = daemon.request("GET", "/v1/sandboxes/%s/files/list?path=/" % s.id)
        samples.append((info["state"], cst, (cbody or {}).get("error", {}).get("code")))
        if cst != 200:
            gone_seen = True
            assert (cst, samples[-1][2]) == (410, "sandbox_expired"), samples[-6:]
        if gone_seen:
            st, _, _, info = daemon.request("GET", "/v1/sandboxes/" + s.id)
            assert st == 200 and info["state"] != "running", samples[-6:]
        if info["state"] == "destroyed":
            break
    assert info["destroy_reason"] == "expired"
    print("states seen:", sorted(set(x[0] for x in samples)), len(samples), "samples")
    with pytest.raises(airlock.SandboxTimeout):
        s.run_code("1")
