"""Full-state fork on the vm backend (docs/vm.md, "Fork"): children hold the
parent's REPL state and files at the instant of the fork; afterwards no
member sees another's writes (in memory or on its tmpfs), a destroyed or
OOM-killed member leaves the others alone, and no two members share
randomness. Slow under TCG (a restore per child), so few tests."""

import os

import pytest

from airlock import Sandbox
from airlock._transport import Transport
from vm_support import qemu_pids


def slow_create(vmd, **body):
    """The module's first VM takes the snapshot: a minute and more under TCG
    on a loaded host, past the SDK's default request timeout."""
    t = Transport(base_url=vmd.url, api_key=vmd.key)
    return Sandbox(_info=t.request_json("POST", "/v1/sandboxes", body, timeout=600), _transport=t)


@pytest.fixture(scope="module")
def parent(vmd):
    s = slow_create(vmd, isolation="vm", timeout_s=900, memory_mb=512)
    s.run_code("import pandas as pd\ndf = pd.DataFrame({'x': range(1000)})\nshared = 'before'")
    s.upload(b"parent's file", "/data/p.txt")
    yield s
    s.close()


def test_children_have_the_state_and_writes_stay_apart(vmd, parent):
    kids = parent.fork(2)
    try:
        assert [k.fork_state for k in kids] == ["full", "full"]
        for k in kids:
            info = k.info()
            assert info["isolation"] == "vm" and info["parent_id"] == parent.id
            r = k.run_code("print(shared, int(df.x.sum()))")
            assert r.stdout == "before 499500\n", r
            assert k.download("/data/p.txt") == b"parent's file"
        # after the fork: the parent's writes, in memory and on disk, reach no child
        parent.run_code("shared = 'parent after'")
        parent.upload(b"later", "/data/later.txt")
        kids[0].run_code("shared = 'child0'")
        kids[0].upload(b"mine", "/tmp/c0.txt")
        assert parent.run_code("print(shared)").stdout == "parent after\n"
        assert kids[0].run_code("print(shared)").stdout == "child0\n"
        assert kids[1].run_code("print(shared)").stdout == "before\n"
        assert not kids[1].files.exists("/data/later.txt")
        assert not kids[1].files.exists("/tmp/c0.txt")
        assert not parent.files.exists("/tmp/c0.txt")
        # a big write in the parent after the fork changes no child's pages
        parent.run_code("blob = bytearray(b'P' * (32 << 20))")
        assert kids[1].run_code("print('blob' in globals())").stdout == "False\n"
        # each member reseeded: no shared randomness
        outs = {m.run_code("import os; print(os.urandom(16).hex())").stdout for m in [parent, *kids]}
        assert len(outs) == 3
        rnd = {m.run_code("import random; print(random.random())").stdout for m in kids}
        assert len(rnd) == 2
        # diff sees what changed between two members
        d = parent.diff(kids[0])
        assert [e["path"] for e in d["added"]] == ["/tmp/c0.txt"]
        assert [e["path"] for e in d["removed"]] == ["/data/later.txt"]
    finally:
        for k in kids:
            k.close()


def test_destroying_or_oom_of_one_member_leaves_the_others(vmd, parent):
    parent.run_code("shared = 'gen2'")
    a, b = parent.fork(2)
    try:
        # an OOM in one child: its REPL is killed, the others keep theirs
        r = a.run_code("chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))\n", timeout=120)
        assert r.error is not None and r.error.name == "OutOfMemory", r
        assert b.run_code("print(shared)").stdout == "gen2\n"
        assert parent.run_code("print(shared)").stdout == "gen2\n"
        # destroying the parent does not touch a child, nor a child's child
        (g,) = b.fork(1)
        try:
            assert g.info()["family_id"] == parent.id and g.info()["parent_id"] == b.id
            before = set(qemu_pids(vmd))
            b.close()
            assert g.run_code("print(shared)").stdout == "gen2\n"
            assert a.run_code("print(1)").stdout == "1\n"
            assert len(set(qemu_pids(vmd))) == len(before) - 1
        finally:
            g.close()
    finally:
        a.close()
        b.close()
