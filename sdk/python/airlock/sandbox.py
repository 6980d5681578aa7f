"""The Sandbox class: one sealed sandbox on an airlockd (docs/api.md)."""

import hashlib
import math
import os
import tempfile
import urllib.parse
import warnings

from ._transport import Transport, decode_json
from .errors import AirlockError, InvalidRequest, NotFound, ReplRestarted, SandboxTimeout, WheelInstallError
from .models import CodeContext, Execution, Info
from .process import CommandHandle, ExecutionStream, Processes

# Seconds the HTTP layer waits beyond a code/exec timeout before it gives up
# on the daemon, and what it waits when no timeout was given (the agent's own
# default is 60 s).
_GRACE_S = 30.0
_DEFAULT_RUN_WAIT_S = 600.0


class SandboxList(list):
    """A page of ``Sandbox.list``: a list, plus ``next_token`` (None on the last page)."""
    next_token = None


def _secs(v):
    """The API takes whole seconds: round a fractional timeout up."""
    if isinstance(v, float):
        return int(math.ceil(v))
    return v


def _q(sandbox_id):
    return urllib.parse.quote(sandbox_id, safe="")


def _check_path(path):
    """A sandbox path as str, refused before sending if it could name some
    other file on the way: a NUL cuts a C string (the daemon and the agent
    refuse it too), and a str that is not encodable as UTF-8 (a lone
    surrogate, e.g. from os.fsdecode of invalid bytes) has no UTF-8 form."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError("a sandbox path is a str, not %s" % type(path).__name__)
    if "\x00" in path:
        raise InvalidRequest("path contains a NUL byte: %r" % path, code="invalid_request")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("path is not valid UTF-8: %r" % path, code="invalid_request")
    return path


class WatchHandle:
    """A directory watch (``sb.files.watch_dir``): iterate it for events,
    dicts with ``type`` (create, write, remove, rename, chmod, overflow),
    ``path`` and ``is_dir``, as they happen. Iteration ends after an
    ``end`` event (the directory was removed or moved; yielded) or an
    ``error`` one (the sandbox went; yielded); a stream cut without
    either raises ``TransferError``. ``stop()`` (or leaving a ``with``
    block) ends the watch."""

    def __init__(self, events):
        self._events = events
        ready = next(events)  # the watch is in place once this line came
        self.path = ready.get("path")
        self.recursive = ready.get("recursive")

    def __iter__(self):
        for ev in self._events:
            yield ev
            if ev.get("type") in ("end", "error"):
                self.stop()
                return

    def stop(self):
        """End the watch (the daemon cancels it when the connection closes)."""
        self._events.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Files:
    """``sb.files``: file operations inside the sandbox."""

    def __init__(self, sb):
        self._sb = sb

    def list(self, path="/home/user", depth=1):
        """Entries of a directory, each with get_info's fields (keys also
        read as attributes). ``depth`` > 1 lists subdirectories too, each
        followed by its own entries (``path`` tells them apart); symlinks
        are listed, never followed."""
        q = {"path": _check_path(path)}
        if depth != 1:
            q["depth"] = str(int(depth))
        d = self._sb._call("GET", "/files/list", query=q)
        return [Info(e) for e in d.get("entries", [])]

    def get_info(self, path):
        """What path is, without following a symlink: path, name, type
        (file, dir, symlink, other), size, mode (int), mode_octal ("0644"),
        permissions ("-rw-r--r--"), owner, group, uid, gid, mtime (Unix
        seconds), modified_at (ISO-8601), symlink_target. NotFound if it
        does not exist."""
        return Info(self._sb._call("GET", "/files/info", query={"path": _check_path(path)}))

    def watch_dir(self, path, recursive=False, timeout=None):
        """Watch a directory: a ``WatchHandle`` to iterate for its events,
        returned once the watch is in place (a change made after it returns
        is reported). ``recursive``: the directories below too. ``timeout``:
        seconds to wait for the next event (None: no limit)."""
        q = {"path": _check_path(path)}
        if recursive:
            q["recursive"] = "true"
        url = self._sb._path("/files/watch") + "?" + urllib.parse.urlencode(q)
        return WatchHandle(self._sb._http.stream_lines("GET", url, None, timeout, terminal={"end", "error"}))

    def make_dir(self, path):
        """Create a directory and its missing parents. True if it was
        created, False if it was there already (a file in the way is a 409
        ``exists`` error)."""
        return bool(self._sb._call("POST", "/files/mkdir", query={"path": _check_path(path)}).get("created"))

    def rename(self, old_path, new_path, overwrite=False):
        """Move a file or directory (within the writable trees; missing
        parents of new_path are made). An existing new_path is a 409
        ``exists`` error unless ``overwrite``. Returns new_path's info."""
        q = {"path": _check_path(old_path), "to": _check_path(new_path)}
        if overwrite:
            q["overwrite"] = "true"
        return Info(self._sb._call("POST", "/files/rename", query=q))

    def remove(self, path, recursive=True):
        """Remove a file, or a directory with everything in it
        (``recursive=False``: only an empty one). A missing path is not an
        error: returns False then, True when something was removed."""
        q = {"path": _check_path(path), "recursive": "true" if recursive else "false"}
        return bool(self._sb._call("DELETE", "/files", query=q).get("deleted", True))

    def exists(self, path):
        """Whether path exists (a relative path is under /home/user, as for
        every file call; a symlink exists even when its target does not)."""
        try:
            self.get_info(path)
            return True
        except NotFound:
            return False
        except AirlockError as e:
            if e.code == "not_directory":
                return False  # a parent that is a file
            raise

    def read(self, path, gzip=False):
        return self._sb.download(path, gzip=gzip)

    def write(self, path, data, gzip=False):
        return self._sb.upload(data, path, gzip=gzip)

    def write_files(self, files):
        """Write several files in one request: ``files`` is a list of
        ``(path, data)`` pairs or ``{"path", "data"}`` dicts (data: bytes or
        str). One multipart/form-data body, each part streamed into place
        by the daemon in order; each file is whole or absent, and the first
        that fails raises, the ones before it written. Returns
        ``[{"path", "size"}, ...]``. Unlike ``write``, a part carries no
        sha256 (multipart parts have no header for it)."""
        boundary = "airlock-" + os.urandom(12).hex()
        chunks = []
        for item in files:
            path, data = (item["path"], item["data"]) if isinstance(item, dict) else item
            path = _check_path(path)
            if any(c in path for c in '"\r\n'):
                raise InvalidRequest("a path with a double quote or a line break cannot be a multipart "
                                     "filename; write() it alone: %r" % path, code="invalid_request")
            if isinstance(data, str):
                data = data.encode("utf-8")
            chunks += [b"--", boundary.encode(), b'\r\nContent-Disposition: form-data; name="file"; filename="',
                       path.encode("utf-8"), b'"\r\nContent-Type: application/octet-stream\r\n\r\n',
                       bytes(data), b"\r\n"]
        chunks += [b"--", boundary.encode(), b"--\r\n"]
        body = b"".join(chunks)
        headers = {"Content-Type": "multipart/form-data; boundary=" + boundary, "Content-Length": str(len(body))}
        out = decode_json(self._sb._http.request_raw("POST", self._sb._path("/files"), body, headers,
                                                     timeout=max(60.0, len(body) / 5e6)))
        return [Info(f) for f in out.get("files", [])]


class Sandbox:
    """A sandbox, created on construction (``POST /v1/sandboxes``).

    Use it as a context manager; leaving the block (or ``close()``) destroys it::

        with Sandbox(egress=False) as sb:
            sb.upload(b"a,b\\n1,2\\n", "/data/x.csv")
            print(sb.run_code("print(open('/data/x.csv').read())").stdout)
    """

    def __init__(self, template="host", egress=False, region=None, timeout=300,
                 memory_mb=None, cpus=None, env=None, metadata=None, isolation=None,
                 api_key=None, base_url=None, _info=None, _transport=None):
        self._http = _transport or Transport(base_url=base_url, api_key=api_key)
        self._closed = False
        self.files = Files(self)
        self.processes = Processes(self)
        if _info is None:
            body = {"template": template, "egress": _egress(egress)}
            for k, v in (("region", region), ("timeout_s", _secs(timeout)), ("memory_mb", memory_mb),
                         ("cpus", cpus), ("env", env), ("metadata", metadata), ("isolation", isolation)):
                if v is not None:
                    body[k] = v
            _info = self._http.request_json("POST", "/v1/sandboxes", body)
        self._info = Info(_info)
        self._id = self._info["id"]
        # "full" or "files" for a fork's child (fork()), None otherwise
        self.fork_state = None

    # -- identity / lifecycle ---------------------------------------------------
    @property
    def id(self):
        return self._id

    def __repr__(self):
        return "<Sandbox %s%s>" % (self._id, " closed" if self._closed else "")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.close()
        except AirlockError:
            # Do not hide the exception that ended the block.
            if exc_type is None:
                raise

    def close(self):
        """Destroy the sandbox. Idempotent; a sandbox already gone is not an error."""
        if self._closed:
            return
        try:
            self._http.request_json("DELETE", "/v1/sandboxes/" + _q(self._id))
        except (NotFound, SandboxTimeout):
            pass
        self._closed = True
        self._http.close()

    kill = close

    def info(self):
        """The sandbox object, fresh from the daemon."""
        self._info = Info(self._http.request_json("GET", "/v1/sandboxes/" + _q(self._id)))
        return self._info

    def set_timeout(self, seconds):
        """Destroy the sandbox ``seconds`` from now (instead of at its old expiry)."""
        self._info = Info(self._call("POST", "/timeout", {"timeout_s": _secs(seconds)}))
        return self._info

    def pause(self):
        """Pause the sandbox: its processes stop where they stand (no CPU),
        its memory, files and REPL state are kept, and its lifetime clock
        stops (the daemon's --max-paused bounds a pause). Calls that need the
        sandbox raise ``SandboxPaused`` until ``resume()``. Pausing a paused
        sandbox is a no-op; ``SandboxBusy`` while a call is still running."""
        self._info = Info(self._call("POST", "/pause"))
        return self._info

    def resume(self):
        """Let a paused sandbox run on where it stopped; a no-op when it runs."""
        self._info = Info(self._call("POST", "/resume"))
        return self._info

    # -- fork families (docs/api.md, `POST /v1/sandboxes/{id}/fork`) ---------------------------
    def fork(self, n=1, timeout=120.0):
        """Branch this sandbox into ``n`` (1..32) new ones and return them.

        Each child has this sandbox's template, limits, egress policy and
        owner, its own id and lifetime. With ``isolation="vm"`` a child holds
        the whole state (REPL variables, imports, processes, files) and
        ``child.fork_state == "full"``; on the jail it holds a copy of the
        files of /tmp, /data and /home/user with a fresh REPL (``"files"``).
        Close each child yourself (or use it as a context manager)."""
        d = self._call("POST", "/fork", {"n": int(n)}, timeout=timeout)
        kids = []
        for info in d.get("sandboxes", []):
            t = Transport(base_url=self._http.base_url, api_key=self._http.api_key)
            kid = Sandbox(_info=info, _transport=t)
            kid.fork_state = info.get("fork_state", d.get("state"))
            kids.append(kid)
        return kids

    def diff(self, other, timeout=120.0):
        """Files added, removed and changed in ``other`` (a Sandbox or an id)
        relative to this sandbox, over /tmp, /data and /home/user:
        ``{"added": [{"path","size","sha256"}], "removed": [...],
        "changed": [{"path","size_a","size_b","sha256_a","sha256_b"}]}``.
        Both must be of one fork family (409 otherwise)."""
        oid = other.id if isinstance(other, Sandbox) else str(other)
        return self._call("GET", "/diff/" + _q(oid), timeout=timeout)

    def merge_into(self, parent, timeout=300.0):
        """Commit this sandbox's files into ``parent`` (a Sandbox or an id of
        its family) and destroy this one. Returns the daemon's answer
        (``state`` says what was merged: ``"files"``)."""
        pid = parent.id if isinstance(parent, Sandbox) else str(parent)
        d = self._call("POST", "/merge_into/" + _q(pid), timeout=timeout)
        self._closed = True
        self._http.close()
        if isinstance(parent, Sandbox) and isinstance(d.get("sandbox"), dict):
            parent._info = Info(d["sandbox"])
        return d

    @classmethod
    def list(cls, api_key=None, base_url=None, metadata=None, state=None, template=None, limit=None,
             next_token=None):
        """Live sandboxes, as ``Info`` dicts, filtered by the server: every
        ``metadata`` pair must match, ``state`` ("running" | "paused" | "destroying"),
        ``template``. With ``limit`` the list is one page (in id order) whose
        ``next_token`` attribute, when not None, asks for the next one."""
        q = {}
        if metadata:
            q["metadata"] = "&".join("%s=%s" % (urllib.parse.quote(str(k), safe=""),
                                                urllib.parse.quote(str(v), safe=""))
                                     for k, v in metadata.items())
        for k, v in (("state", state), ("template", template), ("limit", limit), ("next_token", next_token)):
            if v is not None:
                q[k] = str(v)
        t = Transport(base_url=base_url, api_key=api_key)
        try:
            d = t.request_json("GET", "/v1/sandboxes", query=q or None)
        finally:
            t.close()
        page = SandboxList(Info(s) for s in d.get("sandboxes", []))
        page.next_token = d.get("next_token")
        return page

    @classmethod
    def connect(cls, sandbox_id, api_key=None, base_url=None, timeout=None):
        """Attach to an existing live sandbox, resuming it if it is paused (as
        E2B's connect does). Closing it destroys it.

        ``timeout``: the sandbox lives at least this many seconds from now; a
        lifetime that already ends later is kept (connect never shortens it)."""
        t = Transport(base_url=base_url, api_key=api_key)
        try:
            info = t.request_json("GET", "/v1/sandboxes/" + _q(sandbox_id))
            if info.get("state") == "paused":
                info = t.request_json("POST", "/v1/sandboxes/" + _q(sandbox_id) + "/resume")
            if timeout is not None and info.get("state") == "running":
                info = t.request_json("POST", "/v1/sandboxes/" + _q(sandbox_id) + "/timeout",
                                      {"timeout_s": _secs(timeout), "extend_only": True})
        except BaseException:
            t.close()
            raise
        if info.get("state") != "running":
            t.close()
            reason = info.get("destroy_reason") or info.get("state")
            msg = "sandbox %s is %s (%s)" % (sandbox_id, info.get("state"), reason)
            if reason == "expired":
                raise SandboxTimeout(msg, status=410, code="sandbox_expired")
            raise NotFound(msg, status=404, code="not_found")
        return cls(_info=info, _transport=t)

    # -- requests ----------------------------------------------------------------
    def _path(self, suffix):
        return "/v1/sandboxes/" + _q(self._id) + suffix

    def _call(self, method, suffix, payload=None, query=None, timeout=60.0):
        return self._http.request_json(method, self._path(suffix), payload,
                                       timeout=timeout, query=query)

    # -- files -------------------------------------------------------------------
    def upload(self, data, path, gzip=False):
        """Write ``data`` to ``path`` in the sandbox.

        ``data`` is the content (bytes, or str encoded as UTF-8), a local file
        path as an ``os.PathLike`` (streamed from disk), or a binary file object.
        Returns ``{"path", "size"}``.

        The content's sha256 goes with it (``X-Content-SHA256``); the agent
        checks it before it puts the file in place, so bytes changed on the
        way raise ``IntegrityError`` and leave nothing written. A file is
        read twice for that (hashed, then sent) when it can seek back.

        A ``path`` ending in ``/`` is a directory: a local file (PathLike, or
        a file object with a ``name``) keeps its name there; bytes need a
        file name (``InvalidRequest`` from the daemon).

        ``gzip=True`` sends the content compressed (Content-Encoding: gzip;
        the daemon inflates it, the sha256 is still of the content): fewer
        bytes on a slow link, for a compressible file."""
        path = _check_path(path)
        if path.endswith("/"):
            name = os.fspath(data) if isinstance(data, os.PathLike) else getattr(data, "name", None)
            if isinstance(name, str) and os.path.basename(name):
                path += os.path.basename(name)
        url = self._path("/files") + "?" + urllib.parse.urlencode({"path": _check_path(path)})
        headers = {"Content-Type": "application/octet-stream"}
        if isinstance(data, str):
            data = data.encode("utf-8")
        if gzip:
            return self._upload_gzip(url, data, headers)
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data)
            headers["X-Content-SHA256"] = hashlib.sha256(data).hexdigest()
            return self._upload(url, data, headers, len(data))
        if isinstance(data, os.PathLike):
            with open(os.fspath(data), "rb") as f:
                return self._upload_file(url, f, headers)
        if hasattr(data, "read"):
            return self._upload_file(url, data, headers)
        raise TypeError("upload() takes bytes, str, an os.PathLike or a binary file, not %s"
                        % type(data).__name__)

    def _upload_gzip(self, url, data, headers):
        """Compress into a temporary file (never the whole content in memory
        for a local file), hashing the content on the way, then send that."""
        import zlib
        if isinstance(data, os.PathLike):
            with open(os.fspath(data), "rb") as f:
                return self._upload_gzip(url, f, headers)
        if isinstance(data, (bytes, bytearray, memoryview)):
            import io
            data = io.BytesIO(bytes(data))
        if not hasattr(data, "read"):
            raise TypeError("upload() takes bytes, str, an os.PathLike or a binary file, not %s"
                            % type(data).__name__)
        h = hashlib.sha256()
        z = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        with tempfile.TemporaryFile() as tmp:
            while True:
                block = data.read(1 << 20)
                if not block:
                    break
                h.update(block)
                tmp.write(z.compress(block))
            tmp.write(z.flush())
            size = tmp.tell()
            tmp.seek(0)
            headers["X-Content-SHA256"] = h.hexdigest()
            headers["Content-Encoding"] = "gzip"
            return self._upload(url, tmp, headers, size)

    def _upload_file(self, url, f, headers):
        try:
            pos = f.tell()
            size = os.fstat(f.fileno()).st_size - pos
        except (AttributeError, OSError, ValueError):
            data = f.read()
            headers["X-Content-SHA256"] = hashlib.sha256(data).hexdigest()
            return self._upload(url, data, headers, len(data))
        h = hashlib.sha256()
        left = size
        while left > 0:
            block = f.read(min(left, 1 << 20))
            if not block:
                break
            h.update(block)
            left -= len(block)
        f.seek(pos)
        headers["X-Content-SHA256"] = h.hexdigest()
        return self._upload(url, f, headers, size)

    def _upload(self, url, body, headers, size):
        headers["Content-Length"] = str(size)
        timeout = max(60.0, size / 5e6)
        return Info(decode_json(self._http.request_raw("PUT", url, body, headers, timeout=timeout)))

    def download(self, path, dest=None, gzip=False):
        """The content of ``path`` as bytes; with ``dest`` (a local path or a
        writable binary file) the content is streamed there and its size returned.

        Every download is checked against its Content-Length and sha256: a
        short one raises ``TransferError``, a corrupted one ``IntegrityError``.
        To a local path, the content goes to a temporary file in the same
        directory, renamed over ``dest`` only once it is whole and verified:
        a failed download leaves ``dest`` as it was and no partial file. (A
        file object given as ``dest`` has received what arrived before the
        error: the caller owns it.) ``gzip=True`` asks for the content
        compressed on the way (inflated here, checked the same)."""
        import io
        url = self._path("/files") + "?" + urllib.parse.urlencode({"path": _check_path(path)})
        if dest is None:
            buf = io.BytesIO()
            self._http.request_to_file("GET", url, buf, timeout=300.0, gzip=gzip)
            return buf.getvalue()
        if hasattr(dest, "write"):
            return self._http.request_to_file("GET", url, dest, timeout=300.0, gzip=gzip)
        dest = os.fspath(dest)
        d, name = os.path.split(os.path.abspath(dest))
        fd, tmp = tempfile.mkstemp(dir=d, prefix="." + name + ".", suffix=".airlock-part")
        try:
            with os.fdopen(fd, "wb") as f:
                n = self._http.request_to_file("GET", url, f, timeout=300.0, gzip=gzip)
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return n

    # -- code --------------------------------------------------------------------
    @staticmethod
    def _wait(timeout):
        if timeout is None:
            return _DEFAULT_RUN_WAIT_S
        if timeout == 0:  # no per-call limit: the call ends when it does, or with the sandbox
            return None
        return timeout + _GRACE_S

    @staticmethod
    def _code_body(code, language, timeout, envs=None, context=None):
        body = {"code": code}
        if language is not None:
            body["language"] = language
        if context is not None:
            body["context"] = context.id if isinstance(context, CodeContext) else str(context)
        if timeout is not None:
            body["timeout_s"] = _secs(timeout)
        if envs:
            body["env"] = {str(k): str(v) for k, v in envs.items()}
        return body

    def run_code(self, code, language=None, timeout=None, envs=None, context=None,
                 on_stdout=None, on_stderr=None, on_result=None, on_error=None):
        """Run code in a persistent REPL of the sandbox (or a fresh bash).

        ``language``: "python" (the default), "bash", "r" or "javascript"
        (R and JavaScript run in their own default contexts, "default-r"
        and "default-javascript", made at their first call). ``context``: a
        ``CodeContext`` (or its id) from ``create_code_context``: the code runs
        in that REPL, with its globals; its language is the context's.
        ``timeout``: seconds (default 60 on the server); 0 means no per-call
        limit, the call may run as long as the sandbox lives. A timed-out call
        is an ``Execution`` whose ``error.name`` is ``TimeoutError``;
        ``SandboxTimeout`` is raised only when the sandbox itself expired.
        ``envs``: environment variables for this call only, over the
        sandbox's ``env`` (``os.environ`` is put back after the call).

        Callbacks: ``on_stdout(text)`` / ``on_stderr(text)`` as output arrives
        (the call is then streamed), ``on_result(Result)`` for each rich
        result and ``on_error(ExecutionError)`` once the call has ended."""
        if on_stdout or on_stderr or on_result or on_error:
            ex = self.run_code_stream(code, language, timeout, envs, context=context, on_stdout=on_stdout,
                                      on_stderr=on_stderr, on_result=on_result, on_error=on_error).drain()
        else:
            ex = Execution(self._call("POST", "/code", self._code_body(code, language, timeout, envs, context),
                                      timeout=self._wait(timeout)))
        if ex.repl_restarted:
            lang = language or getattr(context, "language", None)
            label = {"r": "R", "javascript": "JavaScript", "js": "JavaScript"}.get(lang, "Python")
            warnings.warn(ReplRestarted(
                "sandbox %s: the %s REPL was restarted; the variables and imports of earlier "
                "calls are gone" % (self._id, label)), stacklevel=2)
        return ex

    def run_code_stream(self, code, language=None, timeout=None, envs=None, context=None, final=False,
                        on_stdout=None, on_stderr=None, on_result=None, on_error=None):
        """Like run_code, but yields event dicts as they happen:
        ``{"type": "stdout"|"stderr", "data"}``, then ``{"type": "result", ...}``,
        then ``{"type": "exit", "exit_code"}`` (or ``{"type": "error", "error"}``);
        with ``final=True`` the last item is then the final ``Execution``
        (also in the iterator's ``execution`` once it has ended).

        ``exit`` and ``error`` are terminal: the daemon ends every stream with
        one. A stream cut before it (the daemon died, the connection broke)
        raises ``TransferError``: "finished" and "cut" never look alike."""
        events = self._http.stream_lines("POST", self._path("/code"),
                                         self._code_body(code, language, timeout, envs, context),
                                         self._wait(timeout), terminal=frozenset(("exit", "error")))
        return ExecutionStream(events, final=final, callbacks={
            "on_stdout": on_stdout, "on_stderr": on_stderr, "on_result": on_result, "on_error": on_error})

    # -- code contexts: independent REPLs (E2B code interpreter's names) ---------
    def create_code_context(self, language="python", cwd=None):
        """A new REPL in this sandbox with its own globals (same files, same
        user, the sandbox's memory shared). ``language``: "python", "r" or
        "javascript" ("js"). ``cwd``: where it starts, relative
        to /home/user; a missing one raises ``NotFound``. At most 8 contexts
        per sandbox, the default one included (``QuotaExceeded`` beyond)."""
        body = {"language": language}
        if cwd is not None:
            body["cwd"] = cwd
        return CodeContext(self._call("POST", "/contexts", body))

    def list_code_contexts(self):
        """Every context of the sandbox, the default one first."""
        return [CodeContext(c) for c in self._call("GET", "/contexts").get("contexts", [])]

    @staticmethod
    def _context_id(context):
        cid = context.id if isinstance(context, CodeContext) else context
        if not isinstance(cid, str) or not cid:
            raise TypeError("context must be a CodeContext or its id")
        return _q(cid)

    def restart_code_context(self, context):
        """A fresh REPL for the context: its state is gone, its id stays. A call
        running in it ends with the error ``ContextRestarted``."""
        return CodeContext(self._call("POST", "/contexts/" + self._context_id(context) + "/restart"))

    def remove_code_context(self, context):
        """Remove the context and stop its REPL (the default one cannot be removed)."""
        self._call("DELETE", "/contexts/" + self._context_id(context))

    @staticmethod
    def _exec_body(cmd, env, cwd, stdin, timeout):
        if isinstance(cmd, (list, tuple)):
            cmd = [str(a) for a in cmd]
        elif not isinstance(cmd, str):
            raise TypeError("cmd must be a list of arguments or a shell string")
        body = {"cmd": cmd}
        if env is not None:
            body["env"] = env
        if cwd is not None:
            body["cwd"] = cwd
        if stdin is not None:
            body["stdin"] = stdin.decode("utf-8") if isinstance(stdin, (bytes, bytearray)) else stdin
        if timeout is not None:
            body["timeout_s"] = _secs(timeout)
        return body

    def exec(self, cmd, env=None, cwd=None, stdin=None, timeout=None, background=False,
             on_stdout=None, on_stderr=None, pty=False):
        """Run a command: ``cmd`` is an argv list, or a string run by bash. ``cwd``:
        relative to /home/user; a missing one raises ``InvalidRequest``.

        ``background=True`` returns a ``CommandHandle`` at once (``pid``,
        ``wait()``, ``kill()``, ``send_stdin()``, ``close_stdin()``, iterate
        it for output); the process runs until it exits, is killed or the
        sandbox ends (``timeout`` then limits it only if given). Otherwise
        the call waits and returns an ``Execution``; a timeout kills the
        command and everything it started. ``on_stdout`` / ``on_stderr``
        stream a foreground command's output to callbacks as it arrives.

        ``pty=True`` (24x80) or ``pty=(rows, cols)`` runs it on a terminal of
        the sandbox's own (isatty is true; stdout and stderr arrive together
        as stdout; ``close_stdin`` sends ^D); ``handle.resize(rows, cols)``
        changes its window (SIGWINCH)."""
        body = self._exec_body(cmd, env, cwd, stdin, timeout)
        if pty:
            if isinstance(pty, (tuple, list)):
                body["pty"] = {"rows": int(pty[0]), "cols": int(pty[1])}
            elif isinstance(pty, dict):
                body["pty"] = dict(pty)
            else:
                body["pty"] = True
        if background:
            body["background"] = True
            return CommandHandle(self, self._call("POST", "/exec", body))
        if on_stdout or on_stderr:
            events = self._http.stream_lines("POST", self._path("/exec"), body, self._wait(timeout),
                                             terminal=frozenset(("exit", "error")))
            return ExecutionStream(events, callbacks={"on_stdout": on_stdout, "on_stderr": on_stderr}).drain()
        return Execution(self._call("POST", "/exec", body, timeout=self._wait(timeout)))

    def install_wheels(self, paths, timeout=None):
        """Install wheels already uploaded into the sandbox (``upload``) with pip,
        offline: ``--no-index``, into the writable ``~/.local``. Dependencies must
        be among ``paths`` or already in the template; otherwise pip refuses and
        ``WheelInstallError`` carries its message. The sandbox's Python REPL can
        import the new packages right away."""
        if isinstance(paths, str):
            paths = [paths]
        paths = [str(p) for p in paths]
        if not paths:
            raise ValueError("install_wheels needs at least one wheel path")
        # --break-system-packages: Debian's PEP 668 marker guards the system's
        # Python; here that is the read-only template, and --user writes only
        # this sandbox's ~/.local
        cmd = ["python3", "-m", "pip", "install", "--no-index", "--user", "--no-cache-dir",
               "--disable-pip-version-check", "--no-warn-script-location", "--break-system-packages"] + paths
        out = self.exec(cmd, timeout=timeout)
        if out.exit_code != 0:
            raise WheelInstallError(out.stderr.strip() or out.stdout.strip() or
                                    "pip exited with status %s" % out.exit_code, out)
        # site.py adds ~/.local's site-packages at start only if it existed
        # then; the REPL started before the install
        self.run_code("import importlib as _il, site as _s, sys as _y\n"
                      "_p = _s.getusersitepackages()\n"
                      "_p in _y.path or _s.addsitedir(_p)\n"
                      "_il.invalidate_caches()\n"
                      "del _il, _s, _y, _p")
        return out

    def logs(self):
        """The sandbox's audit trail."""
        return self._call("GET", "/logs").get("events", [])

    # -- egress (docs/egress.md) --------------------------------------------------
    def egress(self):
        """The policy: ``{"allow": [...]}``, or ``{"open": True, "allow": []}``
        for open egress; ``{"allow": []}`` for a sandbox created sealed (a vm
        sandbox raises ``InvalidRequest``: 400 egress_unavailable)."""
        return self._call("GET", "/egress")

    def set_egress(self, egress):
        """Change the policy at once: ``{"allow": [...]}`` or a list (an
        allow-list), ``True`` (open egress) or ``False`` (nothing: no route,
        the proxy refuses everything). New connections follow it, open ones
        it no longer allows are closed. Returns the new policy, with
        ``closed`` (how many were)."""
        if egress is True:
            return self._call("PUT", "/egress", {"egress": True})
        return self._call("PUT", "/egress", {"allow": []} if egress is False else _egress(egress))

    def egress_log(self):
        """Every connection through the egress proxy, allowed or denied,
        oldest first: time_ms, method, host, port, address, bytes_out,
        bytes_in, duration_ms, verdict, reason."""
        return self._call("GET", "/egress/log").get("entries", [])


def _egress(egress):
    """The create body's "egress": False (sealed), a list of rules, or
    ``{"allow": [...]}``, or True (open egress: docs/egress.md)."""
    if isinstance(egress, (list, tuple)):
        return {"allow": list(egress)}
    if isinstance(egress, dict):
        return egress
    return bool(egress)


__all__ = ["Sandbox", "Files"]
