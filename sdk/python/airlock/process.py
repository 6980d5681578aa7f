"""Background processes (``sb.exec(..., background=True)``) and streamed runs
(docs/api.md, "Background processes")."""

import time
import urllib.parse

from .models import Execution

# one wait call of the server is at most this long; longer waits call again
_WAIT_SLICE_S = 3600


class ExecutionStream:
    """The iterator of ``run_code_stream`` / ``exec_stream``: yields the event
    dicts as they arrive (``stdout``, ``stderr``, then ``result`` and
    ``exit``, or ``error``); with ``final=True`` it then yields the final
    ``Execution`` as its last item. ``execution`` holds that Execution once
    the stream has ended either way."""

    def __init__(self, events, final=False, callbacks=None):
        self._events = events
        self._final = final
        self._cb = callbacks or {}
        self.execution = None
        self._out, self._err = [], []
        self._gen = self._run()

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._gen)

    def close(self):
        self._gen.close()
        close = getattr(self._events, "close", None)
        if close:
            close()

    def _run(self):
        result = None
        for ev in self._events:
            t = ev.get("type") if isinstance(ev, dict) else None
            if t == "stdout":
                self._out.append(ev.get("data", ""))
                _call(self._cb.get("on_stdout"), ev.get("data", ""))
            elif t == "stderr":
                self._err.append(ev.get("data", ""))
                _call(self._cb.get("on_stderr"), ev.get("data", ""))
            elif t == "result":
                result = dict(ev)
            elif t == "error":
                result = {"exit_code": None, "error": {"name": "StreamError",
                                                       "value": (ev.get("error") or {}).get("message", ""),
                                                       "traceback": ""}}
            yield ev
        d = dict(result or {})
        d.pop("type", None)
        d["stdout"] = "".join(self._out)
        d["stderr"] = "".join(self._err)
        self.execution = Execution(d)
        for r in self.execution.results:
            _call(self._cb.get("on_result"), r)
        if self.execution.error is not None:
            _call(self._cb.get("on_error"), self.execution.error)
        if self._final:
            yield self.execution

    def drain(self):
        """Consume the rest; return the final Execution."""
        for _ in self:
            pass
        return self.execution


def _call(fn, arg):
    if fn is not None:
        fn(arg)


class CommandHandle:
    """A process started with ``exec(..., background=True)``. It runs until it
    exits, is killed, or the sandbox ends, whoever holds this handle.

    ``pid`` is its pid inside the sandbox. Iterating the handle streams its
    output from the start (what the server still holds: the last 1 MiB; a
    ``{"type": "dropped", "bytes": n}`` event says what is gone), then live,
    then its ``result`` and ``exit`` events."""

    def __init__(self, sb, info):
        self._sb = sb
        self.info = dict(info)
        self.pid = info["pid"]

    def __repr__(self):
        return "CommandHandle(pid=%r, cmd=%r)" % (self.pid, self.info.get("cmd"))

    def _path(self, suffix=""):
        return "/processes/%d%s" % (self.pid, suffix)

    def refresh(self, wait=0):
        """The process's state from the server (``state``: running or exited,
        ``exit_code``, ``output`` counters...)."""
        q = {"wait_s": int(wait)} if wait else None
        self.info = self._sb._call("GET", self._path(), query=q, timeout=(wait or 0) + 60.0)
        return self.info

    @property
    def running(self):
        return self.refresh().get("state") == "running"

    def output(self, from_offset=0, final=False, on_stdout=None, on_stderr=None):
        """Stream its output (an ``ExecutionStream``), replayed from byte
        ``from_offset`` of what it wrote, then live until it ends."""
        path = self._sb._path(self._path("/output"))
        if from_offset:
            path += "?" + urllib.parse.urlencode({"from": int(from_offset)})
        events = self._sb._http.stream_lines("GET", path, None, None, terminal=frozenset(("exit",)))
        return ExecutionStream(events, final=final, callbacks={"on_stdout": on_stdout, "on_stderr": on_stderr})

    def __iter__(self):
        return iter(self.output())

    def wait(self, timeout=None, on_stdout=None, on_stderr=None):
        """Wait for it to end and return its ``Execution`` (exit_code, error,
        stdout and stderr as far as the server still holds them:
        ``output_complete`` in ``raw`` says whether that is all of it).
        ``timeout`` (seconds): raise ``TimeoutError`` if it still runs then
        (it keeps running)."""
        if timeout is not None:
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                info = self.refresh(wait=max(1, min(_WAIT_SLICE_S, int(left + 0.999))) if left > 0 else 0)
                if info.get("state") != "running":
                    break
                if time.monotonic() >= deadline:
                    raise TimeoutError("process %d still runs after %g s" % (self.pid, timeout))
        return self.output(on_stdout=on_stdout, on_stderr=on_stderr).drain()

    def kill(self, signal="SIGKILL"):
        """Signal its process group (default SIGKILL). False if it had already exited."""
        from .errors import AirlockError
        try:
            self._sb._call("POST", self._path("/signal"), {"signal": signal})
            return True
        except AirlockError as e:
            if getattr(e, "status", None) == 409 or getattr(e, "code", None) == "exited":
                return False
            raise

    def resize(self, rows, cols):
        """Set the window of a process started with ``pty`` (it gets SIGWINCH)."""
        self._sb._call("POST", self._path("/resize"), {"rows": int(rows), "cols": int(cols)})

    def send_stdin(self, data):
        """Write to its stdin (str, or bytes that are UTF-8)."""
        if isinstance(data, (bytes, bytearray)):
            data = bytes(data).decode("utf-8")
        self._sb._call("POST", self._path("/stdin"), {"data": data})

    def close_stdin(self):
        """Close its stdin: it reads EOF once it has read what was sent."""
        self._sb._call("POST", self._path("/stdin"), {"eof": True})


class Processes:
    """``sb.processes``: the sandbox's background processes."""

    def __init__(self, sb):
        self._sb = sb

    def list(self, running_only=False):
        """Info dicts, oldest first; exited ones are kept (the last 16)."""
        q = {"state": "running"} if running_only else None
        return self._sb._call("GET", "/processes", query=q)["processes"]

    def connect(self, pid):
        """A handle to a process started earlier (by this client or another)."""
        return CommandHandle(self._sb, self._sb._call("GET", "/processes/%d" % int(pid)))

    def kill(self, pid, signal="SIGKILL"):
        return self.connect(pid).kill(signal)
