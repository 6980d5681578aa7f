"""The agent as the jail runs it: PID 1 of new user+pid+mount namespaces, root
inside a user namespace mapped to an unprivileged host range, with
setgroups=deny (so its setgroups() fails with EPERM and must be tolerated)."""

import ctypes
import errno
import os
import socket

import pytest

from agent_support import AGENT, HELLO, OK, PYTHON, RUNNER, SHUTDOWN, AgentClient

CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID = 0x10000000, 0x00020000, 0x20000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
HOST_BASE = 300000  # sandbox uid 0..65535 -> host 300000..

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


class NamespacedAgent(AgentClient):
    def __init__(self, root):  # pylint: disable=super-init-not-called
        libc = ctypes.CDLL(None, use_errno=True)
        self.sock, child = socket.socketpair()
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # only raw steps from here; any failure exits 99
            try:
                self.sock.close()  # else the agent never sees EOF when the test closes its end
                if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) != 0:
                    os._exit(97)
                os.write(ready_w, b"r")
                os.read(go_r, 1)
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
                init = os.fork()  # the first child in the pid namespace is PID 1
                if init == 0:
                    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
                        os._exit(96)
                    if libc.mount(b"proc", b"/proc", b"proc", 0, None) != 0:
                        os._exit(95)
                    os.dup2(child.fileno(), 3)
                    os.execv(AGENT, ["airlock-agent", "--root", root, "--runner", RUNNER, "--python", PYTHON])
                _, st = os.waitpid(init, 0)
                os._exit(os.waitstatus_to_exitcode(st) & 0xFF)
            except BaseException:
                os._exit(99)
        os.read(ready_r, 1)
        for name, data in (("setgroups", "deny"), ("uid_map", "0 %d 65536" % HOST_BASE), ("gid_map", "0 %d 65536" % HOST_BASE)):
            with open("/proc/%d/%s" % (pid, name), "w") as f:
                f.write(data)
        os.write(go_w, b"g")
        for fd in (ready_r, ready_w, go_r, go_w):
            os.close(fd)
        child.close()
        self.pid = pid
        self.proc = None
        self.next_id, self.pending, self.buf = 1, {}, b""

    def close(self):
        self.sock.close()
        _, st = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(st)


def test_agent_as_pid1_in_user_namespace(root):
    a = NamespacedAgent(root)
    try:
        hello = a.call(HELLO, {})
        assert hello.type == OK and hello.body["pid"] == 1
        r = a.py("import os\nprint(os.getpid() > 1, os.getuid(), os.getgid(), os.getgroups())\n"
                 "print(open('/proc/self/uid_map').read().split())")
        assert r.result["error"] is None, r.stderr
        lines = r.stdout.decode().splitlines()
        assert lines[0] == "True 1000 1000 []"
        assert lines[1].split("'")[1::2] == ["0", str(HOST_BASE), "65536"]
        r = a.run_code("id -u; ps -e -o pid= -o comm= | head -1", language="bash")
        uid, pid, comm = r.stdout.split()
        assert (uid, pid) == (b"1000", b"1") and comm.startswith(b"airlock-agent")
        # PID 1 ignores signals it has no handler for from inside its
        # namespace; the rest (and those) must not come from user code at all
        r = a.py("import os, signal\nres = []\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,"
                 " signal.SIGCHLD, signal.SIGPIPE, signal.SIGKILL):\n    try:\n        os.kill(1, s)\n"
                 "        res.append('sent')\n    except OSError as e:\n        res.append(e.errno)\nprint(res)")
        assert r.stdout == (repr([errno.EPERM] * 7) + "\n").encode(), r.stderr
        assert a.call(HELLO, {}).type == OK
        res = a.py("import os; os.kill(os.getpid(), 9)").result
        assert res["error"]["name"] == "ProcessKilled" and res["repl_restarted"] is True
        assert a.py("print('back')").stdout == b"back\n"
        assert a.call(SHUTDOWN, {}).type == OK
    finally:
        code = a.close()
    assert code == 0
