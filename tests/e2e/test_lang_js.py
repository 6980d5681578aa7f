"""language="javascript" (issue 14): a persistent Node context per sandbox
behind run_code, speaking the Python runner's protocol
(runner/airlock_runner.mjs, src/agent/lang.c); and the 400 for a language
that does not exist. Real daemon and sandboxes, through the Python SDK."""

import shutil

import pytest

from airlock import InvalidRequest

pytestmark = pytest.mark.skipif(not shutil.which("node"), reason="nodejs is not installed on this host")


def main(r):
    mains = [x for x in r.results if x.is_main_result]
    assert len(mains) <= 1, r.results
    return mains[0] if mains else None


@pytest.fixture(scope="module")
def js(daemon):
    s = daemon.sandbox(timeout=3600)
    yield s
    s.close()


def test_state_across_calls_and_console(js):
    a = js.run_code("let x = 41; const f = (n) => n * 2; function g() { return 'g' }", language="javascript")
    assert a.error is None and a.exit_code == 0 and a.results == [], a
    b = js.run_code('console.log("out"); console.error("err"); f(x + 1)', language="javascript")
    assert b.error is None, b
    assert b.stdout == "out\n" and b.stderr == "err\n"
    assert main(b).text == "84" and main(b).raw["application/json"] == 84
    assert js.run_code("g()", language="javascript").text == "'g'"
    assert b.execution_count == a.execution_count + 1


def test_top_level_await_keeps_declarations(js):
    r = js.run_code("const v = await new Promise(r => setTimeout(() => r(5), 20)); v * 2", language="javascript")
    assert r.error is None and r.text == "10", r
    assert js.run_code("v + 1", language="javascript").text == "6"


def test_object_result_is_json_too(js):
    r = js.run_code("({a: 1, b: [1, 2], s: 'x'})", language="javascript")
    m = main(r)
    assert m.raw["application/json"] == {"a": 1, "b": [1, 2], "s": "x"}
    assert "a: 1" in m.text


def test_errors_are_structured_and_context_survives(js):
    js.run_code("var kept = 'yes'", language="javascript")
    r = js.run_code("function inner() { throw new TypeError('bad arg') }\nfunction outer() { inner() }\nouter()",
                    language="javascript")
    assert r.exit_code == 1
    assert r.error.name == "TypeError" and r.error.value == "bad arg"
    assert "at inner" in r.error.traceback and "at outer" in r.error.traceback
    assert "airlock_runner" not in r.error.traceback and "node:" not in r.error.traceback
    assert "bad arg" in r.stderr
    s = js.run_code("let = = 1", language="javascript")
    assert s.error.name == "SyntaxError"
    rej = js.run_code("await Promise.reject(new RangeError('no'))", language="javascript")
    assert rej.error.name == "RangeError"
    assert js.run_code("kept", language="javascript").text == "'yes'"


def test_env_per_call(js):
    r = js.run_code("process.env.LANG14_X", language="javascript", envs={"LANG14_X": "v1"})
    assert r.text == "'v1'"
    assert js.run_code("process.env.LANG14_X ?? 'unset'", language="javascript").text == "'unset'"


def test_timeout_interrupts_a_busy_loop_and_keeps_state(js):
    js.run_code("var before = 3", language="javascript")
    r = js.run_code("while (true) {}", language="javascript", timeout=1)
    assert r.error.name == "TimeoutError", r
    assert r.raw["timed_out"] is True and r.raw["repl_restarted"] is False
    a = js.run_code("await new Promise(() => {})", language="javascript", timeout=1)
    assert a.error.name == "TimeoutError" and a.raw["repl_restarted"] is False
    assert js.run_code("before", language="javascript").text == "3"


def test_loop_after_await_is_killed_and_restarted(fresh):
    s = fresh()
    s.run_code("var w = 1", language="javascript")
    # after an await the loop runs outside breakOnSigint: only SIGKILL stops it
    r = s.run_code("await null; while (true) {}", language="javascript", timeout=1)
    assert r.error.name == "TimeoutError" and r.raw["repl_restarted"] is True, r
    assert s.run_code("typeof w", language="javascript").text == "'undefined'"


def test_output_cap(js):
    r = js.run_code("process.stdout.write('x'.repeat(12 << 20)); 'done'", language="javascript")
    assert r.error is None, r
    assert r.raw["stdout_truncated"] is True and len(r.stdout) <= 10 << 20, (len(r.stdout), r.raw["stdout_truncated"], r.stderr[:300])
    assert r.text == "'done'"


def test_subprocess_gets_no_control_channel(js):
    r = js.run_code("require('child_process').execSync('ls /proc/self/fd').toString()", language="javascript")
    fds = main(r).raw["application/json"].split()
    # 0-2 and ls's own directory fd; not the runner's pipes
    assert len(fds) <= 4, fds


def test_unknown_language_lists_the_available_ones(js):
    with pytest.raises(InvalidRequest) as e:
        js.run_code("1", language="cobol")
    msg = str(e.value)
    for lang in ("python", "bash", "r", "javascript"):
        assert lang in msg, msg
