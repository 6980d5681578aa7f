"""`airlock run --template --memory-mb --env` (issue 14, item 7): the fresh
sandbox's shape and the script's variables from the command line."""

import os
import subprocess


def _run(cli, daemon, *args):
    env = dict(os.environ, AIRLOCK_URL=daemon.url)
    return subprocess.run([str(cli), "run", *args], env=env, capture_output=True, text=True, timeout=120)


def test_run_env_reaches_the_script(daemon, cli, tmp_path, sb):
    script = tmp_path / "shape.py"
    script.write_text("import os\nprint(os.environ['GREETING'], os.environ['N'])\n")
    out = _run(cli, daemon, "--env", "GREETING=hello", "--env", "N=2", str(script))
    assert out.returncode == 0 and out.stdout.strip() == "hello 2", out
    out = _run(cli, daemon, "--sandbox", sb.id, "--env", "GREETING=again", "--env", "N=3", str(script))
    assert out.returncode == 0 and out.stdout.strip() == "again 3", out


def test_run_memory_mb_reaches_the_create(daemon, cli, tmp_path):
    script = tmp_path / "mem.py"
    script.write_text("x = bytearray(450 << 20)\nprint('allocated')\n")
    small = _run(cli, daemon, "--memory-mb", "256", str(script))
    assert small.returncode != 0 and "allocated" not in small.stdout, small  # OOM under 256 MB
    big = _run(cli, daemon, "--memory-mb", "1024", str(script))
    assert big.returncode == 0 and "allocated" in big.stdout, big


def test_run_unknown_template_and_misuse(daemon, cli, tmp_path, sb):
    script = tmp_path / "t.py"
    script.write_text("print(1)\n")
    out = _run(cli, daemon, "--template", "no-such-template", str(script))
    assert out.returncode == 1 and "no-such-template" in out.stderr, out
    out = _run(cli, daemon, "--sandbox", sb.id, "--memory-mb", "300", str(script))
    assert out.returncode == 2 and "--sandbox" in out.stderr, out
