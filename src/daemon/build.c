/* build.c - one sandbox from nothing to greeted (build.h): the backend
 * starts it, the agent connection opens, HELLO agrees on the protocol, and a
 * built template's warm-up runs. Each step is one function; sandbox_build
 * reads as the sequence. */
#include "build.h"
#include "proctab.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "egress_dns.h"
#include "egress_net.h"
#include "egress_proxy.h"
#include "log.h"
#include "proto.h"
#include "sandbox_impl.h"
#include "util.h"

#define HELLO_TIMEOUT_MS 15000
/* A template's warm-up may import a large stack (pandas, torch) on a loaded
 * machine; past this the build fails rather than hold a create forever. */
#define WARMUP_TIMEOUT_MS 120000
#define WARMUP_GRACE_MS 10000 /* the agent enforces the timeout; this is our backstop */

/* ---- the object */

void sandbox_discard(struct sandbox *sb)
{
    sandbox_stop_egress(sb);
    egress_proxy_free(sb->egress_px);
    pthread_mutex_destroy(&sb->egress_lock);
    proctab_free(sb->procs); /* its pumps end when the agent is gone, or within a second */
    agent_conn_free(sb->conn); /* joins the reader thread */
    pthread_mutex_lock(&sb->inst_lock);
    while (sb->forking)
        pthread_cond_wait(&sb->inst_cond, &sb->inst_lock);
    if (sb->inst) /* a failed build, or one that never went live */
        sb->bk->destroy(sb->bk_state, sb->inst);
    pthread_mutex_unlock(&sb->inst_lock);
    pthread_cond_destroy(&sb->inst_cond);
    pthread_mutex_destroy(&sb->inst_lock);
    json_decref(sb->env);
    json_decref(sb->metadata);
    free(sb);
}

const char *sandbox_id(const struct sandbox *sb) { return sb->id; }
struct agent_conn *sandbox_agent(struct sandbox *sb) { return sb->conn; }
struct proctab *sandbox_procs(struct sandbox *sb) { return sb->procs; }
json_t *sandbox_env(struct sandbox *sb) { return sb->env; }
/* Under egress_lock: a PUT may make the proxy of a sandbox created sealed
 * while others read it (it lives until the sandbox is freed). */
struct egress_proxy *sandbox_egress(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->egress_lock);
    struct egress_proxy *px = sb->egress_px;
    pthread_mutex_unlock(&sb->egress_lock);
    return px;
}
bool sandbox_egress_capable(const struct sandbox *sb) { return sb->bk->egress_listen != NULL; }

/* ---- egress (docs/egress.md): the proxy, and open egress's link */

/* Open egress's link and resolver; under egress_lock. */
static int link_open_locked(struct sandbox *sb, struct op_error *err)
{
    struct daemon *d = sb->d;
    if (!d->egress_net || !sb->bk->egress_link_up)
        return op_error_set(err, -EOPNOTSUPP, ERR_INTERNAL, "open egress is not available on the %s backend",
                            sb->bk->name);
    char msg[512];
    int r = egress_net_acquire(d->egress_net, &sb->egress_link, msg, sizeof(msg));
    if (r < 0)
        return op_error_set(err, r, ERR_INTERNAL, "open egress: %s", msg);
    int fd = -1;
    const char *step = "link";
    pthread_mutex_lock(&sb->inst_lock);
    r = sb->inst ? sb->bk->egress_link_up(sb->inst, &sb->egress_link) : -ESRCH;
    if (r == 0) {
        step = "resolver socket";
        if ((r = sb->bk->egress_listen(sb->inst, SOCK_DGRAM, EGRESS_DNS_PORT, &fd)) < 0) {
            unsigned n;
            (void)sb->bk->egress_link_down(sb->inst, &sb->egress_link, &n);
        }
    }
    pthread_mutex_unlock(&sb->inst_lock);
    if (r == 0 && (r = egress_dns_start(fd, sb->egress_px, &sb->egress_dns)) < 0) {
        step = "resolver";
        unsigned n;
        pthread_mutex_lock(&sb->inst_lock);
        (void)sb->bk->egress_link_down(sb->inst, &sb->egress_link, &n);
        pthread_mutex_unlock(&sb->inst_lock);
    }
    if (r < 0) {
        egress_net_release(d->egress_net, &sb->egress_link);
        return op_error_set(err, r, ERR_INTERNAL, "open egress %s %s: %s", step, sb->egress_link.host_if,
                            strerror(-r));
    }
    sb->egress_linked = true;
    log_info("sandbox %s: open egress on %s", sb->id, sb->egress_link.host_if);
    return 0;
}

/* Resolver, sockets, link: gone. How many direct connections were aborted.
 * Under egress_lock. */
static unsigned link_close_locked(struct sandbox *sb)
{
    egress_dns_stop(sb->egress_dns);
    sb->egress_dns = NULL;
    unsigned closed = 0;
    pthread_mutex_lock(&sb->inst_lock);
    int r = sb->bk->egress_link_down(sb->inst, &sb->egress_link, &closed);
    pthread_mutex_unlock(&sb->inst_lock);
    if (r < 0)
        log_error("sandbox %s: open egress link %s teardown: %s", sb->id, sb->egress_link.host_if, strerror(-r));
    egress_net_release(sb->d->egress_net, &sb->egress_link);
    sb->egress_linked = false;
    return closed;
}

/* The proxy's listening socket, made inside the sandbox's network
 * namespace by its backend: 0 and *fd, or -errno with err set. */
static int proxy_listener(struct sandbox *sb, int *fd, struct op_error *err)
{
    pthread_mutex_lock(&sb->inst_lock);
    int r = sb->inst ? sb->bk->egress_listen(sb->inst, SOCK_STREAM, EGRESS_PROXY_PORT, fd) : -ESRCH;
    pthread_mutex_unlock(&sb->inst_lock);
    return r < 0 ? op_error_set(err, r, ERR_INTERNAL, "egress proxy listener: %s", strerror(-r)) : 0;
}

int sandbox_start_egress(struct sandbox *sb, struct egress_policy *pol, struct op_error *err)
{
    if (!sb->bk->egress_listen) {
        egress_policy_free(pol);
        return op_error_set(err, -EOPNOTSUPP, ERR_INTERNAL,
                            "egress allow-lists are not available on the %s backend", sb->bk->name);
    }
    int fd = -1;
    bool open = pol->open;
    int r = proxy_listener(sb, &fd, err);
    if (r < 0) {
        egress_policy_free(pol);
        return r;
    }
    if ((r = egress_proxy_start(fd, sb->id, sb->d->store, pol, &sb->egress_px)) < 0)
        return op_error_set(err, r, ERR_INTERNAL, "egress proxy: %s", strerror(-r));
    if (open) {
        pthread_mutex_lock(&sb->egress_lock);
        r = link_open_locked(sb, err);
        pthread_mutex_unlock(&sb->egress_lock);
    }
    return r;
}

int sandbox_set_egress(struct sandbox *sb, struct egress_policy *pol, unsigned *closed, struct op_error *err)
{
    *closed = 0;
    pthread_mutex_lock(&sb->egress_lock);
    if (pol->open && !sb->egress_linked) {
        /* the link first: if it cannot be made, nothing changed */
        int r = link_open_locked(sb, err);
        if (r < 0) {
            pthread_mutex_unlock(&sb->egress_lock);
            egress_policy_free(pol);
            return r;
        }
    } else if (!pol->open && sb->egress_linked) {
        /* the route goes before the new list applies: nothing direct
         * outlives the change */
        unsigned n = link_close_locked(sb);
        struct egress_log_entry e = {.time_ms = now_wall_ms()};
        snprintf(e.method, sizeof(e.method), "ROUTE");
        snprintf(e.host, sizeof(e.host), "%s", sb->egress_link.host_if);
        snprintf(e.verdict, sizeof(e.verdict), "revoked");
        snprintf(e.reason, sizeof(e.reason),
                 "open egress ended by a policy change: the route is removed, %u direct connection(s) closed", n);
        egress_proxy_record(sb->egress_px, &e);
        *closed += n;
    }
    *closed += egress_proxy_set_policy(sb->egress_px, pol);
    pthread_mutex_unlock(&sb->egress_lock);
    return 0;
}

int sandbox_attach_egress(struct sandbox *sb, struct egress_policy *pol, struct op_error *err)
{
    if (!sb->bk->egress_listen) {
        egress_policy_free(pol);
        return op_error_set(err, -EOPNOTSUPP, ERR_INTERNAL, "egress is not available on the %s backend",
                            sb->bk->name);
    }
    /* egress_lock orders two first PUTs: one proxy, the other a replace */
    pthread_mutex_lock(&sb->egress_lock);
    if (sb->egress_px) {
        pthread_mutex_unlock(&sb->egress_lock);
        return 1;
    }
    int fd = -1;
    bool open = pol->open;
    int r = proxy_listener(sb, &fd, err);
    if (r < 0) {
        pthread_mutex_unlock(&sb->egress_lock);
        egress_policy_free(pol);
        return r;
    }
    /* the route before the proxy is published: if it cannot be made, the
     * proxy starts with the empty list and the answer is the error */
    struct egress_policy *start = pol;
    if (open) {
        json_auto_t *none = json_array();
        char msg[128];
        if ((r = egress_policy_parse(none, &start, msg, sizeof(msg))) < 0) {
            pthread_mutex_unlock(&sb->egress_lock);
            close(fd);
            egress_policy_free(pol);
            return op_error_set(err, r, ERR_INTERNAL, "egress policy: %s", msg);
        }
    }
    if ((r = egress_proxy_start(fd, sb->id, sb->d->store, start, &sb->egress_px)) < 0) {
        pthread_mutex_unlock(&sb->egress_lock);
        if (open)
            egress_policy_free(pol);
        return op_error_set(err, r, ERR_INTERNAL, "egress proxy: %s", strerror(-r));
    }
    if (open) {
        if ((r = link_open_locked(sb, err)) < 0) {
            pthread_mutex_unlock(&sb->egress_lock);
            egress_policy_free(pol);
            return r;
        }
        (void)egress_proxy_set_policy(sb->egress_px, pol);
    }
    pthread_mutex_unlock(&sb->egress_lock);
    return 0;
}

void sandbox_stop_egress(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->egress_lock);
    if (sb->egress_linked)
        (void)link_close_locked(sb);
    struct egress_proxy *px = sb->egress_px;
    pthread_mutex_unlock(&sb->egress_lock);
    egress_proxy_shutdown(px);
}

unsigned sandbox_memory_mb(const struct sandbox *sb) { return sb->memory_mb; }
bool sandbox_crashed(struct sandbox *sb) { return atomic_load(&sb->crashed); }

/* One of the backend's optional counters of sb (op may be NULL); 0 when
 * unknown or the instance is gone. */
static uint64_t backend_counter(struct sandbox *sb, int (*op)(struct backend_instance *, uint64_t *))
{
    uint64_t n = 0;
    pthread_mutex_lock(&sb->inst_lock);
    if (sb->inst && op && op(sb->inst, &n) < 0)
        n = 0;
    pthread_mutex_unlock(&sb->inst_lock);
    return n;
}

uint64_t sandbox_oom_kills(struct sandbox *sb) { return backend_counter(sb, sb->bk->oom_kills); }
uint64_t sandbox_memory_bytes(struct sandbox *sb) { return backend_counter(sb, sb->bk->memory_usage); }

bool sandbox_shape_equal(const struct sandbox_shape *a, const struct sandbox_shape *b)
{
    return strcmp(a->tmpl->name, b->tmpl->name) == 0 && a->memory_mb == b->memory_mb && a->cpus == b->cpus &&
           a->egress == b->egress && a->isolation == b->isolation;
}

void sandbox_set_crash_hook(struct daemon *d, void (*hook)(struct daemon *d)) { d->sandbox_crash_hook = hook; }

/* The agent connection died (reader thread): flag it, and let whoever
 * watches (the registry's reaper) know. */
static void on_agent_dead(void *userdata)
{
    struct sandbox *sb = userdata;
    atomic_store(&sb->crashed, true);
    if (sb->d->sandbox_crash_hook)
        sb->d->sandbox_crash_hook(sb->d);
}

/* ---- the steps */

/* A sandbox's files live in tmpfs, charged to its memory limit. Capping them
 * below the limit keeps room for the agent and a REPL, so filling the disk is
 * ENOSPC (507 no_space) rather than an OOM kill of the agent: half the memory
 * for small sandboxes, all but 96 MiB for large ones. */
static uint64_t storage_bytes(unsigned memory_mb)
{
    uint64_t mem = (uint64_t)memory_mb << 20, headroom = mem / 2;
    if (headroom > (96ull << 20))
        headroom = 96ull << 20;
    return mem - headroom;
}

/* A new, unstarted sandbox of shape s with a fresh id; one reference. */
static int sandbox_alloc(struct daemon *d, const struct sandbox_shape *s, struct sandbox **out, struct op_error *err)
{
    struct sandbox *sb = calloc(1, sizeof(*sb));
    if (!sb)
        return op_error_set(err, -ENOMEM, ERR_INTERNAL, "out of memory");
    sb->d = d;
    pthread_mutex_init(&sb->inst_lock, NULL);
    pthread_mutex_init(&sb->egress_lock, NULL);
    pthread_cond_init(&sb->inst_cond, NULL);
    sb->refs = 1;
    memcpy(sb->id, "sb_", 3);
    int r = random_hex(sb->id + 3, 16);
    if (r == 0)
        r = proctab_new(&sb->procs);
    if (r < 0) {
        pthread_cond_destroy(&sb->inst_cond);
        pthread_mutex_destroy(&sb->inst_lock);
        free(sb);
        return op_error_set(err, r, ERR_INTERNAL, r == -ENOMEM ? "out of memory" : "getrandom: %s", strerror(-r));
    }
    snprintf(sb->template_name, sizeof(sb->template_name), "%s", s->tmpl->name);
    sb->tmpl = s->tmpl;
    sb->egress = s->egress;
    sb->isolation = s->isolation;
    sb->bk = s->isolation == ISO_VM ? d->vm_backend : d->backend;
    sb->bk_state = s->isolation == ISO_VM ? d->vm_state : d->backend_state;
    if (!sb->bk) { /* api_sandboxes.c refuses this isolation first */
        proctab_free(sb->procs);
        pthread_cond_destroy(&sb->inst_cond);
        pthread_mutex_destroy(&sb->inst_lock);
        free(sb);
        return op_error_set(err, -ENODEV, ERR_INTERNAL, "the %s backend is not available",
                            s->isolation == ISO_VM ? "vm" : "jail");
    }
    snprintf(sb->region, sizeof(sb->region), "%s", d->cfg.region);
    sb->memory_mb = s->memory_mb;
    sb->cpus = s->cpus;
    *out = sb;
    return 0;
}

/* What the backend is asked to start for sb. */
static void fill_spec(struct sandbox *sb, const struct sandbox_shape *s, struct sandbox_spec *out)
{
    struct daemon *d = sb->d;
    *out = (struct sandbox_spec){
        .tmpl = s->tmpl,
        .memory_bytes = (uint64_t)s->memory_mb << 20,
        .cpu_millis = (uint32_t)(s->cpus * 1000.0 + 0.5),
        .pids_max = SANDBOX_PIDS_MAX,
        .tmpfs_bytes = storage_bytes(s->memory_mb),
        .agent_path = d->cfg.agent_path,
        .runner_path = d->cfg.runner_path,
        .warm_languages = s->tmpl && s->tmpl->warm_languages ? s->tmpl->warm_languages : d->cfg.warm_languages,
        .hostname = "sandbox",
    };
    memcpy(out->id, sb->id, sizeof(out->id));
}

/* The backend starts the sandbox; its agent's socket becomes sb->conn. */
static int start_backend(struct sandbox *sb, const struct sandbox_shape *s, struct op_error *err)
{
    struct sandbox_spec spec;
    fill_spec(sb, s, &spec);
    char berr[512] = "";
    int fd = -1;
    int r = sb->bk->create(sb->bk_state, &spec, &sb->inst, &fd, berr, sizeof(berr));
    if (r < 0) {
        sb->inst = NULL;
        return op_error_set(err, r, ERR_INTERNAL, "%s", berr[0] ? berr : strerror(-r));
    }
    if ((r = agent_conn_new(fd, sb->id, on_agent_dead, sb, &sb->conn)) < 0)
        return op_error_set(err, r, ERR_INTERNAL, "start agent reader: %s", strerror(-r));
    return 0;
}

/* HELLO: the agent answers, and speaks our protocol version. */
static int greet_agent(struct sandbox *sb, struct op_error *err)
{
    json_t *hello = json_pack("{s:i}", "version", PROTO_VERSION);
    json_t *reply = NULL;
    struct op_error herr = {0};
    int r = agent_call(sb->conn, PROTO_HELLO, hello, HELLO_TIMEOUT_MS, &reply, &herr);
    json_decref(hello);
    if (r < 0)
        return op_error_set(err, r, ERR_INTERNAL, "agent handshake: %s", herr.msg);
    json_int_t ver = json_integer_value(json_object_get(reply, "version"));
    json_decref(reply);
    if (ver != PROTO_VERSION)
        return op_error_set(err, -EPROTO, ERR_INTERNAL, "agent handshake: protocol version %lld, expected %d",
                            (long long)ver, PROTO_VERSION);
    return 0;
}

/* The RESULT of a warm-up: 0, or its exception (ERR_WARMUP) or timeout. */
static int warmup_result(const struct template_info *t, const struct agent_frame *f, struct op_error *err)
{
    json_t *res = json_loadb((const char *)f->data, f->len, 0, NULL);
    json_t *e = json_object_get(res, "error");
    bool timed_out = json_is_true(json_object_get(res, "timed_out"));
    int r = 0;
    if (timed_out) {
        r = op_error_set(err, -ETIMEDOUT, ERR_INTERNAL, "template %s: warm-up did not finish in %d s", t->name,
                         WARMUP_TIMEOUT_MS / 1000);
    } else if (json_is_object(e)) {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *value = json_string_value(json_object_get(e, "value"));
        r = op_error_set(err, -EREMOTEIO, ERR_WARMUP, "template %s: warm-up failed: %s%s%s", t->name,
                         name ? name : "error", value && *value ? ": " : "", value ? value : "");
    }
    json_decref(res);
    return r;
}

/* Run the template's warm-up code in the sandbox's Python REPL, the one the
 * user's code will use (RUN_CODE, as the sandbox user, like any user call),
 * before the sandbox is visible to anyone. Its output is discarded: the
 * agent still reads it, but only 4 KiB per stream are asked for and the
 * frames are dropped here. A warm-up that raises is a defect of the
 * template (ERR_WARMUP, naming it and the exception); one that does not
 * finish in WARMUP_TIMEOUT_MS, or an agent that dies, is ERR_INTERNAL. */
static int run_warmup(struct sandbox *sb, const struct template_info *t, const char *code, struct op_error *err)
{
    uint64_t t0 = now_mono_ms();
    json_t *payload = json_pack("{s:s,s:s,s:I,s:{},s:i}", "code", code, "language", "python", "timeout_ms",
                                (json_int_t)WARMUP_TIMEOUT_MS, "env", "max_output", 4096);
    if (!payload)
        return op_error_set(err, -ENOMEM, ERR_INTERNAL, "out of memory");
    cleanup_agent_req struct agent_req *req = NULL;
    int r = agent_req_start(sb->conn, PROTO_RUN_CODE, payload, &req);
    json_decref(payload);
    if (r < 0)
        return op_error_set(err, r, ERR_INTERNAL, "template %s: warm-up: send to the agent: %s", t->name,
                            strerror(-r));
    uint64_t deadline = t0 + WARMUP_TIMEOUT_MS + WARMUP_GRACE_MS;
    for (;;) {
        cleanup_frame struct agent_frame *f = NULL;
        if ((r = agent_req_next(req, deadline, &f)) < 0) {
            if (r == -ETIMEDOUT)
                return op_error_set(err, r, ERR_INTERNAL, "template %s: warm-up did not finish in %d s", t->name,
                                    WARMUP_TIMEOUT_MS / 1000);
            return op_error_set(err, r, ERR_INTERNAL, "template %s: warm-up: agent: %s", t->name,
                                r == -EPIPE ? "connection lost" : strerror(-r));
        }
        if (f->type == PROTO_STDOUT || f->type == PROTO_STDERR)
            continue; /* discarded */
        if (f->type == PROTO_ERROR) {
            struct op_error aerr = {0};
            op_error_from_agent(&aerr, (const char *)f->data, f->len);
            return op_error_set(err, -EREMOTEIO, ERR_INTERNAL, "template %s: warm-up failed: %s", t->name,
                                aerr.msg);
        }
        if (f->type != PROTO_RESULT)
            return op_error_set(err, -EPROTO, ERR_INTERNAL, "template %s: warm-up: agent sent %s", t->name,
                                proto_type_name(f->type));
        if ((r = warmup_result(t, f, err)) < 0)
            return r;
        log_debug("sandbox %s: template %s warm-up ran in %llu ms", sb->id, t->name,
                  (unsigned long long)(now_mono_ms() - t0));
        return 0;
    }
}

/* Only built templates carry warm-up code: the host template's REPLs are
 * zygote forks, warmed once by the zygote's --warmup. */
static int warm_up(struct sandbox *sb, const struct sandbox_shape *s, bool prime, struct op_error *err)
{
    if (s->tmpl->rootfs && s->tmpl->warmup && s->tmpl->warmup[0])
        return run_warmup(sb, s->tmpl, s->tmpl->warmup, err);
    if (!s->tmpl->rootfs && prime) {
        /* The host template's REPL is a zygote fork: its first call pays
         * ~1,000 copy-on-write faults (the runner's call path, compile,
         * output, and with IPython the display formatters a trailing
         * expression goes through), ~2-4 ms here. One call with an output
         * and a value pays them now, at build time
         * (off the request path for a pool hit). Not for a pool miss: its
         * create is waiting, and the user's first call pays them anyway,
         * without a round trip of its own. Only a speed-up: a REPL that
         * cannot run it is left for the user's first call to report. */
        struct op_error perr = {0};
        if (run_warmup(sb, s->tmpl, "print()\n0", &perr) < 0)
            log_debug("sandbox %s: priming call: %s", sb->id, perr.msg);
    }
    return 0;
}

/* ---- the sequence */

int sandbox_build(struct daemon *d, const struct sandbox_shape *s, bool prime, struct sandbox **out,
                  struct op_error *err)
{
    struct sandbox *sb = NULL;
    int r = sandbox_alloc(d, s, &sb, err);
    if (r < 0)
        return r;
    uint64_t t0 = now_mono_us();
    if ((r = start_backend(sb, s, err)) < 0)
        goto fail;
    uint64_t t1 = now_mono_us();
    if ((r = greet_agent(sb, err)) < 0)
        goto fail;
    uint64_t t2 = now_mono_us();
    if ((r = warm_up(sb, s, prime, err)) < 0)
        goto fail;
    uint64_t t3 = now_mono_us();
    /* where a build's time goes (the create line has only the total) */
    log_debug("sandbox %s: built in %.3f ms (backend %.3f, hello %.3f, warm-up %.3f)", sb->id,
              (double)(t3 - t0) / 1000.0, (double)(t1 - t0) / 1000.0, (double)(t2 - t1) / 1000.0,
              (double)(t3 - t2) / 1000.0);
    *out = sb;
    return 0;

fail:
    /* no log here: the pool or the create that asked decides what the
     * failure means and logs it once */
    sandbox_discard(sb);
    return r < 0 ? r : -EIO;
}

/* ---- fork */

void sandbox_shape_of(const struct sandbox *sb, struct sandbox_shape *out)
{
    *out = (struct sandbox_shape){.tmpl = sb->tmpl, .memory_mb = sb->memory_mb, .cpus = sb->cpus,
                                  .egress = sb->egress, .isolation = sb->isolation};
}

bool sandbox_can_fork_full(const struct sandbox *sb) { return sb->bk->fork != NULL; }

int sandbox_build_fork(struct sandbox *parent, unsigned n, struct sandbox **out, struct op_error *err)
{
    struct daemon *d = parent->d;
    struct sandbox_shape s;
    sandbox_shape_of(parent, &s);
    if (!parent->bk->fork || n == 0 || n > SANDBOX_FORK_MAX)
        return op_error_set(err, -EOPNOTSUPP, ERR_INTERNAL, "the %s backend cannot fork full state", parent->bk->name);
    struct sandbox *kids[SANDBOX_FORK_MAX] = {NULL};
    struct sandbox_spec specs[SANDBOX_FORK_MAX];
    struct backend_instance *insts[SANDBOX_FORK_MAX] = {NULL};
    int fds[SANDBOX_FORK_MAX];
    int r = 0;
    unsigned made = 0;
    for (; made < n; made++) {
        if ((r = sandbox_alloc(d, &s, &kids[made], err)) < 0)
            goto fail;
        fill_spec(kids[made], &s, &specs[made]);
    }
    char berr[512] = "";
    uint64_t t0 = now_mono_us();
    /* The instance is pinned, not locked, for the fork: the parent's own
     * requests (which read its counters under inst_lock) go on while its RAM
     * streams and the children restore; its destroy and another fork of it
     * wait for this one (sandbox_impl.h). */
    pthread_mutex_lock(&parent->inst_lock);
    while (parent->forking)
        pthread_cond_wait(&parent->inst_cond, &parent->inst_lock);
    struct backend_instance *pinst = parent->inst;
    parent->forking = pinst != NULL;
    pthread_mutex_unlock(&parent->inst_lock);
    r = pinst ? parent->bk->fork(parent->bk_state, pinst, specs, n, insts, fds, berr, sizeof(berr)) : -ESRCH;
    if (pinst) {
        pthread_mutex_lock(&parent->inst_lock);
        parent->forking = false;
        pthread_cond_broadcast(&parent->inst_cond);
        pthread_mutex_unlock(&parent->inst_lock);
    }
    if (r < 0) {
        op_error_set(err, r, r == -ESRCH ? ERR_AGENT_GONE : ERR_FORK_FAILED, "fork: %s",
                     r == -ESRCH ? "the sandbox is being destroyed" : berr[0] ? berr : strerror(-r));
        goto fail;
    }
    uint64_t t1 = now_mono_us();
    /* every child owns its instance from here: a failure below frees each
     * with its sandbox */
    for (unsigned i = 0; i < n; i++)
        kids[i]->inst = insts[i];
    for (unsigned i = 0; i < n; i++) {
        if ((r = agent_conn_new(fds[i], kids[i]->id, on_agent_dead, kids[i], &kids[i]->conn)) < 0) {
            for (unsigned j = i + 1; j < n; j++)
                close(fds[j]);
            op_error_set(err, r, ERR_INTERNAL, "start agent reader: %s", strerror(-r));
            goto fail;
        }
    }
    /* HELLO only: the agents are the parent's, already running, their
     * REPLs hold its state (no warm-up, no priming call) */
    for (unsigned i = 0; i < n; i++)
        if ((r = greet_agent(kids[i], err)) < 0)
            goto fail;
    log_debug("sandbox %s: forked %u in %.3f ms (backend %.3f)", parent->id, n, (now_mono_us() - t0) / 1000.0,
              (t1 - t0) / 1000.0);
    for (unsigned i = 0; i < n; i++)
        out[i] = kids[i];
    return 0;
fail:
    for (unsigned i = 0; i < made; i++)
        if (kids[i])
            sandbox_discard(kids[i]);
    return r < 0 ? r : -EIO;
}
