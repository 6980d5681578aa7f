"""Background processes (issue 14, item 4): exec(background=True) returns a
handle at once; the process outlives the call that started it and is
listed, waited for, signalled, fed on stdin, and re-attached to with its
output replayed from a bounded buffer whose losses are said, never hidden."""

import json
import time

import pytest

import airlock
from e2e_support import wait_until
from test_errors import check_error

BUFFER = 1 << 20  # PROC_OUTPUT_BUFFER


def _events(daemon, sid, pid, query=""):
    st, _, body, _ = daemon.request("GET", "/v1/sandboxes/%s/processes/%d/output%s" % (sid, pid, query),
                                    timeout=60)
    assert st == 200, body
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_server_started_in_background_answers_a_later_call(fresh):
    s = fresh(timeout=300)
    s.exec(["sh", "-c", "echo served > /tmp/hello.txt"])
    h = s.exec("exec python3 -m http.server 8123 --bind 127.0.0.1", cwd="/tmp", background=True)
    assert isinstance(h, airlock.CommandHandle) and h.pid > 1
    assert h.info["state"] == "running"
    got = s.run_code(
        "import time, urllib.request\n"
        "for i in range(200):\n"
        "    try:\n"
        "        body = urllib.request.urlopen('http://127.0.0.1:8123/hello.txt', timeout=2).read()\n"
        "        break\n"
        "    except OSError:\n"
        "        time.sleep(0.05)\n"
        "print(body.decode().strip())\n", timeout=30)
    assert got.stdout.strip() == "served", got
    listed = s.processes.list()
    assert [p["pid"] for p in listed if p["state"] == "running"] == [h.pid], listed
    assert listed[0]["cmd"].startswith("exec python3") and listed[0]["cwd"] == "/tmp"
    # its pid is the one the sandbox sees
    assert s.exec(["cat", "/proc/%d/cmdline" % h.pid]).stdout.split("\0")[1:3] == ["-m", "http.server"]
    assert h.kill("SIGTERM")
    r = h.wait(timeout=30)
    assert r.exit_code == 128 + 15 and r.raw["killed_signal"] == 15, r.raw
    assert "GET /hello.txt" in r.stderr  # its access log, kept while nobody was attached
    assert s.processes.list(running_only=True) == []
    assert not h.kill()  # already gone: False, not an error


def test_stdin_write_and_close(sb):
    h = sb.exec(["cat"], background=True)
    h.send_stdin("hello ")
    h.send_stdin(b"world\n")
    h.close_stdin()
    r = h.wait(timeout=30)
    assert r.exit_code == 0 and r.stdout == "hello world\n", r.raw
    assert r.raw["output_complete"] is True


def test_reconnect_replays_what_nobody_read(daemon, sb):
    h = sb.exec("echo first; read x; echo second $x; echo err >&2", background=True)
    assert wait_until(lambda: h.refresh()["output"]["bytes"] >= 6, 20)
    again = sb.processes.connect(h.pid)
    assert again.info["state"] == "running" and again.info["stdin_open"] is True
    again.send_stdin("yes\n")
    r = again.wait(timeout=30)
    assert r.stdout == "first\nsecond yes\n" and r.stderr == "err\n", r.raw
    assert r.raw["output_complete"] is True
    # from a byte offset: only what came after it; offsets are in the events
    evs = _events(daemon, sb.id, h.pid, "?from=6")
    outs = [e for e in evs if e["type"] in ("stdout", "stderr")]
    assert outs[0]["offset"] == 6 and "".join(e["data"] for e in outs if e["type"] == "stdout") == "second yes\n"
    assert evs[-2]["type"] == "result" and evs[-1] == dict(evs[-1], type="exit", exit_code=0)
    # a second reader of the same finished process gets the same
    assert sb.processes.connect(h.pid).wait().stdout == "first\nsecond yes\n"


def test_overflow_is_reported_not_hidden(daemon, sb):
    total = 3 * BUFFER
    h = sb.exec("head -c %d /dev/zero | tr '\\0' a; echo END" % total, background=True)
    assert wait_until(lambda: h.refresh()["state"] == "exited", 60)
    info = h.info
    assert info["output"]["bytes"] == total + 4, info
    assert info["output"]["evicted"] > 0 and info["output"]["complete"] is False, info
    assert info["output"]["held"] <= BUFFER
    evs = _events(daemon, sb.id, h.pid)
    assert evs[0]["type"] == "dropped" and evs[0]["bytes"] == info["output"]["evicted"], evs[0]
    data = "".join(e["data"] for e in evs if e["type"] == "stdout")
    assert data.endswith("aEND\n"), data[-20:]
    assert len(data) + evs[0]["bytes"] == total + 4
    res = [e for e in evs if e["type"] == "result"][0]
    assert res["output_complete"] is False and res["exit_code"] == 0, res
    r = h.wait()
    assert r.output_complete is False and r.stdout.endswith("aEND\n")


def test_cap_on_background_processes(fresh):
    s = fresh(timeout=300)
    hs = [s.exec(["sleep", "300"], background=True) for _ in range(16)]
    with pytest.raises(airlock.AirlockError) as e:
        s.exec(["sleep", "300"], background=True)
    assert e.value.status == 409 and "limit 16" in e.value.message, e.value
    for h in hs:
        assert h.kill()
    for h in hs:
        assert h.wait(timeout=30).raw["killed_signal"] == 9
    # room again; exited ones stay listed (the last 16)
    h = s.exec(["true"], background=True)
    assert h.wait(timeout=30).exit_code == 0
    assert len(s.processes.list()) == 16


def _user_cmdlines(s):
    return s.run_code(
        "import os\n"
        "out = []\n"
        "for p in os.listdir('/proc'):\n"
        "    if p.isdigit():\n"
        "        try: out.append(open('/proc/%s/cmdline' % p, 'rb').read().replace(b'\\0', b' ').decode())\n"
        "        except OSError: pass\n"
        "print('\\n'.join(out))\n").stdout


def test_foreground_timeout_leaves_nothing_behind(fresh):
    s = fresh(timeout=300)
    r = s.exec("sleep 401 & setsid sleep 402 & (sleep 403 &) ; sleep 404", timeout=1)
    assert r.timed_out and r.exit_code == 124, r.raw
    left = _user_cmdlines(s)
    assert not any("sleep 40" in line for line in left.splitlines()), left
    # a background one with a timeout is ended by it too
    h = s.exec(["sleep", "405"], background=True, timeout=1)
    r = h.wait(timeout=30)
    assert r.timed_out and r.exit_code == 124, r.raw
    assert "sleep 405" not in _user_cmdlines(s)


def test_destroy_ends_them(daemon, fresh):
    s = fresh(timeout=300)
    h = s.exec(["sleep", "406"], background=True)
    ours = [p for p in daemon.descendants() if _cmd(p) == "sleep 406"]
    assert len(ours) == 1, ours
    s.close()
    assert wait_until(lambda: not any(_cmd(p) == "sleep 406" for p in daemon.descendants()), 30)
    with pytest.raises(airlock.AirlockError):
        h.refresh()


def _cmd(pid):
    try:
        return open("/proc/%d/cmdline" % pid, "rb").read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return None


def test_errors(daemon, sb, assert_alive):
    base = "/v1/sandboxes/%s" % sb.id
    msg = check_error(daemon.request("POST", base + "/exec", {"cmd": ["pwd"], "cwd": "nope/x", "background": True}),
                      400, "invalid_request")
    assert "/home/user/nope/x" in msg, msg
    msg = check_error(daemon.request("POST", base + "/exec", {"cmd": ["/no/such"], "background": True}),
                      400, "invalid_request")
    assert "/no/such" in msg, msg
    check_error(daemon.request("POST", base + "/exec", {"cmd": ["true"], "background": "yes"}), 400, "invalid_request")
    check_error(daemon.request("GET", base + "/processes/999999"), 404, "not_found")
    check_error(daemon.request("GET", base + "/processes/abc"), 400, "invalid_request")
    check_error(daemon.request("GET", base + "/processes?state=zombie"), 400, "invalid_request")
    h = sb.exec(["true"], background=True)
    h.wait(timeout=30)
    check_error(daemon.request("POST", base + "/processes/%d/signal" % h.pid, {"signal": "SIGTERM"}), 409, "exited")
    check_error(daemon.request("POST", base + "/processes/%d/stdin" % h.pid, {"data": "x"}), 409, "exited")
    h = sb.exec(["sleep", "30"], background=True)
    check_error(daemon.request("POST", base + "/processes/%d/signal" % h.pid, {"signal": "SIGNOPE"}),
                400, "invalid_request")
    daemon.request("POST", base + "/processes/%d/stdin" % h.pid, {"eof": True})
    check_error(daemon.request("POST", base + "/processes/%d/stdin" % h.pid, {"data": "x"}), 409, "stdin_closed")
    h.kill()
    assert h.wait(timeout=30).raw["killed_signal"] == 9
    assert_alive()


def test_another_key_sees_none_of_them(daemon, sb):
    h = sb.exec(["sleep", "30"], background=True)
    try:
        st, _, _, made = daemon.request("POST", "/v1/keys", {"name": "bg-intruder"})
        assert st in (200, 201), made
        other = made["key"]
        for method, path, body in (("GET", "/processes", None), ("GET", "/processes/%d" % h.pid, None),
                                   ("POST", "/processes/%d/signal" % h.pid, {"signal": 9}),
                                   ("POST", "/processes/%d/stdin" % h.pid, {"data": "x"}),
                                   ("GET", "/processes/%d/output" % h.pid, None)):
            st, _, _, j = daemon.request(method, "/v1/sandboxes/%s%s" % (sb.id, path), body, key=other)
            assert st == 404, (path, st, j)
        assert h.refresh()["state"] == "running"
    finally:
        h.kill()


# ---- pty -----------------------------------------------------------------------------------

def test_pty_is_a_terminal_and_sees_resize(sb):
    r = sb.exec("tty; stty size; python3 -c 'import sys; print(sys.stdin.isatty(), sys.stdout.isatty(), "
                "sys.stderr.isatty())'; echo to-err >&2", pty=(30, 100), timeout=30)
    lines = r.stdout.replace("\r\n", "\n").split("\n")
    assert r.exit_code == 0, r.raw
    assert lines[0].startswith("/dev/pts/") and lines[1] == "30 100" and lines[2] == "True True True", lines
    assert "to-err" in r.stdout and r.stderr == ""  # one terminal for both
    # without pty: pipes
    assert sb.exec(["python3", "-c", "import sys; print(sys.stdin.isatty())"]).stdout == "False\n"

    h = sb.exec("stty -echo; read a; stty size; read b; stty size; read c", pty=True, background=True)
    h.send_stdin("x\n")
    assert wait_until(lambda: "24 80" in _text(h), 20), _text(h)
    h.resize(50, 132)
    h.send_stdin("y\n")
    assert wait_until(lambda: "50 132" in _text(h), 20), _text(h)
    h.close_stdin()  # ^D: read c sees the end of input
    r = h.wait(timeout=30)
    assert r.exit_code == 1, r.raw  # read's status at EOF
    # a resize is a SIGWINCH to the terminal's foreground group
    w = sb.exec(["python3", "-c", "import os, signal, time\n"
                 "signal.signal(signal.SIGWINCH, lambda *a: print('winch', *os.get_terminal_size(), flush=True))\n"
                 "print('ready', flush=True)\ntime.sleep(60)\n"], pty=True, background=True)
    assert wait_until(lambda: "ready" in _text(w), 20), _text(w)
    w.resize(10, 20)
    assert wait_until(lambda: "winch 20 10" in _text(w), 20), _text(w)
    w.kill()


def _text(h):
    """What the process wrote so far: its output stream, read until it is
    quiet for a second (a running process's stream does not end)."""
    out = []
    try:
        for e in h._sb._http.stream_lines("GET", h._sb._path("/processes/%d/output" % h.pid), None, 1.0):
            if e.get("type") == "stdout":
                out.append(e["data"])
    except (OSError, airlock.AirlockError):
        pass
    return "".join(out)


def test_pty_errors(daemon, sb):
    base = "/v1/sandboxes/%s" % sb.id
    check_error(daemon.request("POST", base + "/exec", {"cmd": ["true"], "pty": "yes"}), 400, "invalid_request")
    check_error(daemon.request("POST", base + "/exec", {"cmd": ["true"], "pty": {"rows": 0}}), 400, "invalid_request")
    h = sb.exec(["sleep", "30"], background=True)
    check_error(daemon.request("POST", base + "/processes/%d/resize" % h.pid, {"rows": 10, "cols": 10}),
                409, "not_a_terminal")
    h.kill()
    h.wait(timeout=30)
    check_error(daemon.request("POST", base + "/processes/%d/resize" % h.pid, {"rows": 10, "cols": 10}), 409, "exited")


def test_audit_event_gets_the_exit(fresh):
    s = fresh(timeout=120)
    h = s.exec(["sh", "-c", "exit 7"], background=True)
    assert h.wait(timeout=30).exit_code == 7

    def ended():
        evs = [e["detail"] for e in s.logs() if e["action"] == "exec" and e["detail"].get("background")]
        return evs and evs[-1].get("completed") is True and evs[-1] or None
    d = wait_until(ended, 20) and ended()
    assert d["exit_code"] == 7 and d["pid"] == h.pid and d["started"] is True, d
    # a refused start is recorded as not completed, with why
    with pytest.raises(airlock.AirlockError):
        s.exec(["/no/such"], background=True)
    last = [e["detail"] for e in s.logs() if e["action"] == "exec"][-1]
    assert last["completed"] is False and "/no/such" in last["error"], last
