/* jail.c - the jail backend: a sandbox is a set of Linux namespaces.
 *
 * create, read top to bottom:
 *
 *   parent (daemon thread)                 child (PID 1 of the new pid ns)
 *   ----------------------                 -------------------------------
 *   validate spec, take a uid range slot
 *   plan: socketpair, sync pipes, /etc
 *     text, detached read-only trees
 *   cgroup airlock/<id> with limits
 *   this thread only: euid/egid host_base
 *   clone(NEWUSER|NEWPID|NEWNS|NEWNET|
 *         NEWIPC|NEWUTS) -----------------> reset signals, wait for release
 *   back to euid 0 (or abort)               (its user namespace is owned by
 *                                            host_base: userns.c says why)
 *   uid_map/gid_map, cgroup.procs,
 *   oom_score_adj -1000, release --------> setgroups/setresgid/setresuid(0)
 *                                          unshare(NEWCGROUP), sethostname
 *                                          build the new root (mnt.c), pivot_root
 *                                          lo up (net.c)
 *                                          fds: /dev/null on 0-2, control on 3
 *   read error pipe: EOF = exec'd <------- execveat(sealed agent memfd)
 *                   a record = failure     (or write error record, _exit(127))
 *
 * The daemon is multi-threaded, so the child runs in a process whose other
 * threads may have held malloc or stdio locks at clone time: it only makes
 * raw syscalls on memory the parent prepared (struct jail_plan), which it
 * reads and never writes.
 *
 * CLONE_VM: until its execveat the child runs in the daemon's own address
 * space, on a stack of its own (struct jail_child_stack), like posix_spawn's
 * child. A fork-like clone copied the daemon's page tables on every create
 * and unmapped them again at exec, and the daemon's threads then took
 * copy-on-write faults: a cost that grew with the daemon's memory, which
 * grows with its live sandboxes (create 17 ms at 10 live, 97 ms at 1,000).
 * So the parent keeps the plan and the stack until the child has exec'd
 * or is dead, and closes its copies of the child's descriptors by the
 * numbers it saved before the clone (its descriptor table is not shared).
 * The one thing the two share that either writes is errno (the child has
 * the creating thread's TLS): the parent thread makes no failing call while
 * the child runs, except where it then kills the child anyway.
 *
 * Lifetime: the agent exits when its control stream reaches EOF, and as PID 1
 * its exit kills every process in the sandbox. No PR_SET_PDEATHSIG: it fires
 * when the creating *thread* exits, and HTTP threads come and go. A daemon
 * that dies before the release leaves the child reading EOF on the release
 * pipe, and it exits.
 */
#include "jail.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include "log.h"
#include "util.h"

#define JAIL_CLONE_FLAGS \
    (CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)

/* How long the parent waits for the child to reach exec. Building the root is
 * a few dozen syscalls (~1 ms); this only bounds a wedged kernel call. */
#define JAIL_SETUP_TIMEOUT_MS 10000

/* How long daemon start waits for the zygote's warm-up (numpy + pandas:
 * ~0.35 s here). */
#define JAIL_ZYGOTE_START_WAIT_MS 5000

int child_fail(struct jail_child_error *e, const char *op, const char *path, int err)
{
    e->err = err;
    size_t n = strnlen(op, sizeof(e->op) - 1);
    memcpy(e->op, op, n);
    e->op[n] = '\0';
    n = strnlen(path, sizeof(e->path) - 1);
    memcpy(e->path, path, n);
    e->path[n] = '\0';
    return -err;
}

int jail_err(char *err, size_t errlen, int r, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return r;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s: %s", what, strerror(r < 0 ? -r : r));
    return r;
}

/* ---- init / fini ------------------------------------------------------------ */

/* Names that become path components (sandbox ids, the cgroup parent):
 * [A-Za-z0-9_-], 1..max characters, so never "..", "/" or empty. */
static bool valid_name(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* Copy the agent into a sealed memfd, once. Every sandbox execs this copy, so
 * nothing a sandbox does to /proc/self/exe can reach the host binary
 * (CVE-2019-5736), and replacing the file on disk does not change running
 * daemons. */
static int seal_agent_binary(const char *path, int *out, char *err, size_t errlen)
{
    cleanup_fd int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0)
        return jail_err(err, errlen, -errno, "open %s", path);
    struct stat st;
    if (fstat(src, &st) < 0)
        return jail_err(err, errlen, -errno, "fstat %s", path);
    if (!S_ISREG(st.st_mode))
        return jail_err(err, errlen, -EINVAL, "agent %s", path);
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
    /* MFD_EXEC: hosts with vm.memfd_noexec=1 would otherwise make it noexec;
     * kernels before 6.3 do not know the flag, so retry without it. */
    cleanup_fd int fd = memfd_create("airlock-agent", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL)
        fd = memfd_create("airlock-agent", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return jail_err(err, errlen, -errno, "memfd_create for %s", path);
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = sendfile(fd, src, &off, (size_t)(st.st_size - off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return jail_err(err, errlen, n < 0 ? -errno : -EIO, "copy %s into memfd", path);
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
        return jail_err(err, errlen, -errno, "seal memfd of %s", path);
    *out = steal_fd(&fd);
    return 0;
}

static bool have_capability(int cap)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) < 0)
        return false;
    return data[cap / 32].effective & (1u << (cap % 32));
}

static int userns_probe(const struct jail_state *st, char *err, size_t errlen);

static void jail_fini(void *state)
{
    struct jail_state *st = state;
    if (!st)
        return;
    jail_zygote_stop(st->zygote);
    if (st->agent_memfd >= 0)
        close(st->agent_memfd);
    if (st->slot_lock_fd >= 0)
        close(st->slot_lock_fd); /* drops every slot lock this daemon held */
    cgroup_remove_parents(&st->cg);
    pthread_mutex_destroy(&st->slot_lock);
    free(st);
}

/* The cgroup parent this daemon owns and, at start, empties: the daemon's
 * scope, "airlock" by default. Tests and a second daemon on the same host
 * use their own, so recovery never kills another daemon's sandboxes. */
static int cgroup_parent_name(struct cgroup_ctx *cg, const char *scope, char *err, size_t errlen)
{
    const char *name = scope && *scope ? scope : CGROUP_PARENT;
    if (!valid_name(name, sizeof(cg->parent) - 1))
        return jail_err(err, errlen, -EINVAL, "backend scope '%.40s' is not a valid cgroup name", name);
    snprintf(cg->parent, sizeof(cg->parent), "%s", name);
    return 0;
}

static int jail_init(void **state, const struct backend_config *cfg, char *err, size_t errlen)
{
    const char *agent_path = cfg->agent_path;
    if (!agent_path)
        return jail_err(err, errlen, -EINVAL, "no agent binary given");
    struct jail_state *st = calloc(1, sizeof(*st));
    if (!st)
        return jail_err(err, errlen, -ENOMEM, "allocate jail state");
    st->agent_memfd = -1;
    pthread_mutex_init(&st->slot_lock, NULL);
    (void)userns_slot_file_open(st);
    st->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);

    int r = cgroup_parent_name(&st->cg, cfg->scope, err, errlen);
    if (r >= 0)
        r = userns_probe(st, err, errlen);
    if (r >= 0)
        r = cgroup_detect(&st->cg.mode, err, errlen);
    errno = 0;
    st->nice = getpriority(PRIO_PROCESS, 0); /* the calling (main) thread's */
    if (st->nice == -1 && errno != 0)
        st->nice = 0;
    if (r >= 0) {
        char msg[PATH_MAX + 200];
        int f = cgroup_favordynmods(cfg->cgroup_favordynmods, msg, sizeof(msg));
        if (f < 0 && cfg->cgroup_favordynmods)
            log_warn("jail: %s", msg);
        else
            log_info("jail: %s", msg);
    }
    if (r >= 0)
        r = cgroup_init_parents(&st->cg, err, errlen);
    if (r >= 0) {
        /* A dead daemon's sandboxes: their agents died with the control
         * stream, but anything that outlived them is killed here. Not fatal:
         * new sandboxes get new ids and cgroups. */
        int n = cgroup_recover(&st->cg);
        if (n < 0)
            log_warn("jail: recovery of leftover sandboxes incomplete: %s", strerror(-n));
        r = seal_agent_binary(agent_path, &st->agent_memfd, err, errlen);
    }
    /* Lowering oom_score_adj below 0 needs CAP_SYS_RESOURCE, which some
     * container runtimes drop. Without it the agent keeps the daemon's score
     * (usually 0) and still outlives the user processes it raises to 1000:
     * the OOM killer picks the highest score first. */
    st->protect_agent = have_capability(CAP_SYS_RESOURCE);
    if (r >= 0 && !st->protect_agent)
        log_warn("jail: no CAP_SYS_RESOURCE: agents keep oom_score_adj %s instead of -1000",
                 "of the daemon");
    if (r < 0) {
        jail_fini(st);
        return r;
    }
    log_info("jail: cgroup v%d, agent %s sealed in memfd", st->cg.mode == CGROUP_V2 ? 2 : 1, agent_path);
    /* Not fatal: without a zygote every REPL is exec'd, as before. */
    if (cfg->zygote_path && cfg->runner_path) {
        char zerr[512];
        if (jail_zygote_start(&st->zygote, cfg->zygote_path, cfg->runner_path, cfg->warmup, zerr, sizeof(zerr)) < 0)
            log_warn("jail: no zygote: %s; REPLs are exec'd", zerr);
        /* The warm pool starts building right after init: its sandboxes
         * should get forked REPLs too. Bounded; a slow warm-up just means
         * the first sandboxes exec theirs. */
        else if (!jail_zygote_wait_ready(st->zygote, JAIL_ZYGOTE_START_WAIT_MS))
            log_warn("jail: zygote not ready within %d ms; sandboxes exec their REPLs until it is",
                     JAIL_ZYGOTE_START_WAIT_MS);
    } else {
        log_info("jail: zygote off; REPLs are exec'd");
    }
    *state = st;
    return 0;
}

/* ---- the plan: everything built before the clone ----------------------------- */

/* The parent's ends of the channels to the child. */
struct jail_parent_fds {
    int control;    /* becomes *agent_fd */
    int release_wr; /* one byte releases the child */
    int error_rd;   /* failure record, or EOF once the agent is exec'd */
    int zygote;     /* our end of the agent's zygote channel, or -1 */
};

static void plan_init(struct jail_plan *p, struct jail_parent_fds *pf)
{
    memset(p, 0, sizeof(*p));
    p->control_fd = p->release_fd = p->release_wr = p->error_fd = p->agent_fd = p->zygote_fd = -1;
    p->usr.fd = p->runner.fd = -1;
    for (size_t i = 0; i < JAIL_MAX_ETC_BINDS; i++)
        p->etc_binds[i].fd = -1;
    pf->control = pf->release_wr = pf->error_rd = pf->zygote = -1;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* The descriptors of the plan that the parent closes: its copies of the
 * child's ends (the detached trees stay alive in the child through its
 * inherited copies). agent_fd is the state's memfd, not ours; release_wr is
 * the parent's own end, closed through struct jail_parent_fds. */
#define PLAN_NFDS (6 + JAIL_MAX_ETC_BINDS)

static void plan_fds(struct jail_plan *p, int *fds[PLAN_NFDS])
{
    fds[0] = &p->control_fd;
    fds[1] = &p->release_fd;
    fds[2] = &p->error_fd;
    fds[3] = &p->usr.fd;
    fds[4] = &p->runner.fd;
    fds[5] = &p->zygote_fd;
    for (size_t i = 0; i < JAIL_MAX_ETC_BINDS; i++)
        fds[6 + i] = &p->etc_binds[i].fd;
}

/* No child: close and free everything. */
static void plan_release(struct jail_plan *p)
{
    int *fds[PLAN_NFDS];
    plan_fds(p, fds);
    for (size_t i = 0; i < PLAN_NFDS; i++)
        close_fd(fds[i]);
    p->agent_fd = -1;
    rootfs_release(p);
}

/* With a child running on the plan (CLONE_VM): the parent's copies of the
 * child's descriptors are closed by number, from a snapshot, because the
 * plan itself is the child's to read (closing through it would write -1
 * under the child's feet). The child has its own descriptor table (no
 * CLONE_FILES), so closing ours does not touch its. */
static void plan_snapshot_fds(struct jail_plan *p, int out[PLAN_NFDS])
{
    int *fds[PLAN_NFDS];
    plan_fds(p, fds);
    for (size_t i = 0; i < PLAN_NFDS; i++)
        out[i] = *fds[i];
}

static void close_snapshot_fds(int snap[PLAN_NFDS])
{
    for (size_t i = 0; i < PLAN_NFDS; i++)
        close_fd(&snap[i]);
}

/* Once the child exec'd or is dead: its plan's descriptors are closed
 * already (close_snapshot_fds); free the rest. */
static void plan_release_after_child(struct jail_plan *p)
{
    int *fds[PLAN_NFDS];
    plan_fds(p, fds);
    for (size_t i = 0; i < PLAN_NFDS; i++)
        *fds[i] = -1;
    p->agent_fd = -1;
    rootfs_release(p);
}

static void parent_fds_close(struct jail_parent_fds *pf)
{
    close_fd(&pf->control);
    close_fd(&pf->release_wr);
    close_fd(&pf->error_rd);
    close_fd(&pf->zygote);
}

static int plan_channels(struct jail_plan *p, struct jail_parent_fds *pf, char *err, size_t errlen)
{
    int sv[2], rel[2], er[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return jail_err(err, errlen, -errno, "socketpair");
    pf->control = sv[0];
    p->control_fd = sv[1];
    if (pipe2(rel, O_CLOEXEC) < 0)
        return jail_err(err, errlen, -errno, "pipe2 (release)");
    p->release_fd = rel[0];
    pf->release_wr = p->release_wr = rel[1];
    if (pipe2(er, O_CLOEXEC) < 0)
        return jail_err(err, errlen, -errno, "pipe2 (errors)");
    pf->error_rd = er[0];
    p->error_fd = er[1];
    return 0;
}

static void plan_mount_options(struct jail_plan *p, const struct sandbox_spec *spec)
{
    char size[40] = "";
    if (spec->tmpfs_bytes)
        snprintf(size, sizeof(size), ",size=%llu", (unsigned long long)spec->tmpfs_bytes);
    snprintf(p->root_opts, sizeof(p->root_opts), "mode=0755,size=1m");
    snprintf(p->etc_opts, sizeof(p->etc_opts), "mode=0755,size=1m");
    snprintf(p->dev_opts, sizeof(p->dev_opts), "mode=0755,size=64k");
    snprintf(p->scratch_opts, sizeof(p->scratch_opts), "mode=0755%s", size);
}

static int plan_prepare(struct jail_state *st, const struct sandbox_spec *spec, struct jail_plan *p,
                        struct jail_parent_fds *pf, char *err, size_t errlen)
{
    int r = plan_channels(p, pf, err, errlen);
    if (r < 0)
        return r;
    p->agent_fd = st->agent_memfd;
    snprintf(p->hostname, sizeof(p->hostname), "%s", spec->hostname);
    snprintf(p->memory_arg, sizeof(p->memory_arg), "%llu", (unsigned long long)spec->memory_bytes);
    plan_mount_options(p, spec);
    /* host template only: the zygote's imports come from the host's /usr.
     * No zygote (not ready, --no-zygote): the agent execs the runner. */
    if (st->zygote && (!spec->tmpl || !spec->tmpl->rootfs))
        (void)jail_zygote_channel(st->zygote, &pf->zygote, &p->zygote_fd);
    if ((r = rootfs_prepare(p, spec, err, errlen)) < 0)
        return r;
    if (spec->runner_path) {
        struct stat sb;
        if (stat(spec->runner_path, &sb) < 0)
            return jail_err(err, errlen, -errno, "stat %s", spec->runner_path);
        r = mnt_clone_tree_ro(spec->runner_path, &p->runner,
                              S_ISDIR(sb.st_mode) ? "opt/airlock" : "opt/airlock/airlock_runner.py", err, errlen);
    }
    return r;
}

/* ---- child ------------------------------------------------------------------- */

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
    if (sethostname(p->hostname, strnlen(p->hostname, sizeof(p->hostname))) < 0)
        return child_fail(e, "sethostname", p->hostname, errno);
    return 0;
}

static int child_fd_above_4(int *fd, struct jail_child_error *e)
{
    if (*fd < 0 || *fd > 4)
        return 0;
    int n = fcntl(*fd, F_DUPFD_CLOEXEC, 5);
    if (n < 0)
        return child_fail(e, "fcntl F_DUPFD_CLOEXEC", "", errno);
    *fd = n;
    return 0;
}

/* The agent gets exactly: 0-2 on the sandbox's /dev/null, 3 the control
 * stream, 4 its zygote channel if it has one. Every other fd the daemon had (the database, the listening socket,
 * other sandboxes' streams) is marked close-on-exec; they stay usable until
 * exec, which the error pipe and the memfd need (CVE-2024-21626 class). */
static int child_setup_fds(const struct jail_plan *p, int *agent_fd, struct jail_child_error *e)
{
    int r;
    /* the plan is the parent's memory (CLONE_VM): read it, never write it */
    int control = p->control_fd, error = p->error_fd, zygote = p->zygote_fd;
    *agent_fd = p->agent_fd;
    if ((r = child_fd_above_4(&control, e)) < 0 || (r = child_fd_above_4(&error, e)) < 0 ||
        (r = child_fd_above_4(agent_fd, e)) < 0 || (r = child_fd_above_4(&zygote, e)) < 0)
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
    if (zygote >= 0 && dup3(zygote, 4, 0) < 0)
        return child_fail(e, "dup3", "zygote socket", errno);
    if (syscall(SYS_close_range, zygote >= 0 ? 5U : 4U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        return child_fail(e, "close_range", "", errno);
    return 0;
}

static int child_exec_agent(const struct jail_plan *p, int agent_fd, struct jail_child_error *e)
{
    char *const argv[] = {"airlock-agent", "--fd", "3", "--memory-limit", (char *)p->memory_arg,
                          p->zygote_fd >= 0 ? "--zygote-fd" : NULL, "4", NULL};
    static char *const envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                 "HOME=/", "LANG=C.UTF-8", NULL};
    syscall(SYS_execveat, agent_fd, "", argv, envp, AT_EMPTY_PATH);
    return child_fail(e, "execveat", "airlock-agent memfd", errno);
}

static int child_run(const struct jail_plan *p, struct jail_child_error *e)
{
    int r, agent_fd;
    child_reset_signals();
    if ((r = child_wait_release(p, e)) < 0 || (r = child_enter_namespaces(p, e)) < 0 ||
        (r = mnt_build_root(p, e)) < 0 || (r = mnt_pivot_root(e)) < 0 || (r = net_loopback_up(e)) < 0 ||
        (r = child_setup_fds(p, &agent_fd, e)) < 0)
        return r;
    return child_exec_agent(p, agent_fd, e);
}

/* The child's entry point (clone's fn). It never returns: execveat, or
 * _exit. The raw exit_group: glibc's _exit is that too, named for clarity. */
static int jail_child(void *arg)
{
    const struct jail_plan *p = arg;
    struct jail_child_error e;
    memset(&e, 0, sizeof(e));
    if (child_run(p, &e) < 0)
        (void)!write(p->error_fd, &e, sizeof(e));
    syscall(SYS_exit_group, 127);
    return 127;
}

static int child_exit_at_once(void *arg)
{
    (void)arg;
    syscall(SYS_exit_group, 0);
    return 0;
}

/* ---- parent ------------------------------------------------------------------ */

/* A sysctl's value for an error message: "" when the host does not have it. */
static void sysctl_text(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (read_file_small(path, buf, cap) < 0)
        buf[0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

/* The clone runs with a non-root euid, so name the host settings that may
 * forbid it: user.max_user_namespaces (ENOSPC at 0 or when this uid's count
 * is reached) and Debian's kernel.unprivileged_userns_clone (EPERM at 0, for
 * a caller without CAP_SYS_ADMIN, which ours keeps). */
static int clone_error(int e, char *err, size_t errlen)
{
    if (e != ENOSPC && e != EPERM && e != EUSERS)
        return jail_err(err, errlen, -e, "clone");
    char max[32], unpriv[32];
    sysctl_text("/proc/sys/user/max_user_namespaces", max, sizeof(max));
    sysctl_text("/proc/sys/kernel/unprivileged_userns_clone", unpriv, sizeof(unpriv));
    return jail_err(err, errlen, -e,
                    "clone of a user namespace owned by an unprivileged uid (does the host allow user "
                    "namespaces? user.max_user_namespaces=%s%s%s)",
                    max[0] ? max : "?", unpriv[0] ? ", kernel.unprivileged_userns_clone=" : "", unpriv);
}

/* The child's stack: CLONE_VM shares the daemon's memory, so the child
 * cannot run on the creating thread's stack. 256 KiB (the child's deepest
 * frames hold a few path buffers), lazily backed, with a guard page below
 * it so an overflow faults instead of writing over daemon memory. */
#define JAIL_CHILD_STACK (256u << 10)

/* Under ASan the child's frames poison the stack's shadow, and a child
 * that execs or exits never unpoisons them; the next mmap may return the
 * same addresses, so the shadow is cleared when a stack is freed. */
#if defined(__SANITIZE_ADDRESS__)
#define JAIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JAIL_ASAN 1
#endif
#endif
#ifdef JAIL_ASAN
#include <sanitizer/asan_interface.h>
#endif

struct jail_child_stack {
    void *base; /* guard page + stack, MAP_FAILED if none */
    size_t len;
};

static int child_stack_alloc(struct jail_child_stack *cs, char *err, size_t errlen)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    cs->len = JAIL_CHILD_STACK + page;
    cs->base = mmap(NULL, cs->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
                    -1, 0);
    if (cs->base == MAP_FAILED)
        return jail_err(err, errlen, -errno, "mmap the sandbox init's stack");
    if (mprotect(cs->base, page, PROT_NONE) < 0) {
        int r = -errno;
        (void)munmap(cs->base, cs->len);
        cs->base = MAP_FAILED;
        return jail_err(err, errlen, r, "mprotect the stack guard page");
    }
    return 0;
}

/* Only once the child has exec'd or is dead. */
static void child_stack_free(struct jail_child_stack *cs)
{
    if (cs->base != MAP_FAILED && cs->base != NULL) {
#ifdef JAIL_ASAN
        __asan_unpoison_memory_region(cs->base, cs->len);
#endif
        (void)munmap(cs->base, cs->len);
    }
    cs->base = MAP_FAILED;
}

/* Clone into the new namespaces, sharing our memory (see the top of the
 * file), the child running fn(arg) on cs. All signals are blocked across
 * it so no daemon handler runs in the child before it resets them, nor in
 * this thread while it is not uid 0. CLONE_PIDFD: destroy signals through
 * the pidfd and can never hit a recycled pid. The thread is the sandbox's
 * host uid for the clone alone, so the new user namespace is owned by it
 * (userns.c says why); nothing between the switch and the return to 0
 * touches a file or needs to be root: the child's maps, cgroup and oom
 * score are written after it. */
static pid_t jail_clone(const struct jail_state *st, unsigned long flags, uid_t owner, int (*fn)(void *), void *arg,
                        struct jail_child_stack *cs, int *pidfd, char *err, size_t errlen)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    struct userns_saved_ids saved = {.dumpable = st->dumpable};
    int r = userns_become_owner(owner, &saved, err, errlen);
    if (r < 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return r;
    }
    /* the stack grows down: clone gets its top */
    int pid = clone(fn, (char *)cs->base + cs->len, (int)(flags | CLONE_VM | CLONE_PIDFD | SIGCHLD), arg, pidfd);
    int saved_errno = errno;
    userns_restore_root(&saved); /* aborts the daemon if it cannot */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return clone_error(saved_errno, err, errlen);
    return (pid_t)pid;
}

/* At start, not at the first request: can this host create a user namespace
 * owned by an unprivileged uid? The child exits at once. */
static int userns_probe(const struct jail_state *st, char *err, size_t errlen)
{
    int pidfd = -1;
    struct jail_child_stack cs;
    int r = child_stack_alloc(&cs, err, errlen);
    if (r < 0)
        return r;
    pid_t pid = jail_clone(st, CLONE_NEWUSER, userns_host_base(0), child_exit_at_once, NULL, &cs, &pidfd, err, errlen);
    if (pid > 0) {
        close(pidfd);
        while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
            ;
    }
    child_stack_free(&cs); /* after the wait: the child ran on it */
    return pid < 0 ? pid : 0;
}

static int set_oom_score_adj(pid_t pid, const char *value, char *err, size_t errlen)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)pid);
    int r = write_file(path, value);
    return r < 0 ? jail_err(err, errlen, r, "write %s to %s", value, path) : 0;
}

/* Wait for the child's verdict: a failure record, or EOF once execveat closed
 * the CLOEXEC error pipe. EOF also happens if the child died before exec
 * (crash, killed), so a child that already exited counts as a failure. */
static int wait_child_exec(int error_rd, pid_t pid, char *err, size_t errlen)
{
    struct jail_child_error e;
    size_t got = 0;
    uint64_t deadline = now_mono_ms() + JAIL_SETUP_TIMEOUT_MS;
    while (got < sizeof(e)) {
        uint64_t now = now_mono_ms();
        if (now >= deadline)
            return jail_err(err, errlen, -ETIMEDOUT, "sandbox setup");
        struct pollfd pfd = {.fd = error_rd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return jail_err(err, errlen, -errno, "poll error pipe");
        if (n == 0)
            continue;
        ssize_t k = read(error_rd, (char *)&e + got, sizeof(e) - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return jail_err(err, errlen, -errno, "read error pipe");
        if (k == 0)
            break;
        got += (size_t)k;
    }
    if (got == sizeof(e)) {
        e.op[sizeof(e.op) - 1] = e.path[sizeof(e.path) - 1] = '\0';
        int r = e.err > 0 ? -e.err : -EIO;
        return e.path[0] ? jail_err(err, errlen, r, "%s %s", e.op, e.path) : jail_err(err, errlen, r, "%s", e.op);
    }
    if (got != 0)
        return jail_err(err, errlen, -EIO, "short error record from sandbox init");
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
        return jail_err(err, errlen, -ECHILD, "sandbox init exited before exec (%s %d)",
                        si.si_code == CLD_EXITED ? "status" : "signal", si.si_status);
    return 0;
}

static int release_child(int release_wr, char *err, size_t errlen)
{
    for (;;) {
        if (write(release_wr, "x", 1) == 1)
            return 0;
        if (errno != EINTR)
            return jail_err(err, errlen, -errno, "release sandbox init");
    }
}

/* Between clone and exec: give the child its identity and limits, let it go,
 * and wait for it to reach the agent. */
static int configure_and_release(const struct jail_state *st, struct backend_instance *inst,
                                 struct jail_parent_fds *pf, char *err, size_t errlen)
{
    int r;
    if ((r = userns_write_maps(inst->pid, inst->host_base, err, errlen)) < 0 ||
        (r = cgroup_add_pid(&inst->cg, inst->id, inst->pid, err, errlen)) < 0 ||
        /* the agent must survive an OOM in its sandbox; it raises its own
         * children to +1000 so they go first */
        (st->protect_agent && (r = set_oom_score_adj(inst->pid, "-1000", err, errlen)) < 0) ||
        (r = release_child(pf->release_wr, err, errlen)) < 0)
        return r;
    close_fd(&pf->release_wr);
    return wait_child_exec(pf->error_rd, inst->pid, err, errlen);
}

static bool valid_id(const char *id)
{
    return valid_name(id, SANDBOX_ID_LEN);
}

static bool valid_hostname(const char *h)
{
    size_t n = h ? strnlen(h, 65) : 0;
    if (n == 0 || n > 64 || h[0] == '-' || h[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') || (h[i] >= '0' && h[i] <= '9') ||
              h[i] == '-' || h[i] == '.'))
            return false;
    return true;
}

static int jail_destroy(void *state, struct backend_instance *inst);

static int jail_create(void *state, const struct sandbox_spec *spec_in, struct backend_instance **out,
                       int *agent_fd, char *err, size_t errlen)
{
    struct jail_state *st = state;
    struct sandbox_spec spec_copy = *spec_in;
    if (!spec_copy.hostname)
        spec_copy.hostname = "sandbox";
    const struct sandbox_spec *spec = &spec_copy;
    if (!valid_id(spec->id))
        return jail_err(err, errlen, -EINVAL, "sandbox id '%.40s'", spec->id);
    if (!valid_hostname(spec->hostname))
        return jail_err(err, errlen, -EINVAL, "hostname '%.70s'", spec->hostname ? spec->hostname : "");

    struct backend_instance *inst = calloc(1, sizeof(*inst));
    cleanup_free struct jail_plan *p = calloc(1, sizeof(*p));
    if (!inst || !p) {
        free(inst);
        return jail_err(err, errlen, -ENOMEM, "allocate sandbox");
    }
    memcpy(inst->id, spec->id, strnlen(spec->id, SANDBOX_ID_LEN)); /* valid_id checked; calloc NUL-terminates */
    inst->cg = st->cg;
    inst->pid = -1;
    inst->pidfd = -1;
    inst->slot = userns_slot_alloc(st);
    if (inst->slot < 0) {
        free(inst);
        return jail_err(err, errlen, -EAGAIN, "no free uid range (%d sandboxes)", JAIL_SLOTS);
    }
    inst->host_base = userns_host_base(inst->slot);

    struct jail_parent_fds pf;
    plan_init(p, &pf);
    struct cgroup_limits lim = {spec->memory_bytes, spec->cpu_millis, spec->pids_max};
    int r = plan_prepare(st, spec, p, &pf, err, errlen);
    if (r >= 0)
        r = cgroup_create(&inst->cg, inst->id, &lim, err, errlen);
    if (r < 0) {
        plan_release(p);
        parent_fds_close(&pf);
        userns_slot_free(st, inst->slot);
        free(inst);
        return r;
    }

    struct jail_child_stack cs = {.base = MAP_FAILED};
    int snap[PLAN_NFDS];
    plan_snapshot_fds(p, snap);
    pid_t pid = child_stack_alloc(&cs, err, errlen);
    if (pid >= 0)
        pid = jail_clone(st, JAIL_CLONE_FLAGS, inst->host_base, jail_child, p, &cs, &inst->pidfd, err, errlen);
    if (pid < 0)
        r = pid;
    close_snapshot_fds(snap); /* the parent's copies of the child's ends: the error pipe's EOF needs this */
    inst->pid = pid;
    if (r >= 0)
        r = configure_and_release(st, inst, &pf, err, errlen);
    if (r < 0) {
        parent_fds_close(&pf);
        if (pid < 0) {
            (void)cgroup_destroy(&inst->cg, inst->id);
            userns_slot_free(st, inst->slot);
            free(inst);
        } else {
            (void)jail_destroy(st, inst); /* kills and reaps the child */
        }
        /* the child exec'd, or is dead and reaped: nothing uses the plan's
         * memory or the stack any more */
        plan_release_after_child(p);
        child_stack_free(&cs);
        return r;
    }
    /* configure_and_release saw the error pipe's EOF: the child exec'd (or
     * died, which it reports as an error) */
    plan_release_after_child(p);
    /* The clone ran at the building thread's priority (the warm pool's is
     * lowered so that builds yield to requests); the agent and what it
     * starts must not inherit that. */
    if (setpriority(PRIO_PROCESS, (id_t)pid, st->nice) < 0)
        log_warn("jail: %s: setpriority(%d) of the agent: %s", inst->id, st->nice, strerror(errno));
    child_stack_free(&cs);
    if (pf.zygote >= 0) {
        r = jail_zygote_register(st->zygote, steal_fd(&pf.zygote), inst->pidfd, &inst->cg, inst->id);
        if (r < 0)
            log_debug("jail: %s: zygote registration: %s; its agent execs the runner", inst->id, strerror(-r));
    }
    *agent_fd = steal_fd(&pf.control);
    parent_fds_close(&pf);
    *out = inst;
    return 0;
}

/* ---- destroy ------------------------------------------------------------------- */

static int jail_destroy(void *state, struct backend_instance *inst)
{
    struct jail_state *st = state;
    if (!inst)
        return 0;
    /* SIGKILL to PID 1 of the namespace: the kernel kills everything else in
     * it before the agent's exit completes. */
    if (!inst->reaped && inst->pidfd >= 0)
        (void)syscall(SYS_pidfd_send_signal, inst->pidfd, SIGKILL, NULL, 0);
    while (!inst->reaped && inst->pid > 0) {
        if (waitpid(inst->pid, NULL, __WALL) == inst->pid || errno == ECHILD)
            inst->reaped = true;
        else if (errno != EINTR)
            break;
    }
    /* Anything that escaped the pid namespace's teardown is still in the
     * cgroup: kill it, wait for it, remove the cgroups. */
    int r = cgroup_destroy(&inst->cg, inst->id);
    if (r < 0)
        /* Processes of this uid range may still exist: better to leak the
         * slot than to hand their uids to a new sandbox. */
        log_error("jail: destroy %s: cgroup not removed: %s; uid range %u kept", inst->id, strerror(-r),
                  (unsigned)inst->host_base);
    else
        userns_slot_free(st, inst->slot);
    close_fd(&inst->pidfd);
    free(inst);
    return r;
}

static int jail_oom_kills(struct backend_instance *inst, uint64_t *count)
{
    return cgroup_oom_kills(&inst->cg, inst->id, count);
}

static int jail_memory_usage(struct backend_instance *inst, uint64_t *bytes)
{
    return cgroup_memory_usage(&inst->cg, inst->id, bytes);
}

static pid_t jail_agent_pid(struct backend_instance *inst)
{
    return inst->pid;
}

static pid_t jail_zygote_pid_of(void *state)
{
    struct jail_state *st = state;
    return st ? jail_zygote_pid(st->zygote) : 0;
}

const struct backend_ops jail_backend_ops = {
    .name = "jail",
    .init = jail_init,
    .create = jail_create,
    .destroy = jail_destroy,
    .oom_kills = jail_oom_kills,
    .memory_usage = jail_memory_usage,
    .agent_pid = jail_agent_pid,
    .zygote_pid = jail_zygote_pid_of,
    .fini = jail_fini,
};
