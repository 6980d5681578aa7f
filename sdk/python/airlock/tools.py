"""Ready-made tool definitions for LLM tool calling, and one dispatcher.

The same five tools as ``airlock mcp`` (docs/mcp.md, src/cli/mcp_tools.c),
with the same names, descriptions and arguments, as plain data: no vendor
SDK is needed.

    from airlock import Sandbox
    from airlock.tools import openai_tools, anthropic_tools, dispatch
    with Sandbox() as sb:
        ... send openai_tools() (or anthropic_tools()) with the request ...
        result = dispatch(sb, call.name, call.arguments)   # a JSON-serializable dict

``dispatch`` never raises for a tool-level failure (an unknown tool, a bad
argument, the code's exception, an error from airlockd): the result holds
``{"error": ...}`` so the model reads what went wrong and the loop goes on.
"""

import base64
import copy
import json

from .errors import AirlockError

__all__ = ["TOOLS", "openai_tools", "anthropic_tools", "dispatch", "MAX_DOWNLOAD_BYTES"]

# download_file's cap, like `airlock mcp --max-file-mb`: a model's context is
# no place for a large file; it can read a part with run_bash or run_python.
MAX_DOWNLOAD_BYTES = 1024 * 1024

_IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/webp")

TOOLS = [
    {
        "name": "run_python",
        "description": (
            "Run Python code in this session's sandbox: one persistent interpreter, so variables, imports and "
            "definitions stay between calls. Returns stdout, stderr, the value of the last expression and rich "
            "results (matplotlib figures as images). pandas, numpy, matplotlib and scipy are usually installed. "
            "The sandbox has no network access."),
        "parameters": {
            "type": "object",
            "properties": {
                "code": {"type": "string",
                         "description": "Python code to run. The last expression's value is returned as the result."},
            },
            "required": ["code"],
            "additionalProperties": False,
        },
    },
    {
        "name": "run_bash",
        "description": (
            "Run a bash command line in this session's sandbox (a fresh process each time; the files stay). "
            "Returns stdout, stderr and the exit code. The sandbox has no network access."),
        "parameters": {
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "A bash command line (run with bash -c)."},
                "cwd": {"type": "string", "description": "Working directory (default /home/user; relative to it)."},
            },
            "required": ["command"],
            "additionalProperties": False,
        },
    },
    {
        "name": "upload_file",
        "description": (
            "Write a file into this session's sandbox, from text (content) or base64 (content_base64); "
            "then read it from run_python or run_bash."),
        "parameters": {
            "type": "object",
            "properties": {
                "path": {"type": "string",
                         "description": "Where to write the file in the sandbox: absolute, or relative to /home/user. "
                                        "Writable: /home/user, /data, /tmp. Missing directories are created."},
                "content": {"type": "string", "description": "The file's content as UTF-8 text."},
                "content_base64": {"type": "string",
                                   "description": "The file's content as standard base64 (for binary files), "
                                                  "instead of content."},
            },
            "required": ["path"],
            "additionalProperties": False,
        },
    },
    {
        "name": "download_file",
        "description": ("Read a file from this session's sandbox: UTF-8 text files as text, other files "
                        "(images included) as base64."),
        "parameters": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "The file to read: absolute, or relative to /home/user."},
            },
            "required": ["path"],
            "additionalProperties": False,
        },
    },
    {
        "name": "list_files",
        "description": "List a directory of this session's sandbox (default /home/user).",
        "parameters": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "The directory to list (default /home/user)."},
                "depth": {"type": "integer", "minimum": 1,
                          "description": "How many levels to list (default 1: the directory's own entries)."},
            },
            "additionalProperties": False,
        },
    },
]


def openai_tools():
    """TOOLS in OpenAI's Chat Completions "function" format."""
    return [{"type": "function",
             "function": {"name": t["name"], "description": t["description"],
                          "parameters": copy.deepcopy(t["parameters"])}} for t in TOOLS]


def anthropic_tools():
    """TOOLS in Anthropic's Messages API format."""
    return [{"name": t["name"], "description": t["description"],
             "input_schema": copy.deepcopy(t["parameters"])} for t in TOOLS]


class _BadArgs(Exception):
    pass


def _str(args, name, required=False):
    v = args.get(name)
    if v is None:
        if required:
            raise _BadArgs("needs %r: a string" % name)
        return None
    if not isinstance(v, str) or "\0" in v:
        raise _BadArgs("%r must be a string (without NUL characters)" % name)
    return v


def _run_result(ex, is_exec):
    """An Execution as a dict, in the order airlock mcp shows it (docs/mcp.md)."""
    out = {"stdout": ex.stdout, "stderr": ex.stderr}
    if ex.text is not None:
        out["result"] = ex.text
    images, others = [], []
    for r in ex.results:
        mime = next((m for m in _IMAGE_MIMES if r.raw.get(m)), None)
        if mime:
            images.append({"mime_type": mime, "data_base64": r.raw[mime]})
        elif not r.is_main_result:
            text = next((r.raw[k] for k in ("text/plain", "text/markdown", "text/latex", "image/svg+xml",
                                            "text/html", "application/json") if r.raw.get(k) is not None), None)
            if text is not None:
                others.append(text if isinstance(text, str) else json.dumps(text))
    if others:
        out["results"] = others
    if images:
        out["images"] = images
        out["note"] = ("%d image(s) as base64 in images[]: show them to a user, or save them with "
                       "run_python to inspect them" % len(images))
    if is_exec:
        out["exit_code"] = ex.exit_code
    if ex.error is not None:
        out["error"] = {"name": ex.error.name, "value": ex.error.value, "traceback": ex.error.traceback}
    elif is_exec and ex.exit_code not in (0, None):
        out["error"] = {"name": "ExitCode", "value": "exit code: %s" % ex.exit_code, "traceback": ""}
    if ex.timed_out:
        out["timed_out"] = True
    if ex.repl_restarted:
        out["note_restart"] = "the Python REPL was restarted: variables and imports of earlier calls are gone"
    return out


def _run_python(sb, args):
    return _run_result(sb.run_code(_str(args, "code", True)), False)


def _run_bash(sb, args):
    return _run_result(sb.exec(_str(args, "command", True), cwd=_str(args, "cwd")), True)


def _upload_file(sb, args):
    path = _str(args, "path", True)
    if not path:
        raise _BadArgs("needs 'path': where to write the file in the sandbox")
    text, b64 = _str(args, "content"), _str(args, "content_base64")
    if (text is None) == (b64 is None):
        raise _BadArgs("needs exactly one of 'content' (text) or 'content_base64' (base64), as a string")
    if text is not None:
        data = text.encode("utf-8")
    else:
        try:
            data = base64.b64decode(b64, validate=True)
        except ValueError:
            raise _BadArgs("'content_base64' is not valid standard base64") from None
    r = sb.upload(data, path)
    where = r.get("path", path) if isinstance(r, dict) else path
    return {"path": where, "size": len(data), "text": "wrote %d bytes to %s" % (len(data), where)}


def _download_file(sb, args):
    path = _str(args, "path", True)
    if not path:
        raise _BadArgs("needs 'path': the file to read in the sandbox")
    info = sb.files.get_info(path)
    if info.get("type") != "file":
        return {"error": {"name": "NotAFile", "value": "%s is a %s, not a file" % (path, info.get("type")),
                          "traceback": ""}}
    if (info.get("size") or 0) > MAX_DOWNLOAD_BYTES:
        return {"error": {"name": "FileTooLarge",
                          "value": "%s is larger than the limit of %d bytes; read a part of it with run_bash or "
                                   "run_python instead" % (path, MAX_DOWNLOAD_BYTES), "traceback": ""}}
    data = sb.download(path)
    if len(data) > MAX_DOWNLOAD_BYTES:  # it grew between the two calls
        data = data[:MAX_DOWNLOAD_BYTES]
    out = {"path": info.get("path", path), "size": len(data)}
    try:
        out["text"] = data.decode("utf-8")
    except UnicodeDecodeError:
        out["content_base64"] = base64.b64encode(data).decode("ascii")
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            out["mime_type"] = "image/png"
    return out


def _list_files(sb, args):
    path = _str(args, "path") or "/home/user"
    depth = args.get("depth", 1)
    if depth is None:
        depth = 1
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise _BadArgs("'depth' must be an integer >= 1")
    entries = sb.files.list(path, depth=depth)
    lines = ["%s (%d entries)" % (path, len(entries))]
    for e in entries:
        t = e.get("type", "?")
        lines.append("%-7s %12d  %s%s" % (t, e.get("size") or 0, e.get("path") if depth > 1 else e.get("name"),
                                          "/" if t == "dir" else ""))
    return {"path": path, "entries": [{"name": e.get("name"), "path": e.get("path"), "type": e.get("type"),
                                       "size": e.get("size")} for e in entries],
            "text": "\n".join(lines)}


_DISPATCH = {"run_python": _run_python, "run_bash": _run_bash, "upload_file": _upload_file,
             "download_file": _download_file, "list_files": _list_files}


def _error(name, value):
    return {"error": {"name": name, "value": value, "traceback": ""}}


def dispatch(sandbox, name, arguments):
    """Run one tool call against ``sandbox``; a JSON-serializable dict back.

    ``arguments`` is a dict, or a JSON string (as OpenAI sends it). A failure
    of the call itself is ``{"error": {"name", "value", "traceback"}}``, never
    an exception."""
    fn = _DISPATCH.get(name)
    if fn is None:
        return _error("UnknownTool", "no tool named %r; the tools are: %s" % (name, ", ".join(_DISPATCH)))
    if arguments is None or arguments == "":
        arguments = {}
    if isinstance(arguments, (str, bytes, bytearray)):
        try:
            arguments = json.loads(arguments)
        except ValueError as e:
            return _error("InvalidArguments", "%s: the arguments are not valid JSON: %s" % (name, e))
    if not isinstance(arguments, dict):
        return _error("InvalidArguments", "%s: the arguments must be a JSON object" % name)
    allowed = next(t for t in TOOLS if t["name"] == name)["parameters"]["properties"]
    extra = sorted(set(arguments) - set(allowed))
    if extra:
        return _error("InvalidArguments", "%s: unknown argument(s) %s; it takes %s" % (name, ", ".join(extra),
                                                                                        ", ".join(allowed)))
    try:
        return fn(sandbox, arguments)
    except _BadArgs as e:
        return _error("InvalidArguments", "%s %s" % (name, e))
    except AirlockError as e:
        return _error(type(e).__name__, "%s failed: %s" % (name, e))
    except Exception as e:  # noqa: BLE001  (the model must read it; the loop goes on)
        return _error(type(e).__name__, "%s failed: %s" % (name, e))
