"""Code contexts (issue 14, item 2): independent REPLs in one sandbox, each with
its own globals, the same files and user, the sandbox's memory shared. Real
daemon, sandboxes and runners (forked from the zygote), through the Python SDK
and the HTTP API."""

import shutil
import threading

import pytest

import airlock
from airlock import CodeContext

MAX_CONTEXTS = 8  # src/agent/agent.h AGENT_MAX_CONTEXTS, docs/api.md


def _ids(s):
    return [c.id for c in s.list_code_contexts()]


def test_independent_globals_default_untouched(fresh):
    s = fresh()
    s.run_code("x = 'default'")
    a = s.create_code_context()
    b = s.create_code_context(language="python", cwd="/tmp")
    assert isinstance(a, CodeContext) and a.language == "python" and a.cwd == "/home/user"
    assert b.cwd == "/tmp" and a.id != b.id and "default" not in (a.id, b.id)
    assert _ids(s) == ["default", a.id, b.id]
    assert s.list_code_contexts()[0].default

    assert s.run_code("x", context=a).error.name == "NameError"
    s.run_code("x = 'a'", context=a)
    s.run_code("x = 'b'", context=b.id)  # an id works too
    assert s.run_code("x", context=a).text == "'a'"
    assert s.run_code("import os; (x, os.getcwd())", context=b).text == "('b', '/tmp')"
    assert s.run_code("x").text == "'default'"
    assert s.run_code("x", context="default").text == "'default'"
    # execution counts are per REPL
    assert s.run_code("1", context=a).execution_count == 4

    # the same sandbox: files and the user are shared
    s.run_code("open('/tmp/shared.txt', 'w').write('from a')", context=a)
    assert s.run_code("open('/tmp/shared.txt').read()").text == "'from a'"
    assert s.run_code("import os; os.getuid()", context=b).text == "1000"
    # processes: a context's runner is another process of the same sandbox
    pids = {s.run_code("import os; os.getpid()", context=c).text for c in ("default", a.id, b.id)}
    assert len(pids) == 3


def test_restart_one_leaves_the_others(fresh):
    s = fresh()
    s.run_code("keep = 1")
    a = s.create_code_context()
    b = s.create_code_context()
    s.run_code("v = 'a'", context=a)
    s.run_code("v = 'b'", context=b)
    again = s.restart_code_context(a)
    assert again.id == a.id and _ids(s) == ["default", a.id, b.id]
    assert s.run_code("v", context=a).error.name == "NameError"
    assert s.run_code("v", context=b).text == "'b'"
    assert s.run_code("keep").text == "1"
    # the default context can be restarted too, and then only it forgets
    s.restart_code_context("default")
    assert s.run_code("keep").error.name == "NameError"
    assert s.run_code("v", context=b).text == "'b'"


def test_remove(fresh):
    s = fresh()
    a = s.create_code_context()
    s.run_code("import os; pid = os.getpid()", context=a)
    pid = int(s.run_code("pid", context=a).text)
    s.remove_code_context(a)
    assert _ids(s) == ["default"]
    with pytest.raises(airlock.NotFound):
        s.run_code("1", context=a)
    with pytest.raises(airlock.NotFound):
        s.remove_code_context(a)
    # its runner is gone from the sandbox
    out = s.exec(["sh", "-c", "test -e /proc/%d && echo alive || echo gone" % pid]).stdout
    assert out == "gone\n"
    with pytest.raises(airlock.InvalidRequest, match="default context cannot be removed"):
        s.remove_code_context("default")


def test_cap(fresh):
    s = fresh()
    made = [s.create_code_context() for _ in range(MAX_CONTEXTS - 1)]
    with pytest.raises(airlock.QuotaExceeded, match="at most %d code contexts" % MAX_CONTEXTS):
        s.create_code_context()
    s.remove_code_context(made[0])
    made[0] = s.create_code_context()  # a freed slot is usable again
    for i, c in enumerate(made):
        s.run_code("n = %d" % i, context=c)
    assert [s.run_code("n", context=c).text for c in made] == [str(i) for i in range(len(made))]


def test_timeout_in_one_leaves_another(fresh):
    s = fresh()
    a = s.create_code_context()
    b = s.create_code_context()
    s.run_code("state = 'a'", context=a)
    s.run_code("state = 'b'", context=b)
    r = s.run_code("while True: pass", context=a, timeout=1)
    assert r.error.name == "TimeoutError", r.error
    assert s.run_code("state", context=a).text == "'a'"  # interrupted, state kept
    assert s.run_code("state", context=b).text == "'b'"
    assert s.run_code("state").error.name == "NameError"


def test_contexts_run_concurrently(fresh):
    """A call in one context does not wait for a call in another: a waits for
    a file that only b's call creates (serialised, a would time out)."""
    s = fresh()
    a = s.create_code_context()
    b = s.create_code_context()
    out = {}

    def wait_in_a():
        out["a"] = s.run_code("import os, time\nwhile not os.path.exists('/tmp/go'): time.sleep(0.01)\n'went'",
                              context=a, timeout=60)

    t = threading.Thread(target=wait_in_a)
    t.start()
    r = s.run_code("open('/tmp/go', 'w').close(); 'made'", context=b, timeout=60)
    t.join(90)
    assert r.text == "'made'"
    assert out["a"].error is None and out["a"].text == "'went'", out["a"]
    # the same context is still one call at a time
    assert s.run_code("1", context=a).text == "1"


def test_a_timeout_spares_what_another_context_started(fresh):
    """A timed-out call kills the processes it started, also detached ones the
    agent adopted (tree.c tells them by start time). A process another context
    detached meanwhile started in that window too: it is not the timed-out
    call's and must survive (src/agent/repl.c: then only the timed-out
    runner's session is taken)."""
    s = fresh()
    a = s.create_code_context()
    b = s.create_code_context()
    out = {}

    def long_call():
        out["r"] = s.run_code("import subprocess, time\nopen('/tmp/a-started', 'w').close()\n"
                              "subprocess.Popen(['sh', '-c', 'sleep 600 & echo $! > /tmp/apid'])\n"
                              "time.sleep(600)", context=a, timeout=10)

    t = threading.Thread(target=long_call)
    t.start()
    s.run_code("import os, time\nwhile not os.path.exists('/tmp/a-started'): time.sleep(0.01)", timeout=60)
    # b detaches a process (its sh exits: the sleep is an orphan of the agent's)
    r = s.run_code("import subprocess\nsubprocess.run(['sh', '-c', 'setsid sleep 600 & echo $! > /tmp/bpid'])",
                   context=b)
    assert r.error is None, r.error
    t.join(120)
    assert out["r"].error.name == "TimeoutError", out["r"].error
    alive = s.exec(["sh", "-c", "for f in /tmp/apid /tmp/bpid; do kill -0 $(cat $f) 2>/dev/null && echo alive || echo gone; done"])
    assert alive.stdout == "gone\nalive\n", alive  # a's is killed, b's is not


def test_restart_while_running_ends_that_call(fresh):
    s = fresh()
    a = s.create_code_context()
    s.run_code("keep = 'me'")
    out = {}

    def long_call():
        out["r"] = s.run_code("import time\nopen('/tmp/started', 'w').close()\ntime.sleep(60)", context=a,
                              timeout=120)

    t = threading.Thread(target=long_call)
    t.start()
    # not timed: wait until the call is surely running
    s.run_code("import os, time\nwhile not os.path.exists('/tmp/started'): time.sleep(0.01)", timeout=60)
    s.restart_code_context(a)
    t.join(60)
    r = out["r"]
    assert r.error.name == "ContextRestarted", r.error
    assert r.repl_restarted
    assert s.run_code("1 + 1", context=a).text == "2"
    assert s.run_code("keep").text == "'me'"


def test_crash_and_oom_in_one_leave_another(fresh):
    s = fresh(memory_mb=256)
    a = s.create_code_context()
    b = s.create_code_context()
    s.run_code("keep = 'b'", context=b)
    s.run_code("keep = 'default'")
    # a crash: the runner killed by a signal
    r = s.run_code("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", context=a)
    assert r.error.name == "ProcessKilled" and r.repl_restarted, r.error
    assert s.run_code("1", context=a).text == "1"  # a fresh runner in the same context
    # an OOM kill: the contexts' memory counts toward the one sandbox limit,
    # and the OOM killer takes the hog (the biggest), not its neighbours
    r = s.run_code("chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))\n", context=a, timeout=60)
    assert r.error.name == "OutOfMemory", r.error
    assert "256" in r.error.value and "Python process" in r.error.value  # named by the context (RESULT language)
    assert s.run_code("keep", context=b).text == "'b'"
    assert s.run_code("keep").text == "'default'"
    assert s.run_code("'fresh'", context=a).text == "'fresh'"


def test_errors(daemon, fresh):
    s = fresh()
    base = "/v1/sandboxes/%s" % s.id
    st, _, _, j = daemon.request("POST", base + "/code", {"code": "1", "context": "ctx-nope"})
    assert st == 404 and j["error"]["code"] == "not_found" and "ctx-nope" in j["error"]["message"]
    st, _, _, j = daemon.request("POST", base + "/contexts", {"language": "cobol"})
    assert st == 400 and j["error"]["code"] == "invalid_request" and "cobol" in j["error"]["message"]
    st, _, _, j = daemon.request("POST", base + "/contexts", {"language": 3})
    assert st == 400
    st, _, _, j = daemon.request("POST", base + "/contexts", {"cwd": "no/such/dir"})
    assert st == 404 and "/home/user/no/such/dir" in j["error"]["message"]
    st, _, _, j = daemon.request("POST", base + "/contexts", {"cwd": "/etc/hostname"})
    assert st == 400 and "Not a directory" in j["error"]["message"]
    for method, path in (("GET", "/contexts/ctx-nope"), ("DELETE", "/contexts/ctx-nope"),
                         ("POST", "/contexts/ctx-nope/restart")):
        st, _, _, j = daemon.request(method, base + path)
        assert st == 404 and j["error"]["code"] == "not_found", (method, path, j)
    # a context's language rules: bash with a python context is refused
    st, _, _, j = daemon.request("POST", base + "/code", {"code": "1", "context": "default", "language": "bash"})
    assert st == 400 and "runs python" in j["error"]["message"]
    # the HTTP shapes
    st, _, _, j = daemon.request("POST", base + "/contexts", {"cwd": "/tmp"})
    assert st == 201 and set(j) == {"id", "language", "cwd", "default"} and j["default"] is False
    cid = j["id"]
    st, _, _, j = daemon.request("GET", base + "/contexts/" + cid)
    assert st == 200 and j["id"] == cid and j["cwd"] == "/tmp"
    st, _, _, j = daemon.request("GET", base + "/contexts")
    assert st == 200 and [c["id"] for c in j["contexts"]] == ["default", cid] and j["max"] == MAX_CONTEXTS
    st, _, _, j = daemon.request("DELETE", base + "/contexts/" + cid)
    assert st == 200 and j == {"id": cid, "removed": True}
    # another key cannot see this sandbox's contexts
    st, _, _, _ = daemon.request("GET", base + "/contexts", key="ak_" + "0" * 32)
    assert st == 401


def test_a_context_belongs_to_its_sandbox(fresh):
    """Context ids are the agent's, per sandbox: another sandbox does not have it."""
    one, two = fresh(), fresh()
    c = one.create_code_context()
    one.run_code("secret = 's1'", context=c)
    with pytest.raises(airlock.NotFound):
        two.run_code("secret", context=c)
    with pytest.raises(airlock.NotFound):
        two.restart_code_context(c)
    with pytest.raises(airlock.NotFound):
        two.remove_code_context(c)
    assert [x.id for x in two.list_code_contexts()] == ["default"]
    assert one.run_code("secret", context=c).text == "'s1'"


def test_audit_events(fresh):
    s = fresh()
    c = s.create_code_context()
    s.restart_code_context(c)
    s.remove_code_context(c)
    acts = [e.get("action") for e in s.logs()]
    for a in ("context_create", "context_restart", "context_delete"):
        assert a in acts, acts


_HAS_R_AND_NODE = bool(shutil.which("Rscript")) and bool(shutil.which("node"))


@pytest.mark.skipif(not _HAS_R_AND_NODE, reason="r-base-core or nodejs is not installed on this host")
def test_r_and_javascript_contexts_keep_state_apart_from_python(daemon, fresh):
    """POST /contexts {"language":"r"|"javascript"}: contexts like Python's
    (src/agent/lang.c), each with its own state; the python default and the
    languages' own defaults are not touched."""
    s = fresh()
    s.run_code("x = 'py'")
    r1 = s.create_code_context(language="r")
    r2 = s.create_code_context(language="r")
    js = s.create_code_context(language="js")
    assert (r1.language, js.language) == ("r", "javascript")
    s.run_code("x <- 'r1'", context=r1)
    s.run_code("x <- 'r2'", context=r2)
    s.run_code("var x = 'js'; let n = 1", context=js)
    s.run_code("n += 41", context=js)
    assert s.run_code("x", context=r1).text == '[1] "r1"'
    assert s.run_code("x", context=r2).text == '[1] "r2"'
    assert s.run_code("x + ':' + n", context=js).text == "'js:42'"
    assert s.run_code("x").text == "'py'"
    # the language's default context (no context named) is another REPL
    assert s.run_code('exists("x")', language="r").text == "[1] FALSE"
    assert s.run_code("typeof x", language="javascript").text == "'undefined'"
    ids = _ids(s)
    assert ids[0] == "default" and {"default-r", "default-javascript", r1.id, r2.id, js.id} <= set(ids), ids
    # a context's language rules, and a timeout in one leaves another
    base = "/v1/sandboxes/%s" % s.id
    st, _, _, j = daemon.request("POST", base + "/code", {"code": "1", "context": r1.id, "language": "python"})
    assert st == 400 and "runs r" in j["error"]["message"], j
    t = s.run_code("repeat {}", context=r1, timeout=1)
    assert t.error.name == "TimeoutError", t
    assert s.run_code("x", context=r2).text == '[1] "r2"'
    assert s.run_code("x", context=r1).text == '[1] "r1"'
    # restart one: its state goes, the others' stays
    s.restart_code_context(js)
    assert s.run_code("typeof x", context=js).text == "'undefined'"
    assert s.run_code("x", context=r1).text == '[1] "r1"'
    # the languages' defaults count in the cap of 8; one removed is made again at its next call
    assert len(ids) == 6
    s.create_code_context()
    s.create_code_context()
    with pytest.raises(airlock.QuotaExceeded):
        s.create_code_context(language="r")
    s.remove_code_context("default-r")
    assert s.run_code("1 + 1", language="r").text == "[1] 2"
    assert "default-r" in _ids(s)
