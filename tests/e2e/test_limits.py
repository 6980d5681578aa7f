"""The daemon's front door: request size bounds, per-key rate / concurrency /
sandbox limits, the per-address limit on failed authentications, and how the
SDK and the CLI surface a 429.

Size refusals run on the shared daemon (its defaults must answer them);
everything that needs low limits starts its own daemon with low flags, so
the shared daemon's defaults are never near a limit for the other tests."""

import json
import os
import socket
import subprocess
import threading

import pytest

import airlock
from airlock import Sandbox
from airlock._transport import Transport
from e2e_support import Daemon, stop_and_check, wait_until
from test_errors import check_error


def raw_request(port, head, timeout=10.0):
    """Send a hand-written request head; return (status, headers, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before reading it all: the answer is there
        data = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            data += b
    head_end = data.index(b"\r\n\r\n")
    lines = data[:head_end].decode("latin-1").split("\r\n")
    hdrs = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return int(lines[0].split()[1]), hdrs, data[head_end + 4:]


# ---- sizes, on the shared daemon ------------------------------------------------------

def test_long_url_is_414_json(daemon, assert_alive):
    msg = check_error(daemon.request("GET", "/v1/sandboxes?path=" + "a" * 17000), 414, "uri_too_long")
    assert "16 KiB" in msg
    # a long path segment too (the route's {id})
    check_error(daemon.request("GET", "/v1/sandboxes/" + "b" * 17000), 414, "uri_too_long")
    # a 4 KiB file path, %-encoded, is still fine
    st, _, _, body = daemon.request("GET", "/v1/sandboxes/sb_%s/files?path=%s"
                                    % ("0" * 32, "%2F" * 1365))
    assert (st, body["error"]["code"]) == (404, "not_found")
    assert_alive()


def test_big_headers_are_431_json(daemon, assert_alive):
    check_error(daemon.request("GET", "/v1/sandboxes", headers={"X-Big": "x" * 33000}),
                431, "headers_too_large")
    many = {"X-H%d" % i: "y" for i in range(70)}
    check_error(daemon.request("GET", "/v1/sandboxes", headers=many), 431, "headers_too_large")
    # up to the bounds: answered normally
    st, _, _, _ = daemon.request("GET", "/v1/sandboxes", headers={"X-Big": "x" * 30000})
    assert st == 200
    assert_alive()


def test_request_head_beyond_libmicrohttpd_limit(daemon, assert_alive):
    """Past ~256 KiB the HTTP library answers by itself: still a 4xx (not JSON,
    docs/api.md says so), and the daemon keeps serving."""
    st, _, _ = raw_request(daemon.port, b"GET /v1/sandboxes HTTP/1.1\r\nHost: x\r\nX-Big: "
                           + b"x" * 300000 + b"\r\n\r\n")
    assert st == 431
    st, _, _ = raw_request(daemon.port, b"GET /v1/sandboxes?a=" + b"x" * 300000
                           + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == 414
    assert_alive()


def test_query_parameters_bounded(daemon, witness, assert_alive):
    base = "/v1/sandboxes/%s/files" % witness.id
    msg = check_error(daemon.request("GET", base + "?" + "&".join("path=/%d" % i for i in range(9))),
                      400, "invalid_request")
    assert "query parameters" in msg
    msg = check_error(daemon.request("GET", base + "?path=/tmp&path=/etc"), 400, "invalid_request")
    assert "'path'" in msg and "more than once" in msg
    check_error(daemon.request("DELETE", base + "?path=/tmp/x&recursive=true&recursive=false"),
                400, "invalid_request")
    assert_alive()


def test_code_and_env_bounded(daemon, witness, assert_alive, fresh):
    url = "/v1/sandboxes/%s/code" % witness.id
    msg = check_error(daemon.request("POST", url, {"code": "#" * (1024 * 1024 + 1)}),
                      413, "payload_too_large")
    assert "code" in msg
    many = {"V%d" % i: "1" for i in range(257)}
    msg = check_error(daemon.request("POST", "/v1/sandboxes", {"env": many}), 400, "invalid_request")
    assert "env" in msg and "256" in msg
    check_error(daemon.request("POST", "/v1/sandboxes/%s/exec" % witness.id,
                               {"cmd": ["true"], "env": many}), 400, "invalid_request")
    big = {"BIG": "x" * (65 * 1024)}
    check_error(daemon.request("POST", "/v1/sandboxes", {"env": big}), 400, "invalid_request")
    # 256 variables are fine
    s = fresh(env={"V%d" % i: str(i) for i in range(256)})
    assert s.exec(["sh", "-c", "echo $V255"]).stdout == "255\n"
    assert_alive()


# ---- per-key limits, on daemons of their own --------------------------------------------

@pytest.fixture
def limited(tmp_path):
    """Low limits for ordinary keys; the admin key is exempt (--admin-unlimited), so
    it can make keys and watch without spending their budget."""
    d = Daemon(tmp_path / "limited", ["--rate-limit", "0.01", "--rate-burst", "20",
                                       "--max-concurrent-requests", "2",
                                       "--max-sandboxes-per-key", "2", "--admin-unlimited"],
               name="limited").start()
    yield d
    stop_and_check(d)


def new_key(d, name="user"):
    st, _, _, body = d.request("POST", "/v1/keys", {"name": name})
    assert st == 201, body
    return body["key"]


def check_429(resp, code, retry_after=None):
    st, hdrs, data, body = resp
    assert st == 429, (st, data)
    assert hdrs.get("content-type", "").startswith("application/json")
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    if retry_after is None:
        assert "retry-after" not in hdrs, hdrs
    else:
        assert hdrs.get("retry-after") == str(retry_after), hdrs
    return body["error"]["message"]


def test_rate_limit_per_key(limited):
    k1, k2 = new_key(limited), new_key(limited)
    for _ in range(20):
        assert limited.request("GET", "/v1/sandboxes", key=k1)[0] == 200
    msg = check_429(limited.request("GET", "/v1/sandboxes", key=k1), "rate_limited", 100)
    assert "retry in 100 s" in msg
    # any route, any method: the same bucket
    check_429(limited.request("POST", "/v1/sandboxes", {}, key=k1), "rate_limited", 100)
    # another key has its own bucket; the health check needs none
    assert limited.request("GET", "/v1/sandboxes", key=k2)[0] == 200
    for _ in range(30):
        assert limited.healthz()["status"] == "ok"
    # the admin key is exempt on this daemon
    for _ in range(30):
        assert limited.request("GET", "/v1/sandboxes")[0] == 200
    # the SDK: a typed error that says when; no retry for a 100 s wait
    with pytest.raises(airlock.RateLimitError) as ei:
        Sandbox.list(api_key=k1, base_url=limited.url)
    assert (ei.value.status, ei.value.code, ei.value.retry_after) == (429, "rate_limited", 100)
    assert not isinstance(ei.value, airlock.QuotaExceeded)


def test_one_request_at_a_time_is_never_refused(tmp_path):
    """A client that waits for each answer is never over a concurrency limit:
    a buffered reply gives its slot back before it is sent (the client may
    send its next request before the server thread has finished with the
    previous connection: CI saw a 429 in the middle of a sequential loop)."""
    d = Daemon(tmp_path / "seq", ["--max-concurrent-requests", "1", "--rate-limit", "1000",
                                   "--rate-burst", "1000"], name="seq").start()
    try:
        k = new_key(d)
        statuses = [d.request("GET", "/v1/sandboxes", key=k)[0] for _ in range(300)]
        assert statuses == [200] * 300, sorted(set(statuses))
    finally:
        stop_and_check(d)


def test_concurrency_limit_per_key(limited):
    k = new_key(limited)
    s = Sandbox(api_key=k, base_url=limited.url)
    # the admin key (exempt here) watches the key's sandbox without using its budget
    watch = Sandbox.connect(s.id, api_key=limited.key, base_url=limited.url)
    results = []

    def blocked_exec(tag):
        # holds its request open until /tmp/go exists
        r = s.exec(["sh", "-c", "touch /tmp/started.%s; while [ ! -e /tmp/go ]; do sleep 0.02; done; "
                    "echo %s" % (tag, tag)], timeout=120)
        results.append(r.stdout)

    threads = [threading.Thread(target=blocked_exec, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    try:
        assert wait_until(lambda: {e.name for e in watch.files.list("/tmp")} >= {"started.a", "started.b"},
                          60), "the two execs did not start"
        msg = check_429(limited.request("GET", "/v1/sandboxes", key=k), "too_many_requests", 1)
        assert "in progress" in msg
        # other keys are not affected
        assert limited.request("GET", "/v1/sandboxes", key=new_key(limited))[0] == 200
    finally:
        watch.upload(b"", "/tmp/go")
        for t in threads:
            t.join(120)
    assert sorted(results) == ["a\n", "b\n"]
    # the slots came back
    assert limited.request("GET", "/v1/sandboxes", key=k)[0] == 200
    s.close()


def test_abandoned_request_gives_its_slot_back(limited):
    k = new_key(limited)
    s = Sandbox(api_key=k, base_url=limited.url)
    watch = Sandbox.connect(s.id, api_key=limited.key, base_url=limited.url)
    # one request held open properly ...
    held = threading.Thread(target=lambda: s.exec(["sh", "-c", "touch /tmp/held; while [ ! -e /tmp/go ]; "
                                                   "do sleep 0.02; done"], timeout=120))
    held.start()
    try:
        assert wait_until(lambda: "held" in {e.name for e in watch.files.list("/tmp")}, 60)
        # ... and one whose client goes away in the middle
        body = json.dumps({"cmd": ["sh", "-c", "touch /tmp/gone; sleep 100"]}).encode()
        conn = socket.create_connection(("127.0.0.1", limited.port))
        conn.sendall(("POST /v1/sandboxes/%s/exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                      % (s.id, k, len(body))).encode() + body)
        assert wait_until(lambda: "gone" in {e.name for e in watch.files.list("/tmp")}, 60)
        check_429(limited.request("GET", "/v1/sandboxes", key=k), "too_many_requests", 1)
        conn.close()
        # the daemon notices the hang-up, ends that request and frees its slot
        assert wait_until(lambda: limited.request("GET", "/v1/sandboxes", key=k)[0] == 200, 30)
    finally:
        watch.upload(b"", "/tmp/go")
        held.join(120)
    s.close()


def test_sandbox_quota_per_key(limited):
    k = new_key(limited)
    a = Sandbox(api_key=k, base_url=limited.url)
    b = Sandbox(api_key=k, base_url=limited.url)
    with pytest.raises(airlock.QuotaExceeded) as ei:
        Sandbox(api_key=k, base_url=limited.url)
    assert (ei.value.status, ei.value.code) == (429, "sandbox_quota")
    check_429(limited.request("POST", "/v1/sandboxes", {}, key=k), "sandbox_quota", None)
    # another key, and the exempt admin key, still create
    other = Sandbox(api_key=new_key(limited), base_url=limited.url)
    admin = [limited.sandbox() for _ in range(3)]
    b.close()
    c = Sandbox(api_key=k, base_url=limited.url)
    assert c.run_code("1+1").text == "2"
    for s in [a, c, other] + admin:
        s.close()
    assert limited.healthz()["sandboxes"] == 0


def test_admin_keys_are_limited_by_default(tmp_path):
    d = Daemon(tmp_path / "strict", ["--rate-limit", "0.01", "--rate-burst", "3",
                                     "--max-sandboxes-per-key", "1"], name="strict").start()
    try:
        for _ in range(3):
            assert d.request("GET", "/v1/sandboxes")[0] == 200
        check_429(d.request("GET", "/v1/keys"), "rate_limited", 100)
    finally:
        stop_and_check(d)


def test_limits_off(tmp_path):
    """0 turns the per-key limits off."""
    d = Daemon(tmp_path / "off", ["--rate-limit", "0", "--max-concurrent-requests", "0",
                                  "--rate-burst", "1"], name="off").start()
    try:
        for _ in range(50):
            assert d.request("GET", "/v1/sandboxes")[0] == 200
    finally:
        stop_and_check(d)


# ---- failed authentications, per client address ----------------------------------------

def test_auth_failures_throttled_per_address(tmp_path):
    d = Daemon(tmp_path / "lockout", ["--auth-fail-burst", "3", "--auth-fail-rate", "0.01"],
               name="lockout").start()
    try:
        assert d.request("GET", "/v1/sandboxes")[0] == 200
        wrong = ["ak_" + "1" * 32, "garbage", "ak_" + "2" * 32]
        for key in wrong:
            check_error(d.request("GET", "/v1/sandboxes", key=key), 401, "unauthorized")
        # past the budget: refused without looking at the key, right or wrong
        msg = check_429(d.request("GET", "/v1/sandboxes", key="ak_" + "3" * 32),
                        "too_many_auth_failures", 100)
        assert "retry in 100 s" in msg
        check_429(d.request("GET", "/v1/sandboxes"), "too_many_auth_failures", 100)
        check_429(d.request("GET", "/v1/keys"), "too_many_auth_failures", 100)
        # no key at all guesses nothing: a plain 401; the health check is open
        check_error(d.request("GET", "/v1/sandboxes", key=None), 401, "unauthorized")
        assert d.healthz()["status"] == "ok"
        # another client (the unix socket's peer is counted by uid) is not affected
        s = Sandbox.list(api_key=d.key, base_url=d.unix_url)
        assert s == []
        with pytest.raises(airlock.RateLimitError) as ei:
            Sandbox.list(api_key=d.key, base_url=d.url)
        assert (ei.value.code, ei.value.retry_after) == ("too_many_auth_failures", 100)
        assert "client ip4:127.0.0.1: too many failed authentications" in d.log_text()
    finally:
        stop_and_check(d)


# ---- how clients surface a 429 -----------------------------------------------------------

def test_sdk_waits_out_a_short_retry_after(tmp_path, monkeypatch):
    d = Daemon(tmp_path / "retry", ["--rate-limit", "0.5", "--rate-burst", "1"], name="retry").start()
    try:
        assert Sandbox.list(api_key=d.key, base_url=d.url) == []
        # the automatic retry off: the 429 shows, with a 2 s Retry-After
        monkeypatch.setattr(Transport, "RATE_LIMIT_RETRY_MAX_S", 0)
        with pytest.raises(airlock.RateLimitError) as ei:
            Sandbox.list(api_key=d.key, base_url=d.url)
        assert ei.value.retry_after == 2
        # on (the default): the SDK waits 2 s and the same call succeeds
        monkeypatch.undo()
        assert Sandbox.list(api_key=d.key, base_url=d.url) == []
    finally:
        stop_and_check(d)


def test_cli_says_when_to_retry(cli, limited):
    k = new_key(limited)
    for _ in range(20):
        assert limited.request("GET", "/v1/sandboxes", key=k)[0] == 200
    env = dict(os.environ, AIRLOCK_URL=limited.url, AIRLOCK_API_KEY=k)
    p = subprocess.run([str(cli), "ls"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "(rate_limited)" in p.stderr, p.stderr
    assert "retry in 100 s" in p.stderr, p.stderr
