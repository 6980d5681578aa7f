"""The `airlock` CLI against a real daemon."""

import json
import os
import signal
import subprocess
import time

import pytest

COMMANDS = ["create", "ls", "info", "rm", "run", "exec", "upload", "download", "keys", "logs",
            "template", "install-wheels", "mcp", "egress", "pause", "resume"]


@pytest.fixture
def run_cli(cli, daemon):
    def run(*args, key=None, url=None, input=None, timeout=120, check=None):
        env = dict(os.environ, AIRLOCK_URL=url or daemon.url, AIRLOCK_API_KEY=key or daemon.key)
        p = subprocess.run([str(cli), *args], env=env, capture_output=True, input=input,
                           timeout=timeout)
        p.out = p.stdout.decode(errors="replace")
        p.err = p.stderr.decode(errors="replace")
        if check is not None:
            assert p.returncode == check, (args, p.returncode, p.out, p.err)
        return p
    return run


def test_help_everywhere(run_cli):
    for args in (["--help"], ["-h"], ["help"]):
        p = run_cli(*args, check=0)
        assert p.out.startswith("usage: airlock"), p.out
    for cmd in COMMANDS:
        for h in ("--help", "-h"):
            p = run_cli(cmd, h, check=0)
            assert p.out.startswith("usage: airlock " + cmd), (cmd, p.out)


def test_usage_errors_exit_2(run_cli):
    assert run_cli(check=2).err.startswith("usage: airlock")
    assert "unknown command" in run_cli("frobnicate", check=2).err
    run_cli("create", "--timeout", "soon", check=2)
    run_cli("exec", "sb_x", check=2)
    run_cli("upload", "sb_x", "only-two", check=2)
    run_cli("run", check=2)
    run_cli("keys", "explode", check=2)


def test_run_script_with_upload(run_cli, daemon, tmp_path):
    (tmp_path / "roster.csv").write_text("name,age\nAlice,30\nBob,45\n")
    script = tmp_path / "script.py"
    script.write_text("import csv, sys\nrows = list(csv.DictReader(open('/data/roster.csv')))\n"
                      "print('rows:', len(rows))\nprint('warn', file=sys.stderr)\n")
    before = daemon.healthz()["sandboxes"]
    p = run_cli("run", str(script), "--upload", "%s:/data/roster.csv" % (tmp_path / "roster.csv"),
                check=0)
    assert p.out == "rows: 2\n"
    assert p.err == "warn\n"
    assert daemon.healthz()["sandboxes"] == before  # always destroyed


def test_run_exit_codes(run_cli, daemon, tmp_path):
    before = daemon.healthz()["sandboxes"]
    s = tmp_path / "exit4.py"
    s.write_text("import sys\nprint('leaving')\nsys.exit(4)\n")
    p = run_cli("run", str(s), check=4)
    assert p.out == "leaving\n"
    s = tmp_path / "boom.py"
    s.write_text("def f():\n    return 1/0\nf()\n")
    p = run_cli("run", str(s), check=1)
    assert "ZeroDivisionError" in p.err and "Traceback" in p.err
    s = tmp_path / "script.sh"
    s.write_text("echo from-bash $((2+3))\nexit 6\n")
    p = run_cli("run", str(s), check=6)
    assert p.out == "from-bash 5\n"
    s = tmp_path / "loop.py"
    s.write_text("while True: pass\n")
    p = run_cli("run", "--timeout", "1", str(s))
    assert p.returncode != 0 and "TimeoutError" in p.err
    assert daemon.healthz()["sandboxes"] == before


def test_run_ctrl_c_destroys_sandbox(cli, daemon, tmp_path):
    before = daemon.healthz()["sandboxes"]
    s = tmp_path / "slow.py"
    s.write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    env = dict(os.environ, AIRLOCK_URL=daemon.url, AIRLOCK_API_KEY=daemon.key)
    p = subprocess.Popen([str(cli), "run", str(s)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        line = p.stdout.readline()  # streamed: arrives while the script sleeps
        assert line == b"started\n"
        assert daemon.healthz()["sandboxes"] == before + 1
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        rc = p.wait(20)
        assert time.monotonic() - t0 < 10
    finally:
        if p.poll() is None:
            p.kill()
    assert rc == 130, p.stderr.read()
    assert daemon.healthz()["sandboxes"] == before


def test_sandbox_commands(run_cli, daemon, tmp_path):
    p = run_cli("create", "--timeout", "600", "--memory-mb", "512", "--env", "FOO=bar",
                "--metadata", "owner=e2e", "--region", "eu", "--json", check=0)
    sb = json.loads(p.out)
    sid = sb["id"]
    assert sb["memory_mb"] == 512 and sb["timeout_s"] == 600 and sb["metadata"] == {"owner": "e2e"}
    try:
        listing = json.loads(run_cli("ls", "--json", check=0).out)
        assert sid in [x["id"] for x in listing["sandboxes"]]
        assert sid in run_cli("ls", check=0).out
        assert json.loads(run_cli("info", sid, "--json", check=0).out)["state"] == "running"

        data = os.urandom(2 * 1024 * 1024)
        (tmp_path / "blob").write_bytes(data)
        run_cli("upload", sid, str(tmp_path / "blob"), "/data/blob", check=0)
        p = run_cli("exec", sid, "--", "sha256sum", "/data/blob", check=0)
        import hashlib
        assert p.out.split()[0] == hashlib.sha256(data).hexdigest()
        run_cli("download", sid, "/data/blob", str(tmp_path / "back"), check=0)
        assert (tmp_path / "back").read_bytes() == data
        p = run_cli("download", sid, "/data/blob", "-", check=0)
        assert p.stdout == data
        p = run_cli("download", sid, "/data/missing", str(tmp_path / "missing"), check=1)
        assert "(not_found)" in p.err and not (tmp_path / "missing").exists()

        p = run_cli("exec", sid, "--shell", "echo $FOO; exit 3", check=3)
        assert p.out == "bar\n"
        p = run_cli("exec", sid, "--cwd", "/tmp", "--env", "X=1", "--", "sh", "-c", "pwd; echo $X", check=0)
        assert p.out == "/tmp\n1\n"
        p = run_cli("exec", sid, "--stdin", "--", "wc", "-c", input=b"12345", check=0)
        assert p.out.strip() == "5"
        p = run_cli("exec", "--json", sid, "--", "echo", "hi", check=0)
        assert json.loads(p.out)["stdout"] == "hi\n"

        p = run_cli("run", "--sandbox", sid, str(_script(tmp_path, "print(open('/data/blob','rb').read(3) == %r)" % data[:3])), check=0)
        assert p.out == "True\n"

        events = json.loads(run_cli("logs", sid, "--json", check=0).out)["events"]
        actions = [e["action"] for e in events]
        assert actions[0] == "create" and "upload" in actions and "exec" in actions
        assert "create" in run_cli("logs", sid, check=0).out
    finally:
        p = run_cli("rm", sid)
    assert p.returncode == 0, p.err
    assert json.loads(run_cli("info", sid, "--json", check=0).out)["state"] == "destroyed"
    p = run_cli("rm", sid, check=1)
    assert "(not_found)" in p.err


def _script(tmp_path, text):
    s = tmp_path / "inline.py"
    s.write_text(text + "\n")
    return s


def test_keys_commands(run_cli):
    p = run_cli("keys", "create", "cli-e2e", "--json", check=0)
    k = json.loads(p.out)
    assert k["name"] == "cli-e2e" and k["admin"] is False
    assert k["id"] in run_cli("keys", "ls", check=0).out
    # the new key works, but not for admin commands
    run_cli("ls", key=k["key"], check=0)
    p = run_cli("keys", "ls", key=k["key"], check=1)
    assert p.err.startswith("airlock: ") and "(forbidden)" in p.err
    run_cli("keys", "revoke", k["id"], check=0)
    p = run_cli("ls", key=k["key"], check=1)
    assert "(unauthorized)" in p.err


def test_bad_key_and_unreachable(run_cli, daemon):
    p = run_cli("ls", key="ak_" + "9" * 32, check=1)
    assert p.err.startswith("airlock: ") and p.err.rstrip().endswith("(unauthorized)"), p.err
    p = run_cli("--key", "ak_" + "8" * 32, "ls", check=1)
    assert "(unauthorized)" in p.err
    p = run_cli("ls", url="http://127.0.0.1:1", check=1)
    assert p.err.startswith("airlock: ") and "(connection)" in p.err
    p = run_cli("create", "--region", "us-east", check=1)
    assert "(region_unavailable)" in p.err and "eu" in p.err


def test_unix_socket(run_cli, daemon):
    p = run_cli("ls", "--json", url=daemon.unix_url, check=0)
    assert "sandboxes" in json.loads(p.out)


# ---- one set of exit codes for every command (README "CLI"): 0 ok, 1 error,
# 2 usage, 124 timed out, 130 interrupted, else the code's own exit code.

def test_help_command_shows_that_commands_help(run_cli):
    for cmd in COMMANDS:
        p = run_cli("help", cmd, check=0)
        assert p.out.startswith("usage: airlock " + cmd), (cmd, p.out)
        assert p.out == run_cli(cmd, "--help", check=0).out
    assert "unknown command" in run_cli("help", "frobnicate", check=2).err


def test_help_lists_every_option(run_cli):
    p = run_cli("help", "create", check=0)
    for opt in ("--template", "--timeout", "--memory-mb", "--cpus", "--env", "--metadata", "--region",
                "--egress", "--json", "--url", "--key"):
        assert opt in p.out, (opt, p.out)
    p = run_cli("help", "keys", check=0)
    for verb in ("keys create NAME", "keys ls", "keys revoke ID", "--admin"):
        assert verb in p.out, (verb, p.out)


def test_long_options_as_getopt_took_them(run_cli):
    """--opt=V and unique prefixes, as getopt_long accepted them before the table."""
    sb = json.loads(run_cli("create", "--time=600", "--mem", "256", "--json", check=0).out)
    try:
        assert sb["timeout_s"] == 600 and sb["memory_mb"] == 256
    finally:
        run_cli("rm", sb["id"], check=0)
    assert "ambiguous" in run_cli("create", "--e", "A=1", check=2).err


def test_exit_0_ok(run_cli):
    run_cli("ls", check=0)
    run_cli("--version", check=0)


def test_exit_1_error(run_cli):
    p = run_cli("info", "sb_" + "0" * 32, check=1)
    assert "(not_found)" in p.err
    run_cli("exec", "sb_" + "0" * 32, "true", check=1)
    run_cli("ls", url="http://127.0.0.1:1", check=1)


def test_exit_2_usage(run_cli):
    for args in (["ls", "--frobnicate"], ["create", "--cpus", "lots"], ["info"], ["rm"],
                 ["download", "sb_x"], ["exec"], ["template", "build"], ["run", "a.py", "b.py"],
                 ["run", "--language", "cobol", "a.py"], ["--frobnicate"], ["keys"]):
        p = run_cli(*args, check=2)
        assert p.err.startswith("airlock: ") or p.err.startswith("usage: "), (args, p.err)


def test_exit_124_run_timeout(run_cli, daemon, tmp_path):
    before = daemon.healthz()["sandboxes"]
    s = tmp_path / "loop.py"
    s.write_text("while True: pass\n")
    p = run_cli("run", "--timeout", "1", str(s), check=124)
    assert "TimeoutError" in p.err
    run_cli("run", "--json", "--timeout", "1", str(s), check=124)
    s = tmp_path / "loop.sh"
    s.write_text("sleep 60\n")
    run_cli("run", "--timeout", "1", str(s), check=124)
    assert daemon.healthz()["sandboxes"] == before


def test_exit_124_exec_timeout(run_cli, sb):
    run_cli("exec", sb.id, "--timeout", "1", "--", "sleep", "60", check=124)
    run_cli("exec", "--json", sb.id, "--timeout", "1", "--", "sleep", "60", check=124)


def _interrupt(cli, daemon, args):
    env = dict(os.environ, AIRLOCK_URL=daemon.url, AIRLOCK_API_KEY=daemon.key)
    p = subprocess.Popen([str(cli), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"started\n"
        p.send_signal(signal.SIGINT)
        rc = p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
    return rc, p.stderr.read().decode(errors="replace")


def test_exit_130_interrupted_run_and_exec(cli, daemon, sb, tmp_path):
    s = tmp_path / "slow.sh"
    s.write_text("echo started\nsleep 60\n")
    rc, err = _interrupt(cli, daemon, ["run", str(s)])
    assert rc == 130, err
    rc, err = _interrupt(cli, daemon, ["run", "--sandbox", sb.id, str(s)])
    assert rc == 130, err
    rc, err = _interrupt(cli, daemon, ["exec", sb.id, "sh", "-c", "echo started; sleep 60"])
    assert rc == 130, err
    assert "interrupted" in err
    assert sb.exec(["true"]).exit_code == 0  # the sandbox is still there


def test_exit_code_of_the_code(run_cli, sb, tmp_path):
    run_cli("exec", sb.id, "--", "sh", "-c", "exit 7", check=7)
    run_cli("exec", "--json", sb.id, "--", "sh", "-c", "exit 9", check=9)
    run_cli("exec", sb.id, "--shell", "exit 3", check=3)
    s = tmp_path / "exit5.sh"
    s.write_text("exit 5\n")
    run_cli("run", "--sandbox", sb.id, str(s), check=5)
    s = tmp_path / "exit4.py"
    s.write_text("import sys\nsys.exit(4)\n")
    run_cli("run", "--sandbox", sb.id, str(s), check=4)


def test_exec_command_without_dashdash(run_cli, sb):
    p = run_cli("exec", sb.id, "ls", "-l", "/", check=0)
    assert "tmp" in p.out
    # options before the command word are the CLI's; after it, the command's
    p = run_cli("exec", sb.id, "--cwd", "/tmp", "sh", "-c", "pwd; echo \"$@\"", "x", "--cwd", "-h", check=0)
    assert p.out == "/tmp\n--cwd -h\n"
    p = run_cli("exec", "--env", "A=1", sb.id, "--env", "B=2", "sh", "-c", "echo $A$B", check=0)
    assert p.out == "12\n"
