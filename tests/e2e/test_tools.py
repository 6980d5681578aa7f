"""airlock.tools: the tool schemas and dispatch against a real sandbox, and
the agent-loop examples end to end against a fake vendor server on 127.0.0.1."""

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import airlock
from airlock.tools import TOOLS, anthropic_tools, dispatch, openai_tools

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["run_python", "run_bash", "upload_file", "download_file", "list_files"]


# ---- schemas -----------------------------------------------------------------

def _check_schema(s):
    assert s["type"] == "object"
    assert isinstance(s["properties"], dict) and s["properties"]
    for name, p in s["properties"].items():
        assert p["type"] in ("string", "integer"), name
        assert p["description"]
    for r in s.get("required", []):
        assert r in s["properties"]
    assert s["additionalProperties"] is False
    json.dumps(s)


def test_neutral_tools_match_mcp_names():
    assert [t["name"] for t in TOOLS] == NAMES
    for t in TOOLS:
        assert t["description"]
        _check_schema(t["parameters"])
    req = {t["name"]: t["parameters"].get("required", []) for t in TOOLS}
    assert req == {"run_python": ["code"], "run_bash": ["command"], "upload_file": ["path"],
                   "download_file": ["path"], "list_files": []}
    # the MCP server's own table says the same names and descriptions
    mcp = (ROOT / "src/cli/mcp_tools.c").read_text()
    for t in TOOLS:
        assert '"%s"' % t["name"] in mcp
    assert TOOLS[0]["description"][:60] in mcp.replace('"\n     "', "")


def test_openai_and_anthropic_shapes():
    o, a = openai_tools(), anthropic_tools()
    assert [t["function"]["name"] for t in o] == NAMES == [t["name"] for t in a]
    for t in o:
        assert set(t) == {"type", "function"} and t["type"] == "function"
        assert set(t["function"]) == {"name", "description", "parameters"}
        _check_schema(t["function"]["parameters"])
    for t in a:
        assert set(t) == {"name", "description", "input_schema"}
        _check_schema(t["input_schema"])
    # copies: a caller editing one does not change TOOLS
    o[0]["function"]["parameters"]["properties"].clear()
    assert TOOLS[0]["parameters"]["properties"]
    assert airlock.openai_tools is openai_tools and airlock.dispatch is dispatch


# ---- dispatch ----------------------------------------------------------------

def test_run_python_state_persists_and_json_string_args(sb):
    r = dispatch(sb, "run_python", {"code": "tools_x = 21\nprint('hi')"})
    assert r["stdout"] == "hi\n" and "error" not in r, r
    r = dispatch(sb, "run_python", json.dumps({"code": "tools_x * 2"}))
    assert r["result"] == "42", r
    json.dumps(r)


def test_run_python_exception_is_an_error_result(sb):
    r = dispatch(sb, "run_python", {"code": "1/0"})
    assert r["error"]["name"] == "ZeroDivisionError"
    assert "division by zero" in r["error"]["value"]
    assert isinstance(r["error"]["traceback"], str)


def test_run_python_image(sb):
    code = ("import base64\nfrom IPython.display import Image, display\n"
            "png = base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
            "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==')\ndisplay(Image(data=png))")
    r = dispatch(sb, "run_python", {"code": code})
    if "error" in r and r["error"]["name"] == "ModuleNotFoundError":
        pytest.skip("no IPython in this template")
    assert "error" not in r, r
    img = r["images"][0]
    assert img["mime_type"] == "image/png"
    assert base64.b64decode(img["data_base64"]).startswith(b"\x89PNG")
    assert "image" in r["note"]


def test_run_bash(sb):
    r = dispatch(sb, "run_bash", {"command": "echo out; echo err >&2; pwd", "cwd": "/tmp"})
    assert r["stdout"] == "out\n/tmp\n" and r["stderr"] == "err\n" and r["exit_code"] == 0, r
    assert "error" not in r
    r = dispatch(sb, "run_bash", {"command": "exit 3"})
    assert r["exit_code"] == 3 and r["error"]["value"] == "exit code: 3"


def test_upload_download_list(sb):
    r = dispatch(sb, "upload_file", {"path": "/data/tools/a.txt", "content": "héllo\n"})
    assert r["path"] == "/data/tools/a.txt" and r["size"] == len("héllo\n".encode()), r
    blob = bytes(range(256))
    r = dispatch(sb, "upload_file", {"path": "/data/tools/b.bin", "content_base64": base64.b64encode(blob).decode(),
                                     "content": None})
    assert r["size"] == 256, r
    assert dispatch(sb, "download_file", {"path": "/data/tools/a.txt"})["text"] == "héllo\n"
    r = dispatch(sb, "download_file", {"path": "/data/tools/b.bin"})
    assert base64.b64decode(r["content_base64"]) == blob and "text" not in r
    r = dispatch(sb, "list_files", {"path": "/data/tools"})
    assert sorted(e["name"] for e in r["entries"]) == ["a.txt", "b.bin"], r
    assert "a.txt" in r["text"]
    dispatch(sb, "run_bash", {"command": "mkdir -p /data/tools/sub && touch /data/tools/sub/c"})
    r = dispatch(sb, "list_files", {"path": "/data/tools", "depth": 2})
    assert "/data/tools/sub/c" in [e["path"] for e in r["entries"]], r
    # the code sees what was uploaded
    assert dispatch(sb, "run_python", {"code": "open('/data/tools/a.txt').read()"})["result"] == "'héllo\\n'"


def test_download_cap_and_missing(sb):
    dispatch(sb, "run_bash", {"command": "head -c %d /dev/zero > /tmp/big" % (airlock.tools.MAX_DOWNLOAD_BYTES + 1)})
    r = dispatch(sb, "download_file", {"path": "/tmp/big"})
    assert r["error"]["name"] == "FileTooLarge", r
    r = dispatch(sb, "download_file", {"path": "/tmp/no/such/file"})
    assert r["error"]["name"] == "NotFound", r
    r = dispatch(sb, "download_file", {"path": "/tmp"})
    assert r["error"]["name"] == "NotAFile", r


@pytest.mark.parametrize("name,args,what", [
    ("no_such_tool", {}, "UnknownTool"),
    ("run_python", {}, "InvalidArguments"),
    ("run_python", {"code": 5}, "InvalidArguments"),
    ("run_python", "{not json", "InvalidArguments"),
    ("run_python", "[1]", "InvalidArguments"),
    ("run_python", {"code": "1", "bogus": 1}, "InvalidArguments"),
    ("run_bash", {"command": "true", "cwd": 7}, "InvalidArguments"),
    ("upload_file", {"path": "x"}, "InvalidArguments"),
    ("upload_file", {"path": "x", "content": "a", "content_base64": "YQ=="}, "InvalidArguments"),
    ("upload_file", {"path": "x", "content_base64": "!!"}, "InvalidArguments"),
    ("upload_file", {"path": "/etc/passwd", "content": "a"}, None),
    ("list_files", {"depth": 0}, "InvalidArguments"),
])
def test_bad_calls_are_error_results(sb, name, args, what):
    r = dispatch(sb, name, args)
    assert set(r) == {"error"}, r
    assert set(r["error"]) == {"name", "value", "traceback"}
    if what:
        assert r["error"]["name"] == what, r
    json.dumps(r)
    # the sandbox is still fine
    assert dispatch(sb, "run_python", {"code": "1+1"})["result"] == "2"


# ---- the examples, against a fake vendor --------------------------------------

class _Fake:
    """A vendor API on 127.0.0.1: a tool call first, then a final answer built
    from the tool's result; it records every request it got."""

    def __init__(self, answer):
        self.requests = []
        fake = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                out = json.dumps(answer(len(fake.requests), body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def _run_example(daemon, script, env):
    e = dict(os.environ, AIRLOCK_URL=daemon.url, AIRLOCK_API_KEY=daemon.key,
             PYTHONPATH=str(ROOT / "sdk" / "python"), **env)
    p = subprocess.run([sys.executable, str(ROOT / "examples" / script), "compute 6*7"], env=e,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_openai_example_loop(daemon):
    def answer(n, body):
        if n == 1:
            return {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "run_python", "arguments": json.dumps({"code": "6*7"})}}]}}]}
        tool = json.loads(body["messages"][-1]["content"])
        return {"choices": [{"message": {"role": "assistant", "content": "the answer is " + tool["result"]}}]}

    fake = _Fake(answer)
    try:
        out = _run_example(daemon, "agent_loop_openai.py", {"OPENAI_API_KEY": "sk-test", "OPENAI_MODEL": "m-1",
                                                            "OPENAI_BASE_URL": fake.url + "/v1"})
    finally:
        fake.close()
    assert out.strip().splitlines()[-1] == "the answer is 42", out
    assert len(fake.requests) == 2
    path, headers, body = fake.requests[0]
    assert path == "/v1/chat/completions" and headers["authorization"] == "Bearer sk-test"
    assert body["model"] == "m-1" and body["tools"] == openai_tools()
    assert body["messages"][-1] == {"role": "user", "content": "compute 6*7"}
    msgs = fake.requests[1][2]["messages"]
    assert msgs[-2]["tool_calls"][0]["id"] == "call_1"
    assert msgs[-1]["role"] == "tool" and msgs[-1]["tool_call_id"] == "call_1"


def test_anthropic_example_loop(daemon):
    def answer(n, body):
        if n == 1:
            return {"role": "assistant", "stop_reason": "tool_use", "content": [
                {"type": "text", "text": "Let me compute."},
                {"type": "tool_use", "id": "toolu_1", "name": "run_bash", "input": {"command": "echo $((6*7))"}}]}
        tool = json.loads(body["messages"][-1]["content"][0]["content"])
        return {"role": "assistant", "stop_reason": "end_turn",
                "content": [{"type": "text", "text": "the answer is " + tool["stdout"].strip()}]}

    fake = _Fake(answer)
    try:
        out = _run_example(daemon, "agent_loop_anthropic.py", {"ANTHROPIC_API_KEY": "sk-ant-test",
                                                               "ANTHROPIC_MODEL": "c-1",
                                                               "ANTHROPIC_BASE_URL": fake.url})
    finally:
        fake.close()
    assert out.strip().splitlines()[-1] == "the answer is 42", out
    assert len(fake.requests) == 2
    path, headers, body = fake.requests[0]
    assert path == "/v1/messages" and headers["x-api-key"] == "sk-ant-test"
    assert headers["anthropic-version"] and body["model"] == "c-1" and body["max_tokens"] > 0
    assert body["tools"] == anthropic_tools() and body["messages"] == [{"role": "user", "content": "compute 6*7"}]
    msgs = fake.requests[1][2]["messages"]
    assert msgs[-2]["role"] == "assistant" and msgs[-2]["content"][1]["type"] == "tool_use"
    res = msgs[-1]["content"][0]
    assert msgs[-1]["role"] == "user" and res["type"] == "tool_result" and res["tool_use_id"] == "toolu_1"
    assert res["is_error"] is False
