/* zygote.c - the daemon's side of airlock-zygote (src/zygote/).
 *
 * One zygote per daemon, for sandboxes of the host template (its imports
 * come from the host's /usr, which is what those sandboxes see). A
 * supervisor thread starts it, waits for its "ready" (after the warm-up
 * imports: creates never wait for them), notices its exit through a pidfd
 * and starts a new one after a backoff. Until it is ready, and whenever it
 * is gone, sandboxes simply get no zygote socket and their agents exec the
 * runner as before.
 *
 * Per sandbox: jail.c asks for a channel before the clone (a SOCK_SEQPACKET
 * pair; the agent inherits one end as fd 4), and registers the other end
 * with the zygote once the agent runs, together with the agent's pidfd and
 * the sandbox's cgroup directories (O_PATH fds). That registration is the only place
 * the zygote learns which namespaces and cgroups a socket stands for; the
 * agent can only ask it to "spawn" on its own socket. Sends never block: a
 * zygote that does not drain its queue costs the sandbox its warm REPL,
 * not the create its latency.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jail.h"
#include "log.h"
#include "util.h"
#include "zygote_proto.h"

_Static_assert(ZYG_REGISTER_FDS(ZYG_MAX_CGROUPS) <= SEND_FDS_MAX, "send_with_fds carries at most SEND_FDS_MAX descriptors");

#define ZYGOTE_BACKOFF_MIN_MS 500
#define ZYGOTE_BACKOFF_MAX_MS 60000
#define ZYGOTE_STABLE_MS 10000 /* lived this long: the next restart is quick again */

struct jail_zygote {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* fd became ready, or the first start failed */
    bool settled;           /* the first start is over, either way */
    int fd;      /* our end to a ready zygote, -1 otherwise (under lock) */
    pid_t pid;   /* the running zygote, 0 if none (under lock) */
    unsigned long starts;

    char *argv[10];
    int stop_efd;
    pthread_t thread;
};

/* Child of a multi-threaded process: raw syscalls only until execve. */
static void __attribute__((noreturn)) zygote_child(int fd, char *const *argv)
{
    child_reset_signals();
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0)
        _exit(127);
    if (fd == 3) {
        if (fcntl(3, F_SETFD, 0) < 0)
            _exit(127);
    } else if (dup2(fd, 3) < 0) {
        _exit(127);
    }
    /* stdout/stderr stay the daemon's: the zygote logs where it does */
    if (syscall(SYS_close_range, 4U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        _exit(127);
    static char *const envp[] = {NULL};
    execve(argv[0], argv, envp);
    _exit(127);
}

/* Start the process: our end of its socket and its pidfd, or -errno. */
static int zygote_launch(struct jail_zygote *z, int *fd_out, int *pidfd_out, pid_t *pid_out)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int pidfd = -1;
    long pid = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &pidfd, 0, 0);
    if (pid == 0)
        zygote_child(sv[1], z->argv);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return -e;
    }
    *fd_out = sv[0];
    *pidfd_out = pidfd;
    *pid_out = (pid_t)pid;
    return 0;
}

/* Wait for the ready message, the zygote's exit, or stop. Returns 1 ready,
 * 0 exited (reaped, status in *st), -1 stop requested. */
static int zygote_wait(struct jail_zygote *z, int fd, int pidfd, pid_t pid, bool want_ready, int *st)
{
    for (;;) {
        struct pollfd p[3] = {{.fd = pidfd, .events = POLLIN}, {.fd = z->stop_efd, .events = POLLIN},
                              {.fd = want_ready ? fd : -1, .events = POLLIN}};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("zygote: poll: %s", strerror(errno));
            return -1;
        }
        if (p[1].revents)
            return -1;
        if (p[0].revents) {
            while (waitpid(pid, st, __WALL) < 0 && errno == EINTR)
                ;
            return 0;
        }
        if (p[2].revents) {
            struct zyg_ready r;
            ssize_t n = recv(fd, &r, sizeof(r), MSG_DONTWAIT);
            if (n == (ssize_t)sizeof(r) && r.magic == ZYG_MAGIC_READY)
                return 1;
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            /* EOF or garbage before ready: it is dying; wait for the exit */
            want_ready = false;
        }
    }
}

static void *zygote_supervise(void *arg)
{
    struct jail_zygote *z = arg;
    unsigned backoff = ZYGOTE_BACKOFF_MIN_MS;
    for (;;) {
        int fd = -1, pidfd = -1;
        pid_t pid = 0;
        int r = zygote_launch(z, &fd, &pidfd, &pid);
        uint64_t started = now_mono_ms();
        int st = 0;
        int w;
        if (r < 0) {
            log_error("zygote: start %s: %s; REPLs are exec'd", z->argv[0], strerror(-r));
            w = 0;
        } else {
            pthread_mutex_lock(&z->lock);
            z->pid = pid;
            z->starts++;
            pthread_mutex_unlock(&z->lock);
            w = zygote_wait(z, fd, pidfd, pid, true, &st);
            if (w == 1) {
                log_info("zygote: pid %d ready after %llu ms; REPLs of host-template sandboxes are forked from it",
                         (int)pid, (unsigned long long)(now_mono_ms() - started));
                pthread_mutex_lock(&z->lock);
                z->fd = fd;
                z->settled = true;
                pthread_cond_broadcast(&z->changed);
                pthread_mutex_unlock(&z->lock);
                w = zygote_wait(z, fd, pidfd, pid, false, &st);
            }
            pthread_mutex_lock(&z->lock);
            if (z->fd == fd)
                z->fd = -1;
            z->pid = 0;
            pthread_mutex_unlock(&z->lock);
            close(fd);
            if (w < 0) { /* stop: kill it and collect it */
                (void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
                while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR)
                    ;
                close(pidfd);
                return NULL;
            }
            close(pidfd);
            if (WIFEXITED(st))
                log_warn("zygote: pid %d exited with status %d; REPLs are exec'd until it is back", (int)pid,
                         WEXITSTATUS(st));
            else
                log_warn("zygote: pid %d killed by signal %d; REPLs are exec'd until it is back", (int)pid,
                         WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        }
        pthread_mutex_lock(&z->lock);
        z->settled = true;
        pthread_cond_broadcast(&z->changed);
        pthread_mutex_unlock(&z->lock);
        if (now_mono_ms() - started >= ZYGOTE_STABLE_MS)
            backoff = ZYGOTE_BACKOFF_MIN_MS;
        log_info("zygote: restarting in %u ms", backoff);
        struct pollfd p = {.fd = z->stop_efd, .events = POLLIN};
        int n;
        while ((n = poll(&p, 1, (int)backoff)) < 0 && errno == EINTR)
            ;
        if (n > 0)
            return NULL;
        backoff = backoff * 2 > ZYGOTE_BACKOFF_MAX_MS ? ZYGOTE_BACKOFF_MAX_MS : backoff * 2;
    }
}

int jail_zygote_start(struct jail_zygote **out, const char *path, const char *runner, const char *warmup,
                      char *err, size_t errlen)
{
    if (access(path, X_OK) < 0)
        return jail_err(err, errlen, -errno, "zygote binary %s", path);
    struct jail_zygote *z = calloc(1, sizeof(*z));
    if (!z)
        return jail_err(err, errlen, -ENOMEM, "allocate zygote");
    pthread_mutex_init(&z->lock, NULL);
    pthread_cond_init(&z->changed, NULL);
    z->fd = -1;
    int i = 0;
    bool ok = (z->argv[i++] = strdup(path)) && (z->argv[i++] = strdup("--fd")) && (z->argv[i++] = strdup("3")) &&
              (z->argv[i++] = strdup("--runner")) && (z->argv[i++] = strdup(runner));
    if (ok && warmup)
        ok = (z->argv[i++] = strdup("--warmup")) && (z->argv[i++] = strdup(warmup));
    if (ok && log_enabled(LOG_LVL_DEBUG))
        ok = (z->argv[i++] = strdup("--debug")) != NULL;
    z->stop_efd = ok ? eventfd(0, EFD_CLOEXEC) : -1;
    int r = !ok ? -ENOMEM : z->stop_efd < 0 ? -errno : -pthread_create(&z->thread, NULL, zygote_supervise, z);
    if (r < 0) {
        if (z->stop_efd >= 0)
            close(z->stop_efd);
        for (i = 0; z->argv[i]; i++)
            free(z->argv[i]);
        pthread_cond_destroy(&z->changed);
        pthread_mutex_destroy(&z->lock);
        free(z);
        return jail_err(err, errlen, r, "start the zygote supervisor");
    }
    *out = z;
    return 0;
}

void jail_zygote_stop(struct jail_zygote *z)
{
    if (!z)
        return;
    uint64_t one = 1;
    if (write(z->stop_efd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        log_error("zygote: signal the supervisor to stop: %s", strerror(errno));
    pthread_join(z->thread, NULL);
    close(z->stop_efd);
    for (int i = 0; z->argv[i]; i++)
        free(z->argv[i]);
    pthread_cond_destroy(&z->changed);
    pthread_mutex_destroy(&z->lock);
    free(z);
}

bool jail_zygote_wait_ready(struct jail_zygote *z, unsigned timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&z->lock);
    while (!z->settled)
        if (pthread_cond_timedwait(&z->changed, &z->lock, &until) == ETIMEDOUT)
            break;
    bool ready = z->fd >= 0;
    pthread_mutex_unlock(&z->lock);
    return ready;
}

int jail_zygote_channel(struct jail_zygote *z, int *ours, int *agents)
{
    if (!z)
        return -ENOTCONN;
    pthread_mutex_lock(&z->lock);
    bool ready = z->fd >= 0;
    pthread_mutex_unlock(&z->lock);
    if (!ready)
        return -ENOTCONN;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    *ours = sv[0];
    *agents = sv[1];
    return 0;
}

int jail_zygote_register(struct jail_zygote *z, int ours, int pidfd, const struct cgroup_ctx *cg, const char *id)
{
    cleanup_fd int sock = ours;
    struct zyg_register reg = {.magic = ZYG_MAGIC_REGISTER};
    int fds[ZYG_REGISTER_FDS(ZYG_MAX_CGROUPS)] = {sock, pidfd, -1, -1, -1, -1};
    int n = cgroup_count(cg->mode);
    int r = 0;
    /* the directories as O_PATH fds, not their paths: a path names the
     * sandbox, and the zygote's memory is copied into every REPL */
    for (int i = 0; i < n && i < ZYG_MAX_CGROUPS && r == 0; i++) {
        char dir[PATH_MAX];
        r = cgroup_dir(cg, i, id, dir, sizeof(dir));
        if (r >= 0) {
            r = 0;
            int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0) {
                r = -errno;
                log_error("zygote: open %s: %s", dir, strerror(errno));
            }
            fds[2 + reg.ncgroups++] = fd;
        }
    }
    if (r == 0) {
        pthread_mutex_lock(&z->lock);
        if (z->fd < 0)
            r = -ENOTCONN;
        else
            r = send_with_fds(z->fd, &reg, sizeof(reg), fds, ZYG_REGISTER_FDS(reg.ncgroups), MSG_DONTWAIT);
        pthread_mutex_unlock(&z->lock);
    }
    for (uint32_t i = 0; i < reg.ncgroups; i++)
        if (fds[2 + i] >= 0)
            close(fds[2 + i]);
    /* closing our copy either way: on failure the agent's spawn request
     * finds no reader (EPIPE, or EOF on its report pipe) and it execs */
    return r;
}

pid_t jail_zygote_pid(struct jail_zygote *z)
{
    if (!z)
        return 0;
    pthread_mutex_lock(&z->lock);
    pid_t pid = z->fd >= 0 ? z->pid : 0;
    pthread_mutex_unlock(&z->lock);
    return pid;
}
