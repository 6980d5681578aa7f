"""Result objects: what run_code / exec return (docs/api.md, "Result object")."""

import base64


class ExecutionError:
    """A failure of the user's code: a Python exception, ``TimeoutError`` after a
    timeout, ``OutOfMemory`` when the kernel killed the process."""

    __slots__ = ("name", "value", "traceback")

    def __init__(self, name, value, traceback):
        self.name = name
        self.value = value
        self.traceback = traceback

    @classmethod
    def from_json(cls, d):
        if not d:
            return None
        return cls(d.get("name", ""), d.get("value", ""), d.get("traceback", ""))

    def __repr__(self):
        return "ExecutionError(name=%r, value=%r)" % (self.name, self.value)

    def __str__(self):
        return "%s: %s" % (self.name, self.value) if self.value else self.name


class Result:
    """One rich output (a MIME bundle), e.g. the value of the last expression."""

    _MIME = {
        "text": "text/plain",
        "html": "text/html",
        "markdown": "text/markdown",
        "svg": "image/svg+xml",
        "png": "image/png",
        "jpeg": "image/jpeg",
        "json": "application/json",
        "latex": "text/latex",
        "javascript": "application/javascript",
    }

    def __init__(self, raw):
        self.raw = dict(raw)
        self.is_main_result = bool(self.raw.get("is_main_result", False))

    def __getattr__(self, name):
        mime = Result._MIME.get(name)
        if mime is None:
            raise AttributeError(name)
        return self.raw.get(mime)

    def png_bytes(self):
        """The decoded PNG image, or None."""
        png = self.raw.get("image/png")
        return base64.b64decode(png) if png else None

    def formats(self):
        return [k for k in self.raw if k != "is_main_result"]

    def __repr__(self):
        return "Result(formats=%r, text=%r)" % (self.formats(), _short(self.text))


class Execution:
    """The outcome of ``run_code`` or ``exec``."""

    def __init__(self, d):
        self.raw = d
        self.stdout = d.get("stdout", "")
        self.stderr = d.get("stderr", "")
        self.exit_code = d.get("exit_code")
        self.error = ExecutionError.from_json(d.get("error"))
        self.results = [Result(r) for r in (d.get("results") or [])]
        self.duration_ms = d.get("duration_ms")
        self.timed_out = bool(d.get("timed_out", False))
        self.stdout_truncated = bool(d.get("stdout_truncated", False))
        self.stderr_truncated = bool(d.get("stderr_truncated", False))
        # the Python REPL was restarted during this call or since the last
        # one: the state of earlier calls is gone
        self.repl_restarted = bool(d.get("repl_restarted", False))
        # Python code: the cell's number in the REPL (IPython's In[n]), None for exec
        self.execution_count = d.get("execution_count")
        # a background process's output (CommandHandle.wait): False when bytes
        # were dropped from its buffer before they were read; None otherwise
        self.output_complete = d.get("output_complete")

    @property
    def text(self):
        """text/plain of the main result (the last expression's value), or None."""
        for r in self.results:
            if r.is_main_result:
                return r.text
        return None

    @property
    def ok(self):
        return self.error is None and self.exit_code == 0

    def __repr__(self):
        parts = ["exit_code=%r" % self.exit_code]
        if self.error is not None:
            parts.append("error=%r" % self.error)
        parts.append("stdout=%r" % _short(self.stdout))
        if self.stderr:
            parts.append("stderr=%r" % _short(self.stderr))
        if self.text is not None:
            parts.append("text=%r" % _short(self.text))
        if self.timed_out:
            parts.append("timed_out=True")
        if self.repl_restarted:
            parts.append("repl_restarted=True")
        parts.append("duration_ms=%r" % self.duration_ms)
        return "Execution(%s)" % ", ".join(parts)


class Info(dict):
    """A sandbox object (docs/api.md, "Sandbox object"); keys also read as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class CodeContext:
    """A code context: an independent REPL in the sandbox with its own globals
    (``Sandbox.create_code_context``). ``id``, ``language``, ``cwd``, and
    ``default`` (the sandbox's first REPL, which cannot be removed)."""

    def __init__(self, d):
        self.id = d.get("id")
        self.language = d.get("language", "python")
        self.cwd = d.get("cwd")
        self.default = bool(d.get("default", False))

    def __eq__(self, other):
        return isinstance(other, CodeContext) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return "CodeContext(id=%r, language=%r, cwd=%r%s)" % (self.id, self.language, self.cwd,
                                                              ", default=True" if self.default else "")


def _short(s, n=80):
    if s is None:
        return None
    return s if len(s) <= n else s[:n] + "..."
