"""`airlock files ls|stat|mkdir|mv|rm|watch SANDBOX PATH...` (issue 14, item 7):
the files API's directory operations from the CLI, as text and --json."""

import json
import os
import subprocess

import pytest


@pytest.fixture
def run_cli(cli, daemon):
    def run(*args, check=0):
        env = dict(os.environ, AIRLOCK_URL=daemon.url, AIRLOCK_API_KEY=daemon.key)
        p = subprocess.run([str(cli), *args], env=env, capture_output=True, text=True, timeout=120)
        if check is not None:
            assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
        return p
    return run


def test_files_verbs(run_cli, sb):
    out = run_cli("files", "mkdir", sb.id, "/data/c/a/b", "/data/c/z").stdout
    assert "created /data/c/a/b" in out and "created /data/c/z" in out, out
    assert "exists" in run_cli("files", "mkdir", sb.id, "/data/c/z").stdout
    sb.files.write("/data/c/a/f.txt", b"hello")
    ls = run_cli("files", "ls", sb.id, "/data/c").stdout
    assert [line.split()[-1] for line in ls.splitlines()] == ["a/", "z/"], ls
    deep = run_cli("files", "ls", "--depth", "3", sb.id, "/data/c").stdout
    assert "/data/c/a/f.txt" in deep and "/data/c/a/b/" in deep and "-rw-r--r--" in deep, deep
    js = json.loads(run_cli("--json", "files", "ls", sb.id, "/data/c/a").stdout)
    assert [e["name"] for e in js["entries"]] == ["b", "f.txt"]
    st = run_cli("files", "stat", sb.id, "/data/c/a/f.txt").stdout
    assert "type: file" in st and "size: 5" in st and "mode: 0644" in st, st
    assert json.loads(run_cli("--json", "files", "stat", sb.id, "/data/c/a/f.txt").stdout)["size"] == 5
    assert "/data/c/a/f.txt -> /data/c/g.txt" in run_cli("files", "mv", sb.id, "/data/c/a/f.txt", "/data/c/g.txt").stdout
    sb.files.write("/data/c/h.txt", b"h")
    p = run_cli("files", "mv", sb.id, "/data/c/g.txt", "/data/c/h.txt", check=1)
    assert "exists" in p.stderr, p.stderr
    run_cli("files", "mv", "--overwrite", sb.id, "/data/c/g.txt", "/data/c/h.txt")
    assert sb.files.read("/data/c/h.txt") == b"hello"
    out = run_cli("files", "rm", sb.id, "/data/c/a", "/data/c/never").stdout
    assert "removed /data/c/a" in out and "/data/c/never: nothing there" in out, out
    assert not sb.files.exists("/data/c/a")
    # the API's refusals are errors (exit 1), bad arguments usage errors (exit 2)
    assert "path_forbidden" in run_cli("files", "stat", sb.id, "/proc/1", check=1).stderr
    run_cli("files", "mv", sb.id, "/data/c/h.txt", check=2)
    run_cli("files", "frob", sb.id, "/x", check=2)


def test_files_help(run_cli):
    out = run_cli("help", "files").stdout
    for verb in ("ls", "stat", "mkdir", "mv", "rm", "watch"):
        assert "airlock files %s" % verb in out, out
    assert "--depth" in out and "--overwrite" in out and "--recursive" in out
    assert "files" in run_cli("help").stdout


def test_files_watch(cli, daemon, sb):
    sb.files.make_dir("/data/cw")
    env = dict(os.environ, AIRLOCK_URL=daemon.url, AIRLOCK_API_KEY=daemon.key)
    p = subprocess.Popen([str(cli), "files", "watch", sb.id, "/data/cw"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr.readline().startswith("watching /data/cw")  # printed once the watch is in place
        sb.files.write("/data/cw/x.txt", b"x")
        assert p.stdout.readline().split() == ["create", "/data/cw/x.txt"]
        sb.files.make_dir("/data/cw/d")
        assert p.stdout.readline().split() == ["create", "/data/cw/d/"]
        sb.files.remove("/data/cw")  # the directory going ends the watch, and the command
        rc = p.wait(timeout=60)
        err = p.stderr.read()
        assert rc == 0 and "removed" in err, (rc, err)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_upload_download_gzip(run_cli, sb, tmp_path):
    data = os.urandom(5000) + b"c" * 3000000
    local = tmp_path / "big.csv"
    local.write_bytes(data)
    run_cli("upload", "--gzip", sb.id, str(local), "/data/cg/")
    assert sb.files.read("/data/cg/big.csv") == data
    back = tmp_path / "back.csv"
    run_cli("download", "--gzip", sb.id, "/data/cg/big.csv", str(back))
    assert back.read_bytes() == data
    sb.files.write("/data/cg/empty", b"")
    run_cli("download", "--gzip", sb.id, "/data/cg/empty", str(tmp_path / "e"))
    assert (tmp_path / "e").read_bytes() == b""
