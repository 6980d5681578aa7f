"""Shared objects through the file API (issue 10, defence in depth): the
agent runs as root in the sandbox, so its file API must not be a window onto
kernel interfaces: listing /proc/1/fd or /proc/1/map_files would name the
agent's descriptors and mappings (its control socket, the memfds it holds),
/proc/self/environ would be the agent's environment, /dev and /sys are
devices and kernel state, not files. The daemon refuses paths under /proc,
/sys and /dev with 400 path_forbidden before anything reaches the agent; the
agent refuses them too, and also refuses what a symlink leads into there
(the code plants the links, the file API is the target).

Each case states what must hold: the call is refused and the answer carries
nothing of the target (no entries, no file bytes, no environment).
"""

import urllib.parse

import pytest

import airlock
from seclib import Attack, params

CAT = "shared-objects"

# What a leak would look like in an answer: fd link targets, map_files
# names, environment variables of the agent.
LEAK_MARKERS = (b"socket:[", b"pipe:[", b"anon_inode:", b"memfd:", b"PATH=", b"HOME=", b"AIRLOCK")

PROC_PATHS = ["/proc/1/fd", "/proc/1/map_files", "/proc/self/fd", "/proc/self/environ", "/proc/1/environ",
              "/proc/1/maps", "/proc", "/sys/kernel", "/sys", "/dev", "/dev/shm", "/dev/zero",
              "../../proc/1/fd", "/data/../proc/1/map_files", "//proc//1//fd", "/proc/./1/fd/"]


def _refused(call, codes=("path_forbidden",)):
    try:
        res = call()
    except airlock.AirlockError as e:
        assert e.code in codes, "refused, but with %r" % (e,)
        for m in LEAK_MARKERS:
            assert m.decode() not in e.message, "the refusal leaks %r: %s" % (m, e.message)
        return e
    raise AssertionError("the file API did it: %r" % (res,))


def then_every_route_refuses(paths, codes=("path_forbidden",)):
    """SDK calls on each path: list, download, upload, remove."""
    def then(arena, sb, outcome):
        for p in paths:
            _refused(lambda: sb.files.list(p), codes)
            _refused(lambda: sb.download(p), codes)
            # writes are refused too (path_forbidden from the daemon, or the
            # agent's writes-only-under rule for a link)
            _refused(lambda: sb.upload(b"evil", p), codes + ("invalid_request",))
            _refused(lambda: sb.files.remove(p), codes + ("invalid_request",))
            # and the directory operations of issue 14 (info, mkdir, a rename
            # from or to there, a deep listing, a watch, a batch write)
            _refused(lambda: sb.files.get_info(p), codes)
            _refused(lambda: sb.files.make_dir(p), codes + ("invalid_request",))
            _refused(lambda: sb.files.rename(p, "/tmp/moved"), codes + ("invalid_request",))
            _refused(lambda: sb.files.rename("/tmp", p), codes + ("invalid_request",))
            _refused(lambda: sb.files.list(p, depth=3), codes)
            _refused(lambda: sb.files.watch_dir(p), codes)
            _refused(lambda: sb.files.write_files([(p + "/x", b"evil")]), codes + ("invalid_request",))
    return then


def then_rest_refuses(paths):
    """The raw REST routes, as a client that skips the SDK's own checks."""
    def then(arena, sb, outcome):
        d = arena.daemon
        for p in paths:
            q = urllib.parse.quote(p, safe="")
            for method, route in (("GET", "/files/list"), ("GET", "/files"), ("DELETE", "/files"),
                                  ("PUT", "/files"), ("GET", "/files/info"), ("GET", "/files/watch"),
                                  ("POST", "/files/mkdir")):
                st, h, body, j = d.request(method, "/v1/sandboxes/%s%s?path=%s" % (sb.id, route, q),
                                           b"x" if method == "PUT" else None)
                assert st == 400, (method, route, p, st, body[:300])
                assert j and j["error"]["code"] == "path_forbidden", (method, route, p, j)
                assert "entries" not in j
                for m in LEAK_MARKERS:
                    assert m not in body, (method, route, p, body[:300])
    return then


def then_links_refused(links):
    """The code planted links into /proc, /sys, /dev; reading through them
    is refused by the agent (the daemon sees only /tmp/...)."""
    def then(arena, sb, outcome):
        refusals = ("path_forbidden", "path_escape", "not_found", "not_directory", "invalid_request")
        for p in links:
            _refused(lambda: sb.files.list(p), refusals)
            _refused(lambda: sb.files.watch_dir(p), refusals)
            # info of what is below a link: the link's directory is read-checked
            _refused(lambda: sb.files.get_info(p + "/x"), refusals)
        # a deep listing of /tmp lists the links and does not walk into them
        for e in sb.files.list("/tmp", depth=4):
            assert not any(e["path"].startswith(l + "/") for l in links + ["/tmp/p1", "/tmp/pself", "/tmp/sysk"]), e
        for p in links:
            try:
                data = sb.download(p)
            except airlock.AirlockError as e:
                assert e.code in ("path_forbidden", "path_escape", "not_found", "is_directory",
                                  "invalid_request"), e
                continue
            raise AssertionError("read %s through a link: %r" % (p, data[:200]))
    return then


def then_listing_reveals_no_descriptors(arena, sb, outcome):
    """A listing of /tmp (where the links are) shows links, not what the
    agent holds."""
    entries = sb.files.list("/tmp")
    names = {e["name"] for e in entries}
    assert {"p1", "pself", "shm", "sysk"} <= names, names
    for e in entries:
        assert e["type"] in ("symlink", "file", "dir", "other"), e


PLANT = '''
import os
for src, dst in (("/proc/1", "/tmp/p1"), ("/proc/self", "/tmp/pself"), ("/dev/shm", "/tmp/shm"),
                 ("/sys/kernel", "/tmp/sysk"), ("/proc/1/environ", "/tmp/env1"), ("/proc/1/fd", "/tmp/fd1")):
    if os.path.lexists(dst):
        os.unlink(dst)
    os.symlink(src, dst)
print("RESULT planted")
'''

ATTACKS = [
    Attack("files_api_kernel_paths_sdk", CAT, 'print("RESULT none-needed")', frozenset({"none-needed"}),
           then=then_every_route_refuses(PROC_PATHS),
           doc="list/read/write/delete of /proc/1/fd, /proc/1/map_files, /proc/self/environ, /sys, /dev"),
    Attack("files_api_kernel_paths_rest", CAT, 'print("RESULT none-needed")', frozenset({"none-needed"}),
           then=then_rest_refuses(PROC_PATHS)),
    Attack("files_api_links_into_proc_sys_dev", CAT, PLANT, frozenset({"planted"}),
           then=then_links_refused(["/tmp/p1/fd", "/tmp/p1/map_files", "/tmp/pself/environ", "/tmp/env1",
                                    "/tmp/fd1", "/tmp/shm", "/tmp/sysk", "/tmp/p1/environ"]),
           doc="the daemon sees /tmp paths; the agent must see where they lead"),
    Attack("files_api_listing_of_links", CAT, PLANT, frozenset({"planted"}), then=then_listing_reveals_no_descriptors),
]


@pytest.mark.parametrize("attack", params(ATTACKS))
def test_shared_files_api(arena, attack):
    arena.attack(attack)
