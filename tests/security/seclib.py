"""The escape suite's vocabulary: an attack is data.

Each Attack is the source a model might write (plain Python with os, socket,
ctypes, subprocess..., or bash) plus what must come of it. The code reports
what happened on machine-checkable lines:

    RESULT <token> [<token>...]

and `expect` says which outcomes count as "blocked": a set of accepted first
tokens, or a function of the whole Outcome that raises AssertionError.

Code may name facts only the host knows (its addresses, the daemon's port,
the victim's markers) as @NAME@ placeholders; the arena fills them in
(conftest.py, Arena.placeholders).
"""

import re
import statistics
from dataclasses import dataclass, field

import pytest

# "shared-objects": kernel objects that every sandbox (or the host) shares: inodes,
# locks, fsnotify, the page cache, host-wide tables and pools (issue 10).
CATEGORIES = ("egress", "kernel", "filesystem", "cross-sandbox", "shared-objects", "exhaustion", "lifecycle")

# Filled by the exhaustion tests, printed by the summary hook (conftest.py).
LATENCY_LOG = []


@dataclass(frozen=True)
class Attack:
    name: str
    category: str
    code: str
    expect: object                 # set/frozenset of first RESULT tokens, or callable(Outcome)
    language: str = "python"
    timeout: int = 10              # run_code timeout_s
    fresh: bool = False            # runs in a sandbox of its own, destroyed afterwards
    then: object = None            # optional callable(arena, sandbox, Outcome): SDK-level steps
    doc: str = ""
    sandbox: dict = None           # create arguments of a sandbox of its own (fresh), e.g. an egress allow-list

    def __post_init__(self):
        assert self.category in CATEGORIES, self.category


@dataclass
class Outcome:
    """What an attack run produced."""
    execution: object              # airlock.models.Execution, or None if the API refused the call
    api_error: object = None       # an airlock.AirlockError raised by the SDK
    results: list = field(default_factory=list)   # token lists of the RESULT lines

    @property
    def tokens(self):
        return self.results[0] if self.results else []

    @property
    def first(self):
        return self.tokens[0] if self.tokens else None

    def describe(self):
        e = self.execution
        if e is None:
            return "API error %r" % (self.api_error,)
        return ("results=%r exit=%r error=%r timed_out=%r\nstdout:\n%s\nstderr:\n%s"
                % (self.results, e.exit_code, e.error, e.timed_out, e.stdout[-3000:], e.stderr[-3000:]))


_RESULT_RE = re.compile(r"^RESULT(?:\s+(.*))?$")


def parse_results(stdout):
    out = []
    for line in stdout.splitlines():
        m = _RESULT_RE.match(line.strip())
        if m:
            out.append((m.group(1) or "").split())
    return out


def check_expect(attack, outcome):
    """Raise AssertionError unless the attack failed the way it should."""
    exp = attack.expect
    if callable(exp):
        exp(outcome)
        return
    assert outcome.execution is not None, "%s: the API refused the run: %r" % (attack.name, outcome.api_error)
    assert outcome.first in exp, ("%s: expected RESULT in %s, got %s"
                                  % (attack.name, sorted(exp), outcome.describe()))


def params(attacks):
    """pytest parameters, each marked with its category."""
    names = [a.name for a in attacks]
    assert len(names) == len(set(names)), "duplicate attack names"
    out = []
    for a in attacks:
        out.append(pytest.param(a, id=a.name, marks=[pytest.mark.category(a.category)]))
    return out


def latency_bound(idle_median_s, floor_s=0.005, factor=3):
    """The loaded median may be at most factor (3) x the idle one; when the
    idle median is tiny (a few ms), 3x of it is within scheduling noise, so it
    may also be idle + floor_s (5 ms), whichever is larger."""
    return max(factor * idle_median_s, idle_median_s + floor_s)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ---- snippets shared by several attacks (still plain code a model might write) ----------

ERRNO_HELPER = '''
import errno
def errname(e):
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__
'''
