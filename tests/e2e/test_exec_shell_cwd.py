"""exec's shell and working directory (issue 14, item 4): a shell string runs
under bash (bashisms work), a relative cwd is relative to /home/user like
every API path, and a missing cwd is a clear 400, never a silent run in /."""

from test_errors import check_error


def test_shell_string_is_bash(sb):
    r = sb.exec("[[ 1 == 1 ]] && echo ok; a=(x y z); echo ${#a[@]} ${BASH_VERSION:+bash}")
    assert r.exit_code == 0 and r.stdout.split() == ["ok", "3", "bash"], (r.stdout, r.stderr)
    r = sb.exec("set -o pipefail; false | true")
    assert r.exit_code == 1, (r.stdout, r.stderr)


def test_relative_cwd_is_under_home(sb):
    sb.exec(["mkdir", "-p", "/home/user/proj/sub"])
    assert sb.exec(["pwd"], cwd="proj/sub").stdout.strip() == "/home/user/proj/sub"
    assert sb.exec("pwd", cwd="proj").stdout.strip() == "/home/user/proj"
    assert sb.exec(["pwd"]).stdout.strip() == "/home/user"
    assert sb.exec(["pwd"], cwd="/tmp").stdout.strip() == "/tmp"


def test_missing_cwd_is_an_error(daemon, sb, assert_alive):
    for cwd, why in (("/nope", "No such file"), ("missing/dir", "/home/user/missing/dir"),
                     ("/etc/hostname", "Not a directory")):
        msg = check_error(daemon.request("POST", "/v1/sandboxes/%s/exec" % sb.id, {"cmd": ["pwd"], "cwd": cwd}),
                          400, "invalid_request")
        assert "cwd" in msg and why in msg, msg
    # a NUL never reaches the agent: the daemon's JSON parser refuses it
    check_error(daemon.request("POST", "/v1/sandboxes/%s/exec" % sb.id, {"cmd": ["pwd"], "cwd": "a\u0000b"}),
                400, "invalid_json")
    assert sb.exec(["true"]).exit_code == 0  # the sandbox is fine
    assert_alive()
