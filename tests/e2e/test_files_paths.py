"""The files API's paths as users write them (issue 14, item 5): relative
paths are under /home/user and every answer names the absolute path; exists
is right for a relative path; removing a missing path is not an error; a
directory is removed with its contents; an upload to "dir/" keeps the local
file's name (CLI and SDK) and is refused by the API without one."""

import os
import subprocess
import urllib.parse

from test_errors import check_error


def test_relative_paths_and_answers(sb):
    assert sb.files.write("rel.txt", b"hi")["path"] == "/home/user/rel.txt"
    assert sb.files.exists("rel.txt") and sb.files.exists("/home/user/rel.txt")
    assert not sb.files.exists("nope.txt") and not sb.files.exists("rel.txt/below")
    assert sb.files.read("rel.txt") == b"hi"
    assert sb.exec(["cat", "/home/user/rel.txt"]).stdout == "hi"


def test_remove_missing_and_directories(sb, daemon):
    assert sb.files.remove("never-there.txt") is False
    sb.exec(["mkdir", "-p", "/data/tree/sub"])
    sb.files.write("/data/tree/sub/f", b"1")
    assert sb.files.remove("/data/tree") is True
    assert not sb.files.exists("/data/tree")
    sb.exec(["mkdir", "-p", "/data/keep/sub"])
    q = urllib.parse.urlencode({"path": "/data/keep", "recursive": "false"})
    check_error(daemon.request("DELETE", "/v1/sandboxes/%s/files?%s" % (sb.id, q)), 400, "invalid_request")
    assert sb.files.exists("/data/keep/sub")
    # the path policy is as strict as before
    check_error(daemon.request("DELETE", "/v1/sandboxes/%s/files?path=/proc/1" % sb.id), 400, "path_forbidden")


def test_upload_into_a_directory(sb, daemon, cli, tmp_path):
    local = tmp_path / "report.csv"
    local.write_bytes(b"a,b\n1,2\n")
    sb.exec(["mkdir", "-p", "/data/in"])
    assert sb.upload(local, "/data/in/")["path"] == "/data/in/report.csv"
    with open(local, "rb") as f:
        assert sb.upload(f, "/data/in/")["path"] == "/data/in/report.csv"
    env = dict(os.environ, AIRLOCK_URL=daemon.url)
    out = subprocess.run([str(cli), "upload", sb.id, str(local), "/data/cli/"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out
    assert sb.files.read("/data/cli/report.csv") == b"a,b\n1,2\n"
    assert not sb.files.exists("/data/cli") or sb.exec(["test", "-d", "/data/cli"]).exit_code == 0
    # bytes have no name: the API refuses the directory path instead of writing a file called /data/in
    msg = check_error(daemon.request("PUT", "/v1/sandboxes/%s/files?path=/data/in/" % sb.id, b"x",
                                     headers={"Content-Type": "application/octet-stream"}), 400, "invalid_request")
    assert "ends in '/'" in msg, msg
