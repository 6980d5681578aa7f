"""airlock_runner.py - the persistent Python REPL inside an Airlock sandbox.

Started once per sandbox by airlock-agent (src/agent/repl.c) as uid 1000 with
no capabilities and a seccomp filter: exec'd as `python3 -B` (main()), or forked
by airlock-zygote from a pre-imported interpreter (zygote_main()). It runs every Python `run_code` call in
one namespace, so globals, imports and open files persist across calls.

Wire format with the agent (both directions: u32 little-endian length, then
that many bytes of UTF-8 JSON):

    fd 3 (agent -> runner)  {"code": str, "env": {str: str} | null,
                             "deadline_mono_ms": int (CLOCK_MONOTONIC)}
                            or {"reap": [pid, ...]} (no reply)
    fd 4 (runner -> agent)  {"exit_code": int, "error": null | {"name", "value",
                             "traceback"}, "results": [mime bundle, ...],
                             "restart": str (only when the runner exits next)}

stdout and stderr are ordinary pipes read by the agent, so output of
subprocesses is captured too. Before each result the runner flushes both, so
the agent, which drains the pipes before it sends RESULT, never mixes output
of two calls.

Interrupts: the agent sends SIGINT on timeout. It raises KeyboardInterrupt
only while user code runs; outside (reading a command, writing a result) it
is ignored, so a late interrupt cannot break the REPL's own bookkeeping.

A call that times out stops everything it started (docs/api.md). The agent
kills the processes (src/agent/tree.c) and tells us which of our children it
killed ({"reap": [...]}, right after the result), so they do not linger as
zombies; we stop the threads: each Python thread started during the call gets
SystemExit injected (PyThreadState_SetAsyncExc) until it ends, for at most
_THREAD_STOP_SECONDS. One that does not end (blocked in C code, or catching
SystemExit) cannot be stopped from outside, so the runner then exits and the
agent restarts it, saying so in the error. A call that ends normally leaves
its threads and processes running, as a Jupyter kernel does.

Standard library only, and nothing heavy imported at start: the first call
should not wait for the interpreter.
"""

import ast
import builtins
import json
import os
import signal
import sys
import types

# Where the agent put our pipes. They are moved to high numbers and marked
# close-on-exec at start, so user code that opens files gets the usual small
# numbers and subprocesses do not inherit the REPL's control channel.
_AGENT_CMD_FD = 3
_AGENT_RES_FD = 4
_HIGH_FD = 1000

# Size budget of one result message; the agent's RESULT frame is at most
# 1 MiB (docs/protocol.md), and output travels separately.
_RESULTS_BUDGET = 900_000
_TEXT_PLAIN_MAX = 200_000
_ERROR_TEXT_MAX = 64_000

_THREAD_STOP_SECONDS = 1.5  # within the agent's 2 s interrupt grace
_TIMEOUT_SLACK = 0.05  # the agent fires its timer at or just after the deadline
_RUNNER_EXIT_RESTART = 3

_RUNNER_FILE = None  # co_filename of this module's code: frames to hide from tracebacks


class _State:
    """Runner state that must survive calls but is not user-visible."""

    in_user_code = False
    call_count = 0
    to_reap = set()  # killed children that were not dead yet when we looked


def _on_sigint(signum, frame):
    if _State.in_user_code:
        raise KeyboardInterrupt


def _move_fd_high(fd):
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIGH_FD)
    os.close(fd)
    return new


def _read_exact(fd, n):
    chunks = []
    while n > 0:
        b = os.read(fd, n)
        if not b:
            return None
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def _read_command(fd):
    hdr = _read_exact(fd, 4)
    if hdr is None:
        return None
    body = _read_exact(fd, int.from_bytes(hdr, "little"))
    if body is None:
        return None
    return json.loads(body)


def _write_message(fd, obj):
    data = json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8", "replace")  # lone surrogates: jansson rejects them
    data = len(data).to_bytes(4, "little") + data
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _flush_output():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


def _cut(text, limit):
    if len(text) <= limit:
        return text
    return text[:limit] + "\n... [truncated %d characters]" % (len(text) - limit)


# ---- running code -------------------------------------------------------------


def _compile_cell(code, filename):
    """Compile so that a trailing expression is evaluated separately and its
    value returned, as in Jupyter. Top-level await is allowed."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree = ast.parse(code, filename=filename, mode="exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    body = compile(tree, filename, "exec", flags=flags)
    last = compile(last, filename, "eval", flags=flags) if last is not None else None
    return body, last


def _run_code_object(co, ns):
    value = eval(co, ns)
    if co.co_flags & 0x80:  # CO_COROUTINE: the cell used top-level await
        import asyncio

        value = asyncio.run(value)
    return value


def _run_cell(code, ns):
    _State.call_count += 1
    filename = "<cell-%d>" % _State.call_count
    import linecache

    # tracebacks can then show the user's source lines
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    body, last = _compile_cell(code, filename)
    _State.in_user_code = True
    try:
        _run_code_object(body, ns)
        if last is not None:
            return _run_code_object(last, ns)
        return None
    finally:
        _State.in_user_code = False


def _user_traceback(tb):
    """The traceback without the runner's own frames: the leading ones (the
    exec call) and the trailing one of the SIGINT handler that raised
    KeyboardInterrupt on a timeout."""
    import types

    frames = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename != _RUNNER_FILE:
            frames.append(tb)
        tb = tb.tb_next
    out = None
    for t in reversed(frames):
        out = types.TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


def _describe_exception(exc):
    import traceback

    tb = _user_traceback(exc.__traceback__)
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    try:
        value = str(exc)
    except Exception:
        value = "<unprintable %s>" % type(exc).__name__
    return {
        "name": type(exc).__name__,
        "value": _cut(value, _ERROR_TEXT_MAX),
        "traceback": _cut(text, _ERROR_TEXT_MAX),
    }, text


# ---- what a timed-out call leaves ---------------------------------------------


def _stop_new_threads(before):
    """Inject SystemExit into every Python thread not in `before` until it
    ends; returns the idents of those still running after the deadline. The
    exception is raised at the thread's next bytecode, so a thread blocked in
    C code (time.sleep(1000), a lock without timeout) does not see it."""
    import _thread
    import ctypes
    import time

    me = _thread.get_ident()

    def started():
        return [t for t in sys._current_frames() if t not in before and t != me]

    left = started()
    if not left:
        return left
    # A thread sees its exception when it next takes the GIL; with the
    # default 5 ms switch interval, 100 busy threads need seconds for that.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    try:
        deadline = time.monotonic() + _THREAD_STOP_SECONDS
        sent = {}
        while left and time.monotonic() < deadline:
            now = time.monotonic()
            for tid in left:
                # again only after a while: one that caught SystemExit gets
                # another, one on its way out is not disturbed in its cleanup
                if now - sent.get(tid, -1.0) >= 0.1:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(SystemExit))
                    sent[tid] = now
            time.sleep(0.005)  # let them run (and die)
            left = started()
    finally:
        sys.setswitchinterval(interval)
    return left


def _reap(pids, seconds=1.0):
    """Collect children the agent SIGKILLed; they die promptly, but not
    necessarily before we look. Those not dead in time are kept for the next
    command. A pid user code already waited for is simply gone (ECHILD)."""
    import time

    pending = set(pids) | _State.to_reap
    deadline = time.monotonic() + seconds
    while pending:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                pending.discard(pid)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.005)
    _State.to_reap = pending


# ---- rich results --------------------------------------------------------------

_REPR_METHODS = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("text/latex", "_repr_latex_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
)


def _b64(data):
    import base64

    return base64.b64encode(data).decode("ascii")


def _json_value(obj):
    """obj itself if it is a dict/list that is valid JSON, else None."""
    if not isinstance(obj, (dict, list)):
        return None
    try:
        json.dumps(obj, allow_nan=False)
    except Exception:
        return None
    return obj


def _mime_bundle(obj, budget):
    """Jupyter-style bundle of obj, kept within budget bytes (roughly)."""
    try:
        text = repr(obj)
    except Exception as e:
        text = "<repr failed: %s: %s>" % (type(e).__name__, e)
    bundle = {"text/plain": _cut(text, min(_TEXT_PLAIN_MAX, max(budget // 2, 1000)))}
    used = len(bundle["text/plain"])
    for mime, method in _REPR_METHODS:
        fn = getattr(obj, method, None)
        if fn is None or isinstance(obj, type):
            continue
        try:
            data = fn()
        except Exception:
            continue
        if isinstance(data, tuple):  # (data, metadata)
            data = data[0]
        if data is None:
            continue
        if isinstance(data, (bytes, bytearray)):
            data = _b64(bytes(data))
        if not isinstance(data, str):
            continue
        if used + len(data) > budget:
            bundle["truncated"] = True
            continue
        bundle[mime] = data
        used += len(data)
    value = _json_value(obj)
    if value is not None:
        size = len(json.dumps(value))
        if used + size <= budget:
            bundle["application/json"] = value
            used += size
        else:
            bundle["truncated"] = True
    return bundle, used


def _capture_figures(budget):
    """Every open matplotlib figure as a PNG result; figures are closed."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return [], 0
    import io

    out, used = [], 0
    for num in list(plt.get_fignums()):
        try:
            fig = plt.figure(num)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", bbox_inches="tight")
            data = _b64(buf.getvalue())
        except Exception as e:
            print("airlock: could not render figure %s: %s" % (num, e), file=sys.stderr)
            data = None
        finally:
            try:
                plt.close(num)
            except Exception:
                pass
        if data is None:
            continue
        if used + len(data) > budget:
            out.append({"text/plain": "<Figure %s: too large to return>" % num, "truncated": True})
            continue
        out.append({"image/png": data, "text/plain": "<Figure %s>" % num})
        used += len(data)
    return out, used


# ---- one call ------------------------------------------------------------------


def _apply_env(env):
    """Set the call's environment variables; returns what to restore."""
    saved = {}
    for k, v in (env or {}).items():
        saved[k] = os.environ.get(k)
        os.environ[k] = v
    return saved


def _restore_env(saved):
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _execute(cmd, ns):
    import time

    exit_code, error, value, restart = 0, None, None, None
    saved_env = _apply_env(cmd.get("env"))
    # cheap enough for every call: one dict of the (few) live threads
    threads_before = frozenset(sys._current_frames())
    deadline = cmd.get("deadline_mono_ms")
    try:
        value = _run_cell(cmd.get("code", ""), ns)
    except SystemExit as e:
        value = None
        if e.code is None:
            exit_code = 0
        elif isinstance(e.code, int):
            exit_code = e.code
        else:
            print(e.code, file=sys.stderr)
            exit_code = 1
    except BaseException as e:  # KeyboardInterrupt included: the REPL survives
        value = None
        error, text = _describe_exception(e)
        exit_code = 1
        try:
            sys.stderr.write(text)
        except Exception:
            pass
        # the agent's timeout interrupt (a SIGNAL request's SIGINT before the
        # deadline is the user's Ctrl-C: threads keep running, as in Jupyter)
        if isinstance(e, KeyboardInterrupt) and deadline and time.monotonic() >= deadline / 1000.0 - _TIMEOUT_SLACK:
            left = _stop_new_threads(threads_before)
            if left:
                restart = "%d thread%s it started did not stop" % (len(left), "" if len(left) == 1 else "s")
    finally:
        _restore_env(saved_env)
    if restart:
        return {"exit_code": exit_code, "error": error, "results": [], "restart": restart}

    results = []
    budget = _RESULTS_BUDGET
    try:
        figures, used = _capture_figures(budget)
        results.extend(figures)
        budget -= used
        if value is not None:
            bundle, used = _mime_bundle(value, budget)
            bundle["is_main_result"] = True
            results.append(bundle)
    except BaseException as e:  # a broken __repr__ must not take the REPL down
        print("airlock: could not build the result: %s: %s" % (type(e).__name__, e), file=sys.stderr)
    if value is not None:
        builtins._ = value  # as in the interactive interpreter
    return {"exit_code": exit_code, "error": error, "results": results}


def _make_namespace():
    """A real __main__ module, so pickle finds functions and classes defined
    in the REPL."""
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    return main.__dict__


def _repair_std_streams():
    """User code may close or replace sys.stdout/sys.stderr (or the
    originals); every later call would then fail. Like a fresh interpreter,
    each call starts with working streams on fds 1 and 2."""
    import io

    for name, fd in (("stdout", 1), ("stderr", 2)):
        original = getattr(sys, "__%s__" % name)
        if original is None or original.closed:
            original = io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                                        errors="backslashreplace", line_buffering=True)
            setattr(sys, "__%s__" % name, original)
        current = getattr(sys, name)
        if current is None or getattr(current, "closed", True):
            setattr(sys, name, original)


def zygote_main():
    """Entry of a REPL forked by airlock-zygote (src/zygote/spawn.c): the
    process is already confined exactly like an exec'd runner, with the same
    fds, and whatever the zygote's warm-up imported is in sys.modules."""
    # state the zygote shares with every child must not be shared: the
    # random module reseeds itself at fork, numpy's global generator not
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        try:
            np_random.seed()
        except Exception:  # a numpy without the legacy seed(): nothing shared to fix
            pass
    return main(forked=True)


def main(forked=False):
    global _RUNNER_FILE
    _RUNNER_FILE = main.__code__.co_filename
    cmd_fd = _move_fd_high(_AGENT_CMD_FD)
    res_fd = _move_fd_high(_AGENT_RES_FD)
    signal.signal(signal.SIGINT, _on_sigint)
    # output should stream while code runs, not arrive in 8 KiB blocks
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    # like `python -c`: modules in the working directory are importable,
    # the runner's own directory is not on the path (an embedded, forked
    # interpreter never had it there)
    if forked:
        sys.path.insert(0, "")
    else:
        sys.path[0] = ""
    ns = _make_namespace()
    while True:
        cmd = _read_command(cmd_fd)
        if cmd is None:
            return 0  # the agent closed the pipe: the sandbox is going away
        if "reap" in cmd or _State.to_reap:
            _reap(cmd.get("reap") or [])
            if "code" not in cmd:
                continue  # no reply
        _repair_std_streams()
        try:
            reply = _execute(cmd, ns)
        except BaseException as e:  # a bug here must still answer the agent
            reply = {"exit_code": 1, "error": {"name": "InternalError", "value": "%s: %s" % (type(e).__name__, e),
                                               "traceback": ""}, "results": []}
        _flush_output()
        try:
            _write_message(res_fd, reply)
        except ValueError:  # not JSON-encodable (NaN in application/json?): send the plain part
            reply["results"] = [{"text/plain": r.get("text/plain", "")} for r in reply["results"]]
            _write_message(res_fd, reply)
        if reply.get("restart"):
            # threads we could not stop: only the end of the process ends them
            os._exit(_RUNNER_EXIT_RESTART)


if __name__ == "__main__":
    sys.exit(main())
