"""Shared objects: the zygote (src/zygote/) every host-template sandbox's REPL
is forked from. A fork copies the whole address space of the zygote, so
whatever the zygote keeps about the sandboxes it serves (its table of
registered sandboxes, its message buffers, freed memory) would be in every
REPL, readable by the user code through /proc/self/mem; and every descriptor
the zygote holds (the daemon's socket, the other sandboxes' sockets and
pidfds) is in the child until it closes them.

Each attack runs in a sandbox of its own whose REPL the attack first makes
restart (os._exit in one call: the next call gets a fresh fork, taken while
the victim sandbox is registered). The same attacks run against a daemon
with --no-zygote (test_same_without_the_zygote): an exec'd runner shares no
memory with anything, so both must come out the same.

What is not tested here, because no deterministic test from inside can see
it: the forked REPL's descriptors and dumpability *during* the spawn (between
its fork and the drop sequence). What user code can see is the end state;
docs/security.md, "The Python zygote", says how the spawn keeps that window
closed (descriptors closed before it joins the sandbox's user namespace, not
dumpable until it is confined).
"""

import pytest

from sec_support import jail_only
from seclib import Attack, Outcome, check_expect, parse_results, params

CAT = "shared-objects"

# "RESULT ids <exe> <n> <id>...": every sandbox id in the REPL's readable
# memory. The code names no id itself (the victim's id in it would be found):
# the `then` compares what it found with the sandbox's own id.
SCAN_IDS = r'''
import ctypes, os, re
pat = re.compile(rb"sb_[0-9a-f]{32}")
found = set()
# memory read through a pipe: a write(2) from an address the kernel cannot
# read fails with EFAULT where a plain load would crash the REPL (and
# /proc/self/mem is not readable when the process is not dumpable)
rd, wr = os.pipe()
def peek(addr, n):
    try:
        k = os.write(wr, (ctypes.c_char * n).from_address(addr))
    except OSError:
        return b""
    return os.read(rd, k)
with open("/proc/self/maps") as maps:
    regions = [l.split() for l in maps]
for f in regions:
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    path = f[5] if len(f) > 5 else ""
    # memory a process writes: anonymous, heap, stack, and the writable
    # part of every binary and library (their .data and .bss)
    if "r" not in f[1] or path.startswith(("[vvar", "[vsyscall")):
        continue
    if path and not path.startswith("[") and "w" not in f[1]:
        continue
    addr, tail = lo, b""
    while addr < hi:
        chunk = peek(addr, min(1 << 16, hi - addr))
        if not chunk:
            break
        buf = tail + chunk
        found.update(m.group().decode() for m in pat.finditer(buf))
        tail = buf[-40:]
        addr += len(chunk)
exe = os.path.basename(os.readlink("/proc/self/exe"))
print("RESULT ids", exe, len(found), *sorted(found))
'''

# "RESULT clean <exe>" or "RESULT held <exe> <fd>=<what>...": descriptors the
# REPL holds beyond what the runner needs (0, 1, 2 and its two control pipes,
# which it moves to 1000 and up), or any of them a socket, a pidfd or another
# anon inode (the zygote's daemon socket, sandbox sockets, agent pidfds,
# signalfd), or a directory or file of the host.
SCAN_FDS = r'''
import os, stat
me = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
odd, pipes = [], 0
for name in os.listdir(me):
    fd = int(name)
    if fd == me:
        continue
    try:
        what = os.readlink("/proc/self/fd/%d" % fd)
    except OSError:
        continue
    if what.startswith("pipe:"):
        pipes += 1
        if fd in (0, 1, 2) or fd >= 1000:
            continue
    odd.append("%d=%s" % (fd, what.replace(" ", "_")))
os.close(me)
if pipes > 5:
    odd.append("pipes=%d" % pipes)
exe = os.path.basename(os.readlink("/proc/self/exe"))
print("RESULT", "held" if odd else "clean", exe, *odd)
'''


def _ids_only_own(sb, outcome, forked):
    toks = outcome.tokens
    assert toks[:1] == ["ids"], outcome.describe()
    exe, ids = toks[1], set(toks[3:])
    # a REPL that fell back to exec proves nothing about the zygote
    assert (exe == "airlock-zygote") == forked, "REPL is %s, expected %s" % (exe, "forked" if forked else "exec'd")
    return ids - {sb.id}


def _then_no_foreign_ids(arena, sb, outcome):
    foreign = _ids_only_own(sb, outcome, forked=True)
    assert arena.victim.sb.id not in foreign, "the attacker's REPL holds the victim's id %s" % arena.victim.sb.id
    assert not foreign, "the attacker's REPL holds other sandboxes' ids: %s" % sorted(foreign)


def _then_forked(arena, sb, outcome):
    assert outcome.tokens[1:2] == ["airlock-zygote"], "the REPL was not forked: " + outcome.describe()


ATTACKS = [
    Attack("zygote_fork_memory_sandbox_ids", CAT, SCAN_IDS, frozenset({"ids"}), timeout=60,
           then=_then_no_foreign_ids,
           doc="a freshly forked REPL scans its whole readable memory for sb_ ids: the zygote's registration "
               "table, message buffers and freed memory would hand it every live sandbox's id"),
    Attack("zygote_fork_descriptors", CAT, SCAN_FDS, frozenset({"clean"}), then=_then_forked,
           doc="a freshly forked REPL holds only the runner's pipes: no zygote, daemon or other sandbox's "
               "socket or pidfd"),
]


def restart_repl(sb):
    """os._exit in one call; the next one runs in a freshly spawned REPL."""
    try:
        sb.run_code("import os\nos._exit(0)", timeout=20)
    except Exception:  # the call may report the REPL's death either way
        pass
    r = sb.run_code("6 * 7", timeout=20)
    assert r.text == "42", r


@pytest.mark.parametrize("attack", params(ATTACKS))
def test_shared_zygote(arena, attack):
    jail_only("zygote")
    sb = arena.new_sandbox()
    try:
        restart_repl(sb)
        outcome = arena.run(attack, sb)
        print("%s -> %s" % (attack.name, outcome.results or outcome.describe()))
        check_expect(attack, outcome)
        attack.then(arena, sb, outcome)
    finally:
        sb.close()
    arena.check_after()


# ---- the same with --no-zygote: exec'd REPLs, nothing shared ------------------------------

@pytest.fixture(scope="module")
def no_zygote(tmp_path_factory):
    import sec_support as conftest
    d = conftest.Daemon(tmp_path_factory.mktemp("secd-nozygote"), name="nozygote",
                        extra_args=conftest.daemon_args() + ["--no-zygote", "--pool-size", "0"]).start()
    try:
        yield d
    finally:
        conftest.e2e.stop_and_check(d)


@pytest.mark.parametrize("attack", params(ATTACKS))
def test_same_without_the_zygote(no_zygote, attack):
    with no_zygote.sandbox() as victim, no_zygote.sandbox() as sb:
        assert victim.run_code("1").text == "1"
        restart_repl(sb)
        r = sb.run_code(attack.code, timeout=attack.timeout)
        outcome = Outcome(r, results=parse_results(r.stdout))
        check_expect(attack, outcome)
        if attack.code is SCAN_IDS:
            assert _ids_only_own(sb, outcome, forked=False) == set(), outcome.describe()
        else:
            assert outcome.tokens[1].startswith("python3"), outcome.describe()
