/* proc.c - start a user process with every privilege dropped.
 *
 * The child runs the steps below in this order; each one that fails writes
 * "<step> <arg>: <strerror>" into a CLOEXEC pipe and exits 127, so the
 * parent can report exactly what went wrong (a successful execve closes the
 * pipe, which the parent sees as EOF with nothing written):
 *
 *   setsid                     own session and process group: timeouts and
 *                              SIGNAL hit the whole tree with kill(-pgid)
 *   subreaper (jobs only)      PR_SET_CHILD_SUBREAPER: an orphan of the
 *                              job's descendants (double fork, setsid) is
 *                              re-parented to the job's root, not to us, so
 *                              a timeout finds and kills it (tree.c). The
 *                              flag survives execve and the uid change;
 *                              children do not inherit it.
 *   fds                        stdin/stdout/stderr + extras at 3.., close rest
 *   signals                    default dispositions, empty mask (the agent
 *                              ignores SIGPIPE and blocks SIGCHLD)
 *   oom_score_adj 1000         user code is the OOM killer's first choice;
 *                              the agent (PID 1) is -1000
 *   chdir                      the requested cwd (job.c checked it exists);
 *                              "/" if the default /home/user does not
 *   rlimits                    no core dumps, bounded fds and locked memory
 *   capability bounding set    dropped entirely while we still may (root)
 *   ambient capabilities       cleared
 *   setgroups [1000]           (EPERM tolerated: the jail writes
 *                              setgroups=deny, so there is nothing to drop)
 *   setresgid / setresuid 1000 all three ids
 *   capset empty + capget      verify nothing is left
 *   no_new_privs               setuid binaries and file caps stay inert
 *   seccomp                    last, so nothing above is filtered; refused
 *                              calls are logged (SECCOMP_FILTER_FLAG_LOG),
 *                              but for the quiet ones (second filter)
 *   execve
 *
 * The agent is single-threaded, so the child may use malloc and stdio
 * between fork and execve.
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "util.h"

/* ---- environment ---------------------------------------------------------- */

static const char *const base_env[] = {
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "HOME=/home/user",
    "USER=user",
    "LOGNAME=user",
    "SHELL=/bin/bash",
    "LANG=C.UTF-8",
    "MPLBACKEND=Agg",            /* no display: matplotlib must not look for one */
    "OPENBLAS_NUM_THREADS=1",    /* threads count against pids.max; one per CPU */
    "OMP_NUM_THREADS=1",         /* would exhaust small sandboxes */
    "MKL_NUM_THREADS=1",
    "PYTHONDONTWRITEBYTECODE=1", /* read-only /usr; no stray __pycache__ in /home */
    "TERM=dumb",
};

#define ENV_MAX_VARS 1024

void strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static bool env_key_valid(const char *k)
{
    return *k && !strchr(k, '=');
}

/* Replace the entry for the same key, or append. */
static int env_set(char **env, size_t *n, const char *key, const char *value)
{
    size_t klen = strlen(key);
    char *entry;
    if (asprintf(&entry, "%s=%s", key, value) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < *n; i++) {
        if (strncmp(env[i], key, klen) == 0 && env[i][klen] == '=') {
            free(env[i]);
            env[i] = entry;
            return 0;
        }
    }
    env[(*n)++] = entry;
    return 0;
}

char **proc_build_env(json_t *extra, char *err, size_t errlen)
{
    if (extra && !json_is_null(extra) && !json_is_object(extra)) {
        snprintf(err, errlen, "env must be an object of strings");
        return NULL;
    }
    size_t nextra = json_is_object(extra) ? json_object_size(extra) : 0;
    if (nextra > ENV_MAX_VARS) {
        snprintf(err, errlen, "env has more than %d variables", ENV_MAX_VARS);
        return NULL;
    }
    cleanup_strv char **env = calloc(ARRAY_SIZE(base_env) + nextra + 1, sizeof(char *));
    if (!env) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(base_env); i++) {
        env[n] = strdup(base_env[i]);
        if (!env[n]) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        n++;
    }
    const char *key;
    json_t *val;
    json_object_foreach(extra, key, val) {
        if (!json_is_string(val)) {
            snprintf(err, errlen, "env value of %.100s must be a string", key);
            return NULL;
        }
        if (!env_key_valid(key)) {
            snprintf(err, errlen, "env name \"%.100s\" is empty or contains '='", key);
            return NULL;
        }
        if (env_set(env, &n, key, json_string_value(val)) < 0) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
    }
    return steal_ptr(&env);
}

/* ---- the child ------------------------------------------------------------ */

/* What the child sends through the error pipe before it exits; a zygote
 * child (zygote/spawn.c) also sends one with err 0 and its pid when it is
 * ready, since it never execs and so never closes the pipe by exec. */
struct child_report {
    int err;
    bool at_exec;
    pid_t pid;
    char msg[500];
};

static __attribute__((noreturn)) void child_fail(int errfd, int err, bool at_exec, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void child_fail(int errfd, int err, bool at_exec, const char *fmt, ...)
{
    struct child_report rep = {.err = err, .at_exec = at_exec};
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(rep.msg, sizeof(rep.msg), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(rep.msg))
        snprintf(rep.msg + n, sizeof(rep.msg) - (size_t)n, ": %s", strerror(err));
    (void)write_all(errfd, &rep, sizeof(rep));
    _exit(127);
}

/* Put stdin/stdout/stderr and the extras at 0, 1, 2, 3.. and the error pipe
 * right after them; close everything else. Sources are first copied above
 * the target range so that a source sitting on a target number is not
 * overwritten before it is moved. Returns the error pipe's new number. */
static int child_setup_fds(const struct spawn_spec *s, int errfd)
{
    int nt = 3 + s->n_extra;
    int src[3 + 8];
    src[0] = s->stdin_fd;
    src[1] = s->stdout_fd;
    src[2] = s->stderr_fd;
    for (int i = 0; i < s->n_extra; i++)
        src[3 + i] = s->extra_fds[i];

    int errtmp = fcntl(errfd, F_DUPFD_CLOEXEC, nt + 1);
    if (errtmp < 0)
        child_fail(errfd, errno, false, "dup error pipe");
    errfd = errtmp;
    for (int i = 0; i < nt; i++) {
        src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, nt + 1);
        if (src[i] < 0)
            child_fail(errfd, errno, false, "dup fd for %d", i);
    }
    for (int i = 0; i < nt; i++)
        if (dup2(src[i], i) < 0) /* dup2 clears CLOEXEC on the target */
            child_fail(errfd, errno, false, "dup2 fd %d", i);
    if (dup3(errfd, nt, O_CLOEXEC) < 0)
        child_fail(errfd, errno, false, "dup3 error pipe");
    errfd = nt;
    if (close_range((unsigned)nt + 1, ~0U, 0) < 0)
        child_fail(errfd, errno, false, "close_range %d..", nt + 1);
    return errfd;
}

static void child_reset_signals(int errfd)
{
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        child_fail(errfd, errno, false, "sigprocmask");
    for (int sig = 1; sig < NSIG; sig++)
        (void)signal(sig, SIG_DFL); /* SIGKILL/SIGSTOP and RT gaps fail harmlessly */
}

static void child_set_oom_score(int errfd)
{
    int r = write_file("/proc/self/oom_score_adj", "1000");
    if (r < 0)
        child_fail(errfd, -r, false, "write /proc/self/oom_score_adj 1000");
}

static void child_chdir(int errfd, const char *cwd)
{
    if (!cwd)
        cwd = "/home/user";
    /* an exec's cwd was checked to exist (job.c); one removed since is an
     * error too, never a silent run in /. Only the default may be missing:
     * an agent outside a jail (tests/agent) has no /home/user. */
    if (chdir(cwd) == 0)
        return;
    if (errno != ENOENT || strcmp(cwd, "/home/user") != 0)
        child_fail(errfd, errno, false, "chdir %s", cwd);
    if (chdir("/") < 0)
        child_fail(errfd, errno, false, "chdir /");
}

static void child_set_rlimits(int errfd, const struct spawn_policy *policy)
{
    static const struct {
        int res;
        const char *name;
        rlim_t value;
    } limits[] = {
        {RLIMIT_CORE, "RLIMIT_CORE", 0},                 /* no core files filling tmpfs */
        {RLIMIT_NOFILE, "RLIMIT_NOFILE", 1024},          /* the usual default; x pids.max (512) = the sandbox's share of fs.file-max */
        {RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK", 64u << 10},   /* mlock cannot pin sandbox memory */
        {RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE", 800u << 10}, /* the kernel default, made explicit */
    };
    for (size_t i = 0; i < ARRAY_SIZE(limits); i++) {
        struct rlimit rl = {limits[i].value, limits[i].value};
        if (setrlimit(limits[i].res, &rl) < 0)
            child_fail(errfd, errno, false, "setrlimit %s %llu", limits[i].name, (unsigned long long)limits[i].value);
    }
    /* in a vm guest, the pids cgroup of the jail: every user process runs
     * as uid 1000, and RLIMIT_NPROC counts that uid's processes and threads */
    struct rlimit np = {policy->nproc_limit, policy->nproc_limit};
    if (policy->nproc_limit && setrlimit(RLIMIT_NPROC, &np) < 0)
        child_fail(errfd, errno, false, "setrlimit RLIMIT_NPROC %llu", (unsigned long long)policy->nproc_limit);
    struct rlimit data = {policy->data_limit, policy->data_limit};
    if (setrlimit(RLIMIT_DATA, &data) < 0)
        child_fail(errfd, errno, false, "setrlimit RLIMIT_DATA %llu", (unsigned long long)policy->data_limit);
}

static void child_drop_bounding_set(int errfd)
{
    for (int cap = 0; cap <= 63; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break; /* past the kernel's last capability */
            child_fail(errfd, errno, false, "prctl PR_CAPBSET_DROP %d", cap);
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        child_fail(errfd, errno, false, "prctl PR_CAP_AMBIENT_CLEAR_ALL");
}

static void child_set_ids(int errfd)
{
    gid_t groups[1] = {AGENT_USER_GID};
    /* EPERM: the user namespace was created with setgroups=deny, so the
     * supplementary groups are fixed by whoever created it (the jail). */
    if (setgroups(1, groups) < 0 && errno != EPERM)
        child_fail(errfd, errno, false, "setgroups %d", AGENT_USER_GID);
    if (setresgid(AGENT_USER_GID, AGENT_USER_GID, AGENT_USER_GID) < 0)
        child_fail(errfd, errno, false, "setresgid %d", AGENT_USER_GID);
    if (setresuid(AGENT_USER_UID, AGENT_USER_UID, AGENT_USER_UID) < 0)
        child_fail(errfd, errno, false, "setresuid %d", AGENT_USER_UID);
    /* The uid change set dumpability from fs.suid_dumpable, which a host
     * may have at 1: uid 1000 elsewhere in the sandbox could then ptrace us
     * before seccomp and Landlock. Not dumpable until the execve (which
     * makes an exec'd child dumpable again) or, for a REPL forked by the
     * zygote, until it is confined (src/zygote/spawn.c). */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        child_fail(errfd, errno, false, "prctl PR_SET_DUMPABLE 0");
}

/* setresuid away from 0 already cleared the permitted and effective sets;
 * clear the inheritable set too, then read everything back. */
static void child_clear_caps(int errfd)
{
    cap_t empty = cap_init();
    if (!empty)
        child_fail(errfd, errno, false, "cap_init");
    if (cap_set_proc(empty) < 0)
        child_fail(errfd, errno, false, "capset empty");
    cap_t now = cap_get_proc();
    if (!now)
        child_fail(errfd, errno, false, "capget");
    if (cap_compare(now, empty) != 0)
        child_fail(errfd, EPERM, false, "capget: capabilities remain after the drop");
    if (prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0)
        child_fail(errfd, EPERM, false, "prctl PR_CAPBSET_READ: bounding set not empty");
    cap_free(now);
    cap_free(empty);
}

static const char *env_get(char *const *envp, const char *key)
{
    size_t klen = strlen(key);
    for (char *const *p = envp; *p; p++)
        if (strncmp(*p, key, klen) == 0 && (*p)[klen] == '=')
            return *p + klen + 1;
    return NULL;
}

/* execvp semantics with the PATH of the child's own environment (glibc's
 * execvpe searches the caller's PATH instead). Returns only on failure. */
static void child_exec(int errfd, char *const *argv, char *const *envp)
{
    const char *file = argv[0];
    if (strchr(file, '/')) {
        execve(file, argv, envp);
        child_fail(errfd, errno, true, "execve %s", file);
    }
    const char *path = env_get(envp, "PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    int saved = ENOENT;
    while (*path) {
        const char *end = strchrnul(path, ':');
        char full[PATH_MAX];
        int n = snprintf(full, sizeof(full), "%.*s%s%s", (int)(end - path), path, end == path ? "" : "/", file);
        if (n > 0 && (size_t)n < sizeof(full)) {
            execve(full, argv, envp);
            if (errno == EACCES)
                saved = EACCES; /* keep looking, but report EACCES over ENOENT */
            else if (errno != ENOENT && errno != ENOTDIR)
                child_fail(errfd, errno, true, "execve %s", full);
        }
        path = *end ? end + 1 : end;
    }
    child_fail(errfd, saved, true, "execve %s", file);
}

/* Landlock for a process that is not the agent's descendant (the zygote's
 * REPL): the same ruleset the agent put itself under (landlock.c). After
 * no_new_privs, which landlock_restrict_self needs from a process without
 * CAP_SYS_ADMIN. Unavailable is tolerated as the agent tolerates it. */
static void child_landlock(int errfd, const char *root)
{
    char msg[400];
    int r = landlock_confine(root, false, msg, sizeof(msg));
    if (r < 0)
        child_fail(errfd, -r, false, "landlock (%s)", msg);
}

int proc_child_confine(const struct spawn_spec *s, int errfd)
{
    if (setsid() < 0)
        child_fail(errfd, errno, false, "setsid");
    if (s->subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        child_fail(errfd, errno, false, "prctl PR_SET_CHILD_SUBREAPER");
    errfd = child_setup_fds(s, errfd);
    /* a pty's slave at 0..2 becomes the new session's controlling
     * terminal: job control, SIGWINCH on resize, ^C as SIGINT */
    if (s->ctty && ioctl(0, TIOCSCTTY, 0) < 0)
        child_fail(errfd, errno, false, "ioctl TIOCSCTTY");
    child_reset_signals(errfd);
    child_set_oom_score(errfd);
    child_chdir(errfd, s->cwd);
    child_set_rlimits(errfd, s->policy);
    child_drop_bounding_set(errfd);
    child_set_ids(errfd);
    child_clear_caps(errfd);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        child_fail(errfd, errno, false, "prctl PR_SET_NO_NEW_PRIVS");
    if (s->landlock_root)
        child_landlock(errfd, s->landlock_root);
    /* seccomp(2), not prctl: only it takes flags, and FLAG_LOG sends every
     * refused call to the audit log (seccomp.c) */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG, &s->policy->filter) < 0)
        child_fail(errfd, errno, false, "seccomp SECCOMP_SET_MODE_FILTER (FLAG_LOG)");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &s->policy->quiet) < 0)
        child_fail(errfd, errno, false, "seccomp SECCOMP_SET_MODE_FILTER (quiet rules)");
    return errfd;
}

static __attribute__((noreturn)) void child_run(const struct spawn_spec *s, int errfd)
{
    errfd = proc_child_confine(s, errfd);
    child_exec(errfd, s->argv, s->envp);
    _exit(127); /* not reached */
}

void proc_child_ready(int errfd)
{
    struct child_report rep = {.err = 0, .pid = getpid()};
    /* the reader gave up (timeout) or died: nobody will talk to us */
    if (write_all(errfd, &rep, sizeof(rep)) < 0)
        _exit(127);
    close(errfd);
}

void proc_report_failure(int errfd, int err, const char *msg)
{
    struct child_report rep = {.err = err > 0 ? err : EIO};
    snprintf(rep.msg, sizeof(rep.msg), "%s", msg);
    (void)write_all(errfd, &rep, sizeof(rep));
}

__attribute__((noreturn)) void proc_child_fail(int errfd, int err, const char *what)
{
    child_fail(errfd, err, false, "%s", what);
}

int proc_await_ready(int rd, int timeout_ms, pid_t *pid_out, struct spawn_error *e)
{
    memset(e, 0, sizeof(*e));
    struct child_report rep;
    size_t got = 0;
    uint64_t deadline = now_mono_ms() + (uint64_t)timeout_ms;
    while (got < sizeof(rep)) {
        uint64_t now = now_mono_ms();
        if (now >= deadline) {
            snprintf(e->msg, sizeof(e->msg), "no answer within %d ms", timeout_ms);
            return e->err = -ETIMEDOUT;
        }
        struct pollfd pfd = {.fd = rd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e->err = -errno;
            snprintf(e->msg, sizeof(e->msg), "poll: %s", strerror(errno));
            return e->err;
        }
        if (n == 0)
            continue;
        ssize_t k = read(rd, (char *)&rep + got, sizeof(rep) - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            e->err = k < 0 ? -errno : -EPIPE;
            snprintf(e->msg, sizeof(e->msg), "%s", k < 0 ? strerror(errno) : "closed without an answer");
            return e->err;
        }
        got += (size_t)k;
    }
    if (rep.err != 0) {
        rep.msg[sizeof(rep.msg) - 1] = '\0';
        snprintf(e->msg, sizeof(e->msg), "%s", rep.msg);
        return e->err = rep.err > 0 ? -rep.err : -EIO;
    }
    if (rep.pid <= 1) {
        snprintf(e->msg, sizeof(e->msg), "ready report with pid %d", (int)rep.pid);
        return e->err = -EPROTO;
    }
    *pid_out = rep.pid;
    return 0;
}

/* ---- the parent ----------------------------------------------------------- */

int proc_spawn(const struct spawn_spec *spec, pid_t *pid_out, struct spawn_error *e)
{
    memset(e, 0, sizeof(*e));
    if (spec->n_extra < 0 || spec->n_extra > 8) {
        snprintf(e->msg, sizeof(e->msg), "too many extra fds");
        return e->err = -EINVAL;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        e->err = -errno;
        snprintf(e->msg, sizeof(e->msg), "pipe2: %s", strerror(errno));
        return e->err;
    }
    cleanup_fd int rd = pipefd[0];
    cleanup_fd int wr = pipefd[1];

    pid_t pid = fork();
    if (pid < 0) {
        e->err = -errno;
        snprintf(e->msg, sizeof(e->msg), "fork: %s", strerror(errno));
        return e->err;
    }
    if (pid == 0)
        child_run(spec, wr);

    close(steal_fd(&wr));
    /* Blocks until the child execs (EOF) or reports a failure; both happen
     * after a bounded amount of work in the child. */
    struct child_report rep;
    int r = read_exact(rd, &rep, sizeof(rep));
    if (r == -EPIPE) {
        *pid_out = pid;
        return 0;
    }
    /* the child failed (or we could not tell): collect it here, the loop
     * never learns about this pid */
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (r < 0) {
        e->err = r;
        snprintf(e->msg, sizeof(e->msg), "read child status: %s", strerror(-r));
        return r;
    }
    rep.msg[sizeof(rep.msg) - 1] = '\0';
    snprintf(e->msg, sizeof(e->msg), "%s", rep.msg);
    e->at_exec = rep.at_exec;
    e->err = rep.err > 0 ? -rep.err : -EIO;
    return e->err;
}

/* proc_resolve_cwd: an exec's or a context's working directory, made absolute and normalised by the file
 * API's own rule (src/common/path.c: relative to /home/user, no NUL); one
 * that does not exist is the caller's error, never a silent run somewhere
 * else. out holds PATH_NORM_MAX bytes. */
int proc_resolve_cwd(json_t *jcwd, char *out, char *err, size_t errlen)
{
    if (!json_is_string(jcwd) || json_string_length(jcwd) == 0) {
        snprintf(out, PATH_NORM_MAX, "/home/user");
        return 0; /* the default: proc.c's chdir says why it is not checked */
    }
    const char *msg;
    if (path_normalize(json_string_value(jcwd), json_string_length(jcwd), out, &msg) < 0) {
        snprintf(err, errlen, "cwd: %s", msg);
        return -EINVAL;
    }
    struct stat st;
    if (stat(out, &st) < 0) {
        int e = errno;
        snprintf(err, errlen, "cwd %s: %s", out, strerror(e));
        return -e;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cwd %s: Not a directory", out);
        return -ENOTDIR;
    }
    return 0;
}
