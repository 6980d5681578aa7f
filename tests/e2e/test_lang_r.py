"""language="r" (issue 14): a persistent R session per sandbox behind
run_code, speaking the Python runner's protocol (runner/airlock_runner.R,
src/agent/lang.c). Real daemon and sandboxes, through the Python SDK."""

import base64
import shutil

import pytest

from e2e_support import Daemon, wait_until

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(not shutil.which("Rscript"), reason="r-base-core is not installed on this host")


def main(r):
    mains = [x for x in r.results if x.is_main_result]
    assert len(mains) <= 1, r.results
    return mains[0] if mains else None


@pytest.fixture(scope="module")
def rs(daemon):
    s = daemon.sandbox(timeout=3600)
    yield s
    s.close()


def test_state_across_calls_and_streams(rs):
    a = rs.run_code("x <- 41\nf <- function(n) n * 2", language="r")
    assert a.error is None and a.exit_code == 0, a
    b = rs.run_code('print("out"); cat("cat\\n"); message("msg"); f(x + 1)', language="r")
    assert b.error is None, b
    assert b.stdout == '[1] "out"\ncat\n', b.stdout
    assert "msg" in b.stderr
    assert main(b).text == "[1] 84"
    assert b.execution_count == a.execution_count + 1
    # the runner's own functions are not in the user's global environment
    assert rs.run_code("ls()", language="r").text == '[1] "f" "x"'


def test_data_frame_is_text_and_html(rs):
    r = rs.run_code('df <- data.frame(a = 1:3, b = c("x", "<y>", "z")); df', language="r")
    assert r.error is None, r
    m = main(r)
    assert "a   b" in m.text
    assert "<table" in m.html and "&lt;y&gt;" in m.html and "<th>b</th>" in m.html
    assert m.raw["application/json"] == [{"a": 1, "b": "x"}, {"a": 2, "b": "<y>"}, {"a": 3, "b": "z"}]


def test_plot_is_png(rs):
    r = rs.run_code("plot(1:10, main = 'ten'); hist(rnorm(50)); 1", language="r")
    assert r.error is None, r
    pngs = [x for x in r.results if x.png]
    assert len(pngs) == 2, r.results
    assert base64.b64decode(pngs[0].png).startswith(PNG_MAGIC)
    assert r.results[-1].is_main_result and r.results[-1].text == "[1] 1"
    # a cell that draws nothing has no image
    assert not [x for x in rs.run_code("2", language="r").results if x.png]


def test_error_is_structured_and_session_survives(rs):
    rs.run_code("y <- 7", language="r")
    r = rs.run_code('inner <- function() stop("boom")\nouter <- function() inner()\nouter()', language="r")
    assert r.exit_code == 1
    assert r.error.name == "simpleError" and r.error.value == "boom"
    assert "outer()" in r.error.traceback and "inner()" in r.error.traceback
    assert "boom" in r.stderr
    s = rs.run_code("(function(", language="r")
    assert s.error.name == "SyntaxError"
    assert rs.run_code("y", language="r").text == "[1] 7"


def test_env_per_call(rs):
    r = rs.run_code('Sys.getenv("LANG14_X")', language="r", envs={"LANG14_X": "v1"})
    assert r.text == '[1] "v1"'
    assert rs.run_code('Sys.getenv("LANG14_X", "unset")', language="r").text == '[1] "unset"'


def test_timeout_interrupts_and_keeps_state(rs):
    rs.run_code("kept <- 'yes'", language="r")
    r = rs.run_code("repeat {}", language="r", timeout=1)
    assert r.error.name == "TimeoutError", r
    assert r.raw["timed_out"] is True and r.raw["repl_restarted"] is False
    assert rs.run_code("kept", language="r").text == '[1] "yes"'


def test_infinite_loop_in_c_is_killed_and_restarted(fresh):
    """A cell that does not answer the interrupt is SIGKILLed after the grace
    period, the call's processes with it; the next call works."""
    s = fresh()
    s.run_code("z <- 1", language="r")
    # system() waits with SIGINT ignored in R (as system(3) does), and the
    # shell ignores it too: only the agent's SIGKILL ends the call
    r = s.run_code('system("trap \'\' INT; while :; do :; done")', language="r", timeout=1)
    assert r.error.name == "TimeoutError", r
    assert r.raw["timed_out"] is True
    assert s.run_code("1 + 1", language="r").text == "[1] 2"


def test_output_cap(rs):
    r = rs.run_code('cat(strrep("x", 12e6)); "done"', language="r")
    assert r.error is None, r
    assert r.raw["stdout_truncated"] is True
    assert len(r.stdout) <= 10 << 20
    assert main(r).text == '[1] "done"'


def test_process_death_restarts_session(fresh):
    s = fresh()
    s.run_code("w <- 5", language="r")
    r = s.run_code("tools::pskill(Sys.getpid(), tools::SIGKILL)", language="r")
    assert r.raw["repl_restarted"] is True and r.raw["killed_signal"] == 9, r
    after = s.run_code('exists("w")', language="r")
    assert after.text == "[1] FALSE"


def test_out_of_memory_is_reported_and_session_restarts(fresh):
    s = fresh()
    s.run_code("keep <- 1", language="r")
    # a single impossible allocation fails at once (RLIMIT_DATA), state kept
    big = s.run_code("numeric(1e12)", language="r")
    assert big.error is not None and "cannot allocate" in big.error.value, big
    assert s.run_code("keep", language="r").text == "[1] 1"
    # gradual growth: the cgroup's OOM killer, reported as such
    r = s.run_code("x <- list(); repeat x[[length(x) + 1]] <- runif(1e7)", language="r", timeout=120)
    assert r.error.name == "OutOfMemory", r
    assert "R process" in r.error.value
    assert r.raw["repl_restarted"] is True
    assert s.run_code('exists("keep")', language="r").text == "[1] FALSE"


COMMS = "import glob\nsorted({open(p).read().strip() for p in glob.glob('/proc/[0-9]*/comm')})"


def runner_comms(s):
    return eval(s.run_code(COMMS).text)


def test_runners_start_lazily_unless_warmed(daemon, tmp_path):
    # default: no R or node process until their first call
    s = daemon.sandbox(timeout=120)
    try:
        assert "R" not in runner_comms(s) and "node" not in runner_comms(s)
        s.run_code("1", language="r")
        assert "R" in runner_comms(s)
    finally:
        s.close()
    # --warm-languages: both start with the sandbox, before any call of theirs
    d = Daemon(tmp_path / "warm", extra_args=["--warm-languages", "r,javascript", "--pool-size", "0"]).start()
    try:
        w = d.sandbox(timeout=120)
        assert wait_until(lambda: {"R", "node"} <= set(runner_comms(w)), 60), runner_comms(w)
        r = w.run_code("1", language="r")
        assert r.text == "[1] 1" and r.raw["repl_restarted"] is False
        w.close()
    finally:
        d.stop()
