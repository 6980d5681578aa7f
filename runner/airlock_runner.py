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
                            or {"chdir": path} (a code context's cwd; no reply)
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
Except while the runner starts (importing IPython takes a while): the agent
signals only a call in progress, so an interrupt then is for the first call,
whose command waits in the pipe; its code raises KeyboardInterrupt at once.

A call that times out stops everything it started (docs/api.md). The agent
kills the processes (src/agent/tree.c) and tells us which of our children it
killed ({"reap": [...]}, right after the result), so they do not linger as
zombies; we stop the threads: each Python thread started during the call gets
SystemExit injected (PyThreadState_SetAsyncExc) until it ends, for at most
_THREAD_STOP_SECONDS. One that does not end (blocked in C code, or catching
SystemExit) cannot be stopped from outside, so the runner then exits and the
agent restarts it, saying so in the error. A call that ends normally leaves
its threads and processes running, as a Jupyter kernel does.

Engines: IPython's InteractiveShell when it is importable (python3-ipython;
the zygote imports it once, warm_up()), else the plain engine below (a
template built without IPython). The shell gives magics, `!cmd`, display()
and the _repr_*_ protocol; results are Jupyter's: display data in order, then
the value of the cell's last expression ("is_main_result"). Every reply
carries "execution_count" and "engine". Besides IPython, standard library
only, and nothing heavy imported at start: the first call should not wait
for the interpreter.
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
    starting = True  # until the first command is read
    interrupt_pending = False  # SIGINT while starting: for the first call's code
    call_count = 0
    to_reap = set()  # killed children that were not dead yet when we looked


def _on_sigint(signum, frame):
    if _State.in_user_code:
        raise KeyboardInterrupt
    if _State.starting:
        _State.interrupt_pending = True


def _enter_user_code():
    """From here on SIGINT raises; one that came while starting raises now.
    Call it inside the try whose finally sets in_user_code back."""
    _State.in_user_code = True
    if _State.interrupt_pending:
        _State.interrupt_pending = False
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
    try:
        _enter_user_code()
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


# ---- the IPython engine ---------------------------------------------------------

CHART_MIME = "application/vnd.airlock.chart+json"
_CHART_MAX_POINTS = 5_000  # per series: a UI redraws a chart, it does not need a data dump
_CHART_MAX_SERIES = 50  # per Axes
_PANDAS_JSON_MAX_CELLS = 200_000  # to_json of more costs seconds and is over budget anyway

_PIP_SEALED = ("%pip cannot install anything here: this sandbox is sealed (no network route to an index). "
               "Packages come from the sandbox's template (Debian packages, docs/templates.md); a wheel "
               "Debian does not package can be uploaded and installed offline: sandbox.upload(...) then "
               "sandbox.install_wheels([path]) in the Python SDK, or `airlock install-wheels ID PATH`.")


class _Engine:
    """The running engine: "ipython" (shell set) or "basic"."""

    name = "basic"
    shell = None
    displays = []  # result bundles of the display data published during the current call, in order
    budget = 0  # bytes of results the call's display data may still take
    dropped = 0  # display results beyond the budget
    main = None  # format dict of the last expression's value
    shown = set()  # id()s of figures already sent as a result during the call
    error_text = None  # the traceback as the shell formatted it


def warm_up():
    """Run by airlock-zygote after importing this module: import IPython and
    build the shell once, shared by every REPL it forks (each child has its
    own copy: its namespace, its execution count from 1). Returns the engine
    REPLs will get."""
    try:
        _Engine.shell = _start_ipython(_make_main_module())
        if _Engine.shell is not None:
            _prime_shell(_Engine.shell)
    except Exception:
        _Engine.shell = None
    _Engine.name = "basic" if _Engine.shell is None else "ipython"
    return _Engine.name


def _prime_shell(shell):
    """One cell with a value, run in the zygote: what the shell builds at its
    first cell (transformers, compiler flags, formatter lookups) is then built
    once, not in every REPL. Then the shell is as new: In [1], empty history."""
    shell.run_cell("0", store_history=True)
    shell.reset(new_session=False)  # a new session would start a history database
    shell.execution_count = 1
    _forget_shell_exit(shell)
    _Engine.displays, _Engine.main = [], None


def _import_ipython():
    import IPython.core.interactiveshell  # noqa: F401  (imports the IPython package, the bulk)
    import IPython.core.displayhook  # noqa: F401
    import IPython.core.displaypub  # noqa: F401
    import IPython.core.formatters  # noqa: F401
    import IPython.core.profiledir  # noqa: F401
    import IPython.display  # noqa: F401
    import IPython.utils.io as ipy_io

    # IPython keeps /dev/null open from its import on, for nobody: the REPL
    # would hold one fd more than the runner's own (and a zygote's child a
    # stale one). Opened when someone first uses it.
    if not isinstance(ipy_io.devnull, _LazyDevnull):
        import atexit

        atexit.unregister(ipy_io.devnull.close)
        ipy_io.devnull.close()
        ipy_io.devnull = _LazyDevnull()


class _LazyDevnull:
    def __getattr__(self, name):
        import IPython.utils.io as ipy_io

        ipy_io.devnull = open(os.devnull, "w", encoding="utf-8")
        return getattr(ipy_io.devnull, name)


def _to_json_number(v):
    """A chart coordinate as JSON: numbers stay numbers, NaN is null,
    datetimes are ISO strings, categories their text."""
    import math

    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalar
        try:
            v = v.item()
        except Exception:
            pass
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def _axis_categories(axis):
    """{position: category} of a categorical axis (bar(['a', 'b'], ...)), else None."""
    mapping = getattr(getattr(axis, "units", None), "_mapping", None)
    if not isinstance(mapping, dict):
        return None
    return {v: k for k, v in mapping.items()}


def _series_label(artist):
    label = artist.get_label()
    return None if not label or label.startswith("_") else str(label)


def _figure_chart(fig):
    """The structure of a matplotlib figure, so a UI can redraw it: per Axes
    its chart type, title, axis labels and series of points."""
    from matplotlib.collections import PathCollection
    from matplotlib.container import BarContainer

    out = []
    for ax in fig.get_axes():
        series, kinds = [], []
        xcat, ycat = _axis_categories(ax.xaxis), _axis_categories(ax.yaxis)

        def point(x, y):
            if xcat is not None and x in xcat:
                x = xcat[x]
            if ycat is not None and y in ycat:
                y = ycat[y]
            return [_to_json_number(x), _to_json_number(y)]

        def add(kind, artist, n, pts, **extra):
            if len(series) >= _CHART_MAX_SERIES:
                return
            s = {"type": kind, "label": _series_label(artist), "points": pts, **extra}
            if n > len(pts):
                s["truncated"] = True
            series.append(s)
            kinds.append(kind)

        cap = _CHART_MAX_POINTS
        for line in ax.get_lines():
            xs, ys = line.get_xdata(), line.get_ydata()
            add("line", line, min(len(xs), len(ys)),
                [[_to_json_number(x), _to_json_number(y)] for x, y in zip(xs[:cap], ys[:cap])])
        for coll in ax.collections:
            if isinstance(coll, PathCollection):
                offs = coll.get_offsets()
                add("scatter", coll, len(offs), [point(float(x), float(y)) for x, y in offs[:cap]])
        for cont in ax.containers:
            if isinstance(cont, BarContainer):
                horizontal = getattr(cont, "orientation", "vertical") == "horizontal"
                if horizontal:
                    pts = [point(r.get_width(), r.get_y() + r.get_height() / 2) for r in cont.patches[:cap]]
                else:
                    pts = [point(r.get_x() + r.get_width() / 2, r.get_height()) for r in cont.patches[:cap]]
                add("bar", cont, len(cont.patches), pts, orientation="horizontal" if horizontal else "vertical")
        distinct = sorted(set(kinds))
        out.append({
            "type": distinct[0] if len(distinct) == 1 else ("mixed" if distinct else "empty"),
            "title": ax.get_title(),
            "x_label": ax.get_xlabel(),
            "y_label": ax.get_ylabel(),
            "x_scale": ax.get_xscale(),
            "y_scale": ax.get_yscale(),
            "series": series,
        })
    suptitle = getattr(fig, "_suptitle", None)
    return {"title": suptitle.get_text() if suptitle is not None else "", "axes": out}


def _figure_png(fig):
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    _Engine.shown.add(id(fig))
    return buf.getvalue()


def _pandas_json(obj):
    if getattr(obj, "size", 0) > _PANDAS_JSON_MAX_CELLS:
        return None
    for orient in ("table", "split"):  # table (with its schema) fails on some indexes
        try:
            return json.loads(obj.to_json(orient=orient, date_format="iso"))
        except Exception:
            continue
    return None


def _display_figures(plt, close=True):
    """Every open figure not sent yet becomes a display result, as in
    Jupyter's inline backend; they are then closed."""
    from IPython.display import display

    for num in list(plt.get_fignums()):
        fig = plt.figure(num)
        if id(fig) not in _Engine.shown:
            try:
                display(fig)
            except Exception as e:
                print("airlock: could not render figure %s: %s" % (num, e), file=sys.stderr)
        if close:
            plt.close(fig)


def _patch_pyplot(plt):
    """plt.show() displays the figures instead of warning that Agg cannot."""
    if getattr(plt.show, "_airlock", False):
        return
    original = plt.show

    def show(*args, **kwargs):
        if _Engine.shell is None:
            return original(*args, **kwargs)
        _display_figures(plt)
        return None

    show._airlock = True
    show.__doc__ = original.__doc__
    plt.show = show


def _patch_imageshow(imageshow):
    """PIL's Image.show() becomes a display result, not an external viewer."""

    class _DisplayViewer:
        def show(self, image, **options):
            if _Engine.shell is None:
                return 0
            from IPython.display import display

            display(image)
            return 1

    imageshow.register(_DisplayViewer(), 0)  # 0: before the X11 viewers


_AFTER_IMPORT = {"matplotlib.pyplot": _patch_pyplot, "PIL.ImageShow": _patch_imageshow}


class _PatchOnImport:
    """A meta path finder that patches a few modules right after they are
    first imported (whoever imports them, in whichever cell); it never
    finds a module itself."""

    def find_spec(self, name, path=None, target=None):
        patch = _AFTER_IMPORT.get(name)
        if patch is None:
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader_exec = spec.loader.exec_module

        def exec_module(module):
            loader_exec(module)
            try:
                patch(module)
            except Exception as e:  # the module still works, just unpatched
                print("airlock: could not adapt %s: %s" % (name, e), file=sys.stderr)

        spec.loader.exec_module = exec_module
        return spec


class _MemoryDB(dict):
    """The shell's PickleShareDB, kept in memory (it would be a directory)."""

    def __init__(self, root=None):
        super().__init__()

    def uncache(self, *items):
        pass


def _user_tb(tb):
    """The traceback from the cell's first frame on: without the shell's
    frames before it and the runner's (the SIGINT handler) anywhere."""
    import IPython

    ipy_dir = os.path.dirname(IPython.__file__) + os.sep
    while tb is not None and (tb.tb_frame.f_code.co_filename.startswith(ipy_dir)
                              or tb.tb_frame.f_code.co_filename == _RUNNER_FILE):
        tb = tb.tb_next
    return _user_traceback(tb)


def _start_ipython(main_module):
    """The InteractiveShell every cell runs in, or None when IPython is not
    importable (the plain engine then runs the cells)."""
    try:
        _import_ipython()
    except Exception:
        return None
    from IPython.core.compilerop import CachingCompiler
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.error import UsageError
    from IPython.core.formatters import BaseFormatter
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.profiledir import ProfileDir
    from traitlets import ObjectName, Type, Unicode
    from traitlets.config import Config

    class CellCompiler(CachingCompiler):
        # co_filename "<cell-N>", as the plain engine's; tracebacks still say "In [N]"
        def get_code_name(self, raw_code, transformed_code, number):
            return "<cell-%d>" % number

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            _add_display(data)

        def clear_output(self, wait=False):
            _Engine.displays.clear()
            _Engine.budget, _Engine.dropped = _RESULTS_BUDGET - _MAIN_RESERVE, 0

    class Hook(DisplayHook):
        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            _Engine.main = format_dict

        def compute_format_data(self, result):
            format_dict, md_dict = super().compute_format_data(result)
            if "text/plain" not in format_dict:  # its __repr__ raised (the shell printed why)
                format_dict["text/plain"] = "<repr failed: %s object>" % type(result).__name__
            return format_dict, md_dict

    class ChartFormatter(BaseFormatter):
        format_type = Unicode(CHART_MIME)
        _return_type = dict
        print_method = ObjectName("_repr_airlock_chart_")

    class Shell(InteractiveShell):
        compiler_class = Type(CellCompiler)
        displayhook_class = Type(Hook)
        display_pub_class = Type(Publisher)

        def showtraceback(self, exc_tuple=None, filename=None, tb_offset=None, exception_only=False,
                          running_compiled_code=False):
            try:
                etype, value, tb = self._get_exc_info(exc_tuple)
            except ValueError:
                return
            if issubclass(etype, SystemExit):
                return  # the call's exit code, not an error
            try:
                if issubclass(etype, UsageError):
                    text = "UsageError: %s" % value
                elif issubclass(etype, SyntaxError):
                    text = self.InteractiveTB.stb2text(self.SyntaxTB.structured_traceback(etype, value, []))
                else:
                    stb = self.InteractiveTB.structured_traceback(etype, value, _user_tb(tb), tb_offset=0)
                    text = self.InteractiveTB.stb2text(stb)
            except Exception:  # the formatter itself failed: Python's own
                import traceback

                text = "".join(traceback.format_exception(etype, value, _user_tb(tb)))
            _Engine.error_text = text
            print(text, file=sys.stderr)

        def showsyntaxerror(self, filename=None, running_compiled_code=False):
            self.showtraceback()

    import IPython.core.interactiveshell as ipy_shell

    config = Config()
    config.HistoryManager.enabled = False  # no sqlite file, no saving thread
    # no profile directory, and the shell's `db` (bookmarks, %cd history) in
    # memory: nothing is created in the user's home or working directory
    disk_db, ipy_shell.PickleShareDB = ipy_shell.PickleShareDB, _MemoryDB
    try:
        shell = Shell.instance(config=config, user_module=main_module, profile_dir=ProfileDir(),
                               ipython_dir=os.path.join(os.path.expanduser("~"), ".ipython"), colors="NoColor")
    finally:
        ipy_shell.PickleShareDB = disk_db
    _forget_shell_exit(shell)

    def system(cmd):
        import subprocess

        cmd = shell.var_expand(cmd, depth=1)
        _flush_output()  # what the cell printed comes first
        shell.user_ns["_exit_code"] = subprocess.call(cmd, shell=True, executable=os.environ.get("SHELL") or "/bin/sh")

    shell.system = system

    def pip(line=""):
        raise UsageError(_PIP_SEALED)

    for magic in ("pip", "conda", "mamba"):
        shell.register_magic_function(pip, "line", magic)

    def matplotlib(line=""):
        # figures are results already (plt.show(), the open ones at the end
        # of a cell): the inline backend would send them twice and without
        # their chart data, and there is no display for a GUI one
        if line.strip() not in ("", "inline", "agg"):
            raise UsageError("%%matplotlib %s: the sandbox has no display; figures are returned as results "
                             "(as with %%matplotlib inline)" % line.strip())

    shell.register_magic_function(matplotlib, "line", "matplotlib")

    fmt = shell.display_formatter
    fmt.formatters[CHART_MIME] = ChartFormatter(parent=fmt)
    fmt.formatters[CHART_MIME].for_type_by_name("matplotlib.figure", "Figure", _figure_chart)
    fmt.formatters["image/png"].for_type_by_name("matplotlib.figure", "Figure", _figure_png)
    for mod, cls in (("pandas.core.frame", "DataFrame"), ("pandas.core.series", "Series")):
        fmt.formatters["application/json"].for_type_by_name(mod, cls, _pandas_json)
    for t in (dict, list):  # as the plain engine: a JSON-able dict/list is also JSON
        fmt.formatters["application/json"].for_type(t, _json_value)
    sys.meta_path.insert(0, _PatchOnImport())
    for name, patch in _AFTER_IMPORT.items():  # imported already (a warm-up)
        if name in sys.modules:
            patch(sys.modules[name])
    import warnings

    warnings.filterwarnings("ignore", message="To exit: use 'exit'")
    return shell


_MAIN_RESERVE = 100_000  # of the results budget, kept for the main result (display() in a loop)
_BUNDLE_MIN = 64  # what a display result costs at least (its JSON keys and punctuation)


def _add_display(data):
    """A display result, converted as it comes (the objects are not kept),
    within what is left of the call's budget; once that is spent, display
    results are only counted."""
    if _Engine.budget < _BUNDLE_MIN:
        _Engine.dropped += 1
        return
    bundle, _ = _format_bundle(data, _Engine.budget - _BUNDLE_MIN)
    size = len(json.dumps(bundle, ensure_ascii=False).encode("utf-8", "replace"))
    if size > _Engine.budget:
        _Engine.dropped += 1
        return
    _Engine.displays.append(bundle)
    _Engine.budget -= size


def _forget_shell_exit(shell):
    """exit()/quit() end the call with an exit code, as in the plain engine:
    site's, not the shell's (which would ask the terminal to close)."""
    for name in ("exit", "quit"):
        shell.user_ns.pop(name, None)
        shell.user_ns_hidden.pop(name, None)
        shell.builtin_trap.auto_builtins.pop(name, None)


def _format_bundle(data, budget):
    """A shell format dict as a result bundle: bytes base64, values that are
    not JSON dropped, kept within budget bytes (roughly) as _mime_bundle."""
    bundle = {}
    text = data.get("text/plain")
    if isinstance(text, str):
        bundle["text/plain"] = _cut(text, min(_TEXT_PLAIN_MAX, max(budget // 2, 1000)))
    used = len(bundle.get("text/plain", ""))
    for mime, value in data.items():
        if mime == "text/plain" or mime in ("is_main_result", "truncated"):
            continue
        if isinstance(value, (bytes, bytearray)):
            value = _b64(bytes(value))
        try:
            size = len(value) if isinstance(value, str) else len(json.dumps(value, allow_nan=False))
        except Exception:
            continue
        if used + size > budget:
            bundle["truncated"] = True
            continue
        bundle[mime] = value
        used += size
    return bundle, used


def _ipython_cell(code):
    """Run one cell in the shell. Returns (value_format_dict or None, error
    exception or None)."""
    shell = _Engine.shell
    _Engine.displays, _Engine.main, _Engine.shown, _Engine.error_text = [], None, set(), None
    _Engine.budget, _Engine.dropped = _RESULTS_BUDGET - _MAIN_RESERVE, 0
    try:
        _enter_user_code()
        res = shell.run_cell(code, store_history=True)
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            _display_figures(plt)
    finally:
        _State.in_user_code = False
    return res.error_before_exec or res.error_in_exec


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


def _exit_code_of(e):
    """The exit code of a SystemExit, as the interpreter would exit with."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1


def _execute(cmd, ns):
    import time

    exit_code, error, value, restart, interrupted = 0, None, None, None, False
    shell = _Engine.shell
    saved_env = _apply_env(cmd.get("env"))
    # cheap enough for every call: one dict of the (few) live threads
    threads_before = frozenset(sys._current_frames())
    deadline = cmd.get("deadline_mono_ms")
    count = shell.execution_count if shell is not None else _State.call_count + 1
    try:
        if shell is not None:
            exc = _ipython_cell(cmd.get("code", ""))
            if isinstance(exc, SystemExit):
                exit_code = _exit_code_of(exc)
            elif exc is not None:  # the shell printed its traceback already
                error, _ = _describe_exception(exc)
                if _Engine.error_text is not None:
                    error["traceback"] = _cut(_Engine.error_text, _ERROR_TEXT_MAX)
                exit_code = 1
                interrupted = isinstance(exc, KeyboardInterrupt)
        else:
            value = _run_cell(cmd.get("code", ""), ns)
    except SystemExit as e:
        value = None
        exit_code = _exit_code_of(e)
    except BaseException as e:  # KeyboardInterrupt included: the REPL survives
        value = None
        error, text = _describe_exception(e)
        exit_code = 1
        interrupted = isinstance(e, KeyboardInterrupt)
        try:
            sys.stderr.write(text)
        except Exception:
            pass
    finally:
        _restore_env(saved_env)
    # the agent's timeout interrupt (a SIGNAL request's SIGINT before the
    # deadline is the user's Ctrl-C: threads keep running, as in Jupyter)
    if interrupted and deadline and time.monotonic() >= deadline / 1000.0 - _TIMEOUT_SLACK:
        left = _stop_new_threads(threads_before)
        if left:
            restart = "%d thread%s it started did not stop" % (len(left), "" if len(left) == 1 else "s")
    reply = {"exit_code": exit_code, "error": error, "results": [], "execution_count": count,
             "engine": _Engine.name}
    if restart:
        reply["restart"] = restart
        return reply

    results = reply["results"]
    budget = _RESULTS_BUDGET
    try:
        if shell is not None:
            results.extend(_Engine.displays)
            budget = _Engine.budget + _MAIN_RESERVE
            if _Engine.dropped:
                results.append({"text/plain": "[%d more display results dropped: the results of one call are "
                                              "limited to about %d KB]" % (_Engine.dropped, _RESULTS_BUDGET // 1000),
                                "truncated": True})
            if _Engine.main:
                bundle, used = _format_bundle(_Engine.main, budget)
                bundle["is_main_result"] = True
                results.append(bundle)
        else:
            figures, used = _capture_figures(budget)
            results.extend(figures)
            budget -= used
            if value is not None:
                bundle, used = _mime_bundle(value, budget)
                bundle["is_main_result"] = True
                results.append(bundle)
    except BaseException as e:  # a broken __repr__ must not take the REPL down
        print("airlock: could not build the result: %s: %s" % (type(e).__name__, e), file=sys.stderr)
    finally:
        _Engine.displays, _Engine.main = [], None  # the objects are not kept alive
    if value is not None:
        builtins._ = value  # as in the interactive interpreter
    return reply


def _make_main_module():
    """A real __main__ module, so pickle finds functions and classes defined
    in the REPL."""
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    return main


def _start_engine():
    """The namespace cells run in, with the engine that runs them: the
    zygote's shell (warm_up) in a forked REPL, else a new one, else none."""
    shell = _Engine.shell
    if shell is not None:  # forked: the zygote's, still unused
        sys.modules["__main__"] = shell.user_module
        shell.user_ns["_dh"][:] = [os.getcwd()]  # the zygote's was not the sandbox's
        return shell.user_ns
    main = _make_main_module()
    try:
        _Engine.shell = _start_ipython(main)
    except Exception as e:  # a broken IPython: the plain engine still runs cells
        _Engine.shell = None
        print("airlock: IPython could not start (%s: %s); plain Python engine" % (type(e).__name__, e),
              file=sys.stderr)
    _Engine.name = "basic" if _Engine.shell is None else "ipython"
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
    ns = _start_engine()
    while True:
        cmd = _read_command(cmd_fd)
        if cmd is None:
            return 0  # the agent closed the pipe: the sandbox is going away
        if "chdir" in cmd:
            # a code context's working directory (the agent checked it
            # exists); a forked runner starts in /home/user. No reply.
            try:
                os.chdir(cmd["chdir"])
            except OSError as e:
                sys.stderr.write("airlock: cannot enter the context's cwd %s: %s\n" % (cmd["chdir"], e))
            if "code" not in cmd:
                continue
        _State.starting = False
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
