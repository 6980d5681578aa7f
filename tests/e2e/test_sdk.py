"""The Python SDK's surface against a real daemon."""

import base64
import os
import time

import pytest

import airlock
from airlock import Sandbox


# ---- files -----------------------------------------------------------------------

def test_upload_bytes_str_and_download(sb):
    r = sb.upload(b"a,b\n1,2\n", "/data/t/bytes.csv")
    assert r["size"] == 8
    assert sb.download("/data/t/bytes.csv") == b"a,b\n1,2\n"
    sb.upload("héllo wörld\n", "/data/t/text.txt")
    assert sb.download("/data/t/text.txt") == "héllo wörld\n".encode()
    # relative paths are taken from /home/user
    sb.upload(b"rel", "rel.txt")
    assert sb.download("/home/user/rel.txt") == b"rel"
    # files written through the API are visible to code, and the reverse
    out = sb.run_code("print(open('/data/t/bytes.csv').read(), end='');"
                      "open('/tmp/from_code.bin','wb').write(bytes(range(256)))")
    assert out.error is None, out
    assert out.stdout == "a,b\n1,2\n"
    assert sb.download("/tmp/from_code.bin") == bytes(range(256))


def test_upload_path_3mb_binary_round_trip(sb, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    local = tmp_path / "blob.bin"
    local.write_bytes(data)
    r = sb.upload(local, "/data/blob.bin")
    assert r["size"] == len(data)
    assert sb.download("/data/blob.bin") == data
    out = sb.run_code("import hashlib; print(hashlib.sha256(open('/data/blob.bin','rb').read()).hexdigest())")
    import hashlib
    assert out.stdout.strip() == hashlib.sha256(data).hexdigest()
    # streamed download to a local file
    dest = tmp_path / "back.bin"
    assert sb.download("/data/blob.bin", dest) == len(data)
    assert dest.read_bytes() == data


def test_list_and_remove(sb):
    sb.upload(b"12345", "/data/ls/one.txt")
    sb.upload(b"", "/data/ls/sub/two.txt")
    entries = {e["name"]: e for e in sb.files.list("/data/ls")}
    assert set(entries) == {"one.txt", "sub"}
    assert entries["one.txt"]["type"] == "file"
    assert entries["one.txt"]["size"] == 5
    assert entries["sub"]["type"] == "dir"
    assert isinstance(entries["one.txt"]["mtime"], int)
    assert entries["one.txt"]["mode"] & 0o777 == 0o644

    sb.files.remove("/data/ls/one.txt")
    assert [e["name"] for e in sb.files.list("/data/ls")] == ["sub"]
    with pytest.raises(airlock.NotFound) as ei:
        sb.download("/data/ls/one.txt")
    assert ei.value.status == 404 and ei.value.code == "not_found"
    # recursive=False refuses a non-empty directory; the default takes it all
    with pytest.raises(airlock.InvalidRequest) as ei:
        sb.files.remove("/data/ls/sub", recursive=False)
    assert ei.value.status in (400, 409)
    assert sb.files.remove("/data/ls/sub") is True
    assert sb.files.list("/data/ls") == []
    with pytest.raises(airlock.NotFound):
        sb.files.list("/data/ls/nope")
    # aliases
    sb.files.write("/data/ls/alias.txt", b"x")
    assert sb.files.read("/data/ls/alias.txt") == b"x"
    assert sb.files.exists("/data/ls/alias.txt")
    assert not sb.files.exists("/data/ls/missing.txt")


# ---- run_code ---------------------------------------------------------------------

def test_globals_persist_and_last_expression(sb):
    assert sb.run_code("x = 41\nimport math").error is None
    r = sb.run_code("x + 1")
    assert r.text == "42"
    assert r.results[0].is_main_result is True
    assert r.stdout == ""
    assert r.exit_code == 0
    assert isinstance(r.duration_ms, int)
    assert sb.run_code("math.factorial(5)").text == "120"
    # a statement has no main result
    r = sb.run_code("y = 1")
    assert r.text is None and r.results == []
    assert "exit_code=0" in repr(r)


def test_stdout_stderr_and_env(sb):
    r = sb.run_code("import sys, os\nprint('out')\nprint('err', file=sys.stderr)\n"
                    "print(os.environ.get('AIRLOCK_E2E'))")
    assert r.stdout == "out\nyes\n"
    assert r.stderr == "err\n"
    assert r.stdout_truncated is False and r.stderr_truncated is False
    assert sb.info()["metadata"] == {"suite": "e2e"}


def test_pandas_dataframe_html(sb):
    r = sb.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})")
    assert r.error is None, r
    main = [x for x in r.results if x.is_main_result][0]
    assert "<table" in main.html
    assert "a" in main.text and "x" in main.text


def test_matplotlib_png(sb):
    r = sb.run_code(
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\nax.plot([1, 2, 3], [1, 4, 9])\nfig")
    assert r.error is None, r
    pngs = [x.png for x in r.results if x.png]
    assert len(pngs) >= 1, r.results
    raw = base64.b64decode(pngs[0])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(raw) > 1000


def test_exception_keeps_repl_alive(sb):
    sb.run_code("kept = 'still here'")
    r = sb.run_code("1/0")
    assert r.error is not None
    assert r.error.name == "ZeroDivisionError"
    assert r.error.value == "division by zero"
    assert "ZeroDivisionError" in r.error.traceback
    assert r.exit_code == 1
    assert sb.run_code("kept").text == "'still here'"


def test_system_exit_code(sb):
    sb.run_code("before_exit = 7")
    r = sb.run_code("import sys\nprint('bye')\nsys.exit(3)")
    assert r.exit_code == 3
    assert r.stdout == "bye\n"
    assert sb.run_code("before_exit * 6").text == "42"


def test_bash_language(sb):
    r = sb.run_code("nosuchcmd", language="bash")
    assert (r.exit_code, r.stderr) == (127, "bash: line 1: nosuchcmd: command not found\n"), r
    # past one argv string's 128 KiB the script travels in a memfd
    big = "x=1\n" * 40000 + "echo big-done"
    assert len(big) > 128 * 1024
    assert sb.run_code(big, language="bash").stdout == "big-done\n"
    r = sb.run_code("echo $((6*7)); echo oops >&2; exit 5", language="bash")
    assert r.stdout == "42\n"
    assert r.stderr == "oops\n"
    assert r.exit_code == 5
    assert r.results == []
    # bash is a fresh process: no state carried over
    sb.run_code("export ONLY_HERE=1", language="bash")
    assert sb.run_code("echo \"[$ONLY_HERE]\"", language="bash").stdout == "[]\n"


# ---- exec -------------------------------------------------------------------------

def test_exec_argv_shell_env_cwd_stdin(sb):
    r = sb.exec(["echo", "hello", "two words"])
    assert (r.stdout, r.exit_code) == ("hello two words\n", 0)
    r = sb.exec("echo $((1+2)); echo e >&2; exit 7")
    assert (r.stdout, r.stderr, r.exit_code) == ("3\n", "e\n", 7)
    r = sb.exec(["sh", "-c", "echo $FOO-$AIRLOCK_E2E"], env={"FOO": "bar"})
    assert r.stdout == "bar-yes\n"
    r = sb.exec(["pwd"], cwd="/tmp")
    assert r.stdout == "/tmp\n"
    assert sb.exec(["pwd"]).stdout == "/home/user\n"
    r = sb.exec(["cat"], stdin="line1\nline2")
    assert r.stdout == "line1\nline2"
    r = sb.exec(["id", "-u"])
    assert r.stdout == "1000\n"
    r = sb.exec(["false"])
    assert r.exit_code == 1
    r = sb.exec(["sh", "-c", "kill -9 $$"])
    assert r.exit_code == 137


def test_exec_unknown_program(sb):
    r = None
    try:
        r = sb.exec(["definitely-not-a-program-xyz"])
    except airlock.InvalidRequest as e:
        assert e.status in (400, 404)
    else:
        assert r.exit_code == 127, r


# ---- streaming ----------------------------------------------------------------------

def test_run_code_stream_order_and_timing(sb):
    t0 = time.monotonic()
    events = []
    for ev in sb.run_code_stream("import time\nprint('a', flush=True)\ntime.sleep(0.8)\n"
                                 "print('b', flush=True)\n6*7"):
        events.append((time.monotonic() - t0, ev))
    types = [e["type"] for _, e in events]
    assert types[-2:] == ["result", "exit"], types
    assert set(types[:-2]) == {"stdout"}, types
    assert "".join(e["data"] for _, e in events if e["type"] == "stdout") == "a\nb\n"
    seqs = [e["seq"] for _, e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    first_out = events[0][0]
    result_at = events[-2][0]
    # 'a' arrived while the code was still sleeping
    assert result_at - first_out >= 0.5, events
    res = events[-2][1]
    assert res["error"] is None
    assert [r["text/plain"] for r in res["results"] if r.get("is_main_result")] == ["42"]
    assert events[-1][1]["exit_code"] == 0
    # the connection is reusable afterwards
    assert sb.run_code("1+1").text == "2"


def test_run_code_stream_abandoned(sb):
    it = sb.run_code_stream("for i in range(3): print(i, flush=True)")
    first = next(it)
    assert first["type"] == "stdout"
    it.close()
    # the abandoned call may still be finishing when the next one arrives
    # (409 busy is the documented answer then): the sandbox must come back
    deadline = time.monotonic() + 10
    while True:
        try:
            assert sb.run_code("2+2").text == "4"
            break
        except airlock.AirlockError as e:
            if getattr(e, "code", None) != "busy" or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


# ---- lifecycle through the SDK --------------------------------------------------------

def test_list_and_connect(daemon, sb):
    ids = [s["id"] for s in Sandbox.list()]
    assert sb.id in ids
    info = [s for s in Sandbox.list() if s["id"] == sb.id][0]
    assert info["state"] == "running" and info["region"] == "eu"
    assert info.template == "host"
    sb.run_code("shared_value = 99")
    other = Sandbox.connect(sb.id)
    assert other.id == sb.id
    assert other.run_code("shared_value").text == "99"
    # dropping the connected handle does not destroy the sandbox
    other._http.close()
    assert sb.run_code("shared_value").text == "99"


def test_set_timeout(fresh):
    s = fresh(timeout=60)
    before = s.info()
    assert before["timeout_s"] == 60
    after = s.set_timeout(600)
    assert after["timeout_s"] == 600
    assert after["expires_at"] > before["expires_at"]


def test_context_manager_destroys(daemon):
    with Sandbox() as s:
        sid = s.id
        assert s.run_code("1").text == "1"
    assert sid not in [x["id"] for x in Sandbox.list()]
    st, _, _, body = daemon.request("GET", "/v1/sandboxes/" + sid)
    assert st == 200
    assert body["state"] == "destroyed" and body["destroy_reason"] == "deleted"
    with pytest.raises(airlock.NotFound):
        Sandbox.connect(sid)
    s.close()  # idempotent


def test_context_manager_destroys_on_exception(daemon):
    with pytest.raises(RuntimeError):
        with Sandbox() as s:
            sid = s.id
            raise RuntimeError("boom")
    assert daemon.request("GET", "/v1/sandboxes/" + sid)[3]["state"] == "destroyed"


def test_unix_socket_url(daemon):
    with Sandbox(base_url=daemon.unix_url) as s:
        assert s.run_code("'via unix'").text == "'via unix'"
        s.upload(b"u", "/tmp/u")
        assert s.download("/tmp/u") == b"u"


def test_unreachable_daemon_is_typed():
    with pytest.raises(airlock.AirlockConnectionError) as ei:
        Sandbox(base_url="http://127.0.0.1:1", api_key="ak_x")
    assert isinstance(ei.value, airlock.AirlockError)
    assert isinstance(ei.value, ConnectionError)


def test_keep_alive_is_used(sb):
    # many small calls over one connection stay fast
    t0 = time.monotonic()
    for i in range(30):
        assert sb.run_code(str(i)).text == str(i)
    per_call = (time.monotonic() - t0) / 30
    assert per_call < 0.2, per_call


def test_invalid_utf8_output_is_replaced(sb):
    r = sb.run_code("import sys\nsys.stdout.flush()\nsys.stdout.buffer.write(b'ok \\xff\\xfe end\\n')\n"
                    "sys.stdout.buffer.flush()")
    assert r.stdout == "ok \ufffd\ufffd end\n", repr(r.stdout)
    r = sb.exec(["printf", "\\303\\251 \\303"])  # a valid é, then a cut-off sequence
    assert r.stdout == "\u00e9 \ufffd", repr(r.stdout)


def test_audit_log_has_no_contents(daemon, fresh):
    import secrets
    marker = secrets.token_hex(16)
    s = fresh()
    s.run_code("secret = %r" % marker)
    s.exec(["cat"], stdin=marker)
    s.upload(marker.encode(), "/tmp/m")
    s.download("/tmp/m")
    events = s.logs()
    actions = [e["action"] for e in events]
    assert actions[0] == "create"
    for a in ("code", "exec", "upload", "download"):
        assert a in actions, actions
    assert all(e["ts"].endswith("Z") for e in events)
    import json
    assert marker not in json.dumps(events)
    assert marker not in daemon.log_text()


def test_host_template_has_the_data_stack(sb):
    """The default template's promise (Makefile TEMPLATE_PKGS): the usual
    data-analysis libraries import inside a sealed sandbox, no pip needed."""
    r = sb.run_code("import pandas, numpy, matplotlib, scipy, openpyxl, jinja2, IPython, PIL\n"
                    "import scipy.stats\n"
                    "float(scipy.stats.norm.cdf(0))")
    assert r.error is None, r
    assert r.text == "0.5"
