"""The files API's directory operations (issue 14, item 5): make_dir (with
parents, answering whether it created the directory), rename/move (inside
the writable trees only; an existing destination is 409 unless overwrite),
get_info (path, name, type, size, mode, permissions, owner, group, mtime,
symlink target) and list with a depth, whose entries carry the same fields.
Through the raw API first, then the Python SDK."""

import re
import urllib.parse

from test_errors import check_error

INFO_KEYS = {"path", "name", "type", "size", "mode", "mode_octal", "permissions", "owner", "group", "uid", "gid",
             "mtime", "modified_at", "symlink_target"}


def _url(sb, route, **q):
    return "/v1/sandboxes/%s/files%s?%s" % (sb.id, route, urllib.parse.urlencode(q))


def _ok(resp, status=200):
    st, _, data, body = resp
    assert st == status, (st, data)
    return body


# ---- make_dir ------------------------------------------------------------------------

def test_make_dir_with_parents(sb, daemon):
    body = _ok(daemon.request("POST", _url(sb, "/mkdir", path="mk/a/b")))
    assert body == {"path": "/home/user/mk/a/b", "created": True}
    assert sb.exec(["test", "-d", "/home/user/mk/a/b"]).exit_code == 0
    assert _ok(daemon.request("POST", _url(sb, "/mkdir", path="/home/user/mk/a/b")))["created"] is False
    # a file in the way is a conflict, not "already there"
    sb.files.write("/data/plain", b"x")
    check_error(daemon.request("POST", _url(sb, "/mkdir", path="/data/plain")), 409, "exists")
    check_error(daemon.request("POST", _url(sb, "/mkdir", path="/data/plain/below")), 409, "not_directory")
    # the path policy is as strict as for uploads
    check_error(daemon.request("POST", _url(sb, "/mkdir", path="/etc/new")), 400, "invalid_request")
    check_error(daemon.request("POST", _url(sb, "/mkdir", path="/proc/x")), 400, "path_forbidden")
    check_error(daemon.request("POST", _url(sb, "/mkdir")), 400, "invalid_request")
    # the writable roots exist by construction
    assert _ok(daemon.request("POST", _url(sb, "/mkdir", path="/tmp")))["created"] is False
    # the new directories belong to the sandbox's user, as the ones code makes
    assert sb.exec(["stat", "-c", "%u:%g %a", "/home/user/mk/a"]).stdout.strip() == "1000:1000 755"


# ---- rename ----------------------------------------------------------------------------

def test_rename_file_and_directory(sb, daemon):
    sb.files.write("/data/mv/src.txt", b"hello")
    body = _ok(daemon.request("POST", _url(sb, "/rename", path="/data/mv/src.txt", to="/data/mv/deeper/dst.txt")))
    assert body["path"] == "/data/mv/deeper/dst.txt" and body["type"] == "file" and body["size"] == 5, body
    assert not sb.files.exists("/data/mv/src.txt")
    assert sb.files.read("/data/mv/deeper/dst.txt") == b"hello"
    # a directory moves with its contents; relative paths are under /home/user
    body = _ok(daemon.request("POST", _url(sb, "/rename", path="/data/mv/deeper", to="/data/moved")))
    assert body["path"] == "/data/moved" and body["type"] == "dir", body
    sb.files.write("rel-src", b"r")
    assert _ok(daemon.request("POST", _url(sb, "/rename", path="rel-src", to="rel-dst")))["path"] == "/home/user/rel-dst"

def test_rename_between_mounts(sb, daemon):
    """/tmp, /data and /home/user are separate mounts: there a move is a copy
    (contents, links as links, owner, mode, mtime) and a delete, as mv does."""
    sb.exec(["sh", "-c", "mkdir -p /data/x/sub && echo hi > /data/x/sub/f && chmod 0750 /data/x/sub && "
             "chmod 0600 /data/x/sub/f && ln -s sub/f /data/x/link && touch -d 2020-01-02T03:04:05Z /data/x/sub/f"])
    before = sb.exec(["sh", "-c", "cd /data/x && find . | sort | xargs stat -c '%n %F %a %u %Y'"]).stdout
    body = _ok(daemon.request("POST", _url(sb, "/rename", path="/data/x", to="/tmp/y/x")))
    assert body["path"] == "/tmp/y/x" and body["type"] == "dir", body
    after = sb.exec(["sh", "-c", "cd /tmp/y/x && find . | sort | xargs stat -c '%n %F %a %u %Y'"]).stdout
    assert after == before, (before, after)
    assert sb.exec(["readlink", "/tmp/y/x/link"]).stdout.strip() == "sub/f"
    assert not sb.files.exists("/data/x")
    # a file; an existing destination is refused before anything is copied
    sb.files.write("/tmp/one", b"1")
    sb.files.write("one", b"old")
    check_error(daemon.request("POST", _url(sb, "/rename", path="/tmp/one", to="one")), 409, "exists")
    assert sb.files.read("one") == b"old" and sb.files.read("/tmp/one") == b"1"
    assert _ok(daemon.request("POST", _url(sb, "/rename", path="/tmp/one", to="one", overwrite="true")))["size"] == 1
    assert sb.files.read("one") == b"1" and not sb.files.exists("/tmp/one")
    # nothing half-copied is left anywhere
    assert sb.exec(["sh", "-c", "ls -A /tmp /tmp/y /home/user | grep -c airlock"]).stdout.strip() == "0"


def test_rename_destination_exists(sb, daemon):
    sb.files.write("/data/ow/a", b"A")
    sb.files.write("/data/ow/b", b"B")
    msg = check_error(daemon.request("POST", _url(sb, "/rename", path="/data/ow/a", to="/data/ow/b")), 409, "exists")
    assert "overwrite" in msg, msg
    assert sb.files.read("/data/ow/a") == b"A" and sb.files.read("/data/ow/b") == b"B"
    _ok(daemon.request("POST", _url(sb, "/rename", path="/data/ow/a", to="/data/ow/b", overwrite="true")))
    assert sb.files.read("/data/ow/b") == b"A" and not sb.files.exists("/data/ow/a")
    check_error(daemon.request("POST", _url(sb, "/rename", path="/data/ow/b", to="/data/ow/c", overwrite="maybe")),
                400, "invalid_request")
    check_error(daemon.request("POST", _url(sb, "/rename", path="/data/ow/nope", to="/data/ow/c")), 404, "not_found")


def test_rename_keeps_the_path_policy(sb, daemon):
    sb.files.write("/data/pp/f", b"x")
    # neither end may leave the writable trees
    check_error(daemon.request("POST", _url(sb, "/rename", path="/data/pp/f", to="/etc/f")), 400, "invalid_request")
    check_error(daemon.request("POST", _url(sb, "/rename", path="/etc/hostname", to="/data/pp/h")), 400,
                "invalid_request")
    check_error(daemon.request("POST", _url(sb, "/rename", path="/data/pp/f", to="/proc/f")), 400, "path_forbidden")
    # a symlink inside /data that leads to /etc does not make /etc writable
    sb.exec(["ln", "-s", "/etc", "/data/pp/etc-link"])
    check_error(daemon.request("POST", _url(sb, "/rename", path="/data/pp/f", to="/data/pp/etc-link/f")), 400,
                "invalid_request")
    # the writable roots themselves stay where they are
    check_error(daemon.request("POST", _url(sb, "/rename", path="/data", to="/tmp/data")), 400, "invalid_request")
    check_error(daemon.request("POST", _url(sb, "/rename", path="/data/pp/f", to="/tmp", overwrite="true")), 400,
                "invalid_request")
    check_error(daemon.request("POST", _url(sb, "/rename", path="/data/pp/f")), 400, "invalid_request")
    assert sb.files.read("/data/pp/f") == b"x"
    assert sb.exec(["test", "-e", "/etc/f"]).exit_code != 0


# ---- get_info ----------------------------------------------------------------------------

def test_get_info(sb, daemon):
    sb.files.write("/data/info/f.txt", b"12345")
    sb.exec(["chmod", "0640", "/data/info/f.txt"])
    sb.exec(["ln", "-s", "f.txt", "/data/info/link"])
    f = _ok(daemon.request("GET", _url(sb, "/info", path="/data/info/f.txt")))
    assert set(f) == INFO_KEYS, set(f) ^ INFO_KEYS
    assert f["path"] == "/data/info/f.txt" and f["name"] == "f.txt" and f["type"] == "file" and f["size"] == 5
    assert f["mode"] == 0o640 and f["mode_octal"] == "0640" and f["permissions"] == "-rw-r-----", f
    assert f["uid"] == 1000 and f["gid"] == 1000 and f["owner"] and f["group"], f
    # the sandbox's own names for them, as `stat` inside it shows
    assert f["owner"] == sb.exec(["stat", "-c", "%U", "/data/info/f.txt"]).stdout.strip()
    assert f["group"] == sb.exec(["stat", "-c", "%G", "/data/info/f.txt"]).stdout.strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", f["modified_at"]), f
    assert f["mtime"] == int(sb.exec(["stat", "-c", "%Y", "/data/info/f.txt"]).stdout)
    assert f["symlink_target"] is None
    # a symlink is described, not followed
    ln = _ok(daemon.request("GET", _url(sb, "/info", path="/data/info/link")))
    assert ln["type"] == "symlink" and ln["symlink_target"] == "f.txt" and ln["name"] == "link", ln
    assert ln["permissions"].startswith("l")
    d = _ok(daemon.request("GET", _url(sb, "/info", path="/data/info")))
    assert d["type"] == "dir" and d["permissions"].startswith("d") and d["name"] == "info", d
    # reads may look outside the writable trees, but not at kernel files
    root = _ok(daemon.request("GET", _url(sb, "/info", path="/")))
    assert root["path"] == "/" and root["type"] == "dir", root
    assert _ok(daemon.request("GET", _url(sb, "/info", path="/etc/hostname")))["type"] == "file"
    assert _ok(daemon.request("GET", _url(sb, "/info", path="/home/user")))["path"] == "/home/user"
    check_error(daemon.request("GET", _url(sb, "/info", path="/data/info/nope")), 404, "not_found")
    check_error(daemon.request("GET", _url(sb, "/info", path="/proc/self/status")), 400, "path_forbidden")
    sb.exec(["ln", "-s", "/proc", "/data/info/proc-link"])
    check_error(daemon.request("GET", _url(sb, "/info", path="/data/info/proc-link/self/status")), 400,
                "path_forbidden")


# ---- list with a depth ----------------------------------------------------------------------

def test_list_depth(sb, daemon):
    sb.exec(["mkdir", "-p", "/data/tree/a/b/c"])
    sb.files.write("/data/tree/top.txt", b"1")
    sb.files.write("/data/tree/a/mid.txt", b"22")
    sb.files.write("/data/tree/a/b/c/deep.txt", b"333")
    one = _ok(daemon.request("GET", _url(sb, "/list", path="/data/tree")))
    assert [e["name"] for e in one["entries"]] == ["a", "top.txt"]
    assert all(set(e) == INFO_KEYS for e in one["entries"]), one
    # today's fields keep their meaning
    top = one["entries"][1]
    assert top["path"] == "/data/tree/top.txt" and top["mode"] == 0o644 and isinstance(top["mtime"], int)
    two = _ok(daemon.request("GET", _url(sb, "/list", path="/data/tree", depth=2)))
    assert [e["path"] for e in two["entries"]] == [
        "/data/tree/a", "/data/tree/a/b", "/data/tree/a/mid.txt", "/data/tree/top.txt"]
    deep = _ok(daemon.request("GET", _url(sb, "/list", path="/data/tree", depth=10)))
    paths = [e["path"] for e in deep["entries"]]
    assert "/data/tree/a/b/c/deep.txt" in paths and len(paths) == 6, paths
    assert {e["name"]: e["size"] for e in deep["entries"] if e["type"] == "file"} == {
        "top.txt": 1, "mid.txt": 2, "deep.txt": 3}
    for bad in ("0", "-1", "x", "1000"):
        check_error(daemon.request("GET", _url(sb, "/list", path="/data/tree", depth=bad)), 400, "invalid_request")
    # symlinks are listed, never followed, and kernel trees are not walked
    sb.exec(["ln", "-s", "/etc", "/data/tree/etc-link"])
    deep = _ok(daemon.request("GET", _url(sb, "/list", path="/data/tree", depth=5)))
    assert not any(e["path"].startswith("/data/tree/etc-link/") for e in deep["entries"])
    root = _ok(daemon.request("GET", _url(sb, "/list", path="/", depth=2)))
    names = [e["path"] for e in root["entries"]]
    assert "/proc" in names or "/dev" in names, names
    assert not any(re.match(r"/(proc|sys|dev)/", p) for p in names), names


# ---- the Python SDK ---------------------------------------------------------------------------

def test_sdk_file_ops(sb):
    assert sb.files.make_dir("sdk/x/y") is True
    assert sb.files.make_dir("sdk/x/y") is False
    sb.files.write("sdk/x/y/f.txt", b"abc")
    info = sb.files.get_info("sdk/x/y/f.txt")
    assert info["path"] == "/home/user/sdk/x/y/f.txt" and info["size"] == 3 and info["type"] == "file"
    assert info.name == "f.txt" and info.mode_octal == "0644"
    moved = sb.files.rename("sdk/x/y/f.txt", "sdk/g.txt")
    assert moved["path"] == "/home/user/sdk/g.txt"
    sb.files.write("sdk/h.txt", b"h")
    import airlock
    try:
        sb.files.rename("sdk/g.txt", "sdk/h.txt")
        raise AssertionError("rename over an existing file succeeded")
    except airlock.AirlockError as e:
        assert e.status == 409 and e.code == "exists", e
    sb.files.rename("sdk/g.txt", "sdk/h.txt", overwrite=True)
    assert sb.files.read("sdk/h.txt") == b"abc"
    assert [e["path"] for e in sb.files.list("sdk", depth=3)] == [
        "/home/user/sdk/h.txt", "/home/user/sdk/x", "/home/user/sdk/x/y"]
    assert [e["name"] for e in sb.files.list("sdk")] == ["h.txt", "x"]


# ---- several files in one request --------------------------------------------------------------

def _multipart(parts, boundary="airlock-test-boundary"):
    out = b""
    for name, filename, data in parts:
        disp = 'form-data; name="%s"' % name + ('; filename="%s"' % filename if filename is not None else "")
        out += b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disp.encode() + \
            b"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return out, {"Content-Type": "multipart/form-data; boundary=" + boundary}


def test_write_several_files_in_one_request(sb, daemon):
    big = bytes(range(256)) * 4096  # 1 MiB: several chunks of the daemon's parser
    body, hdrs = _multipart([("file", "/data/batch/a.txt", b"alpha"), ("file", "batch/b.bin", big),
                             ("file", "/tmp/batch/empty", b"")])
    st, _, data, out = daemon.request("POST", "/v1/sandboxes/%s/files" % sb.id, body, headers=hdrs)
    assert st == 201, (st, data)
    assert out == {"files": [{"path": "/data/batch/a.txt", "size": 5}, {"path": "/home/user/batch/b.bin",
                                                                         "size": len(big)},
                             {"path": "/tmp/batch/empty", "size": 0}]}, out
    assert sb.files.read("/data/batch/a.txt") == b"alpha"
    assert sb.files.read("batch/b.bin") == big
    assert sb.files.read("/tmp/batch/empty") == b""


def test_batch_refusals(sb, daemon):
    url = "/v1/sandboxes/%s/files" % sb.id
    # the path policy of a single upload holds for every part; the files
    # before a refused one are written (each file is whole or absent)
    body, hdrs = _multipart([("file", "/data/ok1", b"1"), ("file", "/etc/evil", b"x"), ("file", "/data/ok2", b"2")])
    check_error(daemon.request("POST", url, body, headers=hdrs), 400, "invalid_request")
    assert sb.files.read("/data/ok1") == b"1" and not sb.files.exists("/data/ok2")
    assert sb.exec(["test", "-e", "/etc/evil"]).exit_code != 0
    body, hdrs = _multipart([("file", "/proc/x", b"x")])
    check_error(daemon.request("POST", url, body, headers=hdrs), 400, "path_forbidden")
    body, hdrs = _multipart([("file", "/data/dir/", b"x")])
    check_error(daemon.request("POST", url, body, headers=hdrs), 400, "invalid_request")
    # a part without a filename has no destination
    body, hdrs = _multipart([("file", None, b"x")])
    check_error(daemon.request("POST", url, body, headers=hdrs), 400, "invalid_request")
    body, hdrs = _multipart([])
    check_error(daemon.request("POST", url, body, headers=hdrs), 400, "invalid_request")
    check_error(daemon.request("POST", url, b"a=b", headers={"Content-Type": "application/x-www-form-urlencoded"}),
                400, "invalid_request")
    assert sb.exec(["ls", "/data"]).exit_code == 0  # the sandbox is fine


def test_sdk_write_files(sb):
    out = sb.files.write_files([("sdkb/one.txt", b"1"), ("/data/sdkb/two.txt", "zwei")])
    assert [f["path"] for f in out] == ["/home/user/sdkb/one.txt", "/data/sdkb/two.txt"]
    assert sb.files.read("/data/sdkb/two.txt") == b"zwei"


# ---- watching a directory ------------------------------------------------------------------------

class _Watch:
    """A raw watch stream: lines as dicts, read as they come."""

    def __init__(self, daemon, sb, **q):
        import http.client
        self.conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
        self.conn.request("GET", _url(sb, "/watch", **q), headers={"Authorization": "Bearer " + daemon.key})
        self.resp = self.conn.getresponse()

    def next(self):
        import json
        line = self.resp.readline()
        assert line, "the watch stream ended"
        return json.loads(line)

    def until(self, pred, limit=200):
        seen = []
        for _ in range(limit):
            ev = self.next()
            seen.append(ev)
            if pred(ev):
                return seen
        raise AssertionError("not seen in %r" % seen)

    def close(self):
        self.conn.close()


def test_watch_dir(sb, daemon):
    sb.exec(["mkdir", "-p", "/data/w/sub"])
    w = _Watch(daemon, sb, path="/data/w")
    try:
        assert w.resp.status == 200 and w.resp.getheader("content-type") == "application/x-ndjson"
        ready = w.next()
        assert ready["type"] == "ready" and ready["path"] == "/data/w" and ready["recursive"] is False, ready
        sb.files.write("/data/w/a.txt", b"1")
        sb.exec(["sh", "-c", "echo more >> /data/w/a.txt; chmod 600 /data/w/a.txt; mv /data/w/a.txt /data/w/b.txt;"
                 " rm /data/w/b.txt; touch /data/w/sub/deep.txt; mkdir /data/w/d"])
        seen = w.until(lambda e: e["path"] == "/data/w/d")
        got = [(e["type"], e["path"]) for e in seen]
        for want in [("create", "/data/w/a.txt"), ("write", "/data/w/a.txt"), ("chmod", "/data/w/a.txt"),
                     ("rename", "/data/w/a.txt"), ("create", "/data/w/b.txt"), ("remove", "/data/w/b.txt"),
                     ("create", "/data/w/d")]:
            assert want in got, (want, got)
        assert seen[-1]["is_dir"] is True
        # not recursive: nothing from below
        assert not any(p.startswith("/data/w/sub/") for _, p in got), got
        assert [e["seq"] for e in [ready] + seen] == list(range(len(seen) + 1))
        # the directory itself going ends the stream
        sb.exec(["rm", "-rf", "/data/w"])
        end = w.until(lambda e: e["type"] == "end")[-1]
        assert "removed" in end["reason"], end
        assert w.resp.readline() == b""
    finally:
        w.close()


def test_watch_recursive_and_refusals(sb, daemon):
    sb.exec(["mkdir", "-p", "/data/r/a/b"])
    w = _Watch(daemon, sb, path="/data/r", recursive="true")
    try:
        assert w.next()["type"] == "ready"
        sb.exec(["sh", "-c", "touch /data/r/a/b/x; mkdir -p /data/r/new/deeper; sleep 0.2; touch /data/r/new/deeper/y"])
        got = [(e["type"], e["path"]) for e in w.until(lambda e: e["path"] == "/data/r/new/deeper/y")]
        assert ("create", "/data/r/a/b/x") in got, got
    finally:
        w.close()
    # a watch is a read: not kernel trees, not a file, not what does not exist
    check_error(daemon.request("GET", _url(sb, "/watch", path="/proc")), 400, "path_forbidden")
    check_error(daemon.request("GET", _url(sb, "/watch", path="/data/none")), 404, "not_found")
    sb.files.write("/data/file", b"x")
    check_error(daemon.request("GET", _url(sb, "/watch", path="/data/file")), 409, "not_directory")
    check_error(daemon.request("GET", _url(sb, "/watch", path="/data", recursive="maybe")), 400, "invalid_request")
    # a client that leaves cancels its watch (noticed within a second): 40
    # watches one after another fit the agent's limit of 16 at once
    import time
    for _ in range(40):
        while True:
            w = _Watch(daemon, sb, path="/data")
            if w.resp.status == 200:
                break
            body = w.resp.read()
            w.close()
            assert w.resp.status == 409 and b'"busy"' in body, (w.resp.status, body)
            time.sleep(0.2)
        assert w.next()["type"] == "ready"
        w.close()


def test_sdk_watch_dir(sb):
    sb.files.make_dir("/data/sw")
    with sb.files.watch_dir("/data/sw", timeout=30) as w:
        assert w.path == "/data/sw" and w.recursive is False
        sb.files.write("/data/sw/x.txt", b"x")
        for ev in w:
            if ev["type"] == "create":
                assert ev["path"] == "/data/sw/x.txt" and ev["is_dir"] is False
                break
    # the end of the directory ends the iteration
    w = sb.files.watch_dir("/data/sw", recursive=True, timeout=30)
    sb.files.remove("/data/sw")
    assert [ev["type"] for ev in w][-1] == "end"
    import airlock
    try:
        sb.files.watch_dir("/data/never")
        raise AssertionError("watching a missing directory succeeded")
    except airlock.NotFound:
        pass


# ---- gzip transfer encoding ------------------------------------------------------------------------

def test_gzip_upload(sb, daemon):
    import gzip
    import hashlib
    import os
    data = os.urandom(300000) + b"a" * 2000000  # several frames, and worth compressing
    body = gzip.compress(data)
    hdrs = {"Content-Type": "application/octet-stream", "Content-Encoding": "gzip",
            "X-Content-SHA256": hashlib.sha256(data).hexdigest()}  # of the file, not of the gzip
    st, _, raw, out = daemon.request("PUT", _url(sb, "", path="/data/gz/up.bin"), body, headers=hdrs)
    assert st == 201 and out == {"path": "/data/gz/up.bin", "size": len(data)}, (st, raw)
    assert sb.files.read("/data/gz/up.bin") == data
    # members one after another are one file (RFC 1952)
    body = gzip.compress(b"one,") + gzip.compress(b"two")
    st, _, raw, out = daemon.request("PUT", _url(sb, "", path="/data/gz/multi"), body,
                                     headers={"Content-Type": "application/octet-stream", "Content-Encoding": "gzip"})
    assert st == 201 and out["size"] == 7, raw
    assert sb.files.read("/data/gz/multi") == b"one,two"
    # not gzip, or cut short: refused, nothing written
    for bad in (b"not gzip at all", gzip.compress(data)[:5000]):
        check_error(daemon.request("PUT", _url(sb, "", path="/data/gz/bad"), bad,
                                   headers={"Content-Type": "application/octet-stream", "Content-Encoding": "gzip"}),
                    400, "invalid_request")
        assert not sb.files.exists("/data/gz/bad")
    assert sb.exec(["sh", "-c", "ls -A /data/gz"]).stdout.split() == ["multi", "up.bin"]
    check_error(daemon.request("PUT", _url(sb, "", path="/data/gz/br"), b"x",
                               headers={"Content-Type": "application/octet-stream", "Content-Encoding": "br"}),
                400, "invalid_request")


def test_gzip_download(sb, daemon):
    import gzip
    import hashlib
    import os
    data = os.urandom(200000) + b"b" * 3000000  # more than the agent's window: paced by ACKs
    sb.files.write("/data/gz/down.bin", data)
    st, hdrs, raw, _ = daemon.request("GET", _url(sb, "", path="/data/gz/down.bin"),
                                      headers={"Accept-Encoding": "gzip, deflate"})
    assert st == 200 and hdrs.get("content-encoding") == "gzip", hdrs
    assert "content-length" not in hdrs and hdrs["x-content-length"] == str(len(data)), hdrs
    assert len(raw) < len(data) // 2
    back = gzip.decompress(raw)
    assert back == data and hashlib.sha256(back).hexdigest() == hdrs["x-content-sha256"]
    # q=0 refuses it, and without Accept-Encoding nothing changes
    for h in ({"Accept-Encoding": "gzip;q=0"}, {}):
        st, hdrs, raw, _ = daemon.request("GET", _url(sb, "", path="/data/gz/down.bin"), headers=h)
        assert st == 200 and "content-encoding" not in hdrs and raw == data, hdrs
        assert hdrs["content-length"] == str(len(data))
    sb.files.write("/data/gz/empty", b"")
    st, hdrs, raw, _ = daemon.request("GET", _url(sb, "", path="/data/gz/empty"), headers={"Accept-Encoding": "gzip"})
    assert st == 200 and gzip.decompress(raw) == b"" and hdrs["x-content-length"] == "0", (st, hdrs, raw)


def test_sdk_gzip(sb, tmp_path):
    import os
    data = os.urandom(1000) + b"z" * 2000000
    assert sb.files.write("/data/sg/a.bin", data, gzip=True)["size"] == len(data)
    assert sb.files.read("/data/sg/a.bin") == data
    assert sb.files.read("/data/sg/a.bin", gzip=True) == data
    local = tmp_path / "big.txt"
    local.write_bytes(data)
    assert sb.upload(local, "/data/sg/", gzip=True)["path"] == "/data/sg/big.txt"
    dest = tmp_path / "back.txt"
    assert sb.download("/data/sg/big.txt", dest, gzip=True) == len(data)
    assert dest.read_bytes() == data
    sb.files.write("/data/sg/empty", b"", gzip=True)
    assert sb.files.read("/data/sg/empty", gzip=True) == b""
