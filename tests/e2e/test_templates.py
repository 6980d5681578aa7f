"""Templates (docs/templates.md): build with mmdebstrap, manifest, sandboxes on a
template root, in use, corrupted tree, reproducibility, offline wheel installs.

The `python` template is built through the daemon's build cache
(/var/cache/airlock/templates by default, keyed by spec hash): the first run on a
machine builds it from the Debian archive, later runs copy and verify it.
"""

import io
import json
import os
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

import airlock
from e2e_support import CLI, ROOT, Daemon, stop_and_check, wait_until

SPEC = ROOT / "templates" / "python.json"


def _wait_build(d, build_id, timeout=900):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        st, _, _, b = d.request("GET", "/v1/builds/%s?since=%d" % (build_id, len(lines)))
        assert st == 200, b
        lines += b["progress"]
        assert b["next"] == len(lines)
        if b["state"] in ("succeeded", "failed"):
            b["all_progress"] = lines
            return b
        time.sleep(0.5)
    raise AssertionError("build %s did not finish in %ds; progress:\n%s" % (build_id, timeout, "\n".join(lines)))


def _build(d, spec, cache=True):
    st, _, _, b = d.request("POST", "/v1/templates" + ("" if cache else "?cache=false"), spec)
    assert st == 202, b
    assert b["state"] == "queued" and b["id"].startswith("bld_") and b["spec_hash"].startswith("sha256:")
    return _wait_build(d, b["id"])


def _cli(d, *args, check=True):
    p = subprocess.run([str(CLI), "--url", d.url, "--key", d.key, *args], capture_output=True, text=True,
                       timeout=900)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.fixture(scope="module")
def td(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("templates"), extra_args=["--pool-size", "0"], name="tmpl").start()
    yield d
    d.stop()
    d.assert_clean_log()


@pytest.fixture(scope="module")
def python_tmpl(td):
    """The `python` template, built with the CLI (which follows the progress)."""
    if not CLI.exists():
        pytest.skip("no CLI binary at %s" % CLI)
    p = _cli(td, "template", "build", str(SPEC))
    assert "template python built: sha256:" in p.stdout, p.stdout
    # progress lines were printed while following (mmdebstrap's, or the cache's)
    assert "tree hash sha256:" in p.stdout or "cache: tree hash sha256:" in p.stdout, p.stdout
    st, _, _, m = td.request("GET", "/v1/templates/python")
    assert st == 200, m
    return m


def _tree(td, m):
    return Path(m["path"]) / "root"


# ---- build, manifest, listing ------------------------------------------------------

def test_manifest_records_what_is_inside(td, python_tmpl):
    m = python_tmpl
    spec = json.loads(SPEC.read_text())
    assert m["name"] == "python" and m["suite"] == "bookworm"
    assert m["tree_hash"].startswith("sha256:") and len(m["tree_hash"]) == 71
    assert m["spec_hash"].startswith("sha256:")
    # content-addressed: the directory is named by the tree hash
    assert Path(m["path"]).name == m["tree_hash"][7:]
    pkgs = {p["name"]: p["version"] for p in m["packages"]}
    assert "python3" in pkgs and pkgs["python3"].startswith("3.11")
    assert "apt" not in pkgs and "gcc" not in pkgs and "python3-pip" not in pkgs
    assert m["warmup"] == spec["warmup"] and m["env"] == spec["env"] and m["limits"] == spec["limits"]
    assert m["size_bytes"] > 10 << 20 and m["files"] > 1000
    assert m["built_at"].endswith("Z") and m["build_seconds"] > 0
    # the manifest on disk says the same
    disk = json.loads((Path(m["path"]) / "manifest.json").read_text())
    assert disk["tree_hash"] == m["tree_hash"] and disk["packages"] == m["packages"]
    # the erofs image for the vm backend: superblock magic at offset 1024
    img = Path(m["path"]) / m["image"]["path"]
    assert m["image"]["format"] == "erofs-lz4hc" and img.stat().st_size == m["image"]["bytes"] > 0
    with open(img, "rb") as f:
        f.seek(1024)
        assert f.read(4) == bytes.fromhex("e2e1f5e0")
    # listed, by API and CLI
    st, _, _, lst = td.request("GET", "/v1/templates")
    assert st == 200 and [t["name"] for t in lst["templates"]] == ["python"]
    assert lst["templates"][0]["tree_hash"] == m["tree_hash"]
    out = _cli(td, "template", "ls").stdout
    assert "python" in out and "bookworm" in out
    out = _cli(td, "template", "show", "python").stdout
    assert m["tree_hash"] in out and "python3 " in out


def test_sandbox_on_template_has_only_what_was_declared(td, python_tmpl):
    with td.sandbox(template="python") as sb:
        # the template's defaults: memory limit and environment
        assert sb.info()["template"] == "python" and sb.info()["memory_mb"] == 512
        r = sb.run_code("import os, sys; print(sys.version_info[:2], os.environ['PYTHONDONTWRITEBYTECODE'])")
        assert r.error is None, r
        assert r.stdout == "(3, 11) 1\n"
        # the root is the template's, not the host's: the host has pandas, the template does not
        r = sb.run_code("import pandas")
        assert r.error is not None and r.error.name == "ModuleNotFoundError", r
        # nothing undeclared: no compiler, no package manager that can download, no pip
        r = sb.exec("for b in gcc cc c++ clang apt apt-get pip pip3 curl wget; do "
                    "command -v $b && echo FOUND $b; done; python3 -m pip --version 2>&1 | tail -1; true")
        assert "FOUND" not in r.stdout, r.stdout
        assert "No module named pip" in r.stdout, r.stdout
        # no set-user-ID / set-group-ID file anywhere in the tree
        r = sb.exec("find /usr -xdev -type f -perm /6000 | head; echo done")
        assert r.stdout == "done\n", r.stdout
        # and /usr is read-only
        r = sb.exec("touch /usr/x 2>&1; echo rc=$?")
        assert "rc=1" in r.stdout and "Read-only file system" in r.stdout, r.stdout
    # the host tree itself has no setid file either (the builder stripped them)
    found = subprocess.run(["find", str(_tree(td, python_tmpl)), "-xdev", "-type", "f", "-perm", "/6000"],
                           capture_output=True, text=True).stdout
    assert found == "", found


def test_unknown_template_is_a_clear_400(td, python_tmpl):
    with pytest.raises(airlock.TemplateNotFound) as e:
        td.sandbox(template="nope")
    assert e.value.status == 400
    assert "no template 'nope'" in e.value.message and "python" in e.value.message and "host" in e.value.message
    st, _, _, b = td.request("GET", "/v1/templates/nope")
    assert st == 404 and b["error"]["code"] == "template_not_found"
    st, _, _, b = td.request("DELETE", "/v1/templates/nope")
    assert st == 404 and b["error"]["code"] == "template_not_found"
    st, _, _, b = td.request("GET", "/v1/builds/bld_0000000000000000")
    assert st == 404 and b["error"]["code"] == "not_found"
    st, _, _, b = td.request("GET", "/v1/templates/host")
    assert st == 200 and b["name"] == "host"
    st, _, _, b = td.request("DELETE", "/v1/templates/host")
    assert st == 400


@pytest.mark.parametrize("spec,needle", [
    ({"name": "x", "suite": "bookworm", "packages": ["python3"], "extra": 1}, "unknown field 'extra'"),
    ({"name": "Bad Name", "suite": "bookworm", "packages": ["python3"]}, "name must be"),
    ({"name": "host", "suite": "bookworm", "packages": ["python3"]}, "built-in"),
    ({"name": "x", "suite": "bookworm", "packages": []}, "packages must be"),
    ({"name": "x", "suite": "bookworm", "packages": ["python3; rm -rf /"]}, "packages[0]"),
    ({"name": "x", "suite": "bookworm", "packages": ["--allow-unauthenticated"]}, "packages[0]"),
    ({"name": "x", "suite": "Bookworm!", "packages": ["python3"]}, "suite"),
    ({"name": "x", "suite": "bookworm", "mirror": "file:///etc", "packages": ["python3"]}, "mirror"),
    ({"name": "x", "suite": "bookworm", "packages": ["python3"],
      "files": [{"path": "/etc/passwd", "content": "x"}]}, "under /usr/"),
    ({"name": "x", "suite": "bookworm", "packages": ["python3"],
      "files": [{"path": "/usr/../etc/x", "content": "x"}]}, "under /usr/"),
    ({"name": "x", "suite": "bookworm", "packages": ["python3"],
      "files": [{"path": "/usr/local/bin/x", "content": "x", "mode": "4755"}]}, "mode"),
    ({"name": "x", "suite": "bookworm", "packages": ["python3"], "env": {"A=B": "x"}}, "env"),
    ({"name": "x", "suite": "bookworm", "packages": ["python3"], "limits": {"memory_mb": 1}}, "memory_mb"),
    ([1, 2], "JSON object"),
])
def test_bad_specs_are_refused(td, spec, needle):
    st, _, _, b = td.request("POST", "/v1/templates", spec)
    assert st == 400, b
    code = "invalid_json" if isinstance(spec, list) else "invalid_spec"  # http.c checks the body's kind
    assert b["error"]["code"] == code and needle in b["error"]["message"], b
    assert td.healthz()["status"] == "ok"


def test_build_and_rm_need_an_admin_key(td):
    st, _, _, k = td.request("POST", "/v1/keys", {"name": "plain"})
    assert st == 201, k
    st, _, _, b = td.request("POST", "/v1/templates", json.loads(SPEC.read_text()), key=k["key"])
    assert st == 403, b
    st, _, _, b = td.request("DELETE", "/v1/templates/python", key=k["key"])
    assert st == 403, b
    # listing is for everyone
    st, _, _, b = td.request("GET", "/v1/templates", key=k["key"])
    assert st == 200


# ---- in use, removal, cache -------------------------------------------------------

def test_template_in_use_cannot_be_removed_then_rebuilt_from_cache(td, python_tmpl):
    sb = td.sandbox(template="python")
    try:
        st, _, _, b = td.request("DELETE", "/v1/templates/python")
        assert st == 409 and b["error"]["code"] == "template_in_use", b
        p = _cli(td, "template", "rm", "python", check=False)
        assert p.returncode == 1 and "template_in_use" in p.stderr, p.stderr
        assert sb.run_code("1 + 1").text == "2"
    finally:
        sb.close()
    st, _, _, b = td.request("DELETE", "/v1/templates/python")
    assert st == 200 and b["state"] == "removed", b
    assert not Path(python_tmpl["path"]).exists()
    with pytest.raises(airlock.TemplateNotFound):
        td.sandbox(template="python")
    # the same spec again: the build cache has it, checked against its tree hash
    b = _build(td, json.loads(SPEC.read_text()))
    assert b["state"] == "succeeded", b["all_progress"]
    assert b["cache_hit"] is True and b["tree_hash"] == python_tmpl["tree_hash"], b
    assert any("cache: tree hash %s verified" % b["tree_hash"] in line for line in b["all_progress"])
    with td.sandbox(template="python") as sb2:
        assert sb2.run_code("print(6 * 7)").stdout == "42\n"


# ---- corrupted tree -------------------------------------------------------------

def _corrupt(m):
    victim = _tree(None, m) / "usr" / "lib" / "python3.11" / "json" / "__init__.py"
    with open(victim, "a") as f:
        f.write("\nimport os  # planted\n")
    return victim


def test_corrupted_tree_is_refused_while_running(td, python_tmpl):
    with td.sandbox(template="python") as sb:  # verified and watched from here on
        assert sb.run_code("1").text == "1"
    _corrupt(python_tmpl)
    with pytest.raises(airlock.TemplateCorrupt) as e:
        td.sandbox(template="python")
    assert e.value.status == 409 and e.value.code == "template_corrupt"
    assert "failed verification" in e.value.message and python_tmpl["tree_hash"] in e.value.message
    # a rebuild (from the cache) replaces the damaged copy
    b = _build(td, json.loads(SPEC.read_text()))
    assert b["state"] == "succeeded" and b["tree_hash"] == python_tmpl["tree_hash"], b["all_progress"]
    assert any("damaged" in line for line in b["all_progress"]), b["all_progress"]
    with td.sandbox(template="python") as sb:
        assert sb.run_code("import json; print(json.dumps([1]))").stdout == "[1]\n"


def test_corrupted_tree_is_refused_at_first_use_after_restart(td, python_tmpl):
    td.stop()
    victim = _corrupt(python_tmpl)  # no daemon watching
    td.start()
    try:
        with pytest.raises(airlock.TemplateCorrupt):
            td.sandbox(template="python")
    finally:
        # repair by rebuilding, for the tests after this one
        b = _build(td, json.loads(SPEC.read_text()))
        assert b["state"] == "succeeded", b["all_progress"]
    assert "# planted" not in victim.read_text()
    with td.sandbox(template="python") as sb:
        assert sb.run_code("print('ok')").stdout == "ok\n"
    # the refusal came from the first-use check (no watch existed yet)
    assert "template python: tree hash sha256:" in td.log_text()
    assert ", recorded %s" % python_tmpl["tree_hash"] in td.log_text()


# ---- reproducibility ---------------------------------------------------------------


# ---- warm-up -----------------------------------------------------------------------

# A module the runner never imports itself, a global, the REPL's pid, and
# output on both streams that must not reach the user.
WARM = {"name": "warm", "suite": "bookworm", "packages": ["python3"],
        "description": "warm-up test",
        "warmup": "import colorsys, os, sys\nWARM = 41 + 1\nWARM_PID = os.getpid()\n"
                  "print('warm-noise-out')\nprint('warm-noise-err', file=sys.stderr)\n"}
WARM_BAD = {"name": "warm-bad", "suite": "bookworm", "packages": ["python3"],
            "description": "warm-up test", "warmup": "x = 1\nimport airlock_no_such_module\n"}

WARM_CHECK = ("import os, sys; print('colorsys' in sys.modules, WARM, WARM_PID == os.getpid())")


def _assert_warm(sb):
    # the first user call: the warm-up's state is there, its output is not
    r = sb.run_code(WARM_CHECK)
    assert r.error is None, r
    assert r.stdout == "True 42 True\n" and r.stderr == "", r
    assert "warm-noise" not in r.stdout + r.stderr


def test_warmup_runs_before_handout_on_a_miss(td):
    """--pool-size 0: every create builds, and waits for the warm-up."""
    b = _build(td, WARM)
    assert b["state"] == "succeeded", b["all_progress"]
    with td.sandbox(template="warm") as sb:
        _assert_warm(sb)
    assert td.request("DELETE", "/v1/templates/warm")[0] == 200


def test_warmup_that_raises_fails_the_create(td):
    b = _build(td, WARM_BAD)
    assert b["state"] == "succeeded", b["all_progress"]
    for _ in range(2):
        st, _, _, j = td.request("POST", "/v1/sandboxes", {"template": "warm-bad"}, timeout=180)
        assert st == 422, (st, j)
        assert j["error"]["code"] == "warmup_failed", j
        assert j["error"]["message"].startswith("template warm-bad: warm-up failed: ModuleNotFoundError: "), j
        assert "airlock_no_such_module" in j["error"]["message"], j
    # nothing left behind, and the daemon keeps serving
    assert wait_until(lambda: td.descendants() == [], 20), td.descendants()
    st, _, _, j = td.request("GET", "/v1/sandboxes")
    assert st == 200 and j["sandboxes"] == [], j
    with td.sandbox() as sb:
        assert sb.run_code("print(1)").stdout == "1\n"
    assert td.request("DELETE", "/v1/templates/warm-bad")[0] == 200


def test_warmup_in_the_pool(tmp_path):
    """A pooled sandbox of a built template was warmed up off the request path;
    a template whose warm-up raises is not rebuilt over and over."""
    from test_pool import pool, shape_of
    d = Daemon(tmp_path / "warmpool", name="warmpool", extra_args=["--pool-size", "1", "--pool-max", "4"]).start()
    try:
        for spec in (WARM, WARM_BAD):
            b = _build(d, spec)
            assert b["state"] == "succeeded", b["all_progress"]
        # the first create of the shape is a miss (warmed on the request path), it
        # teaches the pool the shape; the next one is a hit, warmed beforehand
        with d.sandbox(template="warm") as a:
            _assert_warm(a)
        assert wait_until(lambda: (shape_of(pool(d), 1024, template="warm") or {}).get("ready") == 1, 60), pool(d)
        with d.sandbox(template="warm") as s:
            assert shape_of(pool(d), 1024, template="warm")["hits"] == 1, pool(d)
            _assert_warm(s)

        st, _, _, j = d.request("POST", "/v1/sandboxes", {"template": "warm-bad"}, timeout=180)
        assert st == 422 and j["error"]["code"] == "warmup_failed", (st, j)
        # the pool's build of the shape fails the same way, and the pool drops
        # the shape instead of retrying it every second
        assert wait_until(lambda: pool(d)["build_failures"] >= 1
                          and shape_of(pool(d), 1024, template="warm-bad") is None, 60), pool(d)
        failures = pool(d)["build_failures"]
        time.sleep(3)  # three of the pool's 1 s failure back-offs
        p = pool(d)
        assert p["build_failures"] == failures and shape_of(p, 1024, template="warm-bad") is None, p
        assert "template warm-bad: warm-up failed: ModuleNotFoundError" in d.log_text()
    finally:
        if d.proc.poll() is None:
            stop_and_check(d)


TINY = {"suite": "bookworm", "packages": ["hello"], "description": "reproducibility test"}


def test_same_spec_same_tree_hash(td):
    """Two uncached builds from the archive. The name differs (so the spec hash
    differs) but not what is installed: the trees must be bit-for-bit the same."""
    a = _build(td, dict(TINY, name="tiny-a"), cache=False)
    assert a["state"] == "succeeded", a["all_progress"]
    b = _build(td, dict(TINY, name="tiny-b"), cache=False)
    assert b["state"] == "succeeded", b["all_progress"]
    assert a["cache_hit"] is False and b["cache_hit"] is False
    assert a["spec_hash"] != b["spec_hash"]
    assert a["tree_hash"] == b["tree_hash"]
    # one directory for both names (content-addressed)
    ma = td.request("GET", "/v1/templates/tiny-a")[3]
    mb = td.request("GET", "/v1/templates/tiny-b")[3]
    assert ma["path"] == mb["path"]
    assert [p for p in ma["packages"] if p["name"] == "hello"]
    with td.sandbox(template="tiny-a") as sb:
        assert sb.exec(["hello"]).stdout == "Hello, world!\n"
    # removing one name keeps the tree the other still uses
    assert td.request("DELETE", "/v1/templates/tiny-a")[0] == 200
    assert Path(mb["path"]).exists()
    assert td.request("DELETE", "/v1/templates/tiny-b")[0] == 200
    assert not Path(mb["path"]).exists()


def test_concurrent_build_of_one_name_is_refused(td):
    spec = dict(TINY, name="tiny-c")
    st, _, _, first = td.request("POST", "/v1/templates", spec)
    assert st == 202
    st, _, _, b = td.request("POST", "/v1/templates", spec)
    assert st == 409 and b["error"]["code"] == "build_in_progress", b
    assert _wait_build(td, first["id"])["state"] == "succeeded"
    assert td.request("DELETE", "/v1/templates/tiny-c")[0] == 200


# ---- wheels ------------------------------------------------------------------------

def make_wheel(name, version, module_src, requires=()):
    """A pure-Python wheel, built here (no PyPI on this machine)."""
    dist = "%s-%s.dist-info" % (name, version)
    files = {
        "%s.py" % name: module_src,
        dist + "/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (
            name, version, "".join("Requires-Dist: %s\n" % r for r in requires)),
        dist + "/WHEEL": "Wheel-Version: 1.0\nGenerator: airlock-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[dist + "/RECORD"] = "".join("%s,,\n" % p for p in files) + dist + "/RECORD,,\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p, text in files.items():
            z.writestr(p, text)
    return "%s-%s-py3-none-any.whl" % (name, version), buf.getvalue()


def test_install_wheels_offline(td):
    fname, data = make_wheel("airlock_wheeltest", "1.0", "VALUE = 42\n")
    dep_name, dep = make_wheel("airlock_needsdep", "2.0", "X = 1\n", requires=["airlock-not-on-disk>=1"])
    with td.sandbox() as sb:  # host template: it has pip
        sb.upload(data, "/data/wheels/" + fname)
        sb.upload(dep, "/data/wheels/" + dep_name)
        out = sb.install_wheels(["/data/wheels/" + fname])
        assert out.exit_code == 0 and "Successfully installed airlock-wheeltest-1.0" in out.stdout, out
        # the running REPL imports it at once; it went into the writable ~/.local
        r = sb.run_code("import airlock_wheeltest; print(airlock_wheeltest.VALUE, airlock_wheeltest.__file__)")
        assert r.error is None, r
        assert r.stdout.startswith("42 /home/user/.local/lib/python3"), r.stdout
        # a dependency that is not among the wheels: pip's own message, nothing downloaded
        with pytest.raises(airlock.WheelInstallError) as e:
            sb.install_wheels(["/data/wheels/" + dep_name])
        assert "No matching distribution found for airlock-not-on-disk" in e.value.message, e.value.message
        assert e.value.execution.exit_code != 0
        r = sb.run_code("import airlock_needsdep")
        assert r.error is not None and r.error.name == "ModuleNotFoundError"
        # the CLI equivalent
        sb.upload(make_wheel("airlock_clitest", "0.1", "Y = 7\n")[1], "/data/wheels/airlock_clitest-0.1-py3-none-any.whl")
        p = _cli(td, "install-wheels", sb.id, "/data/wheels/airlock_clitest-0.1-py3-none-any.whl")
        assert "Successfully installed airlock-clitest-0.1" in p.stdout, p.stdout
        p = _cli(td, "install-wheels", sb.id, "/data/wheels/" + dep_name, check=False)
        assert p.returncode != 0 and "No matching distribution" in p.stdout + p.stderr
