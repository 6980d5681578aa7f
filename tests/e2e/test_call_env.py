"""run_code(envs=...): a call's own environment variables (issue 14, item 7),
over the sandbox's env, for that call only."""

from test_errors import check_error


def test_run_code_envs_for_one_call(daemon):
    s = daemon.sandbox(env={"BASE": "sb", "OVER": "sb"})
    try:
        got = s.run_code("import os; (os.environ['BASE'], os.environ['OVER'], os.environ.get('ONLY'))",
                         envs={"OVER": "call", "ONLY": "x"})
        assert got.text == "('sb', 'call', 'x')", got
        # put back after the call: the sandbox's values, and no leftover
        assert s.run_code("import os; (os.environ['OVER'], os.environ.get('ONLY'))").text == "('sb', None)"
        out = s.run_code("echo $OVER-$ONLY", language="bash", envs={"OVER": "b", "ONLY": "y"})
        assert out.stdout.strip() == "b-y", out.raw
        events = list(s.run_code_stream("import os; print(os.environ['ONLY'])", envs={"ONLY": "streamed"}))
        assert any(e.get("type") == "stdout" and "streamed" in e.get("data", "") for e in events), events
    finally:
        s.kill()


def test_run_code_env_is_checked(daemon, witness):
    for env in ({"A": 1}, ["A=1"], {"": "x"}, {"A=B": "x"}):
        check_error(daemon.request("POST", "/v1/sandboxes/%s/code" % witness.id, {"code": "1", "env": env}),
                    400, "invalid_request")
