#!/usr/bin/python3
"""Write the seed corpora fuzz/corpus/<harness>/ (checked in; rerun after
changing a harness's input layout). Each seed is a realistic input in the
layout the harness's header comment describes, so the fuzzer starts from
requests that reach deep into the code instead of discovering the frame
magic or the route table byte by byte.

    /usr/bin/python3 fuzz/seeds.py
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# src/common/proto.h
MAGIC = 0x314B4C41
HELLO, SHUTDOWN, RUN_CODE, EXEC, SIGNAL = 0x01, 0x02, 0x10, 0x11, 0x12
FILE_PUT, FILE_GET, FILE_LIST, FILE_DELETE, FILE_MKDIR, FILE_DATA, FILE_ACK = 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26
STDOUT, STDERR, RESULT, OK, ERROR, LOG = 0x40, 0x41, 0x42, 0x43, 0x44, 0x45
F_END = 1

# fuzz/fuzz_http.h
ADMIN_KEY = "ak_00000000000000000000000000000a0a"
USER_KEY = "ak_00000000000000000000000000000b0b"
SB_DELETED = "sb_00000000000000000000000000000001"
SB_EXPIRED = "sb_00000000000000000000000000000002"
SB_ADMINS = "sb_00000000000000000000000000000003"


def frame(ftype, req_id, payload=b"", flags=0, version=1, length=None):
    if isinstance(payload, (dict, list)):
        payload = json.dumps(payload).encode()
    elif isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    return struct.pack("<IBBHII", MAGIC, version, ftype, flags, req_id, n) + payload


def write(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_proto: mode byte, schedule length byte, schedule, stream

def proto_seeds():
    run = (
        frame(STDOUT, 1, "hello \xe2\x82")
        + frame(STDOUT, 1, b"\xac world\n\xff")
        + frame(STDERR, 1, "Traceback...\n")
        + frame(LOG, 0, "info: runner started")
        + frame(RESULT, 1, {"exit_code": 0, "error": None, "results": [{"text/plain": "2"}],
                            "duration_ms": 3, "stdout_truncated": False, "stderr_truncated": False,
                            "timed_out": False, "killed_signal": None}, flags=F_END)
    )
    errors = (
        frame(ERROR, 1, {"code": "path_escape", "message": "open /etc/shadow: path leaves the sandbox"}, flags=F_END)
        + frame(ERROR, 2, {"code": "bogus", "message": "x" * 600 + "\u20ac"}, flags=F_END)
        + frame(ERROR, 3, b"not json", flags=F_END)
        + frame(ERROR, 4, {"code": 5, "message": ["no"]}, flags=F_END)
    )
    download = (
        frame(OK, 2, {"size": 5, "mode": 420})
        + frame(FILE_DATA, 2, "hel")
        + frame(FILE_DATA, 2, "lo", flags=F_END)
        + frame(OK, 3, {"path": "/home/user", "entries": []}, flags=F_END)
    )
    hello = frame(OK, 1, {"version": 1, "agent": "airlock-agent 0.1.0", "pid": 1}, flags=F_END)
    bad = [
        ("bad_magic", b"XLK1" + frame(OK, 1, "{}")[4:]),
        ("bad_version", frame(OK, 1, "{}", version=2)),
        ("too_long", frame(OK, 1, "", length=(1 << 20) + 1)),
        ("eof_in_payload", frame(OK, 1, "{}", length=100)),
        ("eof_in_header", frame(OK, 1, "{}")[:9]),
        ("max_len_header", frame(FILE_DATA, 1, "", length=1 << 20)),
    ]
    sched_split = bytes([0, 1, 15, 200, 3])  # 1-byte, 2-byte, 16-byte, big, 4-byte writes
    for mode, tag in ((0, "recv"), (1, "conn"), (2, "call")):
        for name, stream in (("run", run), ("errors", errors), ("download", download), ("hello", hello)):
            write("proto", f"{tag}_{name}", bytes([mode | (3 << 2), 0]) + stream)
            write("proto", f"{tag}_{name}_split", bytes([mode | (3 << 2), len(sched_split)]) + sched_split + stream)
        for name, stream in bad:
            write("proto", f"{tag}_{name}", bytes([mode, 0]) + stream)
    write("proto", "header_codec", bytes([3, 0]) + hello + errors)


# ---- fuzz_agent: schedule length byte, schedule, stream

def agent_seeds():
    seqs = {
        "hello_shutdown": frame(HELLO, 1, {"version": 1}) + frame(SHUTDOWN, 2, {}),
        "put_get_list": (
            frame(FILE_PUT, 1, {"path": "notes/a.txt", "mode": 0o600})
            + frame(FILE_DATA, 1, "hello ")
            + frame(FILE_DATA, 1, "world\n", flags=F_END)
            + frame(FILE_GET, 2, {"path": "/home/user/notes/a.txt"})
            + frame(FILE_ACK, 2, {"bytes": 12})
            + frame(FILE_LIST, 3, {"path": "/home/user/notes"})
            + frame(FILE_LIST, 4, {"path": "/"})
        ),
        "put_empty_one_frame": frame(FILE_PUT, 1, {"path": "/tmp/empty"}, flags=F_END),
        "put_aborted": (
            frame(FILE_PUT, 1, {"path": "/data/big.bin"})
            + frame(FILE_DATA, 1, b"\x00" * 300)
            + frame(ERROR, 1, {"code": "invalid_request", "message": "client went away"}, flags=F_END)
        ),
        "escapes": (
            frame(FILE_PUT, 1, {"path": "../../etc/passwd"}, flags=F_END)
            + frame(FILE_PUT, 2, {"path": "/home/user/up/canary"}, flags=F_END)
            + frame(FILE_PUT, 3, {"path": "/home/user/abs/canary"}, flags=F_END)
            + frame(FILE_PUT, 4, {"path": "/tmp/etc/passwd"}, flags=F_END)
            + frame(FILE_MKDIR, 5, {"path": "/data/dotdot/etc/x"})
            + frame(FILE_DELETE, 6, {"path": "/home/user/up", "recursive": True})
            + frame(FILE_DELETE, 7, {"path": "/tmp/etc/passwd"})
            + frame(FILE_GET, 8, {"path": "/home/user/up/canary"})
            + frame(FILE_LIST, 9, {"path": "/data/loop"})
            + frame(FILE_PUT, 10, {"path": "/etc/new"}, flags=F_END)
            + frame(FILE_DELETE, 11, {"path": "/home/user"})
        ),
        "mkdir_delete_tree": (
            frame(FILE_MKDIR, 1, {"path": "/tmp/a/b/c"})
            + frame(FILE_PUT, 2, {"path": "/tmp/a/b/c/f", "mode": 0o7777}, flags=F_END)
            + frame(FILE_DELETE, 3, {"path": "/tmp/a"})
            + frame(FILE_DELETE, 4, {"path": "/tmp/a", "recursive": True})
            + frame(FILE_DELETE, 5, {"path": "/tmp/a", "recursive": "yes"})
        ),
        "bad_requests": (
            frame(FILE_GET, 1, {"path": "a\u0000b"})
            + frame(FILE_GET, 2, {"path": ""})
            + frame(FILE_GET, 3, {"path": 7})
            + frame(FILE_LIST, 4, "[1,2]")
            + frame(FILE_PUT, 5, {"path": "x" * 5000})
            + frame(FILE_PUT, 6, {"path": "/tmp/x", "mode": -1})
            + frame(SIGNAL, 7, {"target": 1, "signal": 9})
            + frame(SIGNAL, 8, {"target": 0, "signal": 99})
            + frame(HELLO, 0, {})
            + frame(0x7e, 9, {})
            + frame(FILE_ACK, 99, {"bytes": -1})
            + frame(RUN_CODE, 10, {"code": "print(1)", "language": "python"})
            + frame(EXEC, 11, {"argv": ["/bin/true"]})
        ),
        "deep_path": frame(FILE_MKDIR, 1, {"path": "/tmp/" + "d/" * 300}),
        "dots": frame(FILE_PUT, 1, {"path": "/home/user/./../user//x/../y"}, flags=F_END)
        + frame(FILE_LIST, 2, {"path": "/.."}),
        "download_window": (
            frame(FILE_PUT, 1, {"path": "/data/f"})
            + frame(FILE_DATA, 1, b"z" * 4096, flags=F_END)
            + frame(FILE_GET, 2, {"path": "/data/f"})
            + frame(FILE_ACK, 2, {"bytes": 1 << 40})
            + frame(ERROR, 2, {"code": "invalid_request", "message": "cancel"}, flags=F_END)
            + frame(FILE_GET, 2, {"path": "/data/f"})
        ),
        "bad_header_midway": frame(HELLO, 1, {"version": 1}) + b"ALK2" + b"\x00" * 12,
        "digests_and_kernel_paths": (
            frame(FILE_PUT, 1, {"path": "/data/d", "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"})
            + frame(FILE_DATA, 1, "hello", flags=F_END)
            + frame(FILE_PUT, 2, {"path": "/data/e", "sha256": "0" * 64})
            + frame(FILE_DATA, 2, "hello", flags=F_END)
            + frame(FILE_PUT, 3, {"path": "/data/f", "sha256": "NOTHEX"}, flags=F_END)
            + frame(FILE_GET, 4, {"path": "/data/d"})
            + frame(FILE_ACK, 4, {"bytes": 5})
            + frame(FILE_GET, 5, {"path": "/proc/self/environ"})
            + frame(FILE_LIST, 6, {"path": "/data/../proc/1/fd"})
            + frame(FILE_LIST, 7, {"path": "/dev"})
            + frame(FILE_GET, 8, {"path": "/data/\udcff"})
            + frame(FILE_GET, 9, {"path": "/data/d\u0000.bak"})
        ),
    }
    sched = bytes([0, 15, 2, 130])
    for name, stream in seqs.items():
        write("agent", name, bytes([0]) + stream)
        write("agent", name + "_split", bytes([len(sched)]) + sched + stream)


# ---- fuzz_http: mode byte, flags byte, lines

METHODS = {"GET": 0, "POST": 1, "PUT": 2, "DELETE": 3, "HEAD": 4, "OPTIONS": 5, "PATCH": 6}
AUTH = {None: 0, "admin": 1, "user": 2, "token": 3}


def script(*frames):
    """The live sandbox's agent script: (type, payload[, flags]) tuples;
    flags bit 0 END, bit 6 req_id 0, bit 7 req_id + 1."""
    out = b""
    for f in frames:
        ftype, payload = f[0], f[1]
        flags = f[2] if len(f) > 2 else 0
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode()
        elif isinstance(payload, str):
            payload = payload.encode()
        out += struct.pack("<BBH", ftype, flags, len(payload)) + payload
    return out


def http_req(method, target, auth="user", body=b"", token="", extra="", chunked=False, ndjson=False,
             expect=False, live=None, agent_dies=False):
    mode = 0
    prefix = b""
    if live is not None:  # a request to the live sandbox ('@' in target), answered by the script
        mode = 4 | (8 if agent_dies else 0)
        prefix = struct.pack("<H", len(live)) + live
    flags = (METHODS[method] if method in METHODS else 7) | (AUTH[auth] << 3)
    flags |= (0x20 if chunked else 0) | (0x40 if ndjson else 0) | (0x80 if expect else 0)
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    lines = b""
    if method not in METHODS:
        lines += method.encode() + b"\n"
    lines += target.encode() + b"\n" + token.encode() + b"\n" + extra.encode() + b"\n"
    return bytes([mode, flags]) + prefix + lines + body


def http_seeds():
    sb = SB_DELETED
    seeds = {
        "healthz": http_req("GET", "/v1/healthz", auth=None),
        "create_min": http_req("POST", "/v1/sandboxes", body={}),
        "create_full": http_req("POST", "/v1/sandboxes", body={
            "template": "host", "timeout_s": 600, "memory_mb": 512, "cpus": 0.5, "egress": False,
            "region": "local", "env": {"A": "1", "LANG": "C.UTF-8"}, "metadata": {"team": "x", "n": [1, 2]}}),
        "create_bad_types": http_req("POST", "/v1/sandboxes", body={
            "template": 5, "timeout_s": -1, "memory_mb": 1e99, "cpus": "2", "egress": "no", "env": {"A=B": "x"}}),
        "create_huge_numbers": http_req("POST", "/v1/sandboxes", body=b'{"timeout_s": 99999999999999999999999, '
                                        b'"memory_mb": 18446744073709551617, "cpus": 1e308}'),
        "create_egress": http_req("POST", "/v1/sandboxes", body={"egress": True}),
        "create_dup_keys": http_req("POST", "/v1/sandboxes", body=b'{"cpus":1,"cpus":2}'),
        "create_chunked": http_req("POST", "/v1/sandboxes", body={"timeout_s": 30}, chunked=True),
        "create_expect": http_req("POST", "/v1/sandboxes", body={"timeout_s": 30}, expect=True),
        "bad_json": http_req("POST", "/v1/sandboxes", body=b'{"timeout_s": '),
        "json_array": http_req("POST", "/v1/sandboxes", body=b"[1,2,3]"),
        "json_nul": http_req("POST", "/v1/sandboxes", body=b'{"env":{"A":"x\\u0000y"}}'),
        "list": http_req("GET", "/v1/sandboxes"),
        "get_deleted": http_req("GET", f"/v1/sandboxes/{sb}"),
        "get_expired_admin": http_req("GET", f"/v1/sandboxes/{SB_EXPIRED}", auth="admin"),
        "get_others": http_req("GET", f"/v1/sandboxes/{SB_ADMINS}"),
        "logs": http_req("GET", f"/v1/sandboxes/{sb}/logs"),
        "logs_admin": http_req("GET", f"/v1/sandboxes/{SB_ADMINS}/logs", auth="admin"),
        "delete": http_req("DELETE", f"/v1/sandboxes/{sb}"),
        "timeout": http_req("POST", f"/v1/sandboxes/{sb}/timeout", body={"timeout_s": 120}),
        "timeout_missing": http_req("POST", f"/v1/sandboxes/{sb}/timeout", body={}),
        "run_code": http_req("POST", f"/v1/sandboxes/{sb}/code", body={"code": "print(1+1)", "language": "python",
                                                                       "timeout_s": 10}),
        "run_code_stream": http_req("POST", f"/v1/sandboxes/{sb}/code", body={"code": "echo hi", "language": "bash"},
                                    ndjson=True),
        "run_code_bad": http_req("POST", f"/v1/sandboxes/{sb}/code", body={"code": 1, "language": "ruby"}),
        "exec_argv": http_req("POST", f"/v1/sandboxes/{sb}/exec", body={
            "cmd": ["ls", "-la", "/"], "env": {"X": "y"}, "cwd": "/tmp", "stdin": "data", "timeout_s": 5}),
        "exec_shell": http_req("POST", f"/v1/sandboxes/{sb}/exec", body={"cmd": "echo $HOME | wc -c"}),
        "exec_bad": http_req("POST", f"/v1/sandboxes/{sb}/exec", body={"cmd": ["", "x"], "env": []}),
        "upload": http_req("PUT", f"/v1/sandboxes/{sb}/files?path=/home/user/a.txt&mode=0600", body="hello"),
        "upload_bad_mode": http_req("PUT", f"/v1/sandboxes/{sb}/files?path=a&mode=999"),
        "upload_traversal": http_req("PUT", f"/v1/sandboxes/{sb}/files?path=../../../../etc/passwd", body="x"),
        "upload_nul": http_req("PUT", f"/v1/sandboxes/{sb}/files?path=/tmp/a%00b", body="x"),
        "upload_chunked": http_req("PUT", f"/v1/sandboxes/{sb}/files?path=/tmp/c", body="a" * 100, chunked=True),
        "download": http_req("GET", f"/v1/sandboxes/{sb}/files?path=/home/user/a.txt"),
        "download_no_path": http_req("GET", f"/v1/sandboxes/{sb}/files"),
        "download_long_path": http_req("GET", f"/v1/sandboxes/{sb}/files?path=/" + "a" * 5000),
        "download_bad_utf8": http_req("GET", f"/v1/sandboxes/{sb}/files?path=%C3%28"),
        "list_files": http_req("GET", f"/v1/sandboxes/{sb}/files/list?path=/tmp"),
        "delete_file": http_req("DELETE", f"/v1/sandboxes/{sb}/files?path=/tmp/x&recursive=true"),
        "delete_file_bad": http_req("DELETE", f"/v1/sandboxes/{sb}/files?path=/tmp/x&recursive=maybe"),
        "unknown_query": http_req("GET", f"/v1/sandboxes/{sb}/files?path=/a&evil=1"),
        "dup_query": http_req("GET", f"/v1/sandboxes/{sb}/files?path=/a&path=/b"),
        "keys_list": http_req("GET", "/v1/keys", auth="admin"),
        "keys_list_user": http_req("GET", "/v1/keys"),
        "keys_create_bad": http_req("POST", "/v1/keys", auth="admin", body={"name": 5, "admin": "yes"}),
        "keys_revoke_unknown": http_req("DELETE", "/v1/keys/key_ffffffffffffffff", auth="admin"),
        "tmpl_build_spec": http_req("POST", "/v1/templates?cache=false", auth="admin", body={
            "name": "t", "suite": "bookworm", "packages": ["python3"], "env": {"A": "b"}, "warmup": "import os",
            "files": [{"path": "/usr/local/x", "content": "c", "mode": "0644"}], "limits": {"memory_mb": 128}}),
        "tmpl_build_user": http_req("POST", "/v1/templates", body={"name": "t"}),
        "tmpl_list": http_req("GET", "/v1/templates"),
        "tmpl_get": http_req("GET", "/v1/templates/python"),
        "tmpl_rm": http_req("DELETE", "/v1/templates/python", auth="admin"),
        "build_get": http_req("GET", "/v1/builds/bld_0123456789abcdef?since=3", auth="admin"),
        "create_on_template": http_req("POST", "/v1/sandboxes", body={"template": "python"}),
        "no_auth": http_req("GET", "/v1/sandboxes", auth=None),
        "bad_token": http_req("GET", "/v1/sandboxes", auth="token", token="ak_nope"),
        "bad_token_long": http_req("GET", "/v1/sandboxes", auth="token", token="x" * 600),
        "basic_auth": http_req("GET", "/v1/sandboxes", auth=None, extra="Authorization: Basic dXNlcjpwYXNz"),
        "method_not_allowed": http_req("PATCH", "/v1/sandboxes"),
        "custom_method": http_req("BREW", "/v1/healthz", auth=None),
        "not_found": http_req("GET", "/v2/../v1/healthz", auth=None),
        "dotdot_route": http_req("GET", "/v1/sandboxes/../keys", auth="admin"),
        "long_id": http_req("GET", "/v1/sandboxes/" + "a" * 200),
        "encoded_slash": http_req("GET", f"/v1/sandboxes/{sb}%2Flogs"),
        "percent_nul_id": http_req("GET", "/v1/sandboxes/sb_%00"),
        "trailing_slash": http_req("GET", "/v1/sandboxes/", auth="user"),
        "huge_content_length": http_req("POST", "/v1/sandboxes", extra="Content-Length: 99999999999999999999"),
        "head_healthz": http_req("HEAD", "/v1/healthz", auth=None),
        "options": http_req("OPTIONS", "/v1/sandboxes"),
    }
    result = {"exit_code": 0, "error": None, "results": [{"text/plain": "2"}], "duration_ms": 4,
              "stdout_truncated": False, "stderr_truncated": False, "timed_out": False, "killed_signal": None}
    failed = dict(result, exit_code=None, killed_signal=9,
                  error={"name": "ZeroDivisionError", "value": "division by zero", "traceback": "..."})
    run = script((STDOUT, b"hello \xe2\x82"), (STDOUT, b"\xac\n\xff"), (STDERR, "warn\n"),
                 (RESULT, result, 1))
    code = {"code": "print(1+1)"}
    live = {
        "live_code": http_req("POST", "/v1/sandboxes/@/code", body=code, live=run),
        "live_code_stream": http_req("POST", "/v1/sandboxes/@/code", body=code, live=run, ndjson=True),
        "live_code_failed": http_req("POST", "/v1/sandboxes/@/code", body=code,
                                     live=script((STDERR, "Traceback"), (RESULT, failed, 1))),
        "live_code_bad_result": http_req("POST", "/v1/sandboxes/@/code", body=code, ndjson=True,
                                         live=script((RESULT, b"[not json", 1))),
        "live_code_agent_error": http_req("POST", "/v1/sandboxes/@/code", body=code,
                                          live=script((ERROR, {"code": "busy", "message": "one at a time"}, 1))),
        "live_code_wrong_frame": http_req("POST", "/v1/sandboxes/@/code", body=code, ndjson=True,
                                          live=script((STDOUT, "x"), (OK, {}, 1))),
        "live_code_other_ids": http_req("POST", "/v1/sandboxes/@/code", body=code,
                                        live=script((STDOUT, "other", 0x80), (LOG, "agent log line", 0x40),
                                                    (RESULT, result, 0x81), (RESULT, result, 1))),
        "live_code_agent_dies": http_req("POST", "/v1/sandboxes/@/code", body=code, ndjson=True,
                                         live=script((STDOUT, "partial")), agent_dies=True),
        "live_exec": http_req("POST", "/v1/sandboxes/@/exec", body={"cmd": ["ls", "/"], "stdin": "x"},
                              live=run),
        "live_exec_stream": http_req("POST", "/v1/sandboxes/@/exec", body={"cmd": "yes | head"}, ndjson=True,
                                     live=script((STDOUT, "y\n" * 200), (RESULT, result, 1))),
        "live_download": http_req("GET", "/v1/sandboxes/@/files?path=/tmp/a",
                                  live=script((OK, {"size": 5, "mode": 420}), (FILE_DATA, "hel"),
                                              (FILE_DATA, "lo", 1))),
        "live_download_lies": http_req("GET", "/v1/sandboxes/@/files?path=/tmp/a",
                                       live=script((OK, {"size": 2, "mode": 420}), (FILE_DATA, "longer than 2"),
                                                   (FILE_DATA, "", 1))),
        "live_download_unknown_size": http_req("GET", "/v1/sandboxes/@/files?path=/tmp/a",
                                               live=script((OK, {"size": -1}), (FILE_DATA, "abc"))),
        "live_download_empty": http_req("GET", "/v1/sandboxes/@/files?path=/tmp/a", live=script((OK, {}, 1))),
        "live_download_error": http_req("GET", "/v1/sandboxes/@/files?path=/etc/shadow",
                                        live=script((ERROR, {"code": "path_escape", "message": "no"}, 1))),
        "live_upload": http_req("PUT", "/v1/sandboxes/@/files?path=/tmp/u&mode=0600", body="hello",
                                live=script((OK, {"path": "/tmp/u", "size": 5}, 1))),
        "live_upload_refused": http_req("PUT", "/v1/sandboxes/@/files?path=/etc/x", body="hello" * 100,
                                        live=script((ERROR, {"code": "invalid_request", "message": "read-only"}, 1))),
        "live_list": http_req("GET", "/v1/sandboxes/@/files/list?path=/tmp",
                              live=script((OK, {"path": "/tmp", "entries": [
                                  {"name": "a", "type": "file", "size": 5, "mode": 420, "mtime": 1}]}, 1))),
        "live_list_junk": http_req("GET", "/v1/sandboxes/@/files/list", live=script((OK, b"\x00\xff", 1))),
        "live_delete": http_req("DELETE", "/v1/sandboxes/@/files?path=/tmp/a&recursive=1",
                                live=script((OK, {}, 1))),
        # paths that would name another file in a C string, or spell '/' and
        # '.' without being them, or lead into /proc: refused before the agent
        "live_put_nul": http_req("PUT", "/v1/sandboxes/@/files?path=/data/keep.csv%00.tmp", body="x",
                                 live=script((OK, {"path": "/data/keep.csv", "size": 1}, 1))),
        "live_get_nul": http_req("GET", "/v1/sandboxes/@/files?path=/data/keep.csv%00.bak",
                                 live=script((OK, {"size": 1, "mode": 420, "sha256": "0" * 64}), (FILE_DATA, "x", 1))),
        "live_delete_nul": http_req("DELETE", "/v1/sandboxes/@/files?path=%00/data/keep.csv",
                                    live=script((OK, {}, 1))),
        "live_list_nul": http_req("GET", "/v1/sandboxes/@/files/list?path=/data%00/x", live=script((OK, {}, 1))),
        "live_get_overlong": http_req("GET", "/v1/sandboxes/@/files?path=/data/%C0%AF..%C0%AF..%C0%AFetc",
                                      live=script((OK, {}, 1))),
        "live_put_surrogate": http_req("PUT", "/v1/sandboxes/@/files?path=/data/a%ED%A0%80", body="x",
                                       live=script((OK, {}, 1))),
        "live_list_proc": http_req("GET", "/v1/sandboxes/@/files/list?path=/data/../proc/1/fd",
                                   live=script((OK, {"path": "/proc/1/fd", "entries": []}, 1))),
        "live_get_proc_environ": http_req("GET", "/v1/sandboxes/@/files?path=/proc/self/environ",
                                          live=script((OK, {}, 1))),
        "live_recursive_nul": http_req("DELETE", "/v1/sandboxes/@/files?path=/tmp/a&recursive=true%00x",
                                       live=script((OK, {}, 1))),
        "live_id_nul": http_req("GET", "/v1/sandboxes/@%00junk", live=b""),
        "live_upload_digest": http_req("PUT", "/v1/sandboxes/@/files?path=/tmp/u", body="hello",
                                       extra="X-Content-SHA256: " + "ab" * 32,
                                       live=script((ERROR, {"code": "digest_mismatch", "message": "no"}, 1))),
        "live_upload_bad_digest": http_req("PUT", "/v1/sandboxes/@/files?path=/tmp/u", body="hello",
                                           extra="X-Content-SHA256: zz", live=script((OK, {}, 1))),
        "live_download_sha": http_req("GET", "/v1/sandboxes/@/files?path=/tmp/a",
                                      live=script((OK, {"size": 5, "mode": 420, "sha256": "a" * 64}),
                                                  (FILE_DATA, "hel"), (FILE_DATA, "lo", 1))),
        "live_download_changed": http_req("GET", "/v1/sandboxes/@/files?path=/tmp/a",
                                          live=script((OK, {"size": 5, "mode": 420, "sha256": "a" * 64}),
                                                      (FILE_DATA, "hel"),
                                                      (ERROR, {"code": "internal", "message": "changed"}, 1))),
        "live_get": http_req("GET", "/v1/sandboxes/@", live=b""),
        "live_list_sandboxes": http_req("GET", "/v1/sandboxes", auth="admin", live=b""),
        "live_timeout": http_req("POST", "/v1/sandboxes/@/timeout", body={"timeout_s": 3600}, live=b""),
        "live_logs": http_req("GET", "/v1/sandboxes/@/logs", live=b""),
        "live_delete_sandbox": http_req("DELETE", "/v1/sandboxes/@", live=b""),
    }
    seeds.update(live)
    for name, data in seeds.items():
        write("http", name, data)
    raw = {
        "raw_pipelined": f"GET /v1/healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /v1/sandboxes HTTP/1.1\r\nHost: a\r\n"
                         f"Authorization: Bearer {USER_KEY}\r\n\r\n",
        "raw_http10": "GET /v1/healthz HTTP/1.0\r\n\r\n",
        "raw_garbage": "\x00\x01GET\r\n\r\n",
        "raw_short_body": f"POST /v1/sandboxes HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_KEY}\r\n"
                          "Content-Length: 50\r\n\r\n{\"a\":",
        "raw_bad_chunk": f"POST /v1/sandboxes HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_KEY}\r\n"
                         "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        "raw_head": "HEAD /v1/healthz HTTP/1.1\r\nHost: a\r\n\r\n",
        "raw_two_lengths": f"POST /v1/sandboxes HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_KEY}\r\n"
                           "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
        "raw_declared_1g": f"POST /v1/sandboxes HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_KEY}\r\n"
                           "Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{}",
        "raw_many_headers": "GET /v1/healthz HTTP/1.1\r\nHost: a\r\n" + "".join(
            "X-%d: v\r\n" % i for i in range(2000)) + "\r\n",
        "raw_nul_target": "GET /v1/sandboxes/%00 HTTP/1.1\r\nHost: a\r\n\r\n",
    }
    for name, text in raw.items():
        write("http", name, bytes([3]) + text.encode())


def main():
    for h in ("proto", "agent", "http"):
        d = os.path.join(HERE, "corpus", h)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    proto_seeds()
    agent_seeds()
    http_seeds()


if __name__ == "__main__":
    main()
