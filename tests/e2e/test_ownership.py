"""Per-key sandbox ownership: a non-admin key sees and uses only its own
sandboxes, and someone else's answers exactly like an unknown id; an admin
key sees and acts on all of them."""

import pytest

import airlock
from airlock import Sandbox

NO_SUCH_ID = "sb_" + "0" * 32


def make_key(daemon, name):
    st, _, data, k = daemon.request("POST", "/v1/keys", {"name": name})
    assert st == 201, data
    assert k["admin"] is False
    return k


def revoke(daemon, key):
    daemon.request("DELETE", "/v1/keys/" + key["id"])  # 404 if a test revoked it already


@pytest.fixture(scope="module")
def key_a(daemon):
    k = make_key(daemon, "owner-a")
    yield k
    revoke(daemon, k)


@pytest.fixture(scope="module")
def key_b(daemon):
    k = make_key(daemon, "owner-b")
    yield k
    revoke(daemon, k)


@pytest.fixture(scope="module")
def sb_a(daemon, key_a):
    """A's sandbox, with state the intruder must not be able to change."""
    s = Sandbox(api_key=key_a["key"], base_url=daemon.url, timeout=3600)
    s.run_code("secret = 41")
    s.upload(b"A's data", "/data/a.txt")
    yield s
    s.close()


@pytest.fixture
def intruder(daemon, sb_a, key_b):
    """A handle on A's sandbox id that speaks with B's key. Built from the id
    directly: Sandbox.connect() would already fail on the first GET (tested
    separately)."""
    s = Sandbox(_info={"id": sb_a.id}, api_key=key_b["key"], base_url=daemon.url)
    yield s
    s._http.close()  # not close(): that would send a DELETE


def unknown_id_answer(daemon, key, method, suffix, body=None):
    """(status, error body) for an id that does not exist, with the id blanked."""
    st, _, _, b = daemon.request(method, "/v1/sandboxes/" + NO_SUCH_ID + suffix, body, key=key)
    return st, b


def assert_like_unknown(daemon, key, sid, method, suffix, body=None):
    st, _, data, b = daemon.request(method, "/v1/sandboxes/" + sid + suffix, body, key=key)
    assert st == 404, (method, suffix, st, data)
    assert b == {"error": {"code": "not_found", "message": "no sandbox " + sid}}, b
    # the same answer as for an id that was never created
    ust, ub = unknown_id_answer(daemon, key, method, suffix, body)
    assert (ust, ub["error"]["message"].replace(NO_SUCH_ID, sid)) == (st, b["error"]["message"])


def check_not_found(exc, sid):
    assert exc.value.status == 404 and exc.value.code == "not_found", repr(exc.value)
    assert exc.value.message == "no sandbox " + sid, repr(exc.value)


# ---- B cannot touch A's sandbox ---------------------------------------------------

def test_other_key_gets_not_found_on_every_operation(daemon, sb_a, key_a, key_b, intruder):
    sid = sb_a.id
    expires_before = sb_a.info()["expires_at"]

    with pytest.raises(airlock.NotFound) as ei:
        Sandbox.connect(sid, api_key=key_b["key"], base_url=daemon.url)
    check_not_found(ei, sid)
    calls = [
        ("info", lambda: intruder.info()),
        ("run_code", lambda: intruder.run_code("secret = 0")),
        ("run_code_stream", lambda: list(intruder.run_code_stream("secret = 0"))),
        ("exec", lambda: intruder.exec(["sh", "-c", "echo pwned > /data/a.txt"])),
        ("upload", lambda: intruder.upload(b"B's data", "/data/a.txt")),
        ("download", lambda: intruder.download("/data/a.txt")),
        ("files.list", lambda: intruder.files.list("/data")),
        ("files.remove", lambda: intruder.files.remove("/data/a.txt")),
        ("files.get_info", lambda: intruder.files.get_info("/data/a.txt")),
        ("files.make_dir", lambda: intruder.files.make_dir("/data/b")),
        ("files.rename", lambda: intruder.files.rename("/data/a.txt", "/data/b.txt")),
        ("files.write_files", lambda: intruder.files.write_files([("/data/a.txt", b"B")])),
        ("files.watch_dir", lambda: intruder.files.watch_dir("/data")),
        ("set_timeout", lambda: intruder.set_timeout(1)),
        ("logs", lambda: intruder.logs()),
        ("delete", lambda: intruder._http.request_json("DELETE", "/v1/sandboxes/" + sid)),
    ]
    # every operation is tried, so a failure names all the operations that leak
    outcomes = {}
    for name, call in calls:
        try:
            call()
            outcomes[name] = "succeeded"
        except airlock.AirlockError as e:
            outcomes[name] = (type(e).__name__, e.status, e.code, e.message)
    want = ("NotFound", 404, "not_found", "no sandbox " + sid)
    assert outcomes == {name: want for name, _ in calls}

    # the raw answers are byte-for-byte those of an unknown id
    for method, suffix, body in [("GET", "", None), ("DELETE", "", None),
                                 ("POST", "/code", {"code": "1"}),
                                 ("POST", "/exec", {"cmd": ["true"]}),
                                 ("GET", "/files?path=/data/a.txt", None),
                                 ("GET", "/files/list?path=/data", None),
                                 ("GET", "/files/info?path=/data/a.txt", None),
                                 ("GET", "/files/watch?path=/data", None),
                                 ("POST", "/files/mkdir?path=/data/b", None),
                                 ("POST", "/files/rename?path=/data/a.txt&to=/data/b.txt", None),
                                 ("POST", "/timeout", {"timeout_s": 1}),
                                 ("GET", "/logs", None)]:
        assert_like_unknown(daemon, key_b["key"], sid, method, suffix, body)

    # A's sandbox is untouched and still works for A
    r = sb_a.run_code("secret + 1")
    assert r.error is None and r.text == "42", r
    assert sb_a.download("/data/a.txt") == b"A's data"
    info = sb_a.info()
    assert info["state"] == "running" and info["expires_at"] == expires_before, info
    assert "key_id" not in info, info  # owners are not shown to non-admins
    events = sb_a.logs()
    assert events and all(e["key_id"] == key_a["id"] for e in events), events


def test_other_key_cannot_see_destroyed_sandbox(daemon, key_a, key_b):
    """A destroyed sandbox's record must not leak either ("was destroyed"
    would tell B that the id exists)."""
    s = Sandbox(api_key=key_a["key"], base_url=daemon.url)
    sid = s.id
    s.close()
    st, _, _, b = daemon.request("POST", "/v1/sandboxes/%s/code" % sid, {"code": "1"}, key=key_a["key"])
    assert st == 404 and "was destroyed" in b["error"]["message"], b  # the owner learns why
    for method, suffix, body in [("GET", "", None), ("GET", "/logs", None),
                                 ("POST", "/code", {"code": "1"}), ("DELETE", "", None)]:
        assert_like_unknown(daemon, key_b["key"], sid, method, suffix, body)
    st, _, _, b = daemon.request("GET", "/v1/sandboxes/" + sid, key=key_a["key"])
    assert st == 200 and b["state"] == "destroyed", b


def test_owner_cannot_touch_admin_sandbox(daemon, key_a, witness, assert_alive):
    """Non-admin keys do not see sandboxes made with the admin key either."""
    assert_like_unknown(daemon, key_a["key"], witness.id, "GET", "")
    assert_like_unknown(daemon, key_a["key"], witness.id, "POST", "/code", {"code": "witness_state = 0"})
    assert_like_unknown(daemon, key_a["key"], witness.id, "DELETE", "")
    assert_alive()  # the witness kept its state


# ---- lists ------------------------------------------------------------------------

def test_lists_are_per_key_and_admin_sees_all(daemon, sb_a, key_a, key_b, witness):
    sb_b = Sandbox(api_key=key_b["key"], base_url=daemon.url)
    try:
        ids_b = [s["id"] for s in Sandbox.list(api_key=key_b["key"], base_url=daemon.url)]
        assert ids_b == [sb_b.id], ids_b
        ids_a = [s["id"] for s in Sandbox.list(api_key=key_a["key"], base_url=daemon.url)]
        assert ids_a == [sb_a.id], ids_a
        listed = Sandbox.list(api_key=daemon.key, base_url=daemon.url)
        owners = {s["id"]: s.get("key_id") for s in listed}
        assert owners.get(sb_a.id) == key_a["id"], owners
        assert owners.get(sb_b.id) == key_b["id"], owners
        assert witness.id in owners, owners
        # admins see the owner in the sandbox object; owners do not
        assert sb_b.info().get("key_id") is None
        st, _, _, b = daemon.request("GET", "/v1/sandboxes/" + sb_b.id)
        assert st == 200 and b["key_id"] == key_b["id"], b
    finally:
        sb_b.close()


# ---- admin --------------------------------------------------------------------------

def test_admin_acts_on_any_sandbox(daemon, sb_a, key_a):
    admin_view = Sandbox.connect(sb_a.id, api_key=daemon.key, base_url=daemon.url)
    try:
        r = admin_view.run_code("secret * 2")
        assert r.error is None and r.text == "82", r
        assert admin_view.download("/data/a.txt") == b"A's data"
        assert any(e["action"] == "code" for e in admin_view.logs())
    finally:
        admin_view._http.close()  # not close(): A's sandbox stays for the other tests
    assert sb_a.info()["state"] == "running"


def test_revoked_key_sandbox_runs_until_admin_deletes_it(daemon):
    k = make_key(daemon, "owner-revoked")
    s = Sandbox(api_key=k["key"], base_url=daemon.url, timeout=3600)
    s.run_code("x = 7")
    st, _, _, _ = daemon.request("DELETE", "/v1/keys/" + k["id"])
    assert st == 200
    with pytest.raises(airlock.AuthError):
        s.info()
    # still running, and the admin can use it ...
    st, _, _, b = daemon.request("GET", "/v1/sandboxes/" + s.id)
    assert st == 200 and b["state"] == "running" and b["key_id"] == k["id"], b
    st, _, _, b = daemon.request("POST", "/v1/sandboxes/%s/code" % s.id, {"code": "x + 1"})
    assert st == 200 and b["results"][0]["text/plain"] == "8", b
    # ... and delete it
    st, _, _, b = daemon.request("DELETE", "/v1/sandboxes/" + s.id)
    assert (st, b) == (200, {"id": s.id, "state": "destroyed"})
    st, _, _, b = daemon.request("GET", "/v1/sandboxes/" + s.id)
    assert st == 200 and b["state"] == "destroyed" and b["destroy_reason"] == "deleted", b
    s._http.close()


def test_admin_deletes_other_keys_sandbox(daemon, key_b):
    sb_b = Sandbox(api_key=key_b["key"], base_url=daemon.url)
    admin_ids = [x["id"] for x in daemon.request("GET", "/v1/keys")[3]["keys"] if x["name"] == "env"]
    st, _, _, b = daemon.request("DELETE", "/v1/sandboxes/" + sb_b.id)
    assert (st, b) == (200, {"id": sb_b.id, "state": "destroyed"})
    with pytest.raises(airlock.NotFound):
        sb_b.run_code("1")
    assert sb_b.info()["destroy_reason"] == "deleted"
    deletes = [e for e in sb_b.logs() if e["action"] == "delete"]
    assert [e["key_id"] for e in deletes] == admin_ids, deletes
    sb_b.close()
