"""pytest's view of tests/e2e: the fixtures and hooks of e2e_support.py.

Everything lives in e2e_support.py, which tests import by that name. A test that
wrote `from conftest import ...` would get whichever suite's conftest pytest
loaded last when `pytest tests/` collects every suite together.
"""

from e2e_support import *  # noqa: F401,F403  (fixtures and hooks are found by name)
