/* main.c - airlock-zygote: a warm, pre-imported Python that forks REPLs.
 *
 *   airlock-zygote --fd N --runner PATH [--warmup CODE] [--debug]
 *
 * airlockd starts one (src/jail/zygote.c) with fd N one end of a
 * SOCK_SEQPACKET. We:
 *   1. mark the fd close-on-exec, take the user environment every REPL gets
 *      (proc.c's base environment) as our own, and single-thread the BLAS
 *      libraries through it (a fork copies only the calling thread);
 *   2. unshare a network namespace with no interface but a down loopback:
 *      nothing the warm-up imports can reach a network (we are host root);
 *   3. start CPython, import the runner module (without its directory on
 *      sys.path afterwards), run its warm_up() (IPython, the REPL's engine)
 *      and the warm-up code (default: numpy and
 *      pandas when they are importable), then gc.freeze(): the collector
 *      no longer walks, and so writes to, the objects every child shares;
 *   4. tell the daemon we are ready, and serve: registrations from the
 *      daemon (a sandbox's socket, its agent's pidfd and cgroup directories,
 *      all fds, kept in registry.c's table that no REPL gets a copy of),
 *      spawn requests from agents (spawn.c), all in one poll loop, no
 *      threads.
 *
 * We run as host root because joining a sandbox's user namespace needs
 * CAP_SYS_ADMIN over it. Nothing we run comes from a sandbox: agents send
 * only fds and the fixed-size spawn request, and which sandbox a socket
 * stands for comes from the daemon alone. EOF from the daemon ends us.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <linux/magic.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"
#include "zygote.h"
#include "warmup.h"

struct args {
    int fd;
    const char *runner;
    const char *warmup;
    bool debug;
};

static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"fd", required_argument, NULL, 'f'},
        {"runner", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'w'},
        {"debug", no_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': {
            if (parse_fd_arg(optarg, &a->fd) < 0)
                return -EINVAL;
            break;
        }
        case 'r': a->runner = optarg; break;
        case 'w': a->warmup = optarg; break;
        case 'd': a->debug = true; break;
        default: return -EINVAL;
        }
    }
    return optind == argc && a->fd >= 0 && a->runner ? 0 : -EINVAL;
}

/* The REPL's environment, as proc_build_env gives it to an exec'd runner:
 * CPython reads it at start (os.environ, the locale, PYTHONDONTWRITEBYTECODE)
 * and so do the warm-up imports (OPENBLAS_NUM_THREADS=1 and friends). */
static int take_user_environment(void)
{
    char err[128];
    cleanup_strv char **env = proc_build_env(NULL, err, sizeof(err));
    if (!env) {
        log_error("environment: %s", err);
        return -ENOMEM;
    }
    if (clearenv() != 0)
        return -ENOMEM;
    for (char **p = env; *p; p++) {
        char *eq = strchr(*p, '=');
        *eq = '\0';
        if (setenv(*p, eq + 1, 1) < 0)
            return -errno;
    }
    return 0;
}

/* The runner's own warm-up (airlock_runner.warm_up: IPython, its engine),
 * whatever --warmup says; it names the engine the REPLs will get. A runner
 * without one is warmed by the warm-up code alone. */
static void warm_up_runner(PyObject *mod)
{
    if (!PyObject_HasAttrString(mod, "warm_up"))
        return;
    PyObject *engine = PyObject_CallMethod(mod, "warm_up", NULL);
    if (!engine) {
        PyErr_Print();
        log_warn("the runner's warm-up raised; REPLs import their engine themselves");
        return;
    }
    const char *name = PyUnicode_Check(engine) ? PyUnicode_AsUTF8(engine) : NULL;
    if (name)
        log_info("python engine: %s", name);
    else
        PyErr_Clear();
    Py_DECREF(engine);
}

static int python_start(const char *runner_path, const char *warmup, PyObject **runner_out)
{
    hugeheap_install();
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.parse_argv = 0;
    config.install_signal_handlers = 1;
    /* what the exec'd runner sees as sys.argv, and where sys.prefix is
     * found from */
    char *argv[] = {"/opt/airlock/airlock_runner.py"};
    PyStatus st = PyConfig_SetBytesString(&config, &config.program_name, "/usr/bin/python3");
    if (!PyStatus_Exception(st))
        st = PyConfig_SetBytesArgv(&config, 1, argv);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        log_error("python: %s%s%s", st.func ? st.func : "", st.func ? ": " : "", st.err_msg ? st.err_msg : "");
        return -EINVAL;
    }

    /* import the runner from its directory, then take the directory off
     * sys.path (the exec'd runner's sys.path[0] is replaced the same way) */
    char dir_buf[PATH_MAX], base_buf[PATH_MAX];
    snprintf(dir_buf, sizeof(dir_buf), "%s", runner_path);
    snprintf(base_buf, sizeof(base_buf), "%s", runner_path);
    const char *dir = dirname(dir_buf);
    char *base = basename(base_buf);
    char *dot = strrchr(base, '.');
    if (dot && strcmp(dot, ".py") == 0)
        *dot = '\0';
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    PyObject *pdir = PyUnicode_DecodeFSDefault(dir);
    if (!path || !pdir || PyList_Insert(path, 0, pdir) < 0) {
        Py_XDECREF(pdir);
        PyErr_Print();
        return -EINVAL;
    }
    Py_DECREF(pdir);
    PyObject *mod = PyImport_ImportModule(base);
    (void)PySequence_DelItem(path, 0);
    if (!mod) {
        PyErr_Print();
        log_error("import the runner %s: failed", runner_path);
        return -ENOENT;
    }

    uint64_t t0 = now_mono_ms();
    warm_up_runner(mod);
    PyObject *g = PyDict_New();
    if (!g || PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) < 0) {
        Py_XDECREF(g);
        Py_DECREF(mod);
        return -ENOMEM;
    }
    PyObject *res = PyRun_String(warmup, Py_file_input, g, g);
    if (!res) {
        /* still worth serving: the REPLs start without the imports, as
         * exec'd ones would */
        PyErr_Print();
        log_warn("warm-up code raised; REPLs start with what it imported so far");
    }
    Py_XDECREF(res);
    Py_DECREF(g);
    if (PyRun_SimpleString("import gc\ngc.collect()\ngc.freeze()\n") < 0) {
        Py_DECREF(mod);
        return -EINVAL;
    }
    hugeheap_seal();
    log_info("warm-up done in %llu ms", (unsigned long long)(now_mono_ms() - t0));
    *runner_out = mod;
    return 0;
}

/* ---- sockets -------------------------------------------------------------- */

/* One message and up to maxfds fds (close-on-exec). Returns the message
 * size, 0 at EOF, -errno. Fds beyond maxfds or a truncated message: the fds
 * that did arrive are closed and -EPROTO returned. */
static ssize_t recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    *nfds = 0;
    int got[8];
    int ngot = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < k && ngot < 8; i++)
            memcpy(&got[ngot++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || ngot > maxfds) {
        for (int i = 0; i < ngot; i++)
            close(got[i]);
        return -EPROTO;
    }
    memcpy(fds, got, sizeof(int) * (size_t)ngot);
    *nfds = ngot;
    return n;
}

/* A cgroup directory the daemon opened for us (O_PATH): a directory on a
 * cgroup file system, nothing else a spawn would write cgroup.procs into. */
static bool cgroup_fd_ok(int fd)
{
    struct stat st;
    struct statfs sfs;
    return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && fstatfs(fd, &sfs) == 0 &&
           (sfs.f_type == CGROUP2_SUPER_MAGIC || sfs.f_type == CGROUP_SUPER_MAGIC);
}

static void on_daemon_message(struct zygote *z, bool *quit)
{
    struct zyg_register reg;
    int fds[ZYG_REGISTER_FDS(ZYG_MAX_CGROUPS)];
    int nfds = 0;
    ssize_t n = recv_with_fds(z->daemon_fd, &reg, sizeof(reg), fds, ZYG_REGISTER_FDS(ZYG_MAX_CGROUPS), &nfds);
    if (n == -EAGAIN)
        return;
    if (n == 0 || (n < 0 && n != -EPROTO)) {
        if (n < 0)
            log_error("recv from the daemon: %s", strerror((int)-n));
        *quit = true; /* the daemon is gone */
        return;
    }
    bool ok = n == (ssize_t)sizeof(reg) && reg.magic == ZYG_MAGIC_REGISTER && reg.ncgroups <= ZYG_MAX_CGROUPS &&
              nfds == ZYG_REGISTER_FDS((int)reg.ncgroups);
    struct zsandbox sb = {.sock = -1, .pidfd = -1};
    if (ok) {
        sb.sock = fds[0];
        sb.pidfd = fds[1];
        sb.ncgroups = reg.ncgroups;
        for (uint32_t i = 0; i < reg.ncgroups; i++) {
            sb.cgroup[i] = fds[2 + i];
            ok = ok && cgroup_fd_ok(sb.cgroup[i]);
        }
    }
    int r = ok ? registry_add(z->reg, &sb) : -EPROTO;
    if (r < 0) {
        log_error("%s registration from the daemon (%zd bytes, %d fds); dropped",
                  r == -ENOSPC ? "unstorable" : "malformed", n, nfds);
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
    }
}

/* false: drop this sandbox (its agent closed the socket or misbehaved) */
static bool on_sandbox_message(struct zygote *z, struct zsandbox *sb)
{
    struct zyg_spawn req;
    int fds[ZYG_SPAWN_FDS];
    int nfds = 0;
    ssize_t n = recv_with_fds(sb->sock, &req, sizeof(req), fds, ZYG_SPAWN_FDS, &nfds);
    if (n == -EAGAIN)
        return true;
    if (n <= 0)
        return false; /* EOF: the sandbox is gone; -EPROTO: not our protocol */
    if (n != (ssize_t)sizeof(req) || nfds != ZYG_SPAWN_FDS || req.magic != ZYG_MAGIC_SPAWN) {
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        log_warn("malformed spawn request (%zd bytes, %d fds); sandbox dropped", n, nfds);
        return false;
    }
    z->reg->spawns++;
    if (zygote_spawn_repl(z, sb, &req, fds) < 0)
        z->reg->failures++;
    return true;
}

/* The first-level children (C1) exit right after their fork. */
static void reap(struct zygote *z)
{
    struct signalfd_siginfo si;
    while (read(z->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        ;
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            log_debug("spawn child %d failed (status 0x%x; its agent was told why)", (int)pid, st);
}

static int serve(struct zygote *z)
{
    /* in the registry's mapping, like the table it is built from */
    struct pollfd *pfds = z->reg->pfds;
    bool quit = false;
    while (!quit) {
        pfds[0] = (struct pollfd){.fd = z->daemon_fd, .events = POLLIN};
        pfds[1] = (struct pollfd){.fd = z->sig_fd, .events = POLLIN};
        size_t nsb = z->reg->n;
        for (size_t i = 0; i < nsb; i++)
            pfds[2 + i] = (struct pollfd){.fd = z->reg->sb[i].sock, .events = POLLIN};
        int n = poll(pfds, 2 + nsb, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            log_error("poll: %s", strerror(errno));
            return -errno;
        }
        if (pfds[1].revents)
            reap(z);
        /* backwards: registry_drop moves the last entry into slot i */
        for (size_t i = nsb; i-- > 0;) {
            if (!pfds[2 + i].revents)
                continue;
            if (!on_sandbox_message(z, &z->reg->sb[i]))
                registry_drop(z->reg, i);
        }
        if (pfds[0].revents)
            on_daemon_message(z, &quit);
    }
    return 0;
}

static int send_ready(int fd)
{
    struct zyg_ready r = {.magic = ZYG_MAGIC_READY, .pid = (uint32_t)getpid()};
    ssize_t n;
    do
        n = send(fd, &r, sizeof(r), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(r) ? 0 : -errno;
}

int main(int argc, char **argv)
{
    struct args a = {.fd = -1, .warmup = default_warmup};
    if (parse_args(argc, argv, &a) < 0) {
        fprintf(stderr, "usage: airlock-zygote --fd N --runner PATH [--warmup CODE] [--debug]\n");
        return 2;
    }
    log_init("airlock-zygote", a.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
    struct zygote z = {.daemon_fd = a.fd, .sig_fd = -1, .self_pidns_fd = -1};
    /* Not dumpable, and so neither is any child until it says otherwise
     * (a fork keeps the flag): a REPL is forked as host root and joins its
     * sandbox's user namespace before it drops privileges, and in between
     * the sandbox's root (the agent, CAP_SYS_PTRACE over that namespace)
     * could ptrace it or read its /proc/PID/mem were it dumpable. Not
     * dumpable, only CAP_SYS_PTRACE over the namespace the memory was made
     * in, the host's, allows that. spawn.c makes the REPL dumpable again
     * once it is confined, as execve makes an exec'd runner. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        log_error("prctl PR_SET_DUMPABLE 0: %s", strerror(errno));
        return 1;
    }
    if (fcntl(z.daemon_fd, F_SETFD, FD_CLOEXEC) < 0) {
        log_error("daemon fd %d: %s", z.daemon_fd, strerror(errno));
        return 1;
    }
    /* the daemon's death must not leave us behind (EOF does too, unless a
     * child somewhere still holds the other end) */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        log_warn("prctl PR_SET_PDEATHSIG: %s", strerror(errno));
    if (getppid() == 1)
        return 0; /* the daemon died before the prctl */
    z.self_pidns_fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (z.self_pidns_fd < 0) {
        log_error("open /proc/self/ns/pid: %s", strerror(errno));
        return 1;
    }
    if (take_user_environment() < 0)
        return 1;
    if (unshare(CLONE_NEWNET) < 0)
        log_warn("unshare CLONE_NEWNET: %s; the warm-up imports see the host's network", strerror(errno));

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || (z.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        log_error("signalfd SIGCHLD: %s", strerror(errno));
        return 1;
    }
    if (python_start(a.runner, a.warmup, &z.runner) < 0)
        return 1;
    /* after the warm-up: hugeheap_seal collapses big anonymous mappings */
    if (registry_map(&z.reg) < 0)
        return 1;
    /* A ^C to the daemon's process group is the daemon's to handle (it
     * closes our socket). CPython's handler would only set a flag that the
     * next Python code to run, a child's runner, would raise. proc.c resets
     * every disposition in the children, and the runner installs its own. */
    if (signal(SIGINT, SIG_IGN) == SIG_ERR)
        log_warn("ignore SIGINT: %s", strerror(errno));
    int threads = zygote_threads();
    if (threads != 1)
        log_warn("%d threads after the warm-up; spawns will be refused while more than one runs", threads);
    if (send_ready(z.daemon_fd) < 0) {
        log_error("tell the daemon we are ready: %s", strerror(errno));
        return 1;
    }
    int r = serve(&z);
    log_info("exiting after %lu spawns (%lu failed)", z.reg->spawns, z.reg->failures);
    registry_unmap(z.reg);
    return r < 0 ? 1 : 0;
}
