/* spawn.c - fork one sandbox's REPL out of the warm zygote.
 *
 *   zygote (host root, host namespaces)
 *     refuse unless single-threaded (/proc/self/status): fork copies only the
 *       calling thread, and a lock another thread held would stay locked
 *     setns(agent pidfd, NEWPID)       our *children* go to the sandbox's
 *                                      pid namespace (we stay where we are)
 *     vfork -> C1                      (we wait while C1 runs on our memory)
 *     setns(own pid ns, NEWPID)        back, before anything else is forked
 *   C1 (in the sandbox's pid namespace, sharing the zygote's memory)
 *     _Fork -> C2, _exit               C2 is orphaned; the kernel gives an
 *                                      orphan to the init of its parent's
 *                                      pid namespace: the agent, PID 1
 *   C2 (the REPL; not dumpable, as the zygote is: main.c)
 *     munmap the registry              a zeroed copy (MADV_WIPEONFORK): no
 *                                      other sandbox's entry; ours came on
 *                                      the zygote's stack (registry.c)
 *     write 0 to each cgroup.procs     the sandbox's memory/pids/cpu limits
 *                                      (openat on the cgroup directory fds,
 *                                      before the sandbox's namespaces)
 *     close every fd but the spawn's 6 and the pidfd   no daemon, zygote or
 *                                      other sandbox's fd enters the
 *                                      sandbox's user namespace
 *     setns(agent pidfd, USER|NS|NET|IPC|UTS|CGROUP|PID|TIME)   one call; from
 *                                      here on only the sandbox's
 *                                      namespaces, cgroups and fds
 *     proc_child_confine (src/agent/proc.c, the exec'd runner's sequence):
 *       setsid, fds 0-4 + close_range, signals, oom_score_adj 1000, cwd,
 *       rlimits, bounding set, setresgid/setresuid 1000, caps cleared,
 *       no_new_privs, Landlock (the agent's ruleset), seccomp last
 *     PyOS_AfterFork_Child, wait for the adoption (getppid() == 1)
 *     PR_SET_DUMPABLE 1                like an exec'd runner after execve
 *     report {0, pid} to the agent, run airlock_runner.zygote_main()
 *
 * Why C1 must enter the pid namespace at fork: a process's pid namespace is
 * fixed when it is forked, and the reaper of an orphan is taken from its
 * exiting parent's pid namespace. A C1 forked in the host's would hand C2
 * to the host's init, not to the agent, which could then not wait for it.
 *
 * Why C1 is a vfork child: it exists only to be C2's parent for a moment.
 * Sharing our memory, it costs no copy of the zygote's page tables and no
 * teardown at its exit; only C2 is a real fork, one copy per spawn. C1
 * calls nothing but _Fork (glibc's async-signal-safe fork, which also gives
 * C2 its own thread id in glibc's thread descriptor) and _exit, on a stack
 * below our frame. C2's memory is a copy of ours taken inside the vfork,
 * with no Python lock held (see zygote_spawn_repl for why we skip
 * PyOS_BeforeFork), the state PyOS_AfterFork_Child expects.
 *
 * Every failure goes to the agent through the report pipe as proc.c's
 * child_report ("setns into the sandbox's namespaces: Operation not
 * permitted"); the agent then execs the runner instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "seccomp_bpf.h"
#include "util.h"
#include "zygote.h"

#define SANDBOX_NS_FLAGS \
    (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_NEWPID | \
     CLONE_NEWTIME)

/* How long C2 waits for C1's exit to hand it to the agent (C1 exits right
 * after its fork: microseconds, unless the host is swamped). */
#define ADOPT_WAIT_US 2000000
#define ADOPT_POLL_US 200

/* From /proc/self/status into a stack buffer: nothing here may write to
 * the heap the REPLs share with us (see zygote_spawn_repl). */
int zygote_threads(void)
{
    char buf[4096];
    int r = read_file_small("/proc/self/status", buf, sizeof(buf));
    if (r < 0)
        return r;
    char *t = strstr(buf, "\nThreads:");
    return t ? atoi(t + 9) : -EPROTO;
}

/* dirfd/name <- data, for a cgroup directory the daemon gave us as an fd */
static int write_at(int dirfd, const char *name, const char *data)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(data);
    ssize_t n = write(fd, data, len);
    int e = errno;
    close(fd);
    return n == (ssize_t)len ? 0 : n < 0 ? -e : -EIO;
}

/* Close every fd but the n in keep (which may repeat). */
static void close_all_but(const int *keep, int n, int errfd)
{
    int k[ZYG_SPAWN_FDS + 1];
    for (int i = 0; i < n; i++) { /* insertion sort: seven numbers */
        int v = keep[i], j = i;
        for (; j > 0 && k[j - 1] > v; j--)
            k[j] = k[j - 1];
        k[j] = v;
    }
    unsigned lo = 0;
    for (int i = 0; i < n; i++) {
        if ((unsigned)k[i] > lo && close_range(lo, (unsigned)k[i] - 1, 0) < 0)
            proc_child_fail(errfd, errno, "close_range before joining the sandbox");
        lo = (unsigned)k[i] + 1;
    }
    if (close_range(lo, ~0U, 0) < 0)
        proc_child_fail(errfd, errno, "close_range before joining the sandbox");
}

/* C2, still host root in the host's namespaces: leave with nothing of the
 * zygote's but this sandbox's own, and enter the sandbox. */
static void join_sandbox(struct zregistry *reg, const struct zsandbox *sb, const int fds[ZYG_SPAWN_FDS])
{
    int errfd = fds[5];
    /* the kernel gave us the registry as zeros (MADV_WIPEONFORK); sb is
     * the zygote's stack copy of our entry */
    registry_forget(reg);
    for (uint32_t i = 0; i < sb->ncgroups; i++) {
        int r = write_at(sb->cgroup[i], "cgroup.procs", "0");
        if (r < 0) {
            char what[80];
            snprintf(what, sizeof(what), "write 0 to cgroup.procs of the sandbox's cgroup %u", i);
            proc_child_fail(errfd, -r, what);
        }
    }
    /* Before the sandbox's user namespace, in which its root (the agent)
     * holds capabilities, every fd but the spawn's own and the pidfd goes:
     * the daemon's socket, the other sandboxes' sockets, pidfds and cgroup
     * directories, the zygote's signalfd, stdio on the daemon's log */
    int keep[ZYG_SPAWN_FDS + 1] = {fds[0], fds[1], fds[2], fds[3], fds[4], fds[5], sb->pidfd};
    close_all_but(keep, ZYG_SPAWN_FDS + 1, errfd);
    if (setns(sb->pidfd, SANDBOX_NS_FLAGS) < 0)
        proc_child_fail(errfd, errno, "setns into the sandbox's namespaces (agent pidfd)");
    close(sb->pidfd);
    /* the credential change set dumpability from fs.suid_dumpable; not
     * dumpable whatever that is (main.c says why) */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        proc_child_fail(errfd, errno, "prctl PR_SET_DUMPABLE 0");
}

static __attribute__((noreturn)) void repl_child(struct zygote *z, const struct zsandbox *sb,
                                                 const struct zyg_spawn *req, int fds[ZYG_SPAWN_FDS])
{
    join_sandbox(z->reg, sb, fds);
    /* the agent's policy, but for data_limit the same constants the agent
     * loads (compiled at build time from the same table) */
    struct spawn_policy policy = {
        .filter = {.len = ARRAY_SIZE(seccomp_user_bpf), .filter = (struct sock_filter *)seccomp_user_bpf},
        .quiet = {.len = ARRAY_SIZE(seccomp_quiet_bpf), .filter = (struct sock_filter *)seccomp_quiet_bpf},
        .data_limit = req->data_limit >= (uint64_t)RLIM_INFINITY ? RLIM_INFINITY : (rlim_t)req->data_limit,
    };
    int extra[2] = {fds[3], fds[4]};
    struct spawn_spec spec = {
        .policy = &policy,
        .cwd = "/home/user",
        .stdin_fd = fds[0], .stdout_fd = fds[1], .stderr_fd = fds[2],
        .extra_fds = extra, .n_extra = 2,
        .landlock_root = "/", /* the sandbox's root: we are in its mount namespace */
    };
    int errfd = proc_child_confine(&spec, fds[5]);
    /* what CPython's own start does (proc.c reset every disposition):
     * a write to a closed pipe is an exception, not death */
    (void)signal(SIGPIPE, SIG_IGN);
    (void)signal(SIGXFSZ, SIG_IGN);
    PyOS_AfterFork_Child();
    /* the agent waits for us and signals us by the pid we report: only
     * report once we are its child */
    for (int waited = 0; getppid() != 1; waited += ADOPT_POLL_US) {
        if (waited >= ADOPT_WAIT_US)
            proc_child_fail(errfd, ETIMEDOUT, "wait to be adopted by the agent");
        usleep(ADOPT_POLL_US);
    }
    /* Confined, and nothing of another sandbox in our memory: dumpable
     * again, as execve makes an exec'd runner (uid 1000 in the sandbox may
     * ptrace it, and /proc/PID is owned by uid 1000). From fork to here we
     * were not (main.c), so nothing in the sandbox could attach while we
     * held root, a capability or the zygote's fds. */
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
        proc_child_fail(errfd, errno, "prctl PR_SET_DUMPABLE 1");
    proc_child_ready(errfd);

    int code = 1;
    PyObject *r = PyObject_CallMethod(z->runner, "zygote_main", NULL);
    if (r) {
        code = PyLong_Check(r) ? (int)PyLong_AsLong(r) : 0;
        Py_DECREF(r);
    } else if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
        code = 0;
        PyErr_Clear();
    } else {
        PyErr_Print();
    }
    /* like the exec'd runner's interpreter exit: atexit handlers, flushes */
    if (Py_FinalizeEx() < 0)
        code = 120;
    _exit(code);
}

/* C1: a vfork child on the zygote's memory and stack. _Fork and _exit only. */
static __attribute__((noreturn)) void entry_child(struct zygote *z, const struct zsandbox *sb,
                                                  const struct zyg_spawn *req, int fds[ZYG_SPAWN_FDS])
{
    pid_t pid = _Fork();
    if (pid == 0)
        repl_child(z, sb, req, fds);
    if (pid < 0)
        proc_report_failure(fds[5], errno, "zygote: fork the REPL");
    _exit(0);
}

/* Its own function: nothing of the caller's lives across the vfork. */
static pid_t vfork_entry(struct zygote *z, const struct zsandbox *sb, const struct zyg_spawn *req,
                         int fds[ZYG_SPAWN_FDS])
{
    pid_t pid = vfork();
    if (pid == 0)
        entry_child(z, sb, req, fds);
    return pid;
}

static void close_all(int fds[ZYG_SPAWN_FDS])
{
    for (int i = 0; i < ZYG_SPAWN_FDS; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

int zygote_spawn_repl(struct zygote *z, const struct zsandbox *entry, const struct zyg_spawn *req,
                      int fds[ZYG_SPAWN_FDS])
{
    /* the child sees the registry as zeros: our sandbox's entry goes to it
     * on our stack, the only one of the registry's entries it ever sees */
    const struct zsandbox own = *entry;
    const struct zsandbox *sb = &own;
    char msg[200];
    int r = 0;
    int n = zygote_threads();
    if (n != 1) {
        r = n < 0 ? n : -EDEADLK;
        snprintf(msg, sizeof(msg), n < 0 ? "zygote: read /proc/self/status" : "zygote: %d threads, fork refused", n);
        proc_report_failure(fds[5], n < 0 ? -n : EDEADLK, msg);
        goto out;
    }
    /* stdio buffers would be copied into the child and flushed twice */
    fflush(stdout);
    fflush(stderr);
    if (setns(sb->pidfd, CLONE_NEWPID) < 0) {
        r = -errno;
        snprintf(msg, sizeof(msg), "zygote: setns CLONE_NEWPID (agent pidfd): %s", strerror(errno));
        proc_report_failure(fds[5], -r, msg);
        goto out;
    }
    /* No PyOS_BeforeFork / PyOS_AfterFork_Parent here: they run the
     * os.register_at_fork callbacks (Python code) in us at every spawn, and
     * every page that code writes is one the live REPLs share with us: a
     * copy-on-write fault here, and a huge page split into 512 small ones
     * that every later fork then copies. What they guard against cannot
     * happen here: we are single-threaded (checked above) and run no Python
     * between spawns, so no lock (the import lock among them) is held at
     * the fork. The REPL still runs PyOS_AfterFork_Child (thread state,
     * locks, the after-in-child callbacks such as random's reseed). */
    pid_t pid = vfork_entry(z, sb, req, fds);
    int fork_errno = errno;
    if (setns(z->self_pidns_fd, CLONE_NEWPID) < 0) {
        /* every later fork would land in this sandbox: stop here, the
         * daemon starts a new zygote */
        log_error("setns back to our own pid namespace: %s; exiting", strerror(errno));
        _exit(1);
    }
    if (pid < 0) {
        r = -fork_errno;
        snprintf(msg, sizeof(msg), "zygote: fork: %s", strerror(fork_errno));
        proc_report_failure(fds[5], fork_errno, msg);
    }
out:
    close_all(fds);
    return r;
}
