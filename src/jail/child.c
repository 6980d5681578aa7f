/* child.c - the child: between clone and execveat of the agent.
 *
 * Runs in a fork of a multi-threaded daemon that shares the daemon's memory
 * (CLONE_VM, clone.c): raw syscalls only, on the plan the parent prepared
 * (struct jail_plan), which it reads and never writes. No malloc, no stdio,
 * no glibc set*id wrappers. A failure is one record on the error pipe
 * (child_fail, report.c), then _exit(127); success is the pipe's EOF at exec.
 */
#include "jail.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The daemon's handlers and blocked mask must not leak into a child: a
 * handler would run daemon code in it, and ignored/blocked signals survive
 * exec. (32 and 33 are glibc's own and are refused: harmless.) */
void child_reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        (void)sigaction(s, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Block until the parent has written our maps and cgroups. EOF means the
 * parent failed or died: leave quietly. */
static int child_wait_release(const struct jail_plan *p, struct jail_child_error *e)
{
    /* our copy of the parent's write end: with it open, a daemon killed
     * before the release would leave us (and the copies of its fds we hold,
     * other sandboxes' control streams among them) waiting forever */
    (void)close(p->release_wr);
    char c;
    for (;;) {
        ssize_t n = read(p->release_fd, &c, 1);
        if (n == 1)
            return 0;
        if (n == 0)
            _exit(0);
        if (errno != EINTR)
            return child_fail(e, "read", "release pipe", errno);
    }
}

static int child_enter_namespaces(const struct jail_plan *p, struct jail_child_error *e)
{
    int r = userns_child_become_root(e);
    if (r < 0)
        return r;
    /* after the parent moved us: our cgroup becomes the root we can see */
    if (unshare(CLONE_NEWCGROUP) < 0)
        return child_fail(e, "unshare", "CLONE_NEWCGROUP", errno);
    /* a time namespace of its own, entered by the agent at exec: not for
     * clock offsets but for its nsfs inode. In the host's one, every
     * sandbox's /proc/self/ns/time was the same inode, and a lock on it
     * crossed sandboxes. */
    if (unshare(CLONE_NEWTIME) < 0)
        return child_fail(e, "unshare", "CLONE_NEWTIME", errno);
    if (sethostname(p->hostname, strnlen(p->hostname, sizeof(p->hostname))) < 0)
        return child_fail(e, "sethostname", p->hostname, errno);
    return 0;
}

/* Out of the way of the agent's fixed numbers 0-7 before they are filled. */
#define AGENT_FIXED_FDS 8
static int child_fd_above_fixed(int *fd, struct jail_child_error *e)
{
    if (*fd < 0 || *fd >= AGENT_FIXED_FDS)
        return 0;
    int n = fcntl(*fd, F_DUPFD_CLOEXEC, AGENT_FIXED_FDS);
    if (n < 0)
        return child_fail(e, "fcntl F_DUPFD_CLOEXEC", "", errno);
    *fd = n;
    return 0;
}

/* The agent gets exactly: 0-2 on the sandbox's /dev/null, 3 the control
 * stream, 4 its zygote channel if it has one, 5 the /proc/meminfo file it
 * rewrites, 6 and 7 its cgroup's memory usage and memory.stat (read-only;
 * absent if they could not be opened). Every other fd the daemon had (the
 * database, the listening socket, other sandboxes' streams) is marked
 * close-on-exec; they stay usable until exec, which the error pipe and the
 * memfd need (CVE-2024-21626 class). */
static int child_setup_fds(const struct jail_plan *p, int meminfo, int *agent_fd, struct jail_child_error *e)
{
    int r;
    /* the plan is the parent's memory (CLONE_VM): read it, never write it */
    int control = p->control_fd, error = p->error_fd, zygote = p->zygote_fd, usage = p->memcg_usage_fd,
        stat = p->memcg_stat_fd;
    *agent_fd = p->agent_fd;
    if ((r = child_fd_above_fixed(&control, e)) < 0 || (r = child_fd_above_fixed(&error, e)) < 0 ||
        (r = child_fd_above_fixed(agent_fd, e)) < 0 || (r = child_fd_above_fixed(&zygote, e)) < 0 ||
        (r = child_fd_above_fixed(&meminfo, e)) < 0 || (r = child_fd_above_fixed(&usage, e)) < 0 ||
        (r = child_fd_above_fixed(&stat, e)) < 0)
        return r;
    int null = open("/dev/null", O_RDWR);
    if (null < 0)
        return child_fail(e, "open", "/dev/null", errno);
    for (int fd = 0; fd <= 2; fd++)
        if (null != fd && dup2(null, fd) < 0)
            return child_fail(e, "dup2", "/dev/null", errno);
    if (null > 2)
        close(null);
    if (dup3(control, 3, 0) < 0)
        return child_fail(e, "dup3", "control socket", errno);
    /* 4-7 that have nothing stay closed: the agent is told which it has */
    if (zygote >= 0 && dup3(zygote, 4, 0) < 0)
        return child_fail(e, "dup3", "zygote socket", errno);
    if (dup3(meminfo, 5, 0) < 0)
        return child_fail(e, "dup3", "meminfo file", errno);
    if (usage >= 0 && stat >= 0 && (dup3(usage, 6, 0) < 0 || dup3(stat, 7, 0) < 0))
        return child_fail(e, "dup3", "memory cgroup files", errno);
    if (syscall(SYS_close_range, AGENT_FIXED_FDS, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        return child_fail(e, "close_range", "", errno);
    return 0;
}

static int child_exec_agent(const struct jail_plan *p, int agent_fd, struct jail_child_error *e)
{
    /* optional pairs last, so that an absent one ends argv early only after
     * the ones that are there */
    char *argv[12];
    int n = 0;
    argv[n++] = "airlock-agent";
    argv[n++] = "--fd";
    argv[n++] = "3";
    argv[n++] = "--memory-limit";
    argv[n++] = (char *)p->memory_arg;
    argv[n++] = "--meminfo-fds";
    argv[n++] = p->memcg_usage_fd >= 0 && p->memcg_stat_fd >= 0 ? "5,6,7" : "5";
    if (p->warm_arg[0]) {
        argv[n++] = "--warm";
        argv[n++] = (char *)p->warm_arg;
    }
    if (p->zygote_fd >= 0) {
        argv[n++] = "--zygote-fd";
        argv[n++] = "4";
    }
    argv[n] = NULL;
    static char *const envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                 "HOME=/", "LANG=C.UTF-8", NULL};
    syscall(SYS_execveat, agent_fd, "", argv, envp, AT_EMPTY_PATH);
    return child_fail(e, "execveat", "airlock-agent memfd", errno);
}

/* The child's sequence, one step per line, in the order the kernel needs:
 * the maps and cgroup must be written (release) before the ids are taken;
 * the buffers are capped through the host's /proc before the new root hides
 * it; the root is built before pivot_root; /dev/null exists only after. */
static int child_run(const struct jail_plan *p, struct jail_child_error *e)
{
    int r, agent_fd, meminfo = -1;
    child_reset_signals();
    if ((r = child_wait_release(p, e)) < 0)
        return r;
    if ((r = child_enter_namespaces(p, e)) < 0)
        return r;
    if ((r = net_cap_buffers(e)) < 0)
        return r;
    if ((r = mnt_build_root(p, &meminfo, e)) < 0)
        return r;
    if ((r = mnt_pivot_root(e)) < 0)
        return r;
    if ((r = net_loopback_up(e)) < 0)
        return r;
    if ((r = child_setup_fds(p, meminfo, &agent_fd, e)) < 0)
        return r;
    return child_exec_agent(p, agent_fd, e);
}

/* The child's entry point (clone's fn). It never returns: execveat, or
 * _exit. The raw exit_group: glibc's _exit is that too, named for clarity. */
int child_main(void *arg)
{
    const struct jail_plan *p = arg;
    struct jail_child_error e;
    memset(&e, 0, sizeof(e));
    if (child_run(p, &e) < 0)
        (void)!write(p->error_fd, &e, sizeof(e));
    syscall(SYS_exit_group, 127);
    return 127;
}
