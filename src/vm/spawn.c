/* spawn.c - the jailed VMM, as Firecracker's jailer does it.
 *
 * QEMU parses what the guest sends it (virtio rings, the serial stream), so
 * it is attack surface, and it runs with as little as the jail gives user
 * code:
 *
 *   namespaces  new mount, pid (QEMU is its PID 1), network (empty: no
 *               interface but a down lo), ipc, uts and cgroup
 *   files       a read-only tmpfs root with the host's /usr bound read-only
 *               (QEMU's libraries and firmware), /dev with null, zero,
 *               urandom (and kvm under KVM), its own /proc; the kernel,
 *               initramfs and root image arrive as fds (vm.c opened them),
 *               so no path of the state directory is visible
 *   ids         its own host uid and gid (VM_UID_BASE + slot), no
 *               supplementary groups: the uid change from root clears every
 *               capability, and no_new_privs keeps them cleared
 *   filters     QEMU's own seccomp filter (-sandbox on,..., qemu.c)
 *   cgroup      its own (the jail's cgroup code, cgroup.c), limited to guest
 *               RAM plus VM_OVERHEAD_BYTES with no swap, the sandbox's CPU
 *               and a pids cap
 *   lifetime    PR_SET_PDEATHSIG(SIGKILL), set after the uid change (which
 *               clears it). That signal fires when the *thread* that made
 *               the child exits, and the daemon's HTTP threads come and go:
 *               so every VMM is made by one thread that lives as long as the
 *               daemon (struct vm_spawner), and a daemon killed with -9
 *               takes its VMMs with it. Whatever survives anyway (a crash
 *               between clone and prctl) sits in a cgroup the next start
 *               kills (vm.c, cgroup_recover).
 *
 * The child is a fork (no CLONE_VM) of a multi-threaded daemon: from the
 * clone to the exec it makes raw system calls on memory prepared before the
 * clone, and reports a failure as one struct jail_child_error on a pipe.
 */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define STAGING "/tmp" /* of the child's own mount namespace, as in the jail */

/* ---- the child ---------------------------------------------------------- */

struct child_args {
    const struct vm_spawn_req *req;
    int release_rd, release_wr, err_wr;
};

static int fail(const struct child_args *a, const char *op, const char *path, int err)
{
    struct jail_child_error e;
    memset(&e, 0, sizeof(e));
    child_fail(&e, op, path, err);
    (void)!write(a->err_wr, &e, sizeof(e));
    _exit(127);
}

static void bind_node(const struct child_args *a, const char *host, const char *rel)
{
    int fd = open(rel, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0)
        fail(a, "create", rel, errno);
    close(fd);
    if (mount(host, rel, NULL, MS_BIND, NULL) < 0)
        fail(a, "bind mount", host, errno);
}

static void build_root(const struct child_args *a)
{
    static const char *const links[][2] = {{"usr/bin", "bin"}, {"usr/lib", "lib"}, {"usr/lib64", "lib64"},
                                           {"usr/sbin", "sbin"}};
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail(a, "make mounts private", "/", errno);
    if (mount("tmpfs", STAGING, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") < 0)
        fail(a, "mount tmpfs", STAGING, errno);
    if (chdir(STAGING) < 0)
        fail(a, "chdir", STAGING, errno);
    if (mkdir("usr", 0755) < 0 || mkdir("dev", 0755) < 0 || mkdir("proc", 0555) < 0)
        fail(a, "mkdir", "/", errno);
    if (mount("/usr", "usr", NULL, MS_BIND | MS_REC, NULL) < 0)
        fail(a, "bind mount", "/usr", errno);
    if (mount(NULL, "usr", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        fail(a, "remount ro", "/usr", errno);
    for (size_t i = 0; i < ARRAY_SIZE(links); i++)
        if (symlink(links[i][0], links[i][1]) < 0)
            fail(a, "symlink", links[i][1], errno);
    /* /dev is a tmpfs of its own that allows device nodes (the root's
     * does not): the host's /dev/kvm is root's alone (0600 here), so the
     * VMM gets a node of its own, owned by its uid, as Firecracker's
     * jailer makes one, instead of a wider mode on the host's */
    if (mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=16k") < 0)
        fail(a, "mount tmpfs", "/dev", errno);
    bind_node(a, "/dev/null", "dev/null");
    bind_node(a, "/dev/zero", "dev/zero");
    bind_node(a, "/dev/urandom", "dev/urandom");
    if (a->req->kvm) {
        if (mknod("dev/kvm", S_IFCHR | 0600, a->req->kvm_rdev) < 0)
            fail(a, "mknod", "/dev/kvm", errno);
        if (chown("dev/kvm", a->req->uid, a->req->uid) < 0)
            fail(a, "chown", "/dev/kvm", errno);
    }
    if (mount(NULL, "dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, "size=16k") < 0)
        fail(a, "remount ro", "/dev", errno);
    /* a fresh proc of the new pid namespace: QEMU reads its own fds there */
    if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        fail(a, "mount proc", "/proc", errno);
    if (mount(NULL, ".", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        fail(a, "remount ro", "/", errno);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        fail(a, "pivot_root", STAGING, errno);
    if (umount2(".", MNT_DETACH) < 0)
        fail(a, "umount old root", "/", errno);
    if (chdir("/") < 0)
        fail(a, "chdir", "/", errno);
}

/* The request's fds to 3..8, everything else closed. Two passes, so a
 * source already sitting on a target number is not overwritten. */
static void place_fds(const struct child_args *a, int *err_wr)
{
    int moved[VM_NFDS];
    for (int i = 0; i < VM_NFDS; i++) {
        moved[i] = a->req->fds[i] < 0 ? -1 : fcntl(a->req->fds[i], F_DUPFD_CLOEXEC, 64);
        if (a->req->fds[i] >= 0 && moved[i] < 0)
            fail(a, "fcntl F_DUPFD_CLOEXEC", "", errno);
    }
    int e = fcntl(*err_wr, F_DUPFD_CLOEXEC, 64 + VM_NFDS);
    if (e < 0)
        fail(a, "fcntl F_DUPFD_CLOEXEC", "error pipe", errno);
    *err_wr = e;
    /* stdin from /dev/null, stdout and stderr to the daemon's pipe */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0)
        fail(a, "open", "/dev/null", errno);
    if (a->req->stderr_fd >= 0 && (dup2(a->req->stderr_fd, 1) < 0 || dup2(a->req->stderr_fd, 2) < 0))
        fail(a, "dup2", "stderr", errno);
    for (int i = 0; i < VM_NFDS; i++) {
        if (moved[i] < 0)
            (void)close(VM_FD_AGENT + i); /* a daemon fd that happened to sit there */
        else if (dup2(moved[i], VM_FD_AGENT + i) < 0) /* dup2 clears CLOEXEC: these survive exec */
            fail(a, "dup2", "", errno);
    }
    /* the moved copies and everything else are CLOEXEC from here */
    if (syscall(SYS_close_range, (unsigned)(VM_FD_AGENT + VM_NFDS), ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        fail(a, "close_range", "", errno);
}

static void drop_ids(const struct child_args *a)
{
    uid_t id = a->req->uid;
    /* raw calls: glibc's wrappers would signal threads this fork lacks */
    if (syscall(SYS_setgroups, 0, NULL) < 0)
        fail(a, "setgroups", "", errno);
    if (syscall(SYS_setresgid, id, id, id) < 0)
        fail(a, "setresgid", "", errno);
    if (syscall(SYS_setresuid, id, id, id) < 0)
        fail(a, "setresuid", "", errno);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail(a, "prctl", "PR_SET_NO_NEW_PRIVS", errno);
    /* last: a credential change clears it */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        fail(a, "prctl", "PR_SET_PDEATHSIG", errno);
}

static void child_main(struct child_args *a)
{
    child_reset_signals();
    (void)close(a->release_wr);
    char c;
    ssize_t n;
    while ((n = read(a->release_rd, &c, 1)) < 0 && errno == EINTR)
        ;
    if (n != 1)
        _exit(0); /* the parent gave up (or died): leave quietly */
    /* after the parent moved us: our cgroup is the root we can see */
    if (unshare(CLONE_NEWCGROUP) < 0)
        fail(a, "unshare", "CLONE_NEWCGROUP", errno);
    if (sethostname("vmm", 3) < 0)
        fail(a, "sethostname", "vmm", errno);
    build_root(a);
    place_fds(a, &a->err_wr);
    drop_ids(a);
    static char *const envp[] = {"PATH=/usr/bin", "LANG=C.UTF-8", NULL};
    execve(VM_QEMU, a->req->argv, envp);
    fail(a, "execve", VM_QEMU, errno);
}

/* ---- the parent ------------------------------------------------------------ */

/* The child's report: 0 when the pipe closed at exec, else its record. */
static int read_report(int fd, pid_t pid, char *err, size_t errlen)
{
    struct jail_child_error e;
    size_t got = 0;
    while (got < sizeof(e)) {
        ssize_t n = read(fd, (char *)&e + got, sizeof(e) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == 0)
        return 0;
    if (got < sizeof(e))
        return jail_err(err, errlen, -EIO, "vmm %d: short error report", (int)pid);
    e.op[sizeof(e.op) - 1] = '\0';
    e.path[sizeof(e.path) - 1] = '\0';
    return jail_err(err, errlen, -e.err, "vmm: %s%s%s", e.op, e.path[0] ? " " : "", e.path);
}

static void reap(pid_t pid, int pidfd)
{
    if (pidfd >= 0)
        (void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
        ;
}

static int spawn_now(struct vm_spawn_req *req, char *err, size_t errlen)
{
    int rel[2] = {-1, -1}, rep[2] = {-1, -1};
    if (pipe2(rel, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
        int r = jail_err(err, errlen, -errno, "pipe2");
        close_fd(&rel[0]), close_fd(&rel[1]);
        return r;
    }
    int r = cgroup_create(req->cg, req->cg_id, &req->lim, err, errlen);
    if (r < 0)
        goto out;
    struct child_args a = {.req = req, .release_rd = rel[0], .release_wr = rel[1], .err_wr = rep[1]};
    int pidfd = -1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    long pid = syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                                      CLONE_PIDFD | SIGCHLD,
                       0, &pidfd, 0, 0);
    if (pid == 0)
        child_main(&a); /* never returns */
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        r = jail_err(err, errlen, -saved, "clone the vmm");
        (void)cgroup_destroy(req->cg, req->cg_id);
        goto out;
    }
    close_fd(&rel[0]);
    close_fd(&rep[1]);
    if ((r = cgroup_add_pid(req->cg, req->cg_id, (pid_t)pid, err, errlen)) < 0 ||
        (write(rel[1], "g", 1) != 1 && (r = jail_err(err, errlen, -errno, "release the vmm")) < 0) ||
        (r = read_report(rep[0], (pid_t)pid, err, errlen)) < 0) {
        close_fd(&rel[1]); /* EOF: a child still waiting leaves */
        reap((pid_t)pid, pidfd);
        if (pidfd >= 0)
            close(pidfd);
        (void)cgroup_destroy(req->cg, req->cg_id);
        goto out;
    }
    req->pid = (pid_t)pid;
    req->pidfd = pidfd;
    r = 0;
out:
    close_fd(&rel[0]), close_fd(&rel[1]), close_fd(&rep[0]), close_fd(&rep[1]);
    return r;
}

/* ---- the thread they are made from ---------------------------------------- */

struct spawn_job {
    struct vm_spawn_req *req;
    char *err;
    size_t errlen;
    int result;
    bool done;
    struct spawn_job *next;
};

struct vm_spawner {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake, finished;
    struct spawn_job *head, *tail;
    bool stop;
};

static void *spawner_main(void *arg)
{
    struct vm_spawner *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->head && !s->stop)
            pthread_cond_wait(&s->wake, &s->lock);
        if (!s->head)
            break;
        struct spawn_job *j = s->head;
        s->head = j->next;
        if (!s->head)
            s->tail = NULL;
        pthread_mutex_unlock(&s->lock);
        j->result = spawn_now(j->req, j->err, j->errlen);
        pthread_mutex_lock(&s->lock);
        j->done = true;
        pthread_cond_broadcast(&s->finished);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int vm_spawner_start(struct vm_spawner **out, char *err, size_t errlen)
{
    struct vm_spawner *s = calloc(1, sizeof(*s));
    if (!s)
        return jail_err(err, errlen, -ENOMEM, "vm spawner");
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->finished, NULL);
    int r = pthread_create(&s->thread, NULL, spawner_main, s);
    if (r != 0) {
        free(s);
        return jail_err(err, errlen, -r, "start the vm spawner thread");
    }
    *out = s;
    return 0;
}

void vm_spawner_stop(struct vm_spawner *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->finished);
    free(s);
}

int vm_spawn(struct vm_spawner *s, struct vm_spawn_req *req, char *err, size_t errlen)
{
    struct spawn_job j = {.req = req, .err = err, .errlen = errlen};
    pthread_mutex_lock(&s->lock);
    if (s->stop) {
        pthread_mutex_unlock(&s->lock);
        return jail_err(err, errlen, -ESHUTDOWN, "vm spawner stopped");
    }
    if (s->tail)
        s->tail->next = &j;
    else
        s->head = &j;
    s->tail = &j;
    pthread_cond_signal(&s->wake);
    while (!j.done)
        pthread_cond_wait(&s->finished, &s->lock);
    pthread_mutex_unlock(&s->lock);
    return j.result;
}
