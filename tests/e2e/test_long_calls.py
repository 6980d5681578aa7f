"""Long work (issue 14, item 6): a call may run as long as its sandbox lives.
`timeout_s: 0` means no per-call limit (the daemon's --max-call-timeout, which
defaults to the longest lifetime), a call's timeout may exceed the old 3600 s
cap, and `airlock run` no longer kills a script at 60 s.

The cap's effect is tested on a daemon of its own with --max-call-timeout 3,
so no test here waits long."""

import os
import subprocess
import time

import pytest

from e2e_support import Daemon, serving
from test_errors import check_error


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    yield from serving(Daemon(tmp_path_factory.mktemp("capped"), ["--max-call-timeout", "3"],
                              name="capped").start())


def _timeouts(s, action):
    return [e.get("detail", {}).get("timeout_s") for e in s.logs() if e["action"] == action]


def test_zero_means_until_the_cap(capped):
    s = capped.sandbox()
    try:
        t0 = time.monotonic()
        ex = s.run_code("import time; time.sleep(8)", timeout=0)
        took = time.monotonic() - t0
        assert ex.error is not None and ex.error.name == "TimeoutError", ex
        assert 2.5 < took < 7.5, took  # stopped by the 3 s cap, not the 60 s default
        assert "3 s" in ex.error.value, ex.error.value
        r = s.exec(["sleep", "8"], timeout=0)
        assert r.exit_code == 124, r
        assert s.run_code("1 + 1").text == "2"  # the REPL survived
    finally:
        s.kill()


def test_a_timeout_above_the_cap_is_refused(capped):
    s = capped.sandbox()
    try:
        msg = check_error(capped.request("POST", "/v1/sandboxes/%s/code" % s.id, {"code": "1", "timeout_s": 4}),
                          400, "invalid_request")
        assert "timeout_s" in msg and "3" in msg, msg
        # the default (60 s) is cut to the cap, never refused
        assert s.run_code("2").text == "2"
        assert _timeouts(s, "code")[-1] == 3
    finally:
        s.kill()


def test_default_daemon_takes_zero_and_long_timeouts(daemon, fresh):
    s = fresh()
    assert s.run_code("'zero'", timeout=0).text == "'zero'"
    assert s.run_code("'long'", timeout=7200).text == "'long'"  # was refused above 3600
    assert s.exec(["true"], timeout=0).exit_code == 0
    got = _timeouts(s, "code")
    assert got[-2:] == [86400, 7200], got  # 0 = the longest lifetime (--max-timeout's default)


def test_cli_run_has_no_60s_default(daemon, fresh, cli, tmp_path):
    """`airlock run` runs a script until it ends or its sandbox does: the call
    it makes has no per-call limit (recorded as the cap), unless --timeout."""
    s = fresh()
    script = tmp_path / "job.py"
    script.write_text("print('done')\n")
    env = dict(os.environ, AIRLOCK_URL=daemon.url)
    out = subprocess.run([str(cli), "run", "--sandbox", s.id, str(script)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "done", out
    out = subprocess.run([str(cli), "run", "--sandbox", s.id, "--timeout", "9", str(script)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out
    assert _timeouts(s, "code")[-2:] == [86400, 9], _timeouts(s, "code")
