/* e2b_api.c - E2B's control plane (E2B's spec/openapi.yml) over Airlock's
 * sandboxes: create, list, get, kill, timeout, connect (docs/e2b.md).
 *
 * Create and get reuse Airlock's handlers (api_sandboxes.c) on a body
 * translated into Airlock's fields, and reshape the answer (reply_hook).
 * What E2B offers that would open the seal (internet access, public
 * traffic to sandbox ports) is refused in E2B's error shape, saying why. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_errors.h"
#include "e2b.h"
#include "listq.h"
#include "registry.h"
#include "util.h"

#define SEAL_INTERNET                                                                                              \
    "Airlock sandboxes are sealed: they have no network access (no internet, no egress), so "                    \
    "allow_internet_access/network.allowOut cannot be granted"
#define SEAL_PUBLIC                                                                                                \
    "Airlock sandboxes are sealed: nothing outside can reach a port inside one, so there are no public "         \
    "sandbox URLs (network.allowPublicTraffic, sandbox ports)"

static const char *connect_code(unsigned status)
{
    switch (status) {
    case 400: return "invalid_argument";
    case 401: return "unauthenticated";
    case 403: return "permission_denied";
    case 404:
    case 410: return "not_found";
    case 409: return "already_exists";
    case 413:
    case 429: return "resource_exhausted";
    case 501: return "unimplemented";
    case 503: return "unavailable";
    case 504: return "deadline_exceeded";
    default: return "internal";
    }
}

json_t *e2b_error_json(bool connect, unsigned status, const char *message)
{
    if (connect)
        return json_pack("{s:s,s:s}", "code", connect_code(status), "message", message);
    return json_pack("{s:i,s:s}", "code", (int)status, "message", message);
}

/* E2B's own template names for its base and code-interpreter images: both
 * are Airlock's default (host) template, which has Python and bash. */
static const char *template_name(const char *e2b)
{
    if (!e2b || !strcmp(e2b, "base") || !strncmp(e2b, "code-interpreter", 16))
        return "host";
    return e2b;
}

static void reply_empty(struct http_req *req, unsigned status)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    http_reply_response(req, status, resp);
}

static void set_body(struct http_req *req, json_t *body)
{
    json_decref(req->body);
    req->body = body;
}

/* the key the caller authenticated with: E2B's envdAccessToken, which the
 * SDK sends back as X-Access-Token on every data-plane call */
static const char *caller_key(struct http_req *req)
{
    const char *k = http_header(req, "X-API-Key");
    return k ? k : http_header(req, "X-Access-Token");
}

/* E2B's Sandbox (the create and connect answer) from Airlock's object. */
static json_t *sandbox_short(struct http_req *req, const json_t *sb)
{
    const char *tmpl = json_string_value(json_object_get(sb, "template"));
    /* trafficAccessToken too: the code interpreter's /contexts calls send
     * only that one */
    return json_pack("{s:s?,s:s?,s:s?,s:s,s:s,s:s?,s:s?,s:n}", "templateID", tmpl, "sandboxID",
                     json_string_value(json_object_get(sb, "id")), "alias", tmpl, "clientID", "airlock",
                     "envdVersion", E2B_ENVD_VERSION, "envdAccessToken", caller_key(req), "trafficAccessToken",
                     caller_key(req), "domain");
}

/* E2B's SandboxDetail / ListedSandbox from Airlock's object. */
static json_t *sandbox_detail(const json_t *sb)
{
    const char *tmpl = json_string_value(json_object_get(sb, "template"));
    const char *state = json_string_value(json_object_get(sb, "state"));
    double cpus = json_number_value(json_object_get(sb, "cpus"));
    json_t *md = json_object_get(sb, "metadata");
    return json_pack("{s:s?,s:s?,s:s?,s:s,s:s?,s:s?,s:i,s:I,s:i,s:o,s:s,s:s,s:b}", "templateID", tmpl, "sandboxID",
                     json_string_value(json_object_get(sb, "id")), "alias", tmpl, "clientID", "airlock",
                     "startedAt", json_string_value(json_object_get(sb, "created_at")), "endAt",
                     json_string_value(json_object_get(sb, "expires_at")), "cpuCount",
                     (int)(cpus < 1 ? 1 : ceil(cpus)), "memoryMB",
                     json_integer_value(json_object_get(sb, "memory_mb")), "diskSizeMB", 0, "metadata",
                     json_is_object(md) ? json_incref(md) : json_object(), "state",
                     state && !strcmp(state, "paused") ? "paused" : "running", "envdVersion", E2B_ENVD_VERSION,
                     "allowInternetAccess", 0);
}

static void create_hook(struct http_req *req, unsigned *status, json_t **body)
{
    json_t *e = sandbox_short(req, *body);
    json_decref(*body);
    *body = e;
    *status = 201;
}

/* Refuse what the seal cannot give, in E2B's words; true if refused. */
static bool refuse_unsealing(struct http_req *req)
{
    json_t *b = req->body;
    if (json_is_true(json_object_get(b, "allow_internet_access"))) {
        http_reply_errorf(req, 400, "sealed", SEAL_INTERNET);
        return true;
    }
    json_t *net = json_object_get(b, "network");
    if (json_is_object(net)) {
        json_t *out = json_object_get(net, "allowOut");
        if ((json_is_array(out) && json_array_size(out)) || json_object_get(net, "egressProxy") ||
            json_object_get(net, "rules")) {
            http_reply_errorf(req, 400, "sealed", SEAL_INTERNET);
            return true;
        }
        if (json_is_true(json_object_get(net, "allowPublicTraffic"))) {
            http_reply_errorf(req, 400, "sealed", SEAL_PUBLIC);
            return true;
        }
    }
    if (json_is_object(json_object_get(b, "mcp")) && json_object_size(json_object_get(b, "mcp"))) {
        http_reply_errorf(req, 400, "sealed",
                          "Airlock sandboxes are sealed: E2B's MCP gateway is reached through a public sandbox URL "
                          "and its servers need the internet; use `airlock mcp` instead");
        return true;
    }
    if (json_is_true(json_object_get(b, "autoPause"))) {
        http_reply_errorf(req, 400, "unsupported",
                          "Airlock does not pause sandboxes: a sandbox ends when its timeout does (autoPause)");
        return true;
    }
    json_t *vm = json_object_get(b, "volumeMounts");
    if (json_is_array(vm) && json_array_size(vm)) {
        http_reply_errorf(req, 400, "unsupported", "Airlock has no volumes (volumeMounts)");
        return true;
    }
    return false;
}

void e2b_sandbox_create(struct http_req *req)
{
    if (refuse_unsealing(req))
        return;
    json_t *in = req->body;
    json_t *tid = json_object_get(in, "templateID");
    if (tid && !json_is_string(tid)) {
        http_reply_errorf(req, 400, "invalid_request", "templateID must be a string");
        return;
    }
    json_t *b = json_pack("{s:s}", "template", template_name(json_string_value(tid)));
    if (!b) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    json_t *v;
    if ((v = json_object_get(in, "timeout")) && !json_is_null(v))
        json_object_set(b, "timeout_s", v);
    if ((v = json_object_get(in, "metadata")) && !json_is_null(v))
        json_object_set(b, "metadata", v);
    if ((v = json_object_get(in, "envVars")) && !json_is_null(v))
        json_object_set(b, "env", v);
    set_body(req, b);
    req->reply_hook = create_hook;
    api_sandbox_create(req);
}

static void get_hook(struct http_req *req, unsigned *status, json_t **body)
{
    const char *state = json_string_value(json_object_get(*body, "state"));
    json_t *e;
    if (!state || (strcmp(state, "running") != 0 && strcmp(state, "paused") != 0)) {
        /* E2B forgets a killed sandbox: so does its API here */
        char msg[160];
        snprintf(msg, sizeof(msg), "sandbox %s not found", req->param);
        e = e2b_error_json(false, 404, msg);
        *status = 404;
    } else {
        e = sandbox_detail(*body);
    }
    json_decref(*body);
    *body = e;
}

void e2b_sandbox_get(struct http_req *req)
{
    req->reply_hook = get_hook;
    api_sandbox_get(req);
}

/* E2B's state filter is a comma list of running and paused (NULL: both);
 * a sandbox being destroyed is neither. */
static bool state_matches(const char *filter, const char *state)
{
    if (!state || (strcmp(state, "running") != 0 && strcmp(state, "paused") != 0))
        return false;
    if (!filter)
        return true;
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", filter);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (!strcmp(t, state))
            return true;
    return false;
}

/* startedAfter (an ISO 8601 UTC time, as the SDK's toISOString writes it)
 * against Airlock's created_at (the same format, without milliseconds):
 * their first 19 characters compare as times */
static bool started_after(const json_t *sb, const char *after)
{
    const char *created = json_string_value(json_object_get(sb, "created_at"));
    return !after || (created && strncmp(created, after, 19) >= 0);
}

static void list(struct http_req *req, bool paginated)
{
    struct listq q;
    char err[256];
    const char *order = paginated ? http_query(req, "order") : NULL;
    const char *after = paginated ? http_query(req, "startedAfter") : NULL;
    if (order && strcasecmp(order, "asc") != 0) {
        http_reply_errorf(req, 400, "invalid_request",
                          "order=%s is not available: Airlock pages sandboxes in the order of their ids", order);
        return;
    }
    if (after && (strlen(after) < 19 || after[4] != '-' || after[10] != 'T')) {
        http_reply_errorf(req, 400, "invalid_request", "startedAfter must be an ISO 8601 time (UTC)");
        return;
    }
    const char *tmpl = paginated ? http_query(req, "template") : NULL;
    if (listq_parse(&q, NULL, tmpl ? template_name(tmpl) : NULL, http_query(req, "metadata"),
                    paginated ? http_query(req, "limit") : NULL, paginated ? http_query(req, "nextToken") : NULL,
                    err, sizeof(err)) < 0) {
        http_reply_errorf(req, 400, "invalid_request", "%s", err);
        return;
    }
    json_t *all = sandbox_list_json(req->d, &req->key);
    json_t *next = NULL;
    json_t *page = all ? listq_page(json_object_get(all, "sandboxes"), &q, &next) : NULL;
    json_decref(all);
    listq_free(&q);
    json_t *out = json_array();
    if (!page || !out) {
        json_decref(page);
        json_decref(next);
        json_decref(out);
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    size_t i;
    json_t *sb;
    const char *filter = paginated ? http_query(req, "state") : NULL;
    json_array_foreach(page, i, sb)
    {
        if (started_after(sb, after) && state_matches(filter, json_string_value(json_object_get(sb, "state"))))
            json_array_append_new(out, sandbox_detail(sb));
    }
    json_decref(page);
    http_reply_json(req, 200, out);
    if (next && req->response) /* E2B pages with this header, not in the body */
        MHD_add_response_header(req->response, "x-next-token", json_string_value(next));
    json_decref(next);
}

void e2b_sandbox_list(struct http_req *req) { list(req, true); }
void e2b_sandbox_list_v1(struct http_req *req) { list(req, false); }

void e2b_sandbox_kill(struct http_req *req)
{
    cleanup_sandbox struct sandbox *sb = api_route_sandbox_any(req);
    if (!sb)
        return;
    int r = sandbox_destroy_detached(sb, "deleted", req->key.id);
    if (r < 0) { /* lost a race with the reaper or another kill */
        http_reply_errorf(req, 404, "not_found", "sandbox %s not found", req->param);
        return;
    }
    reply_empty(req, 204);
}

/* timeout: seconds from now; extend_only keeps a later end (connect) */
static int apply_timeout(struct http_req *req, struct sandbox *sb, bool required, bool extend_only)
{
    unsigned timeout_s = 0;
    json_t *t = json_object_get(req->body, "timeout");
    if (!t || json_is_null(t)) {
        if (required)
            http_reply_errorf(req, 400, "invalid_request", "timeout is required");
        return required ? -EINVAL : 0;
    }
    if (!json_is_integer(t) || json_integer_value(t) < 0 ||
        json_integer_value(t) > (json_int_t)req->d->cfg.max_timeout_s) {
        http_reply_errorf(req, 400, "invalid_request", "timeout must be an integer between 0 and %u seconds",
                          req->d->cfg.max_timeout_s);
        return -EINVAL;
    }
    timeout_s = (unsigned)json_integer_value(t);
    if (timeout_s == 0)
        timeout_s = 1;
    int r = sandbox_set_timeout(sb, timeout_s, extend_only, req->key.id);
    if (r == -ESRCH) {
        http_reply_errorf(req, 404, "not_found", "sandbox %s not found", req->param);
        return r;
    }
    if (r < 0) {
        http_reply_errorf(req, 503, "unavailable", "the new timeout could not be recorded: %s", strerror(-r));
        return r;
    }
    return 0;
}

void e2b_sandbox_timeout(struct http_req *req)
{
    cleanup_sandbox struct sandbox *sb = api_route_sandbox_any(req);
    if (!sb || apply_timeout(req, sb, true, false) < 0)
        return;
    reply_empty(req, 204);
}

/* A pause or resume refused, in E2B's error shape. E2B's SDK reads any 409
 * from pause as "already paused" (it returns false): a pause refused
 * because a call still runs (sandbox_busy) is answered 400 instead, so the
 * SDK throws with the reason. */
static void reply_pause_error(struct http_req *req, int r, const struct op_error *err)
{
    struct api_error ae = {0};
    api_error_from_op(&ae, r, err);
    if (err->code == ERR_BUSY)
        ae.status = 400;
    http_reply_errorf(req, ae.status, ae.code, "%s", ae.message);
}

static void reply_short(struct http_req *req, struct sandbox *sb, unsigned status)
{
    json_t *native = sandbox_json(sb, &req->key);
    json_t *e = native ? sandbox_short(req, native) : NULL;
    json_decref(native);
    if (!e) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    http_reply_json(req, status, e);
}

/* Resume, then the timeout (a paused lifetime stands still, so it extends
 * from now), then the sandbox: 201 when it was paused. A running one is 200
 * for connect, 409 for the deprecated resume. */
static void resume_and_reply(struct http_req *req, bool running_ok)
{
    cleanup_sandbox struct sandbox *sb = api_route_sandbox_any(req);
    if (!sb)
        return;
    struct op_error err = {0};
    int r = sandbox_resume(sb, req->key.id, &err);
    if (r < 0) {
        reply_pause_error(req, r, &err);
        return;
    }
    if (r > 0 && !running_ok) {
        http_reply_errorf(req, 409, "conflict", "sandbox %s is already running", req->param);
        return;
    }
    if (apply_timeout(req, sb, false, true) < 0)
        return;
    reply_short(req, sb, r == 0 ? 201 : 200);
}

/* E2B's connect resumes a paused sandbox (201), a running one answers 200. */
void e2b_sandbox_connect(struct http_req *req)
{
    resume_and_reply(req, true);
}

/* POST /sandboxes/{id}/pause: 204; 409 when already paused (E2B's SDK
 * then returns false). The memory is always kept: "memory": false (a
 * filesystem-only pause) gets the full pause, which resumes the same. */
void e2b_sandbox_pause(struct http_req *req)
{
    cleanup_sandbox struct sandbox *sb = api_route_sandbox_any(req);
    if (!sb)
        return;
    struct op_error err = {0};
    int r = sandbox_pause(sb, req->key.id, &err);
    if (r < 0)
        reply_pause_error(req, r, &err);
    else if (r > 0)
        http_reply_errorf(req, 409, "conflict", "sandbox %s is already paused", req->param);
    else
        reply_empty(req, 204);
}

/* The deprecated POST /sandboxes/{id}/resume: 201 and the sandbox; 409
 * when it is running already. */
void e2b_sandbox_resume(struct http_req *req)
{
    resume_and_reply(req, false);
}

void e2b_sandbox_sealed(struct http_req *req)
{
    json_t *out = json_object_get(req->body, "allowOut");
    if (json_is_true(json_object_get(req->body, "allowPublicTraffic")))
        http_reply_errorf(req, 400, "sealed", SEAL_PUBLIC);
    else if ((json_is_array(out) && json_array_size(out)) || json_object_get(req->body, "rules") ||
             json_object_get(req->body, "egressProxy"))
        http_reply_errorf(req, 400, "sealed", SEAL_INTERNET);
    else
        http_reply_errorf(req, 400, "sealed",
                          "Airlock sandboxes are sealed: their network cannot be changed (they have none)");
}

void e2b_sandbox_unsupported(struct http_req *req)
{
    http_reply_errorf(req, 400, "unsupported",
                      "Airlock does not snapshot or fork sandboxes through the E2B API (pause and resume, "
                      "and connect to a paused sandbox, work)");
}
