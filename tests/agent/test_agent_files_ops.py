"""The agent's side of FILE_STAT, FILE_RENAME, FILE_MKDIR, FILE_LIST with a
depth and FILE_WATCH (docs/protocol.md), spoken to directly: the path policy
holds here on its own, whatever the daemon checked first (defence in depth)."""

import os

from agent_support import ERROR, F_END, FILE_LIST, FILE_MKDIR, OK

FILE_STAT, FILE_RENAME, FILE_WATCH, FILE_EVENT = 0x27, 0x28, 0x29, 0x46


def next_frame(agent, req, timeout=10):
    """The next frame of req (frames of other requests are kept for later)."""
    pending = agent.pending.get(req)
    if pending:
        return pending.pop(0)
    while True:
        f = agent._read_frame(timeout)
        if f.req_id == req:
            return f
        agent.pending.setdefault(f.req_id, []).append(f)


def test_stat_describes_without_following(agent, root):
    data = os.path.join(root, "data")
    with open(os.path.join(data, "f"), "wb") as f:
        f.write(b"12345")
    os.symlink("/etc", os.path.join(data, "etc-link"))
    r = agent.call(FILE_STAT, {"path": "/data/f"})
    assert r.type == OK and r.body["size"] == 5 and r.body["type"] == "file" and r.body["path"] == "/data/f", r.body
    r = agent.call(FILE_STAT, {"path": "/data/etc-link"})
    assert r.body["type"] == "symlink" and r.body["symlink_target"] == "/etc", r.body
    assert agent.call(FILE_STAT, {"path": "/data/nope"}).error_code == "not_found"
    assert agent.call(FILE_STAT, {"path": "/proc/self/status"}).error_code == "path_forbidden"
    assert agent.call(FILE_STAT, {"path": 42}).error_code == "invalid_request"


def test_rename_is_a_write_at_both_ends(agent, root):
    data = os.path.join(root, "data")
    with open(os.path.join(data, "f"), "wb") as f:
        f.write(b"x")
    os.mkdir(os.path.join(root, "etc"))
    os.symlink("/etc", os.path.join(data, "etc-link"))
    for to in ("/etc/f", "/data/etc-link/f", "/proc/f", "/"):
        r = agent.call(FILE_RENAME, {"path": "/data/f", "to": to})
        assert r.type == ERROR and r.body["code"] == "invalid_request", (to, r.body)
    assert os.listdir(os.path.join(root, "etc")) == []
    for src in ("/etc", "/data", "/home/user"):
        assert agent.call(FILE_RENAME, {"path": src, "to": "/tmp/x"}).error_code == "invalid_request", src
    assert agent.call(FILE_RENAME, {"path": "/data/f", "to": "/tmp", "overwrite": True}).error_code == \
        "invalid_request"
    assert agent.call(FILE_RENAME, {"path": "/data/f"}).error_code == "invalid_request"
    assert agent.call(FILE_RENAME, {"path": "/data/f", "to": "/tmp/g", "overwrite": "yes"}).error_code == \
        "invalid_request"
    # the link itself moves, not what it points to
    r = agent.call(FILE_RENAME, {"path": "/data/etc-link", "to": "/tmp/moved-link"})
    assert r.type == OK and r.body["type"] == "symlink", r.body
    assert os.readlink(os.path.join(root, "tmp", "moved-link")) == "/etc"
    with open(os.path.join(data, "g"), "wb") as f:
        f.write(b"g")
    assert agent.call(FILE_RENAME, {"path": "/data/f", "to": "/data/g"}).error_code == "exists"
    assert agent.call(FILE_RENAME, {"path": "/data/f", "to": "/data/g", "overwrite": True}).type == OK
    assert open(os.path.join(data, "g"), "rb").read() == b"x"


def test_mkdir_answers_created(agent, root):
    r = agent.call(FILE_MKDIR, {"path": "/data/a/b"})
    assert r.type == OK and r.body == {"path": "/data/a/b", "created": True}, r.body
    assert agent.call(FILE_MKDIR, {"path": "/data/a/b"}).body["created"] is False
    assert agent.call(FILE_MKDIR, {"path": "/home/user"}).body["created"] is False


def test_list_depth_bounds(agent, root):
    os.makedirs(os.path.join(root, "data", "t", "u"))
    for bad in (0, 65, "2", -1):
        assert agent.call(FILE_LIST, {"path": "/data", "depth": bad}).error_code == "invalid_request", bad
    r = agent.call(FILE_LIST, {"path": "/data", "depth": 3})
    assert [e["path"] for e in r.body["entries"]] == ["/data/t", "/data/t/u"], r.body


def test_watch_events_and_cancel(agent, root):
    d = os.path.join(root, "data", "w")
    os.mkdir(d)
    req = agent.start(FILE_WATCH, {"path": "/data/w"})
    ok = next_frame(agent, req)
    assert ok.type == OK and not ok.end and ok.json()["dirs"] == 1, ok
    with open(os.path.join(d, "x"), "wb") as f:
        f.write(b"1")
    events = []
    while not any(e["type"] == "write" for e in events):
        f = next_frame(agent, req)
        assert f.type == FILE_EVENT, f
        events += f.json()["events"]
    assert events[0] == {"type": "create", "path": "/data/w/x", "is_dir": False}, events
    # the daemon's ERROR cancels it: no more events, and the slot is free
    agent.send(ERROR, req, {"code": "internal", "message": "client left"}, F_END)
    with open(os.path.join(d, "y"), "wb") as f:
        f.write(b"2")
    assert agent.frames_for(req, 0.5) == []
    # sixteen at once, then busy
    reqs = [agent.start(FILE_WATCH, {"path": "/data"}) for _ in range(16)]
    for r in reqs:
        assert next_frame(agent, r).type == OK
    assert agent.call(FILE_WATCH, {"path": "/data"}).error_code == "busy"
    # a cancel frees a slot for the very next request (frames are served in order)
    agent.send(ERROR, reqs[0], {"code": "internal", "message": "client left"}, F_END)
    last = agent.start(FILE_WATCH, {"path": "/data/w"})
    assert next_frame(agent, last).type == OK
    for r in reqs[1:]:
        agent.send(ERROR, r, {"code": "internal", "message": "client left"}, F_END)
    # the watched directory going ends its watch with END and a reason
    for name in ("x", "y"):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)
    end = agent.collect(last, 10).frames[-1]
    assert end.type == FILE_EVENT and end.end and "removed" in end.json()["end"], end
    assert agent.call(FILE_WATCH, {"path": "/proc"}).error_code == "path_forbidden"
    assert agent.call(FILE_WATCH, {"path": "/data/none"}).error_code == "not_found"
    assert agent.call(FILE_WATCH, {"path": "/data", "recursive": 1}).error_code == "invalid_request"


def test_list_reply_is_cut_at_the_frame_limit_not_before(agent, root):
    """Entries carry the info fields now: the reply is cut by its real size
    (under the 1 MiB frame limit, "truncated"), not by a worst-case guess."""
    d = os.path.join(root, "data", "many")
    os.mkdir(d)
    for i in range(4000):
        open(os.path.join(d, "%04d-%s" % (i, "n" * 95)), "wb").close()
    r = agent.call(FILE_LIST, {"path": "/data/many"})
    assert r.type == OK and r.body.get("truncated") is True, len(r.body["entries"])
    size = len(r.frames[-1].payload)
    assert 900 * 1024 < size <= 1024 * 1024, size
    names = [e["name"] for e in r.body["entries"]]
    assert names == sorted(names) and names[0].startswith("0000-"), names[:3]
