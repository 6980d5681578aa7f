"""Sandbox.connect(id, timeout=) extends a lifetime and never shortens it
(issue 14, item 7): POST .../timeout {extend_only: true}."""

import datetime

from airlock import Sandbox
from test_errors import check_error


def _expires(info):
    return datetime.datetime.fromisoformat(info["expires_at"].replace("Z", "+00:00"))


def test_connect_extends_never_shortens(daemon):
    s = daemon.sandbox(timeout=120)
    try:
        before = _expires(s.info())
        c = Sandbox.connect(s.id, timeout=30)  # shorter: kept
        assert _expires(c.info()) == before
        c2 = Sandbox.connect(s.id, timeout=900)  # longer: extended
        after = _expires(c2.info())
        assert (after - before).total_seconds() > 700, (before, after)
        assert c2.run_code("6 * 7").text == "42"
        # a plain set_timeout still sets it, shorter included
        s.set_timeout(60)
        assert (_expires(s.info()) - after).total_seconds() < -700
    finally:
        s.kill()


def test_extend_only_must_be_a_bool(daemon, witness):
    check_error(daemon.request("POST", "/v1/sandboxes/%s/timeout" % witness.id,
                               {"timeout_s": 60, "extend_only": "yes"}), 400, "invalid_request")
