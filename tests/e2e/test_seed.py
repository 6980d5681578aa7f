"""The product brief's example is the acceptance test of the whole product."""

import os
import subprocess

from e2e_support import ROOT


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


def test_pip_installed_sdk_runs_the_example(daemon, python_bin, tmp_path):
    """`pip install ./sdk/python` works offline (no index, no build
    dependencies to fetch) and the installed package runs the example."""
    site = tmp_path / "site"
    p = subprocess.run([python_bin, "-m", "pip", "install", "--no-index", "--quiet", "--target", str(site),
                        str(ROOT / "sdk" / "python")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    env = dict(os.environ, AIRLOCK_URL=daemon.url, AIRLOCK_API_KEY=daemon.key, PYTHONPATH=str(site))
    p = subprocess.run([python_bin, "-c", "import airlock; print(airlock.__file__)"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.startswith(str(site)), p.stdout + p.stderr
    p = subprocess.run([python_bin, str(ROOT / "examples" / "seed_example.py")], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[:2] == ["egress blocked: URLError", "rows: 2"], p.stdout
