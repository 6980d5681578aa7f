"""pytest's view of tests/agent: the fixtures and hooks of agent_support.py.

Everything lives in agent_support.py, which tests import by that name. A test that
wrote `from conftest import ...` would get whichever suite's conftest pytest
loaded last when `pytest tests/` collects every suite together.
"""

from agent_support import *  # noqa: F401,F403  (fixtures and hooks are found by name)
