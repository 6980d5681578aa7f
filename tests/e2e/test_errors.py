"""Every bad input gets its documented error, and the daemon keeps serving."""

import hashlib
import os
import secrets
from pathlib import Path

import pytest

import airlock
from airlock import Sandbox
from e2e_support import Daemon, stop_and_check

NO_SUCH_ID = "sb_" + "0" * 32


def check_error(resp, status, code):
    st, hdrs, data, body = resp
    assert st == status, (st, data)
    assert hdrs.get("content-type", "").startswith("application/json"), hdrs
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert body["error"]["code"] == code, body
    return body["error"]["message"]


# ---- malformed requests -----------------------------------------------------------

@pytest.mark.parametrize("raw", ["{", "not json", "[]", "42", '"str"', '{"a":1}{'])
def test_malformed_json(daemon, assert_alive, raw):
    check_error(daemon.request("POST", "/v1/sandboxes", raw,
                               headers={"Content-Type": "application/json"}), 400, "invalid_json")
    assert_alive()


@pytest.mark.parametrize("body", [
    {"timeout_s": "30"}, {"timeout_s": 30.5}, {"timeout_s": 0}, {"timeout_s": -1},
    {"memory_mb": "big"}, {"memory_mb": 1}, {"cpus": "two"}, {"cpus": 0},
    {"egress": "no"}, {"env": {"A": 1}}, {"env": ["A=1"]}, {"metadata": "x"},
    {"template": 5}, {"region": 7},
])
def test_create_wrong_field_types(daemon, assert_alive, body):
    msg = check_error(daemon.request("POST", "/v1/sandboxes", body), 400, "invalid_request")
    field = next(iter(body))
    assert field in msg, msg  # the message names the field
    assert_alive()


@pytest.mark.parametrize("suffix,body", [
    ("/code", {}), ("/code", {"code": 123}), ("/code", {"code": "1", "language": "cobol"}),
    ("/code", {"code": "1", "timeout_s": "5"}), ("/code", {"code": "1", "timeout_s": 86401}),
    ("/exec", {}), ("/exec", {"cmd": []}), ("/exec", {"cmd": 5}), ("/exec", {"cmd": ["ls", 1]}),
    ("/exec", {"cmd": ["ls"], "env": {"A": 1}}), ("/exec", {"cmd": ["ls"], "cwd": 3}),
    ("/timeout", {}), ("/timeout", {"timeout_s": "10"}),
])
def test_run_wrong_field_types(daemon, witness, assert_alive, suffix, body):
    check_error(daemon.request("POST", "/v1/sandboxes/%s%s" % (witness.id, suffix), body),
                400, "invalid_request")
    assert_alive()


def test_sdk_maps_400_to_invalid_request(witness, assert_alive):
    with pytest.raises(airlock.InvalidRequest) as ei:
        witness.run_code("1", language="cobol")
    assert ei.value.status == 400 and ei.value.code == "invalid_request"
    assert_alive()


def test_unknown_query_parameter(daemon, witness, assert_alive):
    check_error(daemon.request("GET", "/v1/sandboxes/%s/files?path=/tmp&bogus=1" % witness.id),
                400, "invalid_request")
    check_error(daemon.request("GET", "/v1/sandboxes/%s/files" % witness.id), 400, "invalid_request")
    assert_alive()


# ---- unknown things ------------------------------------------------------------------

def test_unknown_sandbox(daemon, assert_alive):
    for method, suffix, body in [("GET", "", None), ("DELETE", "", None),
                                 ("POST", "/code", {"code": "1"}),
                                 ("POST", "/exec", {"cmd": ["true"]}),
                                 ("GET", "/files?path=/tmp/x", None),
                                 ("POST", "/timeout", {"timeout_s": 10}),
                                 ("GET", "/logs", None)]:
        check_error(daemon.request(method, "/v1/sandboxes/" + NO_SUCH_ID + suffix, body),
                    404, "not_found")
    check_error(daemon.request("GET", "/v1/sandboxes/garbage-id"), 404, "not_found")
    with pytest.raises(airlock.NotFound) as ei:
        Sandbox.connect(NO_SUCH_ID)
    assert ei.value.status == 404
    assert_alive()


def test_unknown_route_and_wrong_method(daemon, assert_alive):
    check_error(daemon.request("GET", "/v1/nope"), 404, "not_found")
    check_error(daemon.request("GET", "/"), 404, "not_found")
    check_error(daemon.request("GET", "/v2/sandboxes"), 404, "not_found")
    for method, path in [("PATCH", "/v1/sandboxes"), ("PUT", "/v1/healthz"),
                         ("DELETE", "/v1/sandboxes"), ("GET", "/v1/sandboxes/%s/code" % NO_SUCH_ID),
                         ("POST", "/v1/keys/key_0000000000000000")]:
        st, hdrs, data, body = daemon.request(method, path)
        assert st == 405, (method, path, st, data)
        assert body["error"]["code"] == "method_not_allowed"
        assert "allow" in hdrs, hdrs
    assert_alive()


# ---- authentication -----------------------------------------------------------------

def test_missing_and_wrong_key(daemon, assert_alive):
    check_error(daemon.request("GET", "/v1/sandboxes", key=None), 401, "unauthorized")
    check_error(daemon.request("GET", "/v1/sandboxes", key="ak_" + "1" * 32), 401, "unauthorized")
    check_error(daemon.request("GET", "/v1/sandboxes", key="garbage"), 401, "unauthorized")
    check_error(daemon.request("GET", "/v1/sandboxes", key=None,
                               headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401, "unauthorized")
    # healthz needs no key
    st, _, _, body = daemon.request("GET", "/v1/healthz", key=None)
    assert st == 200 and body["status"] == "ok" and body["region"] == "eu"
    with pytest.raises(airlock.AuthError) as ei:
        Sandbox(api_key="ak_" + "2" * 32)
    assert ei.value.status == 401 and ei.value.code == "unauthorized"
    assert_alive()


def test_revoked_and_non_admin_keys(daemon, witness, assert_alive):
    st, _, _, k = daemon.request("POST", "/v1/keys", {"name": "e2e-user"})
    assert st == 201, k
    assert k["admin"] is False and k["key"].startswith("ak_") and k["id"].startswith("key_")
    user_key = k["key"]
    # a non-admin key works on its own sandboxes only (test_ownership.py) ...
    check_error(daemon.request("GET", "/v1/sandboxes/" + witness.id, key=user_key), 404, "not_found")
    # ... but not on /v1/keys
    check_error(daemon.request("GET", "/v1/keys", key=user_key), 403, "forbidden")
    check_error(daemon.request("POST", "/v1/keys", {"name": "x"}, key=user_key), 403, "forbidden")
    # the SDK maps 403 to AuthError too
    s = Sandbox(api_key=user_key)
    s.close()

    listed = daemon.request("GET", "/v1/keys")[3]["keys"]
    mine = [x for x in listed if x["id"] == k["id"]]
    assert len(mine) == 1 and mine[0]["revoked"] is False and "key" not in mine[0]

    st, _, _, body = daemon.request("DELETE", "/v1/keys/" + k["id"])
    assert (st, body) == (200, {"id": k["id"], "revoked": True})
    check_error(daemon.request("GET", "/v1/sandboxes", key=user_key), 401, "unauthorized")
    check_error(daemon.request("DELETE", "/v1/keys/" + k["id"]), 404, "not_found")
    listed = daemon.request("GET", "/v1/keys")[3]["keys"]
    assert [x["revoked"] for x in listed if x["id"] == k["id"]] == [True]
    with pytest.raises(airlock.AuthError):
        Sandbox.list(api_key=user_key)
    # bad key bodies
    check_error(daemon.request("POST", "/v1/keys", {}), 400, "invalid_request")
    check_error(daemon.request("POST", "/v1/keys", {"name": ""}), 400, "invalid_request")
    check_error(daemon.request("POST", "/v1/keys", {"name": "x", "admin": "yes"}), 400, "invalid_request")
    assert_alive()


# ---- policy: region, egress, template ------------------------------------------------

def test_region_unavailable(daemon, assert_alive):
    with pytest.raises(airlock.RegionUnavailable) as ei:
        Sandbox(egress=False, region="us-east")
    e = ei.value
    assert isinstance(e, airlock.InvalidRequest)
    assert (e.status, e.code) == (400, "region_unavailable")
    assert "eu" in e.message and "us-east" in e.message
    # the served region works
    with Sandbox(region="eu") as s:
        assert s.info()["region"] == "eu"
    assert_alive()


def test_egress_unavailable(assert_alive):
    # a VM has no network interface: egress is the jail's (open egress itself
    # is tests/e2e/test_egress_open.py's, in a network of the test's own: this
    # daemon is on the host's)
    with pytest.raises(airlock.EgressUnavailable) as ei:
        Sandbox(egress=True, isolation="vm")
    assert ei.value.status == 400 and ei.value.code == "egress_unavailable"
    assert isinstance(ei.value, airlock.InvalidRequest)
    assert_alive()


def test_template_not_found(assert_alive):
    with pytest.raises(airlock.TemplateNotFound) as ei:
        Sandbox(template="no-such-template")
    assert ei.value.status == 400 and ei.value.code == "template_not_found"
    assert_alive()


def test_bad_paths(witness, assert_alive):
    with pytest.raises(airlock.InvalidRequest) as ei:
        witness.upload(b"x", "/usr/bin/evil")  # outside the writable trees
    assert ei.value.status == 400
    with pytest.raises(airlock.NotFound):
        witness.download("/tmp/does-not-exist")
    with pytest.raises(airlock.InvalidRequest) as ei:
        witness.download("/tmp")  # a directory
    assert (ei.value.status, ei.value.code) == (409, "is_directory")
    assert_alive()


# ---- path escapes never reach host files -----------------------------------------------

def test_path_escapes(witness, assert_alive):
    marker = secrets.token_hex(16)
    host_file = Path("/tmp/airlock-e2e-host-" + marker)
    host_file.write_text("host secret " + marker)
    try:
        passwd = Path("/etc/passwd").read_bytes()
        shadow = Path("/etc/shadow").read_bytes() if Path("/etc/shadow").exists() else None
        passwd_hash = hashlib.sha256(passwd).hexdigest()
        for p in ["../../etc/passwd", "../../../../../../etc/passwd", "/proc/self/root/etc/passwd",
                  "/proc/1/root/etc/passwd"]:
            with pytest.raises(airlock.InvalidRequest) as ei:
                witness.upload(b"pwned\n", p)
            assert ei.value.status == 400, (p, ei.value)
        assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() == passwd_hash

        for p in ["../../etc/shadow", "/proc/self/root/etc/shadow", "/proc/1/root/etc/shadow",
                  "/../../etc/shadow", "../../" + str(host_file), "/proc/self/root" + str(host_file),
                  "/proc/1/root" + str(host_file), "/proc/1/cwd/" + host_file.name]:
            try:
                got = witness.download(p)
            except (airlock.InvalidRequest, airlock.NotFound):
                continue
            assert marker.encode() not in got, p
            assert shadow is None or got != shadow, p

        for p in ["../../../tmp/airlock-e2e-w-" + marker, "/proc/self/root/tmp/airlock-e2e-w-" + marker,
                  "/proc/1/cwd/airlock-e2e-w-" + marker]:
            try:
                witness.upload(b"x", p)
            except airlock.InvalidRequest:
                pass
        assert not Path("/tmp/airlock-e2e-w-" + marker).exists()
        # the code itself cannot see the host file either
        r = witness.run_code("import os; print(os.path.exists(%r))" % str(host_file))
        assert r.stdout == "False\n"
    finally:
        host_file.unlink()
    assert_alive()


# ---- limits: upload size and quota, on a daemon with small limits ----------------------

@pytest.fixture(scope="module")
def small_daemon(tmp_path_factory, daemon):
    d = Daemon(tmp_path_factory.mktemp("small"), ["--max-upload-mb", "1", "--max-sandboxes", "2"],
               name="small").start()
    yield d
    stop_and_check(d)


def test_oversized_upload(small_daemon, tmp_path):
    with small_daemon.sandbox() as s:
        ok = os.urandom(1024 * 1024)
        assert s.upload(ok, "/data/ok.bin")["size"] == len(ok)
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(3 * 1024 * 1024))
        with pytest.raises(airlock.PayloadTooLarge) as ei:
            s.upload(big, "/data/big.bin")
        assert (ei.value.status, ei.value.code) == (413, "payload_too_large")
        assert isinstance(ei.value, airlock.InvalidRequest)
        with pytest.raises(airlock.PayloadTooLarge):
            s.upload(os.urandom(1024 * 1024 + 1), "/data/big2.bin")
        # no partial file left behind, the sandbox keeps working
        names = [e["name"] for e in s.files.list("/data")]
        assert names == ["ok.bin"], names
        assert s.download("/data/ok.bin") == ok
        assert s.run_code("6*7").text == "42"
        # chunked upload without a length is capped too
        st, _, _, body = small_daemon.request(
            "PUT", "/v1/sandboxes/%s/files?path=/data/chunked.bin" % s.id,
            body=iter([b"x" * 65536] * 24))  # no length: http.client sends it chunked
        assert (st, body["error"]["code"]) == (413, "payload_too_large")
    assert small_daemon.healthz()["status"] == "ok"


def test_oversized_gzip_and_batch_uploads(small_daemon):
    """The limit is of the file: a small gzip body that inflates past it (a
    gzip bomb) is refused as it inflates; a batch's limit is its body's."""
    import gzip
    with small_daemon.sandbox() as s:
        bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
        assert len(bomb) < 64 * 1024
        st, _, _, body = small_daemon.request(
            "PUT", "/v1/sandboxes/%s/files?path=/data/bomb" % s.id, bomb,
            headers={"Content-Type": "application/octet-stream", "Content-Encoding": "gzip"})
        assert (st, body["error"]["code"]) == (413, "payload_too_large"), body
        with pytest.raises(airlock.PayloadTooLarge):
            s.files.write_files([("/data/b1", os.urandom(700 * 1024)), ("/data/b2", os.urandom(700 * 1024))])
        # refused from its Content-Length, before any part was written
        assert s.exec(["sh", "-c", "ls -A /data"]).stdout.split() == []
        # chunked (no length): cut while streaming; the part under way is dropped
        mp = (b'--bnd42\r\nContent-Disposition: form-data; name="file"; filename="/data/c1"\r\n\r\n' + b"1" * 1000 +
              b'\r\n--bnd42\r\nContent-Disposition: form-data; name="file"; filename="/data/c2"\r\n\r\n')
        st, _, _, body = small_daemon.request(
            "POST", "/v1/sandboxes/%s/files" % s.id, iter([mp] + [b"2" * 65536] * 24 + [b"\r\n--bnd42--\r\n"]),
            headers={"Content-Type": "multipart/form-data; boundary=bnd42"})
        assert (st, body["error"]["code"]) == (413, "payload_too_large"), body
        assert s.exec(["sh", "-c", "ls -A /data"]).stdout.split() == ["c1"]
        assert s.run_code("6*7").text == "42"
    assert small_daemon.healthz()["status"] == "ok"


def test_quota(small_daemon):
    a = small_daemon.sandbox()
    b = small_daemon.sandbox()
    try:
        with pytest.raises(airlock.QuotaExceeded) as ei:
            small_daemon.sandbox()
        assert (ei.value.status, ei.value.code) == (429, "quota_exceeded")
        assert a.run_code("1+1").text == "2"
        b.close()
        c = small_daemon.sandbox()
        assert c.run_code("2+2").text == "4"
        c.close()
    finally:
        a.close()
        b.close()
    assert small_daemon.healthz()["sandboxes"] == 0
