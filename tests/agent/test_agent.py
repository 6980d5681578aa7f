"""airlock-agent end to end: the built static agent, driven over a socketpair
with the framed protocol of docs/protocol.md, running user code as uid 1000.

Run as root:  AIRLOCK_AGENT=build/airlock-agent /usr/bin/python3 -m pytest tests/agent
"""

import base64
import hashlib
import json
import os
import signal
import struct
import subprocess
import time

import pytest

from agent_support import (
    EXEC, ERROR, FILE_ACK, FILE_DATA, FILE_DELETE, FILE_GET, FILE_LIST, FILE_MKDIR, FILE_PUT, F_END, GET_WINDOW,
    HDR, HELLO, MAGIC, MAX_PAYLOAD, OK, RESULT, RUN_CODE, SHUTDOWN, SIGNAL, STDIN, STDOUT, USER_UID,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent tests need root (setresuid to 1000)")


def status_fields(text):
    return dict(line.split(":\t", 1) for line in text.strip().splitlines() if ":\t" in line)


# ---- control protocol ----------------------------------------------------------


def test_hello(agent):
    r = agent.call(HELLO, {"version": 1})
    assert r.type == OK
    assert r.body["version"] == 1
    assert r.body["agent"] == "airlock-agent 0.1.0"
    assert r.body["pid"] == agent.proc.pid
    assert r.first.end


def test_invalid_json_is_invalid_request(agent):
    r = agent.call(HELLO, b"{not json")
    assert r.error_code == "invalid_request"
    assert agent.call(HELLO, {}).type == OK


def test_unknown_frame_type(agent):
    r = agent.call(0x7F, {})
    assert r.error_code == "invalid_request"


def test_shutdown_exits(agent):
    r = agent.call(SHUTDOWN, {})
    assert r.type == OK
    assert agent.wait_exit() == 0


def test_eof_exits_cleanly(agent):
    # read the agent's startup LOG lines first: closing a unix socket with
    # unread data makes the peer's read fail with ECONNRESET, not EOF
    assert agent.call(HELLO, {}).type == OK
    agent.sock.close()
    assert agent.wait_exit() == 0


def test_bad_magic_exits(agent):
    agent.send_raw(struct.pack("<IBBHII", 0xDEADBEEF, 1, HELLO, 0, 1, 2) + b"{}")
    assert agent.wait_exit() == 1


def test_bad_version_exits(agent):
    agent.send_raw(HDR.pack(MAGIC, 2, HELLO, 0, 1, 2) + b"{}")
    assert agent.wait_exit() == 1


def test_oversized_length_exits(agent):
    agent.send_raw(HDR.pack(MAGIC, 1, HELLO, 0, 1, MAX_PAYLOAD + 1))
    assert agent.wait_exit() == 1


def test_eof_kills_running_children(agent):
    assert agent.call(HELLO, {}).type == OK  # drains the startup LOG lines (see above)
    req = agent.start(EXEC, {"argv": ["sleep", "30"]})
    time.sleep(0.3)
    children = subprocess.run(["pgrep", "-P", str(agent.proc.pid)], capture_output=True, text=True).stdout.split()
    assert children, "expected the runner and sleep as children"
    agent.sock.close()
    assert agent.wait_exit() == 0
    time.sleep(0.2)
    for pid in children:
        assert not os.path.exists("/proc/%s" % pid) or open("/proc/%s/stat" % pid).read().split()[2] == "Z"
    del req


# ---- python REPL ---------------------------------------------------------------


def test_print_goes_to_stdout(agent):
    r = agent.py("print('hello'); import sys; print('oops', file=sys.stderr)")
    assert r.stdout == b"hello\n"
    assert r.stderr == b"oops\n"
    res = r.result
    assert res["exit_code"] == 0 and res["error"] is None and res["results"] == []
    assert res["timed_out"] is False and res["repl_restarted"] is False and res["killed_signal"] is None


def test_globals_imports_and_files_persist(agent, root):
    agent.py("import math\nx = 6\nf = open(%r, 'w')" % (root + "/tmp/persist"))
    r = agent.py("f.write('a'); f.close(); print(x * 7, math.pi > 3)")
    assert r.stdout == b"42 True\n"
    assert open(root + "/tmp/persist").read() == "a"


def test_main_module_semantics(agent):
    r = agent.py("import pickle\nclass P: pass\nprint(__name__, type(pickle.loads(pickle.dumps(P()))).__name__)")
    assert r.stdout == b"__main__ P\n"


def test_last_expression_result(agent):
    res = agent.py("a = 20\na + 22").result
    assert res["results"] == [{"text/plain": "42", "is_main_result": True}]


def test_no_result_for_none_or_statement(agent):
    assert agent.py("None").result["results"] == []
    assert agent.py("y = 3").result["results"] == []


def test_json_result_for_dict(agent):
    res = agent.py("{'a': [1, 2], 'b': None}").result
    (item,) = res["results"]
    assert item["application/json"] == {"a": [1, 2], "b": None}
    assert item["text/plain"] == "{'a': [1, 2], 'b': None}"
    assert item["is_main_result"] is True


def test_pandas_dataframe_html(agent, root):
    res = agent.py("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})",
                   env={"MPLCONFIGDIR": root + "/tmp"}, timeout_ms=60000).result
    assert res["error"] is None, res["error"]
    (item,) = res["results"]
    assert "<table" in item["text/html"]
    assert "a  b" in item["text/plain"]


def test_matplotlib_figure_png(agent, root):
    res = agent.py("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nNone",
                   env={"MPLCONFIGDIR": root + "/tmp"}, timeout_ms=60000).result
    assert res["error"] is None, res["error"]
    pngs = [r["image/png"] for r in res["results"] if "image/png" in r]
    assert len(pngs) == 1
    assert base64.b64decode(pngs[0])[:8] == b"\x89PNG\r\n\x1a\n"
    # figures are closed after being returned
    res = agent.py("len(plt.get_fignums())", env={"MPLCONFIGDIR": root + "/tmp"}).result
    assert res["results"][0]["text/plain"] == "0"


def test_exception_reported_and_repl_survives(agent):
    agent.py("keep = 'me'")
    r = agent.py("def f():\n    return 1 / 0\nf()")
    res = r.result
    assert res["exit_code"] == 1
    assert res["error"]["name"] == "ZeroDivisionError"
    assert res["error"]["value"] == "division by zero"
    tb = res["error"]["traceback"]
    # IPython's format (its header line, then "Cell In [2], line 3"), or
    # Python's where the runner has no IPython
    assert "Traceback (most recent call last)" in tb, tb
    assert "Cell In [" in tb or "<cell-" in tb, tb
    assert "return 1 / 0" in tb and "airlock_runner" not in tb
    assert b"ZeroDivisionError: division by zero" in r.stderr
    assert agent.py("print(keep)").stdout == b"me\n"


def test_syntax_error(agent):
    res = agent.py("def (:").result
    assert res["error"]["name"] == "SyntaxError"
    assert "airlock_runner" not in res["error"]["traceback"]


def test_system_exit_code(agent):
    res = agent.py("raise SystemExit(3)").result
    assert res["exit_code"] == 3 and res["error"] is None
    r = agent.py("import sys; sys.exit('bye')")
    assert r.result["exit_code"] == 1 and r.stderr == b"bye\n"
    assert agent.py("import sys; sys.exit()").result["exit_code"] == 0


def test_output_not_mixed_between_calls(agent):
    r1 = agent.py("import sys\nfor i in range(1000): print(i)\nsys.stdout.write('tail-no-newline')")
    assert r1.stdout == ("".join("%d\n" % i for i in range(1000)) + "tail-no-newline").encode()
    r2 = agent.py("print('second')")
    assert r2.stdout == b"second\n"


def test_subprocess_output_captured(agent):
    r = agent.py("import subprocess\nsubprocess.run(['echo', 'from-child'])\nsubprocess.run('echo err >&2', shell=True)")
    assert r.stdout == b"from-child\n"
    assert r.stderr == b"err\n"


def test_runner_control_fds_not_inherited(agent):
    r = agent.py("import subprocess\nprint(subprocess.run(['ls', '/proc/self/fd'], capture_output=True, text=True).stdout.split())")
    fds = eval(r.stdout)
    assert all(int(fd) < 10 for fd in fds), fds


def test_per_call_env(agent):
    r = agent.py("import os\nprint(os.environ['FOO'], os.environ['HOME'], os.environ['MPLBACKEND'])", env={"FOO": "bar"})
    assert r.stdout == b"bar /home/user Agg\n"
    assert agent.py("import os\nprint(os.environ.get('FOO'))").stdout == b"None\n"


def test_env_non_string_rejected(agent):
    assert agent.run_code("1", env={"A": 1}).error_code == "invalid_request"
    assert agent.exec(argv=["true"], env={"A": ["x"]}).error_code == "invalid_request"


def test_bad_language(agent):
    assert agent.run_code("1", language="ruby").error_code == "invalid_request"


def test_timeout_interrupt_keeps_state(agent):
    agent.py("state = 'kept'")
    t0 = time.monotonic()
    r = agent.py("import time\nwhile True:\n    time.sleep(0.05)", timeout_ms=500)
    assert time.monotonic() - t0 < 2.0
    res = r.result
    assert res["timed_out"] is True and res["repl_restarted"] is False
    assert res["error"]["name"] == "TimeoutError"
    assert res["error"]["value"] == "execution exceeded 0.5 s and was interrupted"
    assert agent.py("print(state)").stdout == b"kept\n"


def test_timeout_sigint_ignored_restarts(agent):
    agent.py("state = 'lost'")
    t0 = time.monotonic()
    r = agent.py("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)",
                 timeout_ms=500)
    elapsed = time.monotonic() - t0
    assert 2.4 < elapsed < 5
    res = r.result
    assert res["timed_out"] is True and res["repl_restarted"] is True
    assert res["error"]["name"] == "TimeoutError"
    assert res["error"]["value"] == ("execution exceeded 0.5 s; the REPL did not respond to the interrupt and was "
                                     "restarted, its state is lost")
    res = agent.py("state").result
    assert res["error"]["name"] == "NameError"


def test_runner_killed_by_signal(agent):
    agent.py("state = 1")
    res = agent.py("import os\nprint('before', flush=True)\nos.kill(os.getpid(), 9)").result
    assert res["error"]["name"] == "ProcessKilled"
    assert res["error"]["value"] == "the Python process was killed by signal 9; the REPL was restarted and its state lost"
    assert res["killed_signal"] == 9 and res["exit_code"] == 137 and res["repl_restarted"] is True
    r = agent.py("print('again'); 'state' in globals()")
    assert r.stdout == b"again\n"
    assert r.result["results"][0]["text/plain"] == "False"


def test_flood_is_truncated_and_timed_out(agent):
    r = agent.run_code("while True:\n    print('x' * 10000)", timeout_ms=1500, max_output=1 << 20, timeout=20)
    res = r.result
    assert len(r.stdout) == 1 << 20
    assert res["stdout_truncated"] is True and res["stderr_truncated"] is False
    assert res["timed_out"] is True and res["error"]["name"] == "TimeoutError"
    assert all(len(f.payload) <= 64 * 1024 for f in r.frames if f.type == STDOUT)
    assert agent.call(HELLO, {}).type == OK
    assert agent.py("print('ok')").stdout == b"ok\n"


def test_second_python_call_is_busy(agent):
    first = agent.start(RUN_CODE, {"code": "import time; time.sleep(1); print('done')", "language": "python"})
    time.sleep(0.1)
    r2 = agent.call(RUN_CODE, {"code": "1", "language": "python"})
    assert r2.error_code == "busy"
    # bash and exec still run meanwhile
    assert agent.exec(argv=["echo", "concurrent"]).stdout == b"concurrent\n"
    r1 = agent.collect(first)
    assert r1.stdout == b"done\n" and r1.result["exit_code"] == 0


def test_signal_request_interrupts_python(agent):
    req = agent.start(RUN_CODE, {"code": "import time\nwhile True: time.sleep(0.05)", "language": "python"})
    time.sleep(0.3)
    assert agent.call(SIGNAL, {"target": req, "signal": signal.SIGINT}).type == OK
    res = agent.collect(req).result
    assert res["error"]["name"] == "KeyboardInterrupt" and res["timed_out"] is False
    assert agent.call(SIGNAL, {"target": 9999, "signal": 2}).error_code == "not_found"


# ---- bash and exec ---------------------------------------------------------------


def test_bash_code(agent):
    r = agent.run_code("echo out; echo err >&2; x=$((6*7)); echo $x; exit 3", language="bash")
    assert r.stdout == b"out\n42\n" and r.stderr == b"err\n"
    assert r.result["exit_code"] == 3 and r.result["error"] is None


def test_bash_large_script(agent):
    script = "".join("# filler line %d %s\n" % (i, "y" * 60) for i in range(6000)) + "echo end-of-script\n"
    assert len(script) > 400_000
    r = agent.run_code(script, language="bash")
    assert r.stdout == b"end-of-script\n" and r.result["exit_code"] == 0


def test_bash_timeout(agent):
    r = agent.run_code("echo start; sleep 10", language="bash", timeout_ms=300)
    res = r.result
    assert r.stdout == b"start\n"
    assert res["exit_code"] == 124 and res["timed_out"] is True and res["error"]["name"] == "TimeoutError"


def test_exec_argv(agent):
    r = agent.exec(argv=["printf", "%s|", "a b", "c"])
    assert r.stdout == b"a b|c|" and r.result["exit_code"] == 0


def test_exec_shell_env_cwd_stdin(agent):
    r = agent.exec(shell="echo $FOO; pwd; cat", env={"FOO": "bar"}, cwd="/tmp", stdin="from-stdin")
    assert r.stdout == b"bar\n/tmp\nfrom-stdin"


def test_exec_large_stdin(agent):
    data = "z" * (900 * 1024)  # a frame is at most 1 MiB; pipes hold 64 KiB
    r = agent.exec(argv=["wc", "-c"], stdin=data)
    assert r.stdout.strip() == str(len(data)).encode()


def test_exec_stdin_frames(agent):
    """stdin_open keeps a command's stdin open for STDIN frames (E2B's
    SendInput); one with END closes it (CloseStdin)."""
    rid = agent.start(EXEC, {"shell": "cat; echo done", "stdin_open": True, "stdin": "a\n"})
    agent.send(STDIN, rid, b"b\n")
    agent.send(STDIN, rid, b"")
    agent.send(STDIN, rid, b"c\n", flags=F_END)
    agent.send(STDIN, rid, b"after-close\n")  # dropped: stdin is closed
    r = agent.collect(rid)
    assert r.type == RESULT, r.frames
    assert r.stdout == b"a\nb\nc\ndone\n"


def test_exec_stdin_frames_without_open_stdin_are_dropped(agent):
    rid = agent.start(EXEC, {"shell": "cat; echo done"})
    agent.send(STDIN, rid, b"ignored\n")
    agent.send(STDIN, 9999, b"no such request\n", flags=F_END)
    r = agent.collect(rid)
    assert r.stdout == b"done\n"
    assert agent.exec(argv=["true"]).type == RESULT  # and the agent goes on


def test_exec_not_found(agent):
    r = agent.exec(argv=["no-such-program-airlock"])
    res = r.result
    assert res["exit_code"] == 127 and res["error"]["name"] == "ExecError"
    assert b"No such file or directory" in r.stderr


def test_exec_killed_by_signal(agent):
    res = agent.exec(shell="kill -9 $$").result
    assert res["exit_code"] == 137 and res["killed_signal"] == 9
    assert res["error"]["name"] == "ProcessKilled"


def test_exec_timeout_and_signal(agent):
    res = agent.exec(argv=["sleep", "10"], timeout_ms=300).result
    assert res["exit_code"] == 124 and res["timed_out"] is True
    req = agent.start(EXEC, {"argv": ["sleep", "10"]})
    time.sleep(0.2)
    assert agent.call(SIGNAL, {"target": req, "signal": 15}).type == OK
    res = agent.collect(req).result
    assert res["exit_code"] == 143 and res["killed_signal"] == 15


def test_exec_bad_requests(agent):
    assert agent.exec(argv=[]).error_code == "invalid_request"
    assert agent.exec(argv=["a"], shell="b").error_code == "invalid_request"
    assert agent.exec(argv=["echo", 1]).error_code == "invalid_request"
    assert agent.exec(argv=["true"], timeout_ms="x").error_code == "invalid_request"


def test_orphans_are_reaped(agent):
    res = agent.exec(shell="(sleep 0.2 &); (sleep 0.2 &); exit 0").result
    assert res["exit_code"] == 0
    time.sleep(0.8)
    zombies = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                st = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if st[0] == "Z" and int(st[1]) == agent.proc.pid:
                zombies.append(pid)
    assert zombies == []


# ---- privileges ----------------------------------------------------------------------


def test_python_runs_unprivileged(agent):
    st = status_fields(agent.py("print(open('/proc/self/status').read())").stdout.decode())
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1000"] * 4
    assert st["Groups"].split() == ["1000"]
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[cap], 16) == 0, cap
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"
    assert agent.py("print(open('/proc/self/oom_score_adj').read())").stdout == b"1000\n\n"


def test_bash_and_exec_unprivileged(agent):
    for r in (agent.run_code("grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status", language="bash"),
              agent.exec(argv=["grep", "-E", "^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):", "/proc/self/status"])):
        st = status_fields(r.stdout.decode())
        assert st["Uid"].split() == ["1000"] * 4
        assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2"


def test_rlimits(agent):
    r = agent.exec(shell="ulimit -c; ulimit -n")
    assert r.stdout == b"0\n1024\n"


# seccomp and Landlock: test_hardening.py


def test_user_cannot_write_agent_owned_things(agent):
    r = agent.exec(shell="echo -1000 > /proc/self/oom_score_adj")
    assert r.result["exit_code"] != 0


# ---- files -----------------------------------------------------------------------------


def test_put_get_round_trip(agent, root):
    data = os.urandom(5 * 1024 * 1024 + 123)
    r = agent.put("/data/blob.bin", data)
    assert r.type == OK and r.body == {"path": "/data/blob.bin", "size": len(data)}
    st = os.stat(os.path.join(root, "data/blob.bin"))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (USER_UID, USER_UID, 0o644)
    g = agent.get("/data/blob.bin")
    assert g.first.type == OK and not g.first.end
    assert g.first.json() == {"size": len(data), "mode": 0o644, "sha256": hashlib.sha256(data).hexdigest()}
    assert g.data == data
    assert all(len(f.payload) <= 256 * 1024 for f in g.frames if f.type == FILE_DATA)
    assert g.frames[-1].type == FILE_DATA and g.frames[-1].end
    assert [n for n in os.listdir(os.path.join(root, "data")) if n.startswith(".airlock")] == []


def test_put_empty_file_and_mode(agent, root):
    r = agent.put("empty.txt", b"", mode=0o4755)
    assert r.body == {"path": "/home/user/empty.txt", "size": 0}
    st = os.stat(os.path.join(root, "home/user/empty.txt"))
    assert st.st_size == 0 and st.st_mode & 0o7777 == 0o755  # no setuid
    g = agent.get("/home/user/empty.txt")
    assert g.first.json()["size"] == 0 and g.data == b""


def test_put_creates_parents_owned_by_user(agent, root):
    assert agent.put("/tmp/a/b/c.txt", b"x").type == OK
    for d in ("tmp/a", "tmp/a/b"):
        st = os.stat(os.path.join(root, d))
        assert (st.st_uid, st.st_gid) == (USER_UID, USER_UID)


def test_put_overwrite_and_visible_to_user_code(agent, root):
    agent.put("/tmp/over.txt", b"one")
    agent.put("/tmp/over.txt", b"two")
    assert open(os.path.join(root, "tmp/over.txt"), "rb").read() == b"two"


def test_put_aborted_by_daemon_error(agent, root):
    req = agent.start(FILE_PUT, {"path": "/data/partial.bin"})
    agent.send(FILE_DATA, req, b"x" * 1000)
    agent.send(ERROR, req, b'{"code":"aborted"}', F_END)
    assert agent.call(HELLO, {}).type == OK  # the agent processed both frames
    assert os.listdir(os.path.join(root, "data")) == []


def test_put_no_space(agent, root):
    small = os.path.join(root, "data", "small")
    os.mkdir(small)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", small]).returncode != 0:
        pytest.skip("cannot mount tmpfs")
    try:
        r = agent.put("/data/small/big.bin", b"y" * (1 << 20), chunk=64 * 1024)
        assert r.error_code == "no_space"
        assert len([f for f in r.frames if f.type == ERROR]) == 1
        assert os.listdir(small) == []
        assert agent.call(HELLO, {}).type == OK
    finally:
        subprocess.run(["umount", small])


def test_get_errors(agent, root):
    assert agent.get("/data/missing").error_code == "not_found"
    assert agent.get("/data").error_code == "is_directory"
    os.mkfifo(os.path.join(root, "tmp/fifo"))
    assert agent.get("/tmp/fifo").error_code == "invalid_request"


def test_path_validation(agent):
    assert agent.get("").error_code == "invalid_request"
    assert agent.get("a" * 5000).error_code == "invalid_request"
    assert agent.call(FILE_GET, b'{"path": "/tmp/a\\u0000b"}').error_code == "invalid_request"
    assert agent.call(FILE_GET, {"path": 5}).error_code == "invalid_request"


def test_writes_outside_allowed_dirs_refused(agent, root):
    for path in ("/etc/passwd", "/usr/x", "/home/other", "/tmp/../etc/x", "../../etc/x", "/", "/datax/y"):
        r = agent.put(path, b"x")
        assert r.error_code == "invalid_request", path
        assert r.body["message"].startswith("writes are allowed only under /tmp, /data and /home/user"), path
    assert agent.call(FILE_MKDIR, {"path": "/opt/x"}).error_code == "invalid_request"
    assert agent.call(FILE_DELETE, {"path": "/etc"}).error_code == "invalid_request"
    assert not os.path.exists(os.path.join(root, "etc"))


def test_path_escapes_read(agent, root):
    os.mkdir(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("sandbox-passwd\n")
    home = os.path.join(root, "home/user")
    os.symlink("/etc/passwd", os.path.join(home, "abs-link"))
    os.symlink("../../../../../../../../etc/passwd", os.path.join(home, "rel-link"))
    os.symlink("/etc", os.path.join(home, "etc-dir"))
    host_secret = os.path.join(os.path.dirname(root), "airlock-host-secret-%d" % os.getpid())
    with open(host_secret, "w") as f:
        f.write("host secret\n")
    try:
        os.symlink(host_secret, os.path.join(home, "host-link"))
        assert agent.get("../../etc/shadow").error_code == "not_found"
        assert agent.get("../../../../etc/passwd").data == b"sandbox-passwd\n"
        assert agent.get("/etc/passwd").data == b"sandbox-passwd\n"
        assert agent.get("abs-link").data == b"sandbox-passwd\n"
        assert agent.get("rel-link").data == b"sandbox-passwd\n"
        assert agent.get("etc-dir/passwd").data == b"sandbox-passwd\n"
        assert agent.get("host-link").error_code == "not_found"
        assert agent.get(host_secret).error_code == "not_found"
        assert agent.get("/proc/self/root/etc/passwd").error_code in ("not_found", "path_escape", "path_forbidden")
    finally:
        os.unlink(host_secret)


def test_proc_magic_links_refused(agent, root):
    proc = os.path.join(root, "proc")
    os.mkdir(proc)
    if subprocess.run(["mount", "-t", "proc", "proc", proc]).returncode != 0:
        pytest.skip("cannot mount proc")
    data = os.path.join(root, "data")
    links = {"pr": "/proc/self/root", "pc": "/proc/%d/cwd" % os.getpid(), "st": "/proc/self/status",
             "fd": "/proc/self/fd"}
    try:
        # /proc by name: refused before anything is opened (issue 10)
        for p in ("/proc/self/root/etc/passwd", "/proc/self/status", "/proc/1/fd", "/sys/kernel", "/dev/null"):
            assert agent.get(p).error_code == "path_forbidden", p
        assert agent.call(FILE_LIST, {"path": "/proc/self/fd"}).error_code == "path_forbidden"
        for name, target in links.items():
            os.symlink(target, os.path.join(data, name))
        # through a link: a magic link is still refused by RESOLVE_NO_MAGICLINKS
        r = agent.get("/data/pr/etc/passwd")
        assert r.error_code == "path_escape", r.body
        # another process's cwd: RESOLVE_NO_MAGICLINKS refuses it (path_escape), unless
        # Landlock already did (EACCES: this test process is outside the agent's domain)
        r = agent.get("/data/pc/etc/hostname")
        assert r.error_code == "path_escape" or (
            r.error_code == "invalid_request" and "Permission denied" in r.body["message"]), r.body
        # and a plain link into /proc leads to a file of procfs: refused too
        r = agent.get("/data/st")
        assert r.error_code == "path_forbidden", r.body
        r = agent.call(FILE_LIST, {"path": "/data/fd"})
        assert r.error_code == "path_forbidden", r.body
    finally:
        for name in links:
            if os.path.lexists(os.path.join(data, name)):
                os.unlink(os.path.join(data, name))
        subprocess.run(["umount", "-l", proc])


def test_put_sha256_checked_before_rename(agent, root):
    """An upload with the client's sha256: bytes that do not have it are
    refused (digest_mismatch) and nothing is left, not even the old file
    replaced; the right digest (and none) is accepted."""
    path = os.path.join(root, "data/digest.bin")
    with open(path, "wb") as f:
        f.write(b"old")
    data = os.urandom(600_000)
    r = agent.put("/data/digest.bin", data, sha256=hashlib.sha256(b"other").hexdigest())
    assert r.error_code == "digest_mismatch", r.frames
    assert open(path, "rb").read() == b"old"
    assert not [n for n in os.listdir(os.path.join(root, "data")) if n.startswith(".airlock")]
    r = agent.put("/data/digest.bin", data, sha256="XYZ")
    assert r.error_code == "invalid_request", r.frames
    r = agent.put("/data/digest.bin", data, sha256=hashlib.sha256(data).hexdigest())
    assert r.type == OK, r.frames
    assert open(path, "rb").read() == data


def test_get_of_a_file_changed_meanwhile_ends_in_error(agent, root):
    """The OK announces size and sha256 of the file as hashed; a write
    between that and the last chunk ends the download with an ERROR instead
    of its END data frame, so the client gets a short body and never a
    whole-looking one that is not what was announced."""
    path = os.path.join(root, "data/moving.bin")
    data = os.urandom(4 << 20)
    with open(path, "wb") as f:
        f.write(data)
    req = agent.start(FILE_GET, {"path": "/data/moving.bin"})
    first = agent.frames_for(req, 5)  # the OK and one window, not acknowledged
    assert first[0].type == OK and first[0].json()["sha256"] == hashlib.sha256(data).hexdigest()
    with open(path, "r+b") as f:  # same size, other bytes at the end
        f.seek(len(data) - 10)
        f.write(b"X" * 10)
    for f in first:
        if f.type == FILE_DATA:
            agent.ack(req, len(f.payload))
    rest = agent.collect(req, 30, ack=True)
    frames = first + rest.frames
    assert frames[-1].type == ERROR, [(f.type, len(f.payload)) for f in frames[-3:]]
    sent = sum(len(f.payload) for f in frames if f.type == FILE_DATA)
    assert sent < len(data)


def test_writes_through_symlinks_stay_in_allowed_dirs(agent, root):
    home = os.path.join(root, "home/user")
    os.mkdir(os.path.join(root, "etc"))
    os.symlink("/etc", os.path.join(home, "etc-dir"))
    os.symlink("/tmp", os.path.join(home, "tmp-dir"))
    r = agent.put("etc-dir/evil", b"x")
    assert r.error_code == "invalid_request"
    assert os.listdir(os.path.join(root, "etc")) == []
    assert not os.path.exists("/etc/evil")
    assert agent.call(FILE_MKDIR, {"path": "etc-dir/sub/dir"}).error_code == "invalid_request"
    assert os.listdir(os.path.join(root, "etc")) == []
    # a symlink that stays inside the writable area is fine
    assert agent.put("tmp-dir/ok.txt", b"ok").type == OK
    assert open(os.path.join(root, "tmp/ok.txt"), "rb").read() == b"ok"


def test_put_replaces_leaf_symlink_not_target(agent, root):
    os.mkdir(os.path.join(root, "etc"))
    target = os.path.join(root, "etc/passwd")
    with open(target, "w") as f:
        f.write("sandbox\n")
    os.symlink("/etc/passwd", os.path.join(root, "tmp/link"))
    assert agent.put("/tmp/link", b"new").type == OK
    assert open(target).read() == "sandbox\n"
    assert not os.path.islink(os.path.join(root, "tmp/link"))


def test_list_sorted(agent, root):
    for name in ("b.txt", "a.txt", "C.txt"):
        agent.put("/tmp/list/" + name, name.encode())
    agent.call(FILE_MKDIR, {"path": "/tmp/list/zdir"})
    os.symlink("a.txt", os.path.join(root, "tmp/list/link"))
    r = agent.call(FILE_LIST, {"path": "/tmp/list"})
    assert r.type == OK and r.body["path"] == "/tmp/list"
    entries = r.body["entries"]
    assert [e["name"] for e in entries] == ["C.txt", "a.txt", "b.txt", "link", "zdir"]
    types = {e["name"]: e["type"] for e in entries}
    assert types == {"C.txt": "file", "a.txt": "file", "b.txt": "file", "link": "symlink", "zdir": "dir"}
    a = [e for e in entries if e["name"] == "a.txt"][0]
    assert a["size"] == 5 and a["mode"] == 0o644 and abs(a["mtime"] - time.time()) < 60
    assert agent.call(FILE_LIST, {"path": "/tmp/list/a.txt"}).error_code == "not_directory"
    assert agent.call(FILE_LIST, {"path": "/tmp/nope"}).error_code == "not_found"


def test_mkdir_and_delete(agent, root):
    assert agent.call(FILE_MKDIR, {"path": "/data/x/y/z"}).type == OK
    assert os.path.isdir(os.path.join(root, "data/x/y/z"))
    st = os.stat(os.path.join(root, "data/x/y/z"))
    assert (st.st_uid, st.st_gid) == (USER_UID, USER_UID)
    assert agent.call(FILE_MKDIR, {"path": "/data/x/y/z"}).type == OK  # idempotent
    agent.put("/data/x/y/file", b"1")
    assert agent.call(FILE_MKDIR, {"path": "/data/x/y/file"}).error_code == "exists"
    assert agent.put("/data/x/y", b"1").error_code == "is_directory"
    r = agent.call(FILE_DELETE, {"path": "/data/x"})
    assert r.error_code == "invalid_request" and "not empty" in r.body["message"]
    assert agent.call(FILE_DELETE, {"path": "/data/x/y/file"}).type == OK
    assert not os.path.exists(os.path.join(root, "data/x/y/file"))
    # recursive delete removes a symlink, not what it points to
    keep = os.path.join(root, "tmp/keep")
    os.mkdir(keep)
    open(os.path.join(keep, "f"), "w").close()
    os.symlink("/tmp/keep", os.path.join(root, "data/x/y/z/link"))
    assert agent.call(FILE_DELETE, {"path": "/data/x", "recursive": True}).type == OK
    assert not os.path.exists(os.path.join(root, "data/x"))
    assert os.path.exists(os.path.join(keep, "f"))
    assert agent.call(FILE_DELETE, {"path": "/data/x"}).error_code == "not_found"
    assert agent.call(FILE_DELETE, {"path": "/data"}).error_code == "invalid_request"
    assert os.path.isdir(os.path.join(root, "data"))


def test_file_ops_while_code_runs(agent, root):
    req = agent.start(RUN_CODE, {"code": "import time; time.sleep(0.5); print('slow')", "language": "python"})
    assert agent.put("/tmp/during.txt", b"during").type == OK
    assert agent.get("/tmp/during.txt").data == b"during"
    assert agent.collect(req).stdout == b"slow\n"


def _data_bytes(frames):
    return sum(len(f.payload) for f in frames if f.type == FILE_DATA)


def test_download_waits_for_acks_and_the_loop_keeps_serving(agent, root):
    """FILE_GET sends at most GET_WINDOW unacknowledged bytes: a daemon whose
    client stalls holds the download, not the agent's loop."""
    data = os.urandom(8 * 1024 * 1024 + 4321)
    with open(os.path.join(root, "data/big.bin"), "wb") as f:
        f.write(data)
    gets = [agent.start(FILE_GET, {"path": "/data/big.bin"}) for _ in range(2)]
    run = agent.start(RUN_CODE, {"code": "print(6 * 7)", "language": "python"})
    r = agent.collect(run, timeout=20)
    assert r.result["error"] is None and r.stdout == b"42\n", r.frames
    held = {}
    for g in gets:
        frames = agent.frames_for(g, 1.0)
        assert frames[0].type == OK and not frames[0].end, frames[:1]
        assert 0 < _data_bytes(frames) <= GET_WINDOW
        assert not any(f.end for f in frames), "the download ended without acks"
        held[g] = frames
    # acks nobody asked for are ignored, and the agent keeps answering
    agent.ack(9999, 1 << 20)
    agent.send(FILE_ACK, gets[0], b"not json")
    assert agent.exec(argv=["echo", "ok"]).stdout == b"ok\n"
    for g in gets:
        agent.ack(g, _data_bytes(held[g]))
        rest = agent.collect(g, timeout=30, ack=True)
        got = b"".join(f.payload for f in held[g] + rest.frames if f.type == FILE_DATA)
        assert got == data
        assert rest.frames[-1].type == FILE_DATA and rest.frames[-1].end
    agent.ack(gets[0], 1 << 20)  # for a finished download: ignored
    assert agent.call(RUN_CODE, {"code": "1"}).type == RESULT


def test_download_cancelled_by_daemon_error(agent, root):
    with open(os.path.join(root, "data/big.bin"), "wb") as f:
        f.write(os.urandom(4 * 1024 * 1024))
    g = agent.start(FILE_GET, {"path": "/data/big.bin"})
    frames = agent.frames_for(g, 0.5)
    assert 0 < _data_bytes(frames) <= GET_WINDOW
    agent.send(ERROR, g, {"code": "internal", "message": "client gone"}, F_END)
    agent.ack(g, _data_bytes(frames))  # too late: the request is forgotten
    assert agent.frames_for(g, 0.5) == []
    assert agent.get("/data/big.bin").data == open(os.path.join(root, "data/big.bin"), "rb").read()


def test_user_code_sees_uploaded_file_as_owner(agent, root):
    agent.put("/tmp/mine.txt", b"hello")
    # test mode: user code sees the host's /, so check via the root path
    path = os.path.join(root, "tmp/mine.txt")
    r = agent.exec(argv=["sh", "-c", "echo more >> %s && cat %s" % (path, path)])
    assert r.result["exit_code"] == 0 and r.stdout == b"hellomore\n"


def test_closed_std_streams_are_repaired(agent):
    """Closing sys.stdout (or the underlying original) breaks only that call."""
    r = agent.py("import sys; sys.stdout.close()")
    assert r.result["error"] is None
    r = agent.py("print('back')")
    assert r.result["error"] is None and r.stdout == b"back\n", r.frames
    agent.py("import sys; sys.stderr.close(); sys.stdout = None")
    r = agent.py("import sys; print('out'); print('err', file=sys.stderr)")
    assert (r.stdout, r.stderr) == (b"out\n", b"err\n"), r.frames
