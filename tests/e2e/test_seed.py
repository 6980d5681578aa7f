"""The product brief's example is the acceptance test of the whole product."""

import os
import subprocess

from conftest import ROOT


def test_seed_example_end_to_end(daemon, python_bin):
    before = daemon.healthz()["sandboxes"]
    env = dict(os.environ, AIRLOCK_URL=daemon.url, AIRLOCK_API_KEY=daemon.key,
               PYTHONPATH=str(ROOT / "sdk" / "python"))
    p = subprocess.run([python_bin, str(ROOT / "examples" / "seed_example.py")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "egress blocked: URLError" in lines, p.stdout
    assert "rows: 2" in lines, p.stdout
    assert lines.index("egress blocked: URLError") < lines.index("rows: 2")
    # the context manager destroyed the sandbox
    assert daemon.healthz()["sandboxes"] == before
