/* main.c - airlockd: start-up, recovery, serving, shutdown.
 *
 *   parse flags -> state dir -> store -> bootstrap key -> backend init (kills
 *   what a dead daemon left) -> mark stale records destroyed -> registry and
 *   reaper -> HTTP -> wait for SIGTERM/SIGINT -> stop accepting -> destroy
 *   every sandbox -> stop HTTP -> close the store.
 *
 * SIGTERM and SIGINT are blocked in every thread (the mask is set before any
 * thread exists and inherited) and collected by sigwait() in main, so there
 * is no signal handler and no global flag. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "templates.h"
#include "admission.h"
#include "auth.h"
#include "bgwork.h"
#include "daemon.h"
#include "egress_net.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "registry.h"
#include "store.h"
#include "util.h"

static int make_state_dir(const char *dir)
{
    /* create missing parents (0755), the directory itself 0700 */
    cleanup_free char *path = strdup(dir);
    if (!path)
        return -ENOMEM;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            int r = -errno;
            log_error("create %s: %s", path, strerror(-r));
            return r;
        }
        *p = '/';
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int r = -errno;
        log_error("create state directory %s: %s", dir, strerror(-r));
        return r;
    }
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        log_error("state directory %s is not a directory", dir);
        return -ENOTDIR;
    }
    if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0) {
        int r = -errno;
        log_error("chmod 0700 %s: %s", dir, strerror(-r));
        return r;
    }
    return 0;
}

/* One state directory is one daemon, and the backend destroys whatever it
 * finds in its scope at start (a dead daemon's leftovers). So two daemons on
 * one host (tests, staging next to production) must not share a scope: the
 * default state dir gets the backend's default ("airlock"), any other
 * "airlock-<hash of the state dir>", unless --scope names one. */
static int backend_scope(const char *state_dir, char *out, size_t outlen)
{
    cleanup_free char *real = realpath(state_dir, NULL);
    if (!real) {
        int r = -errno;
        log_error("resolve state directory %s: %s", state_dir, strerror(-r));
        return r;
    }
    if (strcmp(real, "/var/lib/airlock") == 0) {
        snprintf(out, outlen, "airlock");
        return 0;
    }
    char hash[KEY_HASH_LEN + 1];
    int r = auth_hash_key(real, strlen(real), hash);
    if (r < 0)
        return r;
    snprintf(out, outlen, "airlock-%.12s", hash);
    log_debug("state directory %s: backend scope %s", real, out);
    return 0;
}

static int wait_for_stop_signal(const sigset_t *set)
{
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(set, &si);
        if (sig < 0 && errno == EINTR)
            continue;
        return sig;
    }
}

/* Each live sandbox holds two descriptors in the daemon (the agent stream
 * and the agent's pidfd), each pooled one as many, and each HTTP connection
 * one: 1,000 sandboxes do not fit the usual soft limit of 1024. Raise the
 * soft limit to the hard one (capped: a huge limit only makes a runaway
 * leak slower to notice). Descriptors are only ever polled with poll(),
 * never select(), so numbers past FD_SETSIZE are fine. The agent inherits
 * this limit but sets RLIMIT_NOFILE 1024 for every user process. */
#define DAEMON_NOFILE_MAX 65536

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        log_warn("getrlimit RLIMIT_NOFILE: %s", strerror(errno));
        return;
    }
    rlim_t want = rl.rlim_max < DAEMON_NOFILE_MAX ? rl.rlim_max : DAEMON_NOFILE_MAX;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        log_warn("setrlimit RLIMIT_NOFILE %llu: %s", (unsigned long long)want, strerror(errno));
}

/* Every sandbox may hold SANDBOX_PIDS_MAX processes, and they all come out
 * of the host's one pid space: with the default kernel.pid_max (32768), 64
 * full sandboxes leave the host no pid to fork with. Changing a host sysctl
 * is the operator's call, so only say so. */
static void check_pid_max(const struct config *cfg)
{
    char buf[32];
    if (read_file_small("/proc/sys/kernel/pid_max", buf, sizeof(buf)) < 0)
        return;
    unsigned long long have = strtoull(buf, NULL, 10);
    unsigned long long need = (unsigned long long)(cfg->max_sandboxes + cfg->pool_max) * SANDBOX_PIDS_MAX;
    if (have && have < need)
        log_warn("kernel.pid_max is %llu: %u sandboxes of %u processes each could use %llu pids and leave the "
                 "host none (raise it: sysctl kernel.pid_max=4194304)",
                 have, cfg->max_sandboxes + cfg->pool_max, SANDBOX_PIDS_MAX, need);
}

/* A client that hangs up must not kill the daemon; SIGTERM and SIGINT are
 * blocked here, before any thread exists, and collected by sigwait. */
static int setup_signals(sigset_t *stop)
{
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        log_error("ignore SIGPIPE: %s", strerror(errno));
        return -errno;
    }
    sigemptyset(stop);
    sigaddset(stop, SIGTERM);
    sigaddset(stop, SIGINT);
    int r = pthread_sigmask(SIG_BLOCK, stop, NULL);
    if (r != 0) {
        log_error("block SIGTERM/SIGINT: %s", strerror(r));
        return -r;
    }
    return 0;
}

/* The bootstrap key must not leak into anything the daemon starts, nor stay
 * readable in /proc/<pid>/environ, which shows the bytes of the initial
 * environment whatever unsetenv does to environ: keep a copy (*out, NULL if
 * unset), overwrite the original. */
static int take_env_key(char **out)
{
    char *env_orig = getenv("AIRLOCK_API_KEY");
    *out = env_orig ? strdup(env_orig) : NULL;
    if (env_orig && !*out) {
        log_error("copy AIRLOCK_API_KEY: %s", strerror(ENOMEM));
        return -ENOMEM;
    }
    if (env_orig)
        explicit_bzero(env_orig, strlen(env_orig));
    (void)unsetenv("AIRLOCK_API_KEY");
    return 0;
}

/* The state directory, the backend scope it implies, the store and the
 * bootstrap admin key (where: how to find it, for the start-up line). */
static int open_state(struct daemon *d, char *env_key, char *scope, size_t scope_len, char *where, size_t where_len)
{
    int r;
    if (d->cfg.scope)
        snprintf(scope, scope_len, "%s", d->cfg.scope);
    if ((r = make_state_dir(d->cfg.state_dir)) < 0 ||
        (!d->cfg.scope && (r = backend_scope(d->cfg.state_dir, scope, scope_len)) < 0))
        return r;
    struct store_opts sopts = {
        .init_state = d->cfg.init_state,
        .full_check = d->cfg.check_integrity,
        .audit_max_rows = d->cfg.audit_max_rows,
        .audit_max_age_ms = d->cfg.audit_max_age_s * 1000,
    };
    if ((r = store_open(d->cfg.state_dir, &sopts, &d->store)) < 0)
        return r;
    if ((r = auth_bootstrap(d->store, d->cfg.state_dir, env_key, where, where_len)) < 0) {
        log_error("bootstrap the admin key: %s", strerror(-r));
        return r;
    }
    return 0;
}

/* The isolation backend (its init kills what a dead daemon left in scope). */
static int start_backend(struct daemon *d, const char *scope)
{
    char berr[512] = "";
    d->backend = &jail_backend_ops;
    struct backend_config bcfg = {
        .agent_path = d->cfg.agent_path,
        .scope = scope,
        .zygote_path = d->cfg.no_zygote ? NULL : d->cfg.zygote_path,
        .runner_path = d->cfg.runner_path,
        .warmup = d->cfg.warmup,
        .cgroup_favordynmods = d->cfg.cgroup_favordynmods,
        .max_sandboxes = d->cfg.max_sandboxes + d->cfg.pool_max,
        .vm_dir = d->cfg.vm_dir,
        .vm_accel = d->cfg.vm_accel,
        .vm_snapshots = !d->cfg.vm_no_snapshots,
    };
    int r = d->backend->init(&d->backend_state, &bcfg, berr, sizeof(berr));
    if (r < 0) {
        log_error("backend %s: init failed: %s", d->backend->name, berr[0] ? berr : strerror(-r));
        d->backend = NULL;
        return r;
    }
    /* The vm backend is optional unless it is the default: a host without
     * QEMU or `make vm`'s files still serves jail sandboxes, and a create
     * asking for a VM hears why there is none. */
    berr[0] = '\0';
    r = vm_backend_ops.init(&d->vm_state, &bcfg, berr, sizeof(berr));
    if (r < 0) {
        snprintf(d->vm_error, sizeof(d->vm_error), "%s", berr[0] ? berr : strerror(-r));
        if (d->cfg.isolation == ISO_VM) {
            log_error("backend vm: init failed: %s", d->vm_error);
            return r;
        }
        log_info("backend vm: not available: %s", d->vm_error);
    } else {
        d->vm_backend = &vm_backend_ops;
    }
    /* after the backend killed a dead daemon's sandboxes (their veths went
     * with their namespaces): its nftables table goes too */
    if ((r = egress_net_new(d->cfg.state_dir, &d->egress_net)) < 0)
        log_warn("open egress: not available: %s", strerror(-r));
    if (access(d->cfg.runner_path, R_OK) < 0)
        log_warn("runner %s: %s (Python code will not run)", d->cfg.runner_path, strerror(errno));
    d->host_template = (struct template_info){.name = "host", .rootfs = NULL};
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    d->nproc = n > 0 ? (unsigned)n : 1;
    return 0;
}

/* Records of a previous run closed, then the parts that serve requests, each
 * after what it uses: limits, teardown worker, registry (and reaper),
 * templates, warm pool. */
static int start_services(struct daemon *d)
{
    unsigned stale = 0;
    int r = store_sandbox_destroy_all_running(d->store, "daemon_restart", now_wall_ms(), &stale);
    if (r < 0)
        return r;
    if (stale)
        log_info("marked %u sandbox(es) of a previous run destroyed (daemon_restart)", stale);
    if ((r = admission_new(&d->cfg, &d->adm)) < 0) {
        log_error("set up the request limits: %s", strerror(-r));
        return r;
    }
    /* 16: deletes faster than teardown keep at most this many sandboxes
     * half-released; beyond it DELETE tears down inline. */
    if ((r = bgwork_new("teardown", 16, &d->teardown)) < 0) {
        log_error("start the teardown worker: %s", strerror(-r));
        return r;
    }
    if ((r = registry_new(d, &d->reg)) < 0) {
        log_error("start the sandbox registry: %s", strerror(-r));
        return r;
    }
    if ((r = templates_open(d, d->cfg.template_cache, true, &d->templates)) < 0) {
        log_error("open the template store: %s", strerror(-r));
        return r;
    }
    if ((r = pool_new(d, &d->pool)) < 0) {
        log_error("start the warm pool: %s", strerror(-r));
        return r;
    }
    return 0;
}

/* Everything start-up made, in the reverse order (any part may be missing:
 * a start-up that failed half-way comes here too). */
static void shut_down(struct daemon *d, struct http_server *http)
{
    atomic_store(&d->shutting_down, true);
    if (http)
        http_quiesce(http);
    /* the pool first: its thread builds sandboxes, which must not outlive
     * the backend, and a create that already took one still finds the
     * registry refusing (accepting = false below). Its memory stays until
     * the requests in flight, which may still ask it, are done. */
    pool_stop(d->pool);
    if (d->reg)
        sandbox_destroy_all(d, "shutdown"); /* wakes every request waiting on an agent */
    http_stop(http);                        /* joins the connection threads */
    templates_close(d->templates);          /* kills a build in progress */
    d->templates = NULL;
    pool_free(d->pool);
    d->pool = NULL;
    bgwork_free(d->teardown);               /* finishes every queued teardown */
    d->teardown = NULL;
    registry_free(d->reg);
    admission_free(d->adm);
    if (d->vm_backend)
        d->vm_backend->fini(d->vm_state);
    if (d->backend && d->backend->fini)
        d->backend->fini(d->backend_state);
    egress_net_free(d->egress_net); /* after every sandbox's link is gone */
    d->egress_net = NULL;
    store_close(d->store);
    config_free(&d->cfg);
}

int main(int argc, char **argv)
{
    struct daemon d = {0};
    int r = config_parse(&d.cfg, argc, argv);
    if (r != 0) {
        config_free(&d.cfg);
        return r > 0 ? 0 : 2;
    }
    log_init("airlockd", d.cfg.log_level);
    raise_fd_limit();
    check_pid_max(&d.cfg);
    sigset_t stop;
    cleanup_free char *env_key = NULL;
    if (setup_signals(&stop) < 0 || take_env_key(&env_key) < 0)
        return 1;

    int exit_code = 1;
    struct http_server *http = NULL;
    char where[512] = "";
    char scope[64];
    r = open_state(&d, env_key, scope, sizeof(scope), where, sizeof(where));
    if (env_key)
        explicit_bzero(env_key, strlen(env_key));
    if (r < 0 || start_backend(&d, scope) < 0 || start_services(&d) < 0 || http_start(&d, &http) < 0)
        goto out;

    log_info("airlockd %s listening on http://%s:%u%s%s (region %s, backend %s); %s", AIRLOCK_VERSION,
             d.cfg.listen_host, d.cfg.listen_port, d.cfg.socket_path ? " and unix:" : "",
             d.cfg.socket_path ? d.cfg.socket_path : "", d.cfg.region, d.backend->name, where);

    int sig = wait_for_stop_signal(&stop);
    log_info("received %s, shutting down", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal");
    exit_code = 0;

out:
    shut_down(&d, http);
    if (exit_code == 0)
        log_info("stopped");
    return exit_code;
}
