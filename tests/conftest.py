"""Shared by every Python suite when `pytest tests/` runs them together.

The suites read their binaries from AIRLOCK_* at import. The Makefile's
targets set them; for a bare `/usr/bin/python3 -m pytest tests/` the same
values as `make test-e2e` are filled in here (an explicit setting wins), so
the agent, e2e and security suites run against the ASan daemon with the
sanitizers' options, as each make target would.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_DEFAULTS = {
    "AIRLOCK_DAEMON": ROOT / "build-asan" / "airlockd",
    "AIRLOCK_AGENT": ROOT / "build" / "airlock-agent",
    "AIRLOCK_RUNNER": ROOT / "runner" / "airlock_runner.py",
    "AIRLOCK_CLI": ROOT / "build-asan" / "airlock",
    "AIRLOCK_ZYGOTE": ROOT / "build" / "airlock-zygote",
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}

for _k, _v in _DEFAULTS.items():
    os.environ.setdefault(_k, str(_v))
