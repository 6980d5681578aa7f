/* api_sandboxes.c - /v1/healthz and the sandbox resource: create, list, get,
 * delete, timeout, logs (docs/api.md). Validation happens here, at the edge;
 * registry.c trusts its parameters. */
#include <errno.h>
#include <math.h>
#include <sys/statvfs.h>
#include <sys/param.h> /* MIN */
#include <string.h>

#include "api.h"
#include "api_errors.h"
#include "egress_proxy.h"
#include "log.h"
#include "listq.h"
#include "pool.h"
#include "templates.h"
#include "registry.h"
#include "util.h"

#define ENV_MAX_BYTES (64u * 1024u)
#define ENV_MAX_VARS 256u
#define METADATA_MAX_BYTES (16u * 1024u)
/* Below this, /v1/healthz says the state disk is (nearly) full. */
#define STATE_DISK_LOW_BYTES (1u << 20)

/* ---- field helpers (shared with the other api_*.c) */

int api_field_uint(struct http_req *req, const char *name, unsigned min, unsigned max, unsigned *out)
{
    json_t *v = json_object_get(req->body, name);
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min || json_integer_value(v) > (json_int_t)max) {
        http_reply_errorf(req, 400, "invalid_request", "%s must be an integer between %u and %u", name, min, max);
        return -EINVAL;
    }
    *out = (unsigned)json_integer_value(v);
    return 0;
}

int api_field_string(struct http_req *req, const char *name, const char **out)
{
    json_t *v = json_object_get(req->body, name);
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_string(v)) {
        http_reply_errorf(req, 400, "invalid_request", "%s must be a string", name);
        return -EINVAL;
    }
    *out = json_string_value(v);
    return 0;
}

int api_field_bool(struct http_req *req, const char *name, bool *out)
{
    json_t *v = json_object_get(req->body, name);
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_boolean(v)) {
        http_reply_errorf(req, 400, "invalid_request", "%s must be true or false", name);
        return -EINVAL;
    }
    *out = json_is_true(v);
    return 0;
}

int api_field_env(struct http_req *req, const char *name, size_t max_bytes, json_t **out)
{
    json_t *v = json_object_get(req->body, name);
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_object(v)) {
        http_reply_errorf(req, 400, "invalid_request", "%s must be an object of strings", name);
        return -EINVAL;
    }
    if (json_object_size(v) > ENV_MAX_VARS) {
        http_reply_errorf(req, 400, "invalid_request", "%s has more than %u variables", name, ENV_MAX_VARS);
        return -EINVAL;
    }
    const char *k;
    json_t *val;
    json_object_foreach(v, k, val)
    {
        if (!json_is_string(val)) {
            http_reply_errorf(req, 400, "invalid_request", "%s.%s must be a string", name, k);
            return -EINVAL;
        }
        if (!*k || strchr(k, '=')) {
            http_reply_errorf(req, 400, "invalid_request", "%s: variable names must be non-empty and without '='",
                              name);
            return -EINVAL;
        }
        if (json_string_length(val) != strlen(json_string_value(val))) {
            http_reply_errorf(req, 400, "invalid_request", "%s.%s must not contain NUL", name, k);
            return -EINVAL;
        }
    }
    size_t size = json_dumpb(v, NULL, 0, JSON_COMPACT);
    if (size > max_bytes) {
        http_reply_errorf(req, 400, "invalid_request", "%s is larger than %zu KiB", name, max_bytes / 1024);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int api_error_gone(struct api_error *err, struct sandbox *sb)
{
    struct op_error op = {0};
    int r = sandbox_gone_error(sb, &op);
    return api_error_from_op(err, r, &op);
}

void api_reply_op_error(struct http_req *req, int r, const struct op_error *op)
{
    struct api_error err = {0};
    api_error_from_op(&err, r, op);
    http_reply_error(req, &err);
}

static struct sandbox *route_sandbox(struct http_req *req, bool paused_ok)
{
    struct sandbox *sb = NULL;
    struct op_error err = {0};
    int r = paused_ok ? sandbox_get_any(req->d, &req->key, req->param, &sb, &err)
                      : sandbox_get(req->d, &req->key, req->param, &sb, &err);
    if (r < 0) {
        api_reply_op_error(req, r, &err);
        return NULL;
    }
    http_mark(req, HTTP_T_LOOKUP);
    return sb;
}

struct sandbox *api_route_sandbox(struct http_req *req) { return route_sandbox(req, false); }
struct sandbox *api_route_sandbox_any(struct http_req *req) { return route_sandbox(req, true); }

/* ---- handlers */

/* Free and total bytes of the filesystem holding path. */
static json_t *disk_json(const char *path)
{
    struct statvfs vfs;
    if (statvfs(path, &vfs) < 0)
        return json_pack("{s:s,s:s}", "path", path, "error", strerror(errno));
    return json_pack("{s:s,s:I,s:I}", "path", path, "free_bytes", (json_int_t)((uint64_t)vfs.f_bavail * vfs.f_frsize),
                     "total_bytes", (json_int_t)((uint64_t)vfs.f_blocks * vfs.f_frsize));
}

/* "ok", or "degraded" with the reasons: the state store cannot be written
 * (then every action that must be audited is refused, 503
 * audit_unavailable). ?full=1 adds the store, the pools, the zygote and the
 * state disk. */
void api_healthz(struct http_req *req)
{
    struct daemon *d = req->d;
    json_t *store = store_health(d->store);
    json_t *reasons = json_array();
    if (!json_is_true(json_object_get(store, "writable"))) {
        const char *e = json_string_value(json_object_get(store, "error"));
        json_array_append_new(reasons, json_sprintf("the state store cannot be written: %s", e ? e : "?"));
    }
    if (json_is_true(json_object_get(store, "damaged"))) {
        const char *e = json_string_value(json_object_get(store, "damage"));
        json_array_append_new(reasons, json_sprintf("the state database is damaged (%s): stop airlockd, restore "
                                                    "it from a backup or start with --init-state",
                                                    e ? e : "?"));
    }
    /* a full disk shows before the first write fails on it */
    struct statvfs vfs;
    if (statvfs(d->cfg.state_dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < STATE_DISK_LOW_BYTES)
        json_array_append_new(reasons, json_sprintf("the state disk (%s) has %llu bytes free", d->cfg.state_dir,
                                                    (unsigned long long)vfs.f_bavail * vfs.f_frsize));
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:i}", "status", json_array_size(reasons) ? "degraded" : "ok", "version",
                          AIRLOCK_VERSION, "region", d->cfg.region, "backend", d->backend->name, "sandboxes",
                          (int)sandbox_count(d));
    if (!j) {
        json_decref(store);
        json_decref(reasons);
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    if (json_array_size(reasons))
        json_object_set(j, "reasons", reasons);
    json_decref(reasons);
    /* which backends a create may name, and why one is missing */
    json_object_set_new(j, "isolation",
                        json_pack("{s:s,s:[s,s*],s:s*}", "default", d->cfg.isolation == ISO_VM ? "vm" : "jail",
                                  "available", "jail", d->vm_backend ? "vm" : NULL, "vm_unavailable",
                                  d->vm_backend ? NULL : d->vm_error));
    const char *full = http_query(req, "full");
    if (full && strcmp(full, "0") != 0) {
        json_object_set_new(j, "store", store);
        store = NULL;
        json_object_set_new(j, "disk", disk_json(d->cfg.state_dir));
        json_t *pools = pool_stats_json(d->pool), *z;
        /* counts only: the hit and build counters stay admin-only (/v1/pool) */
        json_object_set_new(j, "pools",
                            json_pack("{s:O?,s:O?,s:O?}", "enabled", json_object_get(pools, "enabled"), "ready",
                                      json_object_get(pools, "ready"), "target", json_object_get(pools, "target")));
        json_decref(pools);
        /* not ready: REPLs are exec'd (slower to start), nothing fails */
        pid_t zpid = d->backend->zygote_pid ? d->backend->zygote_pid(d->backend_state) : 0;
        z = json_pack("{s:b,s:b,s:i}", "enabled", !d->cfg.no_zygote, "ready", zpid > 0, "pid", (int)zpid);
        json_object_set_new(j, "zygote", z);
    }
    json_decref(store);
    http_reply_json(req, 200, j);
}

/* Admin only: the hit and build counters tell how busy other keys are. */
void api_pool(struct http_req *req) { http_reply_json(req, 200, pool_stats_json(req->d->pool)); }

struct held_template {
    struct templates *t;
    struct tmpl *tp;
};

static void release_template(struct held_template *h)
{
    if (h->tp)
        templates_release(h->t, h->tp);
}

/* Acquire the built template `name` into held and take its limits (cut to
 * the daemon's ceilings; tmpl_spec.c checked their lower bounds) as p's
 * defaults; -errno after replying. */
static int use_template(struct http_req *req, const char *name, struct held_template *held,
                        struct sandbox_params *p)
{
    struct daemon *d = req->d;
    const struct config *cfg = &d->cfg;
    struct op_error terr = {0};
    int r = templates_acquire(d->templates, name, &held->tp, &terr);
    if (r < 0) {
        /* an unknown template in a create body is a bad request (GET and
         * DELETE of /v1/templates/{name} answer 404 for it) */
        struct api_error err = {0};
        api_error_from_op(&err, r, &terr);
        if (terr.code == ERR_NO_TEMPLATE)
            err.status = 400;
        http_reply_error(req, &err);
        return r;
    }
    p->tmpl = tmpl_info(held->tp);
    json_t *limits = tmpl_limits(held->tp), *v;
    if ((v = json_object_get(limits, "memory_mb")))
        p->memory_mb = (unsigned)MIN(json_integer_value(v), (json_int_t)cfg->max_memory_mb);
    if ((v = json_object_get(limits, "timeout_s")))
        p->timeout_s = (unsigned)MIN(json_integer_value(v), (json_int_t)cfg->max_timeout_s);
    if ((v = json_object_get(limits, "cpus")))
        p->cpus = MIN(json_number_value(v), (double)d->nproc);
    return 0;
}

void api_sandbox_create(struct http_req *req)
{
    struct daemon *d = req->d;
    const struct config *cfg = &d->cfg;
    struct sandbox_params p = {
        .tmpl = &d->host_template,
        .per_key_max = req->key.admin && cfg->admin_unlimited ? 0 : cfg->max_sandboxes_per_key,
        .timeout_s = cfg->default_timeout_s,
        .memory_mb = 1024 < cfg->max_memory_mb ? 1024 : cfg->max_memory_mb,
        .cpus = 1.0,
    };

    const char *tmpl = "host";
    if (api_field_string(req, "template", &tmpl) < 0)
        return;
    /* held (cannot be removed) until the sandbox is in the registry */
    __attribute__((cleanup(release_template))) struct held_template held = {.t = d->templates};
    if (strcmp(tmpl, d->host_template.name) != 0 && use_template(req, tmpl, &held, &p) < 0)
        return;
    /* freed on every early return; handed to sandbox_create below */
    __attribute__((cleanup(egress_policy_freep))) struct egress_policy *pol = NULL;
    if (api_egress_parse(req, json_object_get(req->body, "egress"), &pol) < 0)
        return;
    p.egress = pol != NULL;
    p.isolation = cfg->isolation;
    const char *iso = NULL;
    if (api_field_string(req, "isolation", &iso) < 0)
        return;
    if (iso && strcmp(iso, "jail") == 0) {
        p.isolation = ISO_JAIL;
    } else if (iso && strcmp(iso, "vm") == 0) {
        p.isolation = ISO_VM;
    } else if (iso) {
        http_reply_errorf(req, 400, "invalid_request", "isolation must be \"jail\" or \"vm\"");
        return;
    }
    if (p.egress && p.isolation == ISO_VM) {
        http_reply_errorf(req, 400, "egress_unavailable",
                          "egress (allow-lists and open egress) is served on the jail backend only; vm sandboxes "
                          "have no network interface and are sealed");
        return;
    }
    if (p.isolation == ISO_VM && !d->vm_backend) {
        http_reply_errorf(req, 400, "isolation_unavailable", "the vm backend is not available on this host: %s",
                          d->vm_error);
        return;
    }
    const char *region = NULL;
    if (api_field_string(req, "region", &region) < 0)
        return;
    if (region && strcmp(region, cfg->region) != 0) {
        http_reply_errorf(req, 400, "region_unavailable", "region '%s' is not served here; this deployment serves: %s",
                          region, cfg->region);
        return;
    }
    if (api_field_uint(req, "timeout_s", 1, cfg->max_timeout_s, &p.timeout_s) < 0 ||
        api_field_uint(req, "memory_mb", 64, cfg->max_memory_mb, &p.memory_mb) < 0)
        return;
    if (p.isolation == ISO_VM && p.memory_mb < VM_MIN_MEMORY_MB) {
        http_reply_errorf(req, 400, "invalid_request",
                          "isolation \"vm\" needs memory_mb >= %u (the guest's kernel and Python live in it)",
                          VM_MIN_MEMORY_MB);
        return;
    }
    json_t *cpus = json_object_get(req->body, "cpus");
    if (cpus && !json_is_null(cpus)) {
        double c = json_is_number(cpus) ? json_number_value(cpus) : NAN;
        if (!(c >= 0.1 && c <= (double)d->nproc)) {
            http_reply_errorf(req, 400, "invalid_request", "cpus must be a number between 0.1 and %u", d->nproc);
            return;
        }
        p.cpus = c;
    }
    if (api_field_env(req, "env", ENV_MAX_BYTES, &p.env) < 0)
        return;
    /* the template's environment, under the request's own variables */
    json_auto_t *merged = NULL;
    if (held.tp && json_object_size(tmpl_env(held.tp))) {
        merged = json_deep_copy(tmpl_env(held.tp));
        if (p.env)
            json_object_update(merged, p.env);
        p.env = merged;
    }
    /* the proxy is the sandbox's only way out: every common client (pip,
     * urllib, requests, curl) reads these; loopback stays direct. A jail
     * sandbox created sealed gets them too, pointing at nothing (connection
     * refused) until a PUT .../egress makes the proxy: the environment is
     * fixed at create time, the policy is not. */
    json_auto_t *with_proxy = NULL;
    if (p.egress || p.isolation == ISO_JAIL) {
        with_proxy = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "HTTP_PROXY", EGRESS_PROXY_URL, "HTTPS_PROXY",
                               EGRESS_PROXY_URL, "ALL_PROXY", EGRESS_PROXY_URL, "http_proxy", EGRESS_PROXY_URL,
                               "https_proxy", EGRESS_PROXY_URL, "all_proxy", EGRESS_PROXY_URL, "NO_PROXY",
                               "localhost,127.0.0.1,::1", "no_proxy", "localhost,127.0.0.1,::1");
        if (p.env)
            json_object_update(with_proxy, p.env);
        p.env = with_proxy;
    }
    json_t *md = json_object_get(req->body, "metadata");
    if (md && !json_is_null(md)) {
        if (!json_is_object(md)) {
            http_reply_errorf(req, 400, "invalid_request", "metadata must be an object");
            return;
        }
        if (json_dumpb(md, NULL, 0, JSON_COMPACT) > METADATA_MAX_BYTES) {
            http_reply_errorf(req, 400, "invalid_request", "metadata is larger than %u KiB", METADATA_MAX_BYTES / 1024);
            return;
        }
        p.metadata = md;
    }

    cleanup_sandbox struct sandbox *sb = NULL;
    struct op_error err = {0};
    p.egress_policy = pol;
    pol = NULL; /* sandbox_create's now */
    int r = sandbox_create(d, &p, req->key.id, &sb, &err);
    if (r < 0) {
        /* a warm-up that raises is the template's defect, answered 422
         * (which http.c does not log): the operator hears of it here */
        if (err.code == ERR_WARMUP)
            log_warn("create: %s", err.msg);
        api_reply_op_error(req, r, &err);
        return;
    }
    http_mark(req, HTTP_T_CREATED);
    http_reply_json(req, 201, sandbox_json(sb, &req->key));
}

/* GET /v1/sandboxes: the caller's live sandboxes, filtered by state,
 * template and metadata, paginated by limit and next_token (listq.h). */
void api_sandbox_list(struct http_req *req)
{
    struct listq q;
    char err[256];
    if (listq_parse(&q, http_query(req, "state"), http_query(req, "template"), http_query(req, "metadata"),
                    http_query(req, "limit"), http_query(req, "next_token"), err, sizeof(err)) < 0) {
        http_reply_errorf(req, 400, "invalid_request", "%s", err);
        return;
    }
    json_t *all = sandbox_list_json(req->d, &req->key);
    json_t *next = NULL;
    json_t *page = all ? listq_page(json_object_get(all, "sandboxes"), &q, &next) : NULL;
    json_decref(all);
    listq_free(&q);
    if (!page) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    http_reply_json(req, 200, json_pack("{s:o,s:o}", "sandboxes", page, "next_token", next ? next : json_null()));
}

void api_sandbox_get(struct http_req *req)
{
    json_t *j = NULL;
    struct op_error err = {0};
    int r = sandbox_describe(req->d, &req->key, req->param, &j, &err);
    if (r < 0)
        api_reply_op_error(req, r, &err);
    else
        http_reply_json(req, 200, j);
}

void api_sandbox_delete(struct http_req *req)
{
    /* a paused sandbox too: the backend kills frozen processes */
    cleanup_sandbox struct sandbox *sb = api_route_sandbox_any(req);
    if (!sb)
        return;
    int r = sandbox_destroy_detached(sb, "deleted", req->key.id);
    if (r > 0) {
        /* destroyed, but the state store refused the record: 202, and the
         * record is written when it can be (GET answers from memory until) */
        http_reply_json(req, 202, json_pack("{s:s,s:s,s:b}", "id", req->param, "state", "destroyed", "recorded", 0));
        return;
    }
    if (r < 0) {
        /* lost a race with the reaper or another DELETE */
        struct api_error err = {0};
        api_error_gone(&err, sb);
        if (err.status == 503)
            api_error_set(&err, -ENOENT, 404, "not_found", "sandbox %s was destroyed", req->param);
        http_reply_error(req, &err);
        return;
    }
    http_reply_json(req, 200, json_pack("{s:s,s:s}", "id", req->param, "state", "destroyed"));
}

void api_sandbox_timeout(struct http_req *req)
{
    unsigned timeout_s = 0;
    int r = api_field_uint(req, "timeout_s", 1, req->d->cfg.max_timeout_s, &timeout_s);
    if (r < 0)
        return;
    if (r > 0) {
        http_reply_errorf(req, 400, "invalid_request", "timeout_s is required");
        return;
    }
    cleanup_sandbox struct sandbox *sb = api_route_sandbox_any(req);
    if (!sb)
        return;
    bool extend_only = false;
    if (api_field_bool(req, "extend_only", &extend_only) < 0)
        return;
    r = sandbox_set_timeout(sb, timeout_s, extend_only, req->key.id);
    if (r == -ESRCH) {
        struct api_error err = {0};
        api_error_gone(&err, sb);
        http_reply_error(req, &err);
        return;
    }
    if (r < 0) {
        struct api_error err = {0};
        api_error_audit(&err, r, "the new lifetime");
        http_reply_error(req, &err);
        return;
    }
    http_reply_json(req, 200, sandbox_json(sb, &req->key));
}

void api_sandbox_logs(struct http_req *req)
{
    /* also for destroyed sandboxes: only the record must exist */
    json_t *events = NULL;
    struct op_error err = {0};
    int r = sandbox_logs_json(req->d, &req->key, req->param, &events, &err);
    if (r < 0)
        api_reply_op_error(req, r, &err);
    else
        http_reply_json(req, 200, events);
}

/* POST /v1/sandboxes/{id}/pause and /resume: 200 and the sandbox object,
 * also when it already was paused / running (both are idempotent: a
 * client that retries after a lost answer gets the same answer). */
static void pause_or_resume(struct http_req *req, bool pause)
{
    cleanup_sandbox struct sandbox *sb = api_route_sandbox_any(req);
    if (!sb)
        return;
    struct op_error err = {0};
    int r = pause ? sandbox_pause(sb, req->key.id, &err) : sandbox_resume(sb, req->key.id, &err);
    if (r < 0) {
        api_reply_op_error(req, r, &err);
        return;
    }
    http_reply_json(req, 200, sandbox_json(sb, &req->key));
}

void api_sandbox_pause(struct http_req *req) { pause_or_resume(req, true); }
void api_sandbox_resume(struct http_req *req) { pause_or_resume(req, false); }
