"""End-to-end fixtures: a real airlockd on a free port, and sandboxes on it.

Environment:
  AIRLOCK_DAEMON  airlockd binary            (default build/airlockd)
  AIRLOCK_AGENT   airlock-agent binary       (default build/airlock-agent)
  AIRLOCK_RUNNER  the Python REPL runner     (default runner/airlock_runner.py)
  AIRLOCK_CLI     the `airlock` CLI binary   (default build/airlock)
  AIRLOCK_ZYGOTE  the airlock-zygote binary  (default build/airlock-zygote; the ASan
                  build has none, so `make test-e2e` points this at build/)

Run with Debian's interpreter (it has pandas and matplotlib):
  /usr/bin/python3 -m pytest tests/e2e
"""

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "sdk" / "python"))

import airlock  # noqa: E402
from airlock import Sandbox  # noqa: E402


def _path_from_env(var, default):
    p = Path(os.environ.get(var) or ROOT / default)
    return p if p.is_absolute() else ROOT / p


DAEMON = _path_from_env("AIRLOCK_DAEMON", "build/airlockd")
AGENT = _path_from_env("AIRLOCK_AGENT", "build/airlock-agent")
RUNNER = _path_from_env("AIRLOCK_RUNNER", "runner/airlock_runner.py")
CLI = _path_from_env("AIRLOCK_CLI", "build/airlock")
ZYGOTE = _path_from_env("AIRLOCK_ZYGOTE", "build/airlock-zygote")

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                     "ThreadSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


class Daemon:
    """One airlockd process. Start, stop (SIGTERM), kill -9, restart on the same state dir."""

    def __init__(self, workdir, extra_args=(), name="airlockd"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.workdir / "state"
        self.socket_path = self.workdir / "airlockd.sock"
        self.extra_args = list(extra_args)
        self.name = name
        self.key = "ak_" + secrets.token_hex(16)
        self.proc = None
        self.port = None
        self.starts = 0
        self.logs = []

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def unix_url(self):
        return "unix://" + str(self.socket_path)

    @property
    def log_path(self):
        return self.workdir / ("%s.%d.log" % (self.name, self.starts))

    def start(self, timeout=20.0):
        if not DAEMON.exists():
            pytest.skip("no daemon binary at %s (build it, or set AIRLOCK_DAEMON)" % DAEMON)
        self.starts += 1
        self.port = free_port()
        env = dict(os.environ)
        env["AIRLOCK_API_KEY"] = self.key
        # ASan: report to stderr, do not hide leaks; the teardown greps for them.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        cmd = [str(DAEMON), "--listen", "127.0.0.1:%d" % self.port,
               "--socket", str(self.socket_path), "--state-dir", str(self.state_dir),
               "--region", "eu", "--agent", str(AGENT), "--runner", str(RUNNER),
               "--zygote", str(ZYGOTE), *self.extra_args]
        log = open(self.log_path, "wb")
        self.logs.append(self.log_path)
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("airlockd exited with %s during start:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            try:
                if self.healthz(timeout=1.0)["status"] == "ok":
                    return self
            except (OSError, ValueError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("airlockd did not answer /v1/healthz within %.0fs:\n%s"
                           % (timeout, self.log_tail()))

    def log_text(self, all_starts=False):
        paths = self.logs if all_starts else self.logs[-1:]
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def healthz(self, timeout=5.0):
        with urllib.request.urlopen(self.url + "/v1/healthz", timeout=timeout) as r:
            return json.loads(r.read())

    def stop(self, timeout=30.0):
        """SIGTERM; return the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("airlockd did not exit within %.0fs of SIGTERM:\n%s"
                                 % (timeout, self.log_tail()))

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def zygote_pid(self):
        """Pid of the daemon's airlock-zygote, or None."""
        for p in self.descendants(include_zygote=True):
            try:
                if open("/proc/%d/comm" % p).read().strip() == "airlock-zygote":
                    return p
            except OSError:
                pass
        return None

    def descendants(self, include_zygote=False):
        """Pids of every live process below the daemon (agents, runners, user code);
        the zygote (one per daemon, not a sandbox's) and its transient children
        only with include_zygote."""
        children = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            st = _proc_stat(int(d))
            if st is not None and st[1] != "Z":
                children.setdefault(st[2], []).append(int(d))
        out, todo = [], [self.proc.pid]
        while todo:
            p = todo.pop()
            for c in children.get(p, []):
                if not include_zygote and p == self.proc.pid and _comm(c) == "airlock-zygote":
                    continue
                out.append(c)
                todo.append(c)
        return out

    def assert_clean_log(self):
        text = self.log_text(all_starts=True)
        for m in SANITIZER_MARKERS:
            assert m not in text, "sanitizer report in airlockd's log:\n%s" % text[-4000:]

    # -- raw HTTP, for contract tests ----------------------------------------------
    def request(self, method, path, body=None, key=..., headers=None, timeout=30.0):
        """(status, headers dict (lower-case names), body bytes, parsed JSON or None)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        if key is ...:
            key = self.key
        if key is not None:
            h["Authorization"] = "Bearer " + key
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        try:
            try:
                conn.request(method, path, body=body, headers=h)
            except (BrokenPipeError, ConnectionResetError):
                pass  # an early answer (e.g. 413) may still be readable
            r = conn.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()
        parsed = None
        if data and hdrs.get("content-type", "").startswith("application/json"):
            parsed = json.loads(data)
        return r.status, hdrs, data, parsed

    def sandbox(self, **kw):
        kw.setdefault("base_url", self.url)
        kw.setdefault("api_key", self.key)
        return Sandbox(**kw)


def _read_stat(path):
    """(comm, [fields after it]) of a /proc/.../stat file, or None once the
    task is gone: fields[0] is the state, [1] the ppid, [16] the nice value,
    [19] the start time (proc(5)'s fields 3, 4, 19, 22)."""
    try:
        with open(path) as f:
            s = f.read()
    except OSError:
        return None
    rp = s.rindex(")")
    return s[s.index("(") + 1:rp], s[rp + 2:].split()


def stat_fields(pid, task=None):
    """The fields of /proc/PID/stat (or of its thread TASK) after the
    command name, or None once it is gone (see _read_stat)."""
    path = "/proc/%d/stat" % pid if task is None else "/proc/%d/task/%s/stat" % (pid, task)
    st = _read_stat(path)
    return st and st[1]


def _proc_stat(pid):
    """(comm, state, ppid) of a pid, or None if it is gone."""
    st = _read_stat("/proc/%d/stat" % pid)
    return st and (st[0], st[1][0], int(st[1][1]))


def pid_alive(pid):
    st = _proc_stat(pid)
    return st is not None and st[1] != "Z"


def wait_until(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def scope_cgroups(d):
    """The daemon's cgroup parents: airlock-<sha256(realpath(state dir))[:12]>."""
    import glob
    import hashlib
    h = hashlib.sha256(os.path.realpath(str(d.state_dir)).encode()).hexdigest()[:12]
    # the jail's parents, and the vm backend's beside them (<scope>-vm)
    return [p for suffix in ("", "-vm") for p in
            glob.glob("/sys/fs/cgroup/airlock-%s%s" % (h, suffix)) + glob.glob("/sys/fs/cgroup/*/airlock-%s%s" % (h, suffix))]


def serving(d):
    """For a fixture: yield the started daemon d, then stop it and check the
    shutdown left nothing (unless the test already stopped or killed it)."""
    try:
        yield d
    finally:
        if d.proc.poll() is None:
            stop_and_check(d)


def stop_and_check(d):
    assert scope_cgroups(d), "the running daemon's cgroup parents were not found"
    rc = d.stop()
    d.assert_clean_log()
    assert rc == 0, "airlockd exited %s on SIGTERM:\n%s" % (rc, d.log_tail())
    # a clean shutdown leaves no cgroup behind, not even its own parents
    assert scope_cgroups(d) == [], scope_cgroups(d)


# ---- fixtures ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def daemon(tmp_path_factory):
    """The shared daemon. AIRLOCK_URL / AIRLOCK_API_KEY point at it for the session."""
    d = Daemon(tmp_path_factory.mktemp("daemon")).start()
    saved = {k: os.environ.get(k) for k in ("AIRLOCK_URL", "AIRLOCK_API_KEY")}
    os.environ["AIRLOCK_URL"] = d.url
    os.environ["AIRLOCK_API_KEY"] = d.key
    try:
        yield d
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        stop_and_check(d)


@pytest.fixture(scope="session")
def sb(daemon):
    """A long-lived sandbox shared by tests that do not disturb each other."""
    s = daemon.sandbox(timeout=3600, env={"AIRLOCK_E2E": "yes"}, metadata={"suite": "e2e"})
    yield s
    s.close()


@pytest.fixture(scope="session")
def witness(daemon):
    """A second live sandbox: after every bad request it must still work."""
    s = daemon.sandbox(timeout=3600)
    s.run_code("witness_state = 1234")
    yield s
    s.close()


@pytest.fixture
def assert_alive(daemon, witness):
    """Call after a bad request: the daemon and other sandboxes keep serving."""
    def check():
        assert daemon.healthz()["status"] == "ok"
        assert daemon.proc.poll() is None, "airlockd died:\n" + daemon.log_tail()
        r = witness.run_code("witness_state + 1")
        assert r.error is None, r
        assert r.text == "1235"
    return check


@pytest.fixture
def fresh(daemon):
    """A new sandbox per test, destroyed afterwards."""
    made = []

    def make(**kw):
        s = daemon.sandbox(**kw)
        made.append(s)
        return s
    yield make
    for s in made:
        try:
            s.close()
        except airlock.AirlockError:
            pass


@pytest.fixture(scope="session")
def cli():
    if not CLI.exists():
        pytest.skip("no CLI binary at %s (build it, or set AIRLOCK_CLI)" % CLI)
    return CLI


@pytest.fixture(scope="session")
def python_bin():
    return shutil.which("python3", path="/usr/bin") or sys.executable
