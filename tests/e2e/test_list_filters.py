"""GET /v1/sandboxes filtered and paginated by the server (issue 14, item 7):
metadata pairs (E2B's encoding: "k=v&k2=v2" as one value), state, template,
limit and next_token; the SDK's Sandbox.list and the CLI's `ls --metadata`."""

import json
import os
import secrets
import subprocess
import urllib.parse

import pytest

from airlock import Sandbox
from test_errors import check_error


@pytest.fixture
def labelled(daemon):
    run = secrets.token_hex(4)
    made = [daemon.sandbox(metadata={"run": run, "role": "a" if i < 3 else "b", "sp ace": "x&y=z"})
            for i in range(5)]
    yield run, made
    for s in made:
        s.kill()


def _q(**kw):
    return "/v1/sandboxes?" + urllib.parse.urlencode(kw)


def test_metadata_filters(daemon, labelled):
    run, made = labelled
    st, _, _, j = daemon.request("GET", _q(metadata="run=%s&role=a" % run))
    assert st == 200, j
    assert sorted(s["id"] for s in j["sandboxes"]) == sorted(s.id for s in made[:3])
    assert j["next_token"] is None
    # an escaped key and value inside the pairs
    st, _, _, j = daemon.request("GET", _q(metadata="run=%s&sp%%20ace=x%%26y%%3Dz" % run))
    assert st == 200 and len(j["sandboxes"]) == 5, j
    st, _, _, j = daemon.request("GET", _q(metadata="run=%s&role=c" % run))
    assert st == 200 and j["sandboxes"] == [], j


def test_state_template_and_pages(daemon, labelled):
    run, made = labelled
    seen, token = [], None
    for _ in range(5):
        q = {"metadata": "run=" + run, "limit": 2, "state": "running", "template": "host"}
        if token:
            q["next_token"] = token
        st, _, _, j = daemon.request("GET", _q(**q))
        assert st == 200 and len(j["sandboxes"]) <= 2, j
        seen += [s["id"] for s in j["sandboxes"]]
        token = j["next_token"]
        if not token:
            break
    assert seen == sorted(s.id for s in made), seen  # every one once, in id order
    # a page token whose sandbox is gone still pages on
    made[0].kill()
    st, _, _, j = daemon.request("GET", _q(metadata="run=" + run, next_token=sorted(s.id for s in made)[0]))
    assert st == 200 and made[0].id not in [s["id"] for s in j["sandboxes"]], j
    st, _, _, j = daemon.request("GET", _q(metadata="run=" + run, template="no-such"))
    assert st == 200 and j["sandboxes"] == []


@pytest.mark.parametrize("q", [{"limit": 0}, {"limit": "x"}, {"limit": 1001}, {"state": "frozen"},
                               {"metadata": "novalue"}, {"metadata": "k=%00"}, {"color": "red"}])
def test_bad_queries(daemon, q):
    check_error(daemon.request("GET", _q(**q)), 400, "invalid_request")


def test_sdk_and_cli(daemon, labelled, cli):
    run, made = labelled
    got = Sandbox.list(metadata={"run": run, "role": "b"})
    assert sorted(i["id"] for i in got) == sorted(s.id for s in made[3:]) and got.next_token is None
    page = Sandbox.list(metadata={"run": run}, limit=4)
    assert len(page) == 4 and page.next_token
    rest = Sandbox.list(metadata={"run": run}, limit=4, next_token=page.next_token)
    assert len(rest) == 1 and rest.next_token is None
    env = dict(os.environ, AIRLOCK_URL=daemon.url)
    out = subprocess.run([str(cli), "ls", "--json", "--metadata", "run=" + run, "--metadata", "role=a"],
                         env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out
    assert sorted(s["id"] for s in json.loads(out.stdout)["sandboxes"]) == sorted(s.id for s in made[:3])
    out = subprocess.run([str(cli), "ls", "--metadata", "sp ace=x&y=z", "--metadata", "run=" + run],
                         env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and sum(s.id in out.stdout for s in made) == 5, out
