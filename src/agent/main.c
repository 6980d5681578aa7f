/* main.c - airlock-agent entry point.
 *
 *   airlock-agent --fd 3 [--zygote-fd 4] [--root DIR] [--runner PATH] [--python PATH] [--memory-limit BYTES]
 *   airlock-agent --seccomp-policy     print the seccomp table (name, action,
 *                                      errno, reason) that user code runs under
 *
 * Under the vm backend it is the guest's /init instead (guest.c builds the
 * sandbox root and finds its control stream, a virtio serial port).
 *
 * In production the jail backend starts it as PID 1 of fresh user, pid,
 * mount and network namespaces with the sandbox root already built; fd 3 is
 * the control stream to airlockd. For tests it runs directly on the host as
 * root with --root pointing at a scratch directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "seccomp_bpf.h"
#include "util.h"

static void usage(void)
{
    fprintf(stderr, "usage: airlock-agent [--fd N] [--zygote-fd N] [--root DIR] [--runner PATH] [--python PATH] [--memory-limit BYTES] [--meminfo-fds M[,U,S]] [--warm r,javascript] [--debug]\n"
                    "       airlock-agent --seccomp-policy   (print the user-code seccomp table and exit)\n");
}

static int parse_args(int argc, char **argv, struct agent *a, bool *debug, bool *print_policy)
{
    static const struct option opts[] = {
        {"fd", required_argument, NULL, 'f'},     {"root", required_argument, NULL, 'r'},
        {"runner", required_argument, NULL, 'R'}, {"python", required_argument, NULL, 'p'},
        {"debug", no_argument, NULL, 'd'},        {"help", no_argument, NULL, 'h'},
        {"memory-limit", required_argument, NULL, 'm'},
        {"seccomp-policy", no_argument, NULL, 'S'},
        {"zygote-fd", required_argument, NULL, 'z'},
        {"meminfo-fds", required_argument, NULL, 'M'},
        {"warm", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': {
            if (parse_fd_arg(optarg, &a->ctl_fd) < 0)
                return -EINVAL;
            break;
        }
        case 'z': {
            if (parse_fd_arg(optarg, &a->zygote_fd) < 0)
                return -EINVAL;
            break;
        }
        case 'M': {
            /* "M" or "M,U,S": the /proc/meminfo file, then the cgroup's usage and memory.stat */
            char *comma = strchr(optarg, ',');
            if (comma)
                *comma = '\0';
            if (parse_fd_arg(optarg, &a->meminfo_fd) < 0)
                return -EINVAL;
            if (comma) {
                char *second = comma + 1, *third = strchr(second, ',');
                if (!third)
                    return -EINVAL;
                *third = '\0';
                if (parse_fd_arg(second, &a->memcg_usage_fd) < 0 || parse_fd_arg(third + 1, &a->memcg_stat_fd) < 0)
                    return -EINVAL;
            }
            break;
        }
        case 'r': a->root_path = optarg; break;
        case 'w': {
            /* --warm r,javascript: those languages' default contexts start with the agent */
            if (lang_parse_warm(optarg, &a->warm_langs) < 0)
                return -EINVAL;
            break;
        }
        case 'R': a->runner_path = optarg; break;
        case 'p': a->python_path = optarg; break;
        case 'd': *debug = true; break;
        case 'S': *print_policy = true; break;
        case 'm': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end || errno || v == 0)
                return -EINVAL;
            a->memory_limit = v;
            break;
        }
        default: return -EINVAL;
        }
    }
    return optind == argc ? 0 : -EINVAL;
}

/* SIGCHLD arrives through a signalfd so reaping happens inside the loop;
 * SIGPIPE is ignored so a dead reader shows up as EPIPE on write. */
static int setup_signals(struct agent *a)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -errno;
    a->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (a->sig_fd < 0)
        return -errno;
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        return -errno;
    return 0;
}

/* A single allocation larger than twice the sandbox's memory can never
 * succeed, so the process limit makes it fail at once (MemoryError in
 * Python, state kept) rather than be OOM-killed page by page. Smaller
 * overshoots are left to the cgroup, which counts every process. */
static int build_spawn_policy(struct agent *a)
{
    /* compiled from seccomp.c's table at build time (seccomp_gen.c); the
     * kernel copies a program when it is loaded, so the constant is shared */
    a->policy.filter = (struct sock_fprog){.len = ARRAY_SIZE(seccomp_user_bpf), .filter = (struct sock_filter *)seccomp_user_bpf};
    a->policy.quiet = (struct sock_fprog){.len = ARRAY_SIZE(seccomp_quiet_bpf), .filter = (struct sock_filter *)seccomp_quiet_bpf};
    a->policy.data_limit = RLIM_INFINITY;
    if (a->memory_limit)
        a->policy.data_limit = (rlim_t)(2 * a->memory_limit + (256ull << 20));
    if (a->pids_limit)
        a->policy.nproc_limit = (rlim_t)a->pids_limit;
    return 0;
}

/* Landlock, once, before the first user process exists (landlock.c): the
 * agent and everything it starts share one domain. Unavailable is logged and
 * tolerated (older kernels); available but failing is fatal, because the
 * sandbox would silently run with less isolation than the kernel offers. */
static int confine(struct agent *a)
{
    char msg[512];
    /* With a zygote the REPL is not our descendant: it builds the same
     * ruleset for itself (proc.c), a sibling domain. Scoped signals would
     * then forbid the timeouts' SIGINT and SIGKILL to it, so neither domain
     * scopes; the pid and network namespaces are the walls those scopes
     * doubled (docs/security.md). */
    int r = landlock_confine(a->root_path, a->zygote_fd < 0, msg, sizeof(msg));
    if (r < 0)
        log_error("landlock: %s", msg);
    else if (r > 0)
        log_warn("landlock unavailable: %s", msg);
    else
        log_info("%s", msg);
    return r < 0 ? r : 0;
}

/* Kill every child process group we know about (shutdown / lost daemon). */
static void kill_children(struct agent *a)
{
    repl_kill(a);
    job_kill_all(a);
    /* As PID 1 our exit kills the namespace anyway; doing it first also takes
     * orphans that started their own sessions. kill(-1) outside PID 1 would
     * hit the whole host, so only here. */
    if (a->is_pid1)
        (void)kill(-1, SIGKILL);
}

/* The control stream first (it is served first every turn), then the
 * reaper, then the REPL's pipes as repl_start registers them. */
static int start_loop(struct agent *a)
{
    int r = ctl_start(a);
    if (r == 0)
        r = ev_reap_children(a, a->sig_fd);
    if (r < 0) {
        log_error("event loop setup: %s", strerror(-r));
        return r;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct agent a = {
        .ctl_fd = 3,
        .sig_fd = -1,
        .root_fd = -1,
        .last_pid_fd = -1,
        .zygote_fd = -1,
        .meminfo_fd = -1,
        .memcg_usage_fd = -1,
        .memcg_stat_fd = -1,
        .root_path = "/",
        .runner_path = "/opt/airlock/airlock_runner.py",
        .python_path = "/usr/bin/python3",
    };
    bool debug = false, print_policy = false;
    /* the kernel runs the vm backend's initramfs /init with argv[0] "/init"
     * and extra words from its command line, which are not ours to parse */
    bool guest = getpid() == 1 && argc > 0 && strcmp(argv[0], "/init") == 0;
    if (guest) {
        log_init("airlock-agent", LOG_LVL_INFO);
        if (guest_boot(&a) < 0)
            guest_poweroff();
    } else if (parse_args(argc, argv, &a, &debug, &print_policy) < 0) {
        usage();
        return 2;
    }
    if (print_policy) {
        seccomp_print_policy(stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    log_init("airlock-agent", debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
    log_set_sink(agent_log_sink, &a);
    a.is_pid1 = getpid() == 1;

    /* The control fd must not leak into user processes (proc.c closes every
     * fd anyway; CLOEXEC is the second line). */
    if (fcntl(a.ctl_fd, F_SETFD, FD_CLOEXEC) < 0) {
        log_error("control fd %d: %s", a.ctl_fd, strerror(errno));
        return 1;
    }
    int keep[] = {a.meminfo_fd, a.memcg_usage_fd, a.memcg_stat_fd};
    for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
        if (keep[i] >= 0 && fcntl(keep[i], F_SETFD, FD_CLOEXEC) < 0) {
            log_warn("meminfo fd %d: %s; /proc/meminfo is not kept", keep[i], strerror(errno));
            a.meminfo_fd = -1;
        }
    meminfo_refresh(&a); /* before the first user process exists */
    if (a.zygote_fd >= 0 && fcntl(a.zygote_fd, F_SETFD, FD_CLOEXEC) < 0) {
        log_warn("zygote fd %d: %s; not using the zygote", a.zygote_fd, strerror(errno));
        a.zygote_fd = -1;
    }
    a.root_fd = open(a.root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (a.root_fd < 0) {
        log_error("open root %s: %s", a.root_path, strerror(errno));
        return 1;
    }
    a.root_real = realpath(a.root_path, NULL);
    if (!a.root_real) {
        log_error("realpath %s: %s", a.root_path, strerror(errno));
        return 1;
    }
    int r = setup_signals(&a);
    if (r < 0) {
        log_error("signal setup: %s", strerror(-r));
        return 1;
    }
    /* Outside PID 1 (tests), orphans of user code would escape to the host's
     * init; as a subreaper the agent reaps them like PID 1 does. */
    if (!a.is_pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        log_warn("prctl PR_SET_CHILD_SUBREAPER: %s", strerror(errno));

    /* read at every python call start (tree.c): which processes the call
     * started is decided by start time and, within one clock tick, by pid */
    a.last_pid_fd = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
    if (a.last_pid_fd < 0)
        log_warn("open /proc/sys/kernel/ns_last_pid: %s; processes started in the clock tick of a call's start "
                 "count as the call's",
                 strerror(errno));

    r = build_spawn_policy(&a);
    if (r < 0)
        return 1;
    r = confine(&a);
    if (r < 0)
        return 1;
    if (start_loop(&a) < 0)
        return 1;
    r = context_init(&a);
    if (r < 0)
        log_warn("python runner did not start: %s", a.repls[0].start_error);
    /* Python first: most calls are Python; then the others --warm names */
    context_start_warm(&a);

    r = ev_run(&a);
    kill_children(&a);
    files_free_all(&a);
    watch_free_all(&a);
    context_free_all(&a);
    free(a.root_real);
    log_debug("exiting (%d)", a.exit_code);
    if (guest)
        guest_poweroff();
    return a.exit_code;
}
