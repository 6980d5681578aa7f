"""pytest's view of tests/vm: the fixtures of vm_support.py (see tests/e2e/conftest.py
for why tests import helpers from the support module, never from "conftest")."""

from vm_support import *  # noqa: F401,F403
