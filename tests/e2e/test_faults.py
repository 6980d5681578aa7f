"""Fault injection (issue 12): the Nth SQLite write, fsync or read, the Nth
frame sent to a sandbox's agent, or the Nth JSON allocation fails, and a
create, upload, run_code, download and destroy run through it.

The daemon is the ASan build with -Dfault_injection=true (make build-asan);
AIRLOCK_FAULT=KIND:N arms src/daemon/faultinj.c (a wrapping SQLite VFS, a
one-line hook in agent_client.c's send path, jansson's allocator), counting
from the moment the daemon serves. For each N in turn, every call must
answer within its timeout (no hang), with success or a JSON error
{"error": {"code", "message"}} (no crash, no HTML, no empty reply); the
daemon stays up and healthz answers; what GET /v1/sandboxes lists agrees
with what the calls answered and with the processes that run; after the
cleanup nothing is left (no agent process, no cgroup); and ASan reports
nothing when the daemon stops (stop_and_check). A sweep ends at the first N
where the fault never fired: the scenario did fewer operations than N.

`make test-e2e` runs a short sweep of each kind (AIRLOCK_FAULT_SWEEP=short:
the first few operations and then every 5th, up to 40); `make test-faults`
runs every N until the fault stops firing (AIRLOCK_FAULT_SWEEP=full).
A template build runs under sqlite_write and sqlite_full in turn
(test_template_build_under_faults): the `python` template from the build
cache, about 1.5 s a build once the cache holds it (the first build on a
machine runs mmdebstrap, minutes).
"""

import os
import secrets

import pytest

from e2e_support import Daemon, stop_and_check, wait_until

SWEEP = os.environ.get("AIRLOCK_FAULT_SWEEP", "short")
# (kind, counted from): "serve" counts from the daemon's first served moment,
# "start" from its process start (opening, checking and recovering the store
# of a previous run). A read of the store happens only at start (afterwards
# SQLite's page cache answers), an fsync only at a checkpoint or the close.
KINDS = [("sqlite_write", "serve"), ("sqlite_full", "serve"), ("sqlite_sync", "serve"), ("agent_write", "serve"),
         ("json_alloc", "serve"), ("sqlite_read", "start"), ("sqlite_write", "start")]
CALL_TIMEOUT = 60.0
# The audit action of each call that answered success: every one's event is
# written before it happens (fail closed) or, for a DELETE, as soon as the
# store can be written (docs/security.md, "Audit integrity").
ACTIONS = {("POST", "sandboxes"): "create", ("POST", "code"): "code", ("DELETE", "sb"): "delete",
           ("PUT", "files"): "upload", ("GET", "files"): "download"}


def _points(kind):
    if SWEEP == "full":
        return range(1, 100_000)
    return [1, 2, 3, 5, 8, 12, 16, 20, 25, 30, 35, 40]


def _start(workdir, spec=None, monkeypatch=None):
    """A daemon on workdir's state (kept across starts), with AIRLOCK_FAULT=spec."""
    if spec:
        monkeypatch.setenv("AIRLOCK_FAULT", spec)
    d = Daemon(workdir, extra_args=["--pool-size", "0", "--no-zygote"])
    d.answers = []
    try:
        d.start()
    finally:
        if spec:
            monkeypatch.delenv("AIRLOCK_FAULT")
    return d


def _note(d, method, path, st, j):
    what = path.split("?")[0].rsplit("/", 1)[-1]
    what = "sb" if what.startswith("sb_") else what
    code = j["error"]["code"] if st >= 300 and isinstance(j, dict) and isinstance(j.get("error"), dict) else ""
    d.answers.append((method, what, st, code))


def _answered(d, method, path, body=None):
    """One call: it must answer in time, with JSON, and an error must be the
    documented envelope. Returns (status, json body)."""
    st, hdrs, data, j = d.request(method, path, body=body, timeout=CALL_TIMEOUT)
    _note(d, method, path, st, j)
    if 200 <= st < 300:
        return st, j
    assert hdrs.get("content-type", "").startswith("application/json"), \
        "%s %s -> %d without JSON: %r" % (method, path, st, data[:200])
    assert isinstance(j, dict) and isinstance(j.get("error"), dict), (method, path, st, j)
    assert j["error"].get("code") and j["error"].get("message"), (method, path, st, j)
    assert st >= 400, (method, path, st, j)
    return st, j


def _scenario(d, keep=False):
    """create, upload, run_code, download, destroy (not with keep). Returns
    the id of the sandbox created (or None) and whether it is gone."""
    st, j = _answered(d, "POST", "/v1/sandboxes", {"timeout_s": 120})
    if st >= 300:
        return None, False
    sid = j["id"]
    payload = secrets.token_bytes(4096)
    st, j = _answered(d, "PUT", "/v1/sandboxes/%s/files?path=/tmp/fi.bin" % sid, payload)
    if st < 300:
        st, j = _answered(d, "POST", "/v1/sandboxes/%s/code" % sid,
                          {"code": "print(len(open('/tmp/fi.bin','rb').read()))"})
        if st < 300 and j.get("exit_code", 0) == 0 and not j.get("error"):
            assert j["stdout"] == "4096\n", j
        path = "/v1/sandboxes/%s/files?path=/tmp/fi.bin" % sid
        st, hdrs, data, j = d.request("GET", path, timeout=CALL_TIMEOUT)
        _note(d, "GET", path, st, j)
        if st == 200:
            assert data == payload, "a download answered 200 with other bytes"
        else:
            assert hdrs.get("content-type", "").startswith("application/json"), (st, data[:200])
    if keep:
        return sid, False
    st, _ = _answered(d, "DELETE", "/v1/sandboxes/%s" % sid)
    return sid, st < 300


def _live(d):
    st, hdrs, data, j = d.request("GET", "/v1/sandboxes", timeout=CALL_TIMEOUT)
    if st >= 300:
        return None
    return {s["id"] for s in j["sandboxes"] if s["state"] == "running"}


def _events(d, sid):
    st, _, _, j = d.request("GET", "/v1/sandboxes/%s/logs" % sid, timeout=CALL_TIMEOUT)
    return [e["action"] for e in j["events"]] if st == 200 else None


def _audit_agrees(d, sid):
    """Every call that answered success has its audit event (a DELETE's may
    wait for the store: the reaper writes it within a second), and a call
    refused with audit_unavailable has none (it did not happen)."""
    want = [ACTIONS[(m, w)] for m, w, st, _ in d.answers if 200 <= st < 300 and (m, w) in ACTIONS]
    refused = {ACTIONS[(m, w)] for m, w, st, c in d.answers if c == "audit_unavailable" and (m, w) in ACTIONS}
    got = []

    def ok():
        got[:] = _events(d, sid) or []
        return all(got.count(a) >= want.count(a) for a in set(want))
    assert wait_until(ok, 15), "answered %s, audit log holds %s" % (d.answers, got)
    for a in refused - set(want):
        assert a not in got, "%s was refused (audit_unavailable) but its event is there: %s" % (a, got)


def _check_after(d, sid, gone):
    assert d.proc.poll() is None, "airlockd died:\n" + d.log_tail()
    h = d.healthz(timeout=CALL_TIMEOUT)
    assert h["status"] in ("ok", "degraded"), h
    # the fault was once: the store answers again (a degraded store retries at healthz)
    assert wait_until(lambda: _live(d) is not None, 15), "GET /v1/sandboxes keeps failing:\n" + d.log_tail()
    live = _live(d)
    if sid is None or gone:
        # what the calls answered as not created, or destroyed, is not listed
        assert live == set(), "a sandbox nobody kept is listed as running: %s (answers %s)" % (live, d.answers)
    if sid:
        _audit_agrees(d, sid)
    for other in live:
        # a sandbox listed as running answers (a run or a clear error), and goes on DELETE
        _answered(d, "POST", "/v1/sandboxes/%s/code" % other, {"code": "1"})
        _answered(d, "DELETE", "/v1/sandboxes/%s" % other)
    assert wait_until(lambda: _live(d) == set(), 30), _live(d)
    # reality agrees with the record: no agent or user process is left
    assert wait_until(lambda: d.descendants() == [], 30), \
        "processes left after every sandbox was destroyed: %s\n%s" % (d.descendants(), d.log_tail())


def _check_restart(workdir, sids):
    """The next start (no fault) finds a sound store that agrees: every
    sandbox of the faulted run reads destroyed."""
    d = _start(workdir)
    try:
        assert d.healthz()["status"] == "ok", d.healthz()
        for sid in sids:
            st, _, _, j = d.request("GET", "/v1/sandboxes/%s" % sid)
            assert st == 200 and j["state"] == "destroyed", (sid, st, j)
        assert _live(d) == set()
    finally:
        stop_and_check(d)


def _stop(d):
    if d.proc.poll() is None:
        stop_and_check(d)
    else:
        d.assert_clean_log()


def _one(tmp_path, kind, frm, n, monkeypatch):
    """One run under the Nth fault; True if the fault fired."""
    workdir = tmp_path / ("%s_%s_%d" % (kind, frm, n))
    sids = []
    if frm == "start":
        # a previous run left a sandbox (and its files' events) behind
        d = _start(workdir)
        sid, _ = _scenario(d, keep=True)
        sids.append(sid)
        _stop(d)
    spec = "%s:%d%s" % (kind, n, "@start" if frm == "start" else "")
    try:
        d = _start(workdir, spec, monkeypatch)
    except RuntimeError as e:
        # refusing to start is a clean answer to a store that fails at start:
        # it must exit non-zero, say why (the operation that failed), and
        # leave no sanitizer report
        text = str(e)
        assert "faultinj: failing" in text, text
        assert "ERROR" in text and "exited with 0" not in text, text
        for m in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert m not in text, text
        why = [ln for ln in text.splitlines() if " ERROR " in ln]
        print("AIRLOCK_FAULT=%s: refused to start: %s" % (spec, why[-1].split(" ERROR ", 1)[1] if why else text[-200:]))
        _check_restart(workdir, sids)
        return True
    try:
        sid, gone = _scenario(d)
        _check_after(d, sid, gone)
        sids += [sid] if sid else []
    except BaseException:
        print("AIRLOCK_FAULT=%s, answers %s, daemon log:\n%s" % (spec, d.answers, d.log_tail(80)))
        raise
    finally:
        _stop(d)
    fired = "faultinj: failing" in d.log_text()
    errs = ["%s %s %d %s" % a for a in d.answers if not 200 <= a[2] < 300]
    print("AIRLOCK_FAULT=%s: %s" % (spec, "; ".join(errs) or ("every call succeeded" if fired else "did not fire")))
    _check_restart(workdir, sids)
    return fired


# json_alloc runs only in the full sweep (make test-faults), where it finds an
# open bug: when building the 201 of a create fails (out of memory), the
# answer is 500 but the sandbox was built and recorded, so it runs, listed,
# until its lifetime ends, and its creator never learned its id. Reproduce:
# AIRLOCK_FAULT=json_alloc:119 (the N depends on the healthz polls at start).
# The mark is strict: the fix turns this test red until the mark goes.
_JSON_ALLOC_BUG = pytest.mark.xfail(strict=True, reason="create answers 500 after the sandbox was built (issue 12)")
PARAMS = [pytest.param(k, f, id="%s@%s" % (k, f), marks=[_JSON_ALLOC_BUG] if k == "json_alloc" else [])
          for k, f in KINDS if SWEEP == "full" or k != "json_alloc"]


def _probe(tmp_path, kind, monkeypatch):
    """Skip unless the daemon was built with fault injection (its log is
    read once it stopped: the line may still sit in a buffer before)."""
    d = _start(tmp_path / "probe", kind + ":1000000", monkeypatch)
    stop_and_check(d)
    if "faultinj: armed" not in d.log_text():
        pytest.skip("%s has no fault injection (meson configure -Dfault_injection=true)" % d.name)


@pytest.mark.parametrize("kind,frm", PARAMS)
def test_every_fault_is_a_clean_error(kind, frm, tmp_path, monkeypatch):
    _probe(tmp_path, kind, monkeypatch)
    fired = []
    for n in _points(kind):
        if not _one(tmp_path, kind, frm, n, monkeypatch):
            break
        fired.append(n)
    assert fired, "AIRLOCK_FAULT=%s:1 never fired: the hook is not on the path" % kind
    print("%s@%s: faults injected at %s" % (kind, frm, fired))


# ---- a template build under faults -------------------------------------------------------

BUILD_KINDS = [("sqlite_write", "serve"), ("sqlite_full", "serve")] + \
    ([("json_alloc", "serve")] if SWEEP == "full" else [])


def _template_spec():
    import json
    from e2e_support import ROOT
    return json.loads((ROOT / "templates" / "python.json").read_text())


def _build_under(d, spec):
    """POST /v1/templates and follow the build to its end. Returns its final
    state ("succeeded", "failed") or None when the POST itself was refused."""
    import time
    st, j = _answered(d, "POST", "/v1/templates", spec)
    if st >= 300:
        return None
    build_id = j["id"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        # a failed poll (an error answer) is retried, as a client would
        st, j = _answered(d, "GET", "/v1/builds/%s" % build_id)
        if st < 300 and j["state"] in ("succeeded", "failed"):
            if j["state"] == "failed":
                assert j.get("error"), "a failed build says nothing: %s" % j
            return j["state"]
        time.sleep(0.3)
    raise AssertionError("build did not end in 600 s:\n" + d.log_tail())


def _template_agrees(d, name, restarted=False):
    """GET /v1/templates/NAME, the template directory on disk and a sandbox
    on it tell the same story. Returns whether the template exists."""
    st, j = _answered(d, "GET", "/v1/templates/%s" % name)
    trees = sorted(p.name for p in (d.state_dir / "templates").glob("*") if not p.name.startswith("."))
    if st >= 300:
        assert st == 404, (st, j)
        # the tree of a build that failed to be recorded stays until the next
        # start removes unreferenced trees (templates.c): then none is left
        assert not restarted or trees == [], "no template %s, but trees on disk: %s" % (name, trees)
        return False
    from pathlib import Path
    assert Path(j["path"]).name in trees, "template %s is at %s, not on disk (%s)" % (name, j["path"], trees)
    st, sb = _answered(d, "POST", "/v1/sandboxes", {"template": name, "timeout_s": 60})
    if st < 300:
        st, r = _answered(d, "POST", "/v1/sandboxes/%s/code" % sb["id"], {"code": "print(6*7)"})
        if st < 300:
            assert r["stdout"] == "42\n", r
        _answered(d, "DELETE", "/v1/sandboxes/%s" % sb["id"])
    return True


@pytest.mark.parametrize("kind,frm", BUILD_KINDS, ids=["%s@%s" % k for k in BUILD_KINDS])
def test_template_build_under_faults(kind, frm, tmp_path, monkeypatch):
    """A build of the `python` template (from the build cache: the first,
    fault-free build fills it once per machine) under the Nth fault: the
    build ends succeeded or failed with an error, the template is listed
    exactly when it succeeded, the listing, the tree on disk and a sandbox
    on it agree, and after a restart (no fault) the registry says the same."""
    _probe(tmp_path, kind, monkeypatch)
    spec = _template_spec()
    d = _start(tmp_path / "warm")
    try:
        assert _build_under(d, spec) == "succeeded", d.log_tail()
    finally:
        stop_and_check(d)
    fired = []
    for n in _points(kind):
        workdir = tmp_path / ("%s_%d" % (kind, n))
        d = _start(workdir, "%s:%d" % (kind, n), monkeypatch)
        try:
            state = _build_under(d, spec)
            assert d.proc.poll() is None, "airlockd died:\n" + d.log_tail()
            exists = _template_agrees(d, "python")
            if state == "succeeded":
                assert exists, "the build succeeded but the template is not there"
        except BaseException:
            print("AIRLOCK_FAULT=%s:%d, answers %s, daemon log:\n%s" % (kind, n, d.answers, d.log_tail(80)))
            raise
        finally:
            _stop(d)
        hit = "faultinj: failing" in d.log_text()
        print("AIRLOCK_FAULT=%s:%d build: %s, template %s" % (kind, n, state, "listed" if exists else "absent"))
        d = _start(workdir)
        try:
            assert _template_agrees(d, "python", restarted=True) == exists, \
                "the restart disagrees about the template"
        finally:
            stop_and_check(d)
        if not hit:
            break
        fired.append(n)
    assert fired, "AIRLOCK_FAULT=%s:1 never fired during a build" % kind
