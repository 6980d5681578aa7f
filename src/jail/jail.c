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
 * CLONE_VM: the child runs in the daemon's own address space until its
 * execveat (clone.c says why and what that asks of the parent). The files:
 * plan.c builds the plan, clone.c clones, child.c is the child's side,
 * caps.c and userns.c the ids, cgroup*.c, mnt.c, net.c, rootfs.c and
 * layers.c the kernel concerns; report.c their error reports.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
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
    layers_fini(&st->layers);
    if (st->anon_lock_fd >= 0)
        close(st->anon_lock_fd);
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
    st->layers.empty_fd = st->layers.devskel_fd = st->anon_lock_fd = -1;
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
    if (r >= 0)
        r = layers_init(&st->layers, err, errlen);
    if (r >= 0) {
        mnt_check_pty_pool(cfg->max_sandboxes);
        char aerr[256];
        if (anonlock_hold(&st->anon_lock_fd, aerr, sizeof(aerr)) < 0)
            log_warn("jail: %s: sandboxes can signal each other through eventfd locks", aerr);
    }
    /* Lowering oom_score_adj below 0 needs CAP_SYS_RESOURCE, which some
     * container runtimes drop. Without it the agent keeps the daemon's score
     * (usually 0) and still outlives the user processes it raises to 1000:
     * the OOM killer picks the highest score first. */
    st->protect_agent = caps_have(CAP_SYS_RESOURCE);
    if (r >= 0 && !st->protect_agent)
        log_warn("jail: no CAP_SYS_RESOURCE: agents keep oom_score_adj %s instead of -1000",
                 "of the daemon");
    if (r < 0) {
        jail_fini(st);
        return r;
    }
    log_info("jail: cgroup v%d, agent %s sealed in memfd", st->cg.mode == CGROUP_V2 ? 2 : 1, agent_path);
    if (st->cg.mode == CGROUP_V1)
        log_info("jail: cgroup v1: socket buffers are charged to memory.kmem.tcp.limit_in_bytes (a quarter of a "
                 "sandbox's memory); cgroup v2, which charges them to memory.max, is the supported configuration "
                 "for hostile tenants");
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

/* The spec's names become path components and the sandbox's hostname. */
static int spec_check(const struct sandbox_spec *spec, char *err, size_t errlen)
{
    if (!valid_id(spec->id))
        return jail_err(err, errlen, -EINVAL, "sandbox id '%.40s'", spec->id);
    if (!valid_hostname(spec->hostname))
        return jail_err(err, errlen, -EINVAL, "hostname '%.70s'", spec->hostname ? spec->hostname : "");
    return 0;
}

/* The instance, with a uid range slot of its own. */
static int instance_new(struct jail_state *st, const struct sandbox_spec *spec, struct backend_instance **out,
                        char *err, size_t errlen)
{
    struct backend_instance *inst = calloc(1, sizeof(*inst));
    if (!inst)
        return jail_err(err, errlen, -ENOMEM, "allocate sandbox");
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
    *out = inst;
    return 0;
}

/* Before the clone: nothing but the plan, the slot and the instance to undo. */
static int undo_before_clone(struct jail_state *st, struct backend_instance *inst, struct jail_plan *p,
                             struct jail_parent_fds *pf, int r)
{
    plan_release(p);
    parent_fds_close(pf);
    userns_slot_free(st, inst->slot);
    free(inst);
    return r;
}

/* The clone into the sandbox's namespaces (clone.c). inst->pid is the
 * child, or -errno if there is none. */
static int clone_sandbox(const struct jail_state *st, struct backend_instance *inst, struct jail_plan *p,
                         struct clone_stack *cs, char *err, size_t errlen)
{
    int snap[PLAN_NFDS];
    plan_snapshot_fds(p, snap);
    pid_t pid = clone_stack_alloc(cs, err, errlen);
    if (pid >= 0)
        pid = clone_child(st, JAIL_CLONE_FLAGS, inst->host_base, child_main, p, cs, &inst->pidfd, err, errlen);
    close_snapshot_fds(snap); /* the parent's copies of the child's ends: the error pipe's EOF needs this */
    inst->pid = pid;
    return pid < 0 ? pid : 0;
}

/* After the clone: a child is killed and reaped with the rest of the
 * sandbox; without one, its cgroups, slot and instance go. */
static int undo_after_clone(struct jail_state *st, struct backend_instance *inst, struct jail_plan *p,
                            struct jail_parent_fds *pf, struct clone_stack *cs, int r)
{
    parent_fds_close(pf);
    if (inst->pid < 0) {
        (void)cgroup_destroy(&inst->cg, inst->id);
        userns_slot_free(st, inst->slot);
        free(inst);
    } else {
        (void)jail_destroy(st, inst); /* kills and reaps the child */
    }
    /* the child exec'd, or is dead and reaped: nothing uses the plan's
     * memory or the stack any more */
    plan_release_after_child(p);
    clone_stack_free(cs);
    return r;
}

/* The clone ran at the building thread's priority (the warm pool's is
 * lowered so that builds yield to requests); the agent and what it
 * starts must not inherit that. */
static void agent_set_nice(const struct jail_state *st, const struct backend_instance *inst)
{
    if (setpriority(PRIO_PROCESS, (id_t)inst->pid, st->nice) < 0)
        log_warn("jail: %s: setpriority(%d) of the agent: %s", inst->id, st->nice, strerror(errno));
}

/* The agent's zygote channel, if it got one, goes to the zygote. */
static void zygote_hand_over(struct jail_state *st, const struct backend_instance *inst, struct jail_parent_fds *pf)
{
    if (pf->zygote < 0)
        return;
    int r = jail_zygote_register(st->zygote, steal_fd(&pf->zygote), inst->pidfd, &inst->cg, inst->id);
    if (r < 0)
        log_debug("jail: %s: zygote registration: %s; its agent execs the runner", inst->id, strerror(-r));
}

/* The parent's create sequence, one step per line (the top of the file
 * draws it next to the child's, child.c). */
static int jail_create(void *state, const struct sandbox_spec *spec_in, struct backend_instance **out,
                       int *agent_fd, char *err, size_t errlen)
{
    struct jail_state *st = state;
    struct sandbox_spec spec = *spec_in;
    if (!spec.hostname)
        spec.hostname = "sandbox";
    int r = spec_check(&spec, err, errlen);
    if (r < 0)
        return r;
    cleanup_free struct jail_plan *p = calloc(1, sizeof(*p));
    if (!p)
        return jail_err(err, errlen, -ENOMEM, "allocate sandbox");
    struct backend_instance *inst = NULL;
    if ((r = instance_new(st, &spec, &inst, err, errlen)) < 0)
        return r;
    struct jail_parent_fds pf;
    plan_init(p, &pf);
    if ((r = plan_prepare(st, &spec, p, &pf, err, errlen)) < 0)
        return undo_before_clone(st, inst, p, &pf, r);
    struct cgroup_limits lim = {spec.memory_bytes, spec.cpu_millis, spec.pids_max};
    if ((r = cgroup_create(&inst->cg, inst->id, &lim, err, errlen)) < 0)
        return undo_before_clone(st, inst, p, &pf, r);
    sysview_plan_memcg(p, &inst->cg, inst->id);
    struct clone_stack cs = {.base = MAP_FAILED};
    if ((r = clone_sandbox(st, inst, p, &cs, err, errlen)) < 0)
        return undo_after_clone(st, inst, p, &pf, &cs, r);
    if ((r = configure_and_release(st, inst, &pf, err, errlen)) < 0)
        return undo_after_clone(st, inst, p, &pf, &cs, r);
    /* configure_and_release saw the error pipe's EOF: the child exec'd (or
     * died, which it reports as an error) */
    plan_release_after_child(p);
    agent_set_nice(st, inst);
    clone_stack_free(&cs);
    zygote_hand_over(st, inst, &pf);
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
    /* A paused sandbox: its frozen agent would not act on that SIGKILL
     * (v1) and the wait below would never end. Kill everything, then thaw. */
    int fr = cgroup_kill_frozen(&inst->cg, inst->id);
    if (fr < 0)
        log_warn("jail: destroy %s: thaw the frozen cgroup: %s", inst->id, strerror(-fr));
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

/* Pause: the cgroup freezer stops every task of the sandbox (the agent
 * included) where it stands; memory, files and sockets stay as they are. */
static int jail_pause(void *state, struct backend_instance *inst, char *err, size_t errlen)
{
    (void)state;
    return cgroup_set_frozen(&inst->cg, inst->id, true, err, errlen);
}

static int jail_resume(void *state, struct backend_instance *inst, char *err, size_t errlen)
{
    (void)state;
    return cgroup_set_frozen(&inst->cg, inst->id, false, err, errlen);
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
    .pause = jail_pause,
    .resume = jail_resume,
    .zygote_pid = jail_zygote_pid_of,
    .egress_listen = net_egress_listen,
    .egress_link_up = net_link_up,
    .egress_link_down = net_link_down,
    .fini = jail_fini,
};
