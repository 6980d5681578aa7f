"""Fork families on the jail backend (docs/api.md, `POST /v1/sandboxes/{id}/fork`): a fork
copies the parent's files (/tmp, /data, /home/user) into fresh sandboxes and
says so ("files"); diff compares two members; merge_into commits a child's
files into its parent and destroys the child. Errors: n outside 1..32, two
sandboxes of different families, another key's sandbox (404 like unknown)."""

import hashlib
import os
import subprocess

import pytest

import airlock
from airlock import Sandbox


def make_key(daemon, name):
    st, _, data, k = daemon.request("POST", "/v1/keys", {"name": name})
    assert st == 201, data
    return k


@pytest.fixture(scope="module")
def parent(daemon):
    s = daemon.sandbox(timeout=600, metadata={"suite": "fork"})
    s.upload(b"name,age\nAlice,30\nBob,45\n", "/data/roster.csv")
    s.upload(b"scratch", "/tmp/work/a.txt")
    s.run_code("open('/home/user/notes.txt', 'w').write('hello')\nparent_var = 7")
    yield s
    s.close()


def test_fork_files_children_independent(daemon, parent):
    kids = parent.fork(2)
    try:
        assert len(kids) == 2 and len({k.id for k in kids} | {parent.id}) == 3
        for k in kids:
            assert k.fork_state == "files"
            info = k.info()
            assert info["parent_id"] == parent.id and info["family_id"] == parent.id
            assert info["template"] == parent.info()["template"]
            assert info["memory_mb"] == parent.info()["memory_mb"]
            assert info["metadata"] == {"suite": "fork"}
            assert k.download("/data/roster.csv") == b"name,age\nAlice,30\nBob,45\n"
            assert k.download("/tmp/work/a.txt") == b"scratch"
            assert k.download("/home/user/notes.txt") == b"hello"
            # a fresh REPL: the jail cannot copy a process (docs/security.md)
            r = k.run_code("print('parent_var' in globals())")
            assert r.stdout.strip() == "False"
        # writes in one member are not seen by another
        kids[0].upload(b"child0", "/data/only0.txt")
        parent.upload(b"later", "/data/later.txt")
        assert not kids[1].files.exists("/data/only0.txt")
        assert not parent.files.exists("/data/only0.txt")
        assert not kids[0].files.exists("/data/later.txt")
        # its audit trail is its own and starts with the fork
        ev = kids[0].logs()
        assert ev[0]["action"] == "fork" and ev[0]["detail"]["parent"] == parent.id
        assert any(e["action"] == "fork" for e in parent.logs())
        # destroying one child leaves the other and the parent
        kids[1].close()
        assert kids[0].run_code("print(1)").stdout == "1\n"
        assert parent.run_code("print(parent_var)").stdout == "7\n"
    finally:
        for k in kids:
            k.close()


def test_diff_and_merge_into(daemon, parent):
    (kid,) = parent.fork(1)
    try:
        kid.upload(b"new file", "/data/new.txt")
        kid.upload(b"name,age\nAlice,31\n", "/data/roster.csv")
        kid.files.remove("/tmp/work/a.txt")
        d = parent.diff(kid)
        assert d["a"] == parent.id and d["b"] == kid.id
        assert [e["path"] for e in d["added"]] == ["/data/new.txt"]
        assert d["added"][0]["size"] == 8
        assert d["added"][0]["sha256"] == hashlib.sha256(b"new file").hexdigest()
        assert [e["path"] for e in d["removed"]] == ["/tmp/work/a.txt"]
        (ch,) = d["changed"]
        assert ch["path"] == "/data/roster.csv"
        assert ch["sha256_b"] == hashlib.sha256(b"name,age\nAlice,31\n").hexdigest()
        # the reverse is the mirror image
        back = kid.diff(parent)
        assert [e["path"] for e in back["removed"]] == ["/data/new.txt"]

        res = kid.merge_into(parent)
        assert res["id"] == parent.id and res["merged_from"] == kid.id and res["state"] == "files"
        assert parent.download("/data/new.txt") == b"new file"
        assert parent.download("/data/roster.csv") == b"name,age\nAlice,31\n"
        assert not parent.files.exists("/tmp/work/a.txt")
        # the child is gone, recorded as merged; both are on the audit trail
        st, _, _, info = daemon.request("GET", "/v1/sandboxes/" + kid.id)
        assert st == 200 and info["state"] == "destroyed" and info["destroy_reason"] == "merged"
        assert any(e["action"] == "merge" and e["detail"]["from"] == kid.id for e in parent.logs())
        # the parent's REPL was not touched
        assert parent.run_code("print(parent_var)").stdout == "7\n"
    finally:
        kid.close()


def test_fork_errors(daemon, parent):
    for n in (0, 33, "2"):
        st, _, data, b = daemon.request("POST", "/v1/sandboxes/%s/fork" % parent.id, {"n": n})
        assert st == 400 and b["error"]["code"] == "invalid_request", data
        assert "n" in b["error"]["message"]
    # diff and merge_into need one family
    other = daemon.sandbox(timeout=120)
    try:
        for method, suffix in (("GET", "/diff/"), ("POST", "/merge_into/")):
            st, _, data, b = daemon.request(method, "/v1/sandboxes/" + parent.id + suffix + other.id)
            assert st == 409 and b["error"]["code"] == "not_same_family", data
        st, _, data, b = daemon.request("GET", "/v1/sandboxes/%s/diff/%s" % (parent.id, parent.id))
        assert st == 400, data
    finally:
        other.close()
    # another key's sandbox answers as an unknown one, on every family route
    kb = make_key(daemon, "fork-intruder")
    try:
        mine = Sandbox(api_key=kb["key"], base_url=daemon.url, timeout=120)
        try:
            for method, path, body in (
                ("POST", "/v1/sandboxes/%s/fork" % parent.id, {"n": 1}),
                ("GET", "/v1/sandboxes/%s/diff/%s" % (parent.id, mine.id), None),
                ("GET", "/v1/sandboxes/%s/diff/%s" % (mine.id, parent.id), None),
                ("POST", "/v1/sandboxes/%s/merge_into/%s" % (mine.id, parent.id), None),
            ):
                st, _, data, b = daemon.request(method, path, body, key=kb["key"])
                assert st == 404 and b["error"]["code"] == "not_found", (path, data)
                assert parent.id in b["error"]["message"], b
            with pytest.raises(airlock.NotFound):
                Sandbox(_info={"id": parent.id}, api_key=kb["key"], base_url=daemon.url).fork(1)
            # n children count as n creates against the key's quota (20 by default)
            st, _, data, b = daemon.request("POST", "/v1/sandboxes/%s/fork" % mine.id, {"n": 20}, key=kb["key"])
            assert st == 429 and b["error"]["code"] == "sandbox_quota", data
            assert len(Sandbox.list(api_key=kb["key"], base_url=daemon.url)) == 1
        finally:
            mine.close()
    finally:
        daemon.request("DELETE", "/v1/keys/" + kb["id"])


def test_cli_fork_diff_merge(daemon, cli, parent):
    env = dict(os.environ, AIRLOCK_URL=daemon.url, AIRLOCK_API_KEY=daemon.key)

    def run(*args):
        return subprocess.run([str(cli), *args], env=env, capture_output=True, text=True, timeout=120)

    p = run("fork", parent.id, "1")
    assert p.returncode == 0, p.stderr
    kid_id, state = p.stdout.split()
    assert state == "files"
    kid = Sandbox.connect(kid_id, base_url=daemon.url, api_key=daemon.key)
    try:
        kid.upload(b"from cli", "/data/cli.txt")
        p = run("diff", parent.id, kid_id)
        assert p.returncode == 0, p.stderr
        assert "+ /data/cli.txt\t8" in p.stdout.splitlines()
        p = run("merge", kid_id, parent.id)
        assert p.returncode == 0 and "merged into" in p.stdout, p.stderr
        assert parent.download("/data/cli.txt") == b"from cli"
        assert run("fork", parent.id, "33").returncode == 2
    finally:
        kid.close()
