"""The agent's side of the zygote (src/agent/zygote_client.c): whatever goes
wrong with the zygote, the agent execs the runner, says why once, and stops
asking. The test plays the zygote's end of a real SOCK_SEQPACKET (the real
zygote needs a namespaced agent: tests/e2e/test_zygote.py)."""

import os
import socket
import struct
import threading

from agent_support import AgentClient, HELLO, OK

ZYG_MAGIC_SPAWN = 0x5A53504E
SPAWN = struct.Struct("<IIQ")           # struct zyg_spawn
REPORT = struct.Struct("<i?3xi500s")   # proc.c's struct child_report


def start_agent(root, zygote_end):
    a = AgentClient(root, extra_args=["--zygote-fd", str(zygote_end.fileno())], pass_fds=[zygote_end.fileno()])
    zygote_end.close()
    return a


def logs(agent):
    return [f.payload.decode(errors="replace") for f in agent.pending.get(0, [])]


def repl_exe(agent):
    r = agent.py("import os; print(os.path.basename(os.readlink('/proc/self/exe')))")
    return r.stdout.decode().strip()


def receive_spawn(sock):
    msg, fds, _, _ = socket.recv_fds(sock, 64, 8)
    return msg, fds


def test_closed_zygote_socket_falls_back_to_exec(root):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.close()
    a = start_agent(root, theirs)
    try:
        assert a.call(HELLO, {}).type == OK
        assert repl_exe(a).startswith("python3")
        lines = logs(a)
        assert any("zygote: send spawn request" in l and "exec'd from now on" in l for l in lines), lines
        # with a zygote socket the agent's Landlock domain does not scope
        # signals (its REPL would be a sibling domain: docs/security.md)
        assert any("landlock ABI" in l and "scoped: none" in l for l in lines) or \
            not any("landlock ABI" in l for l in lines), lines
    finally:
        a.close()


def test_zygote_failure_report_falls_back_and_stops_asking(root):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    seen = {}

    def zygote():
        msg, fds = receive_spawn(ours)
        seen["msg"], seen["nfds"] = msg, len(fds)
        os.write(fds[5], REPORT.pack(13, False, 0, b"test zygote: refused"))
        for fd in fds:
            os.close(fd)
        seen["after"] = ours.recv(64)  # the agent closes the channel: EOF

    t = threading.Thread(target=zygote)
    t.start()
    a = start_agent(root, theirs)
    try:
        assert a.call(HELLO, {}).type == OK
        assert repl_exe(a).startswith("python3")
        t.join(10)
        assert not t.is_alive()
        magic, _, data_limit = SPAWN.unpack(seen["msg"])
        assert magic == ZYG_MAGIC_SPAWN and seen["nfds"] == 6
        assert data_limit == 2**64 - 1  # no --memory-limit: RLIM_INFINITY
        assert seen["after"] == b""
        lines = logs(a)
        assert any("zygote: spawn failed: test zygote: refused" in l for l in lines), lines
        # a restarted REPL is exec'd without asking again
        a.run_code("import os; os._exit(0)")
        assert repl_exe(a).startswith("python3")
        assert sum("zygote:" in l for l in logs(a)) == 1, logs(a)
    finally:
        a.close()
        ours.close()


def test_silent_zygote_is_given_up_on(root):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    held = []

    def zygote():
        msg, fds = receive_spawn(ours)
        held.extend(fds)  # never answer

    t = threading.Thread(target=zygote)
    t.start()
    a = start_agent(root, theirs)
    try:
        assert a.call(HELLO, {}).type == OK
        assert repl_exe(a).startswith("python3")
        t.join(10)
        lines = logs(a)
        assert any("zygote: spawn failed: no answer within" in l for l in lines), lines
    finally:
        for fd in held:
            os.close(fd)
        a.close()
        ours.close()
