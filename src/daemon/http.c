/* http.c - libmicrohttpd glue: one thread per connection (handlers may block
 * on a sandbox's agent), the route table, request bodies, and the JSON error
 * envelope. What is admitted (sizes, the Bearer key, rate and in-flight
 * limits) is admission.c's; the request path continues in api_*.c, reached
 * only through ROUTES[]. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "admission.h"
#include "api.h"
#include "e2b.h"
#include "buf.h"
#include "faultinj.h"
#include "log.h"
#include "path.h"
#include "util.h"

enum {
    R_NOAUTH = 1, /* no Authorization needed */
    R_ADMIN = 2,  /* admin key needed */
    R_JSON = 4,   /* a JSON object body, parsed into req->body */
    R_UPLOAD = 8, /* raw body streamed to the handler (PUT files) */
    R_RAW = 16,   /* the whole raw body, in req->raw (E2B: Connect envelopes, multipart) */
    R_CONNECT = 32, /* E2B listener: a Connect RPC (its errors in Connect's shape) */
};

struct route_method {
    const char *method;
    unsigned flags;
    /* the whole body is here (R_JSON: parsed into req->body; R_UPLOAD: the
     * last chunk was handed to chunk) */
    void (*handle)(struct http_req *req);
    const char *query[8]; /* accepted query parameters */
    /* R_UPLOAD only: the body streams to the handler as it arrives */
    void (*begin)(struct http_req *req); /* headers admitted, before the body */
    void (*chunk)(struct http_req *req, const char *data, size_t size);
    void (*cleanup)(struct http_req *req); /* the request is over, whatever happened */
};

struct route {
    const char *pattern; /* "*" matches one path segment: the {id} */
    struct route_method m[4];
};

static const struct route ROUTES[] = {
    {"/v1/healthz", {{"GET", R_NOAUTH, api_healthz, {"full"}}}},
    {"/v1/sandboxes", {{"POST", R_JSON, api_sandbox_create, {NULL}}, {"GET", 0, api_sandbox_list, {"state", "template", "metadata", "limit", "next_token"}}}},
    {"/v1/sandboxes/*", {{"GET", 0, api_sandbox_get, {NULL}}, {"DELETE", 0, api_sandbox_delete, {NULL}}}},
    {"/v1/sandboxes/*/timeout", {{"POST", R_JSON, api_sandbox_timeout, {NULL}}}},
    {"/v1/sandboxes/*/pause", {{"POST", 0, api_sandbox_pause, {NULL}}}},
    {"/v1/sandboxes/*/resume", {{"POST", 0, api_sandbox_resume, {NULL}}}},
    {"/v1/sandboxes/*/files",
     {{"PUT", R_UPLOAD, api_files_put_end, {"path", "mode"}, api_files_put_begin, api_files_put_data,
       api_files_put_cleanup},
      {"POST", R_UPLOAD, api_files_batch_end, {NULL}, api_files_batch_begin, api_files_batch_data,
       api_files_batch_cleanup},
      {"GET", 0, api_files_get, {"path"}},
      {"DELETE", 0, api_files_delete, {"path", "recursive"}}}},
    {"/v1/sandboxes/*/files/list", {{"GET", 0, api_files_list, {"path", "depth"}}}},
    {"/v1/sandboxes/*/files/info", {{"GET", 0, api_files_info, {"path"}}}},
    {"/v1/sandboxes/*/files/watch", {{"GET", 0, api_files_watch, {"path", "recursive"}}}},
    {"/v1/sandboxes/*/files/mkdir", {{"POST", 0, api_files_mkdir, {"path"}}}},
    {"/v1/sandboxes/*/files/rename", {{"POST", 0, api_files_rename, {"path", "to", "overwrite"}}}},
    {"/v1/sandboxes/*/code", {{"POST", R_JSON, api_code, {NULL}}}},
    {"/v1/sandboxes/*/exec", {{"POST", R_JSON, api_exec, {NULL}}}},
    {"/v1/sandboxes/*/contexts", {{"POST", R_JSON, api_contexts_create, {NULL}}, {"GET", 0, api_contexts_list, {NULL}}}},
    {"/v1/sandboxes/*/contexts/*", {{"GET", 0, api_context_get, {NULL}}, {"DELETE", 0, api_context_delete, {NULL}}}},
    {"/v1/sandboxes/*/contexts/*/restart", {{"POST", 0, api_context_restart, {NULL}}}},
    {"/v1/sandboxes/*/processes", {{"GET", 0, api_procs_list, {"state"}}}},
    {"/v1/sandboxes/*/processes/*", {{"GET", 0, api_proc_get, {"wait_s"}}}},
    {"/v1/sandboxes/*/processes/*/signal", {{"POST", R_JSON, api_proc_signal, {NULL}}}},
    {"/v1/sandboxes/*/processes/*/stdin", {{"POST", R_JSON, api_proc_stdin, {NULL}}}},
    {"/v1/sandboxes/*/processes/*/resize", {{"POST", R_JSON, api_proc_resize, {NULL}}}},
    {"/v1/sandboxes/*/processes/*/output", {{"GET", 0, api_proc_output, {"from"}}}},
    {"/v1/sandboxes/*/logs", {{"GET", 0, api_sandbox_logs, {NULL}}}},
    {"/v1/sandboxes/*/fork", {{"POST", R_JSON, api_sandbox_fork, {NULL}}}},
    {"/v1/sandboxes/*/diff/*", {{"GET", 0, api_sandbox_diff, {NULL}}}},
    {"/v1/sandboxes/*/merge_into/*", {{"POST", 0, api_sandbox_merge_into, {NULL}}}},
    {"/v1/sandboxes/*/egress", {{"GET", 0, api_egress_get, {NULL}}, {"PUT", R_JSON, api_egress_put, {NULL}}}},
    {"/v1/sandboxes/*/egress/log", {{"GET", 0, api_egress_log, {NULL}}}},
    {"/v1/keys", {{"POST", R_JSON | R_ADMIN, api_keys_create, {NULL}}, {"GET", R_ADMIN, api_keys_list, {NULL}}}},
    {"/v1/keys/*", {{"DELETE", R_ADMIN, api_keys_revoke, {NULL}}}},
    {"/v1/pool", {{"GET", R_ADMIN, api_pool, {NULL}}}},
    {"/v1/templates", {{"POST", R_JSON | R_ADMIN, api_template_build, {"cache"}}, {"GET", 0, api_template_list, {NULL}}}},
    {"/v1/templates/*", {{"GET", 0, api_template_get, {NULL}}, {"DELETE", R_ADMIN, api_template_delete, {NULL}}}},
    {"/v1/builds/*", {{"GET", R_ADMIN, api_build_get, {"since"}}}},
};

/* The E2B-compatible listener (--e2b-listen, docs/e2b.md): E2B's control
 * plane (its OpenAPI spec) and the data plane of its in-sandbox daemon envd
 * (Connect RPCs and /files) and code interpreter (/execute), all on one
 * port: E2B's SDKs send the sandbox of a data-plane call in the
 * E2b-Sandbox-Id header when E2B_SANDBOX_URL is set. Not in ROUTES[]: these
 * are E2B's routes, documented by E2B; docs/e2b.md lists what maps. */
static const struct route E2B_ROUTES[] = {
    {"/health", {{"GET", 0, e2b_health, {NULL}}}},
    {"/sandboxes", {{"POST", R_JSON, e2b_sandbox_create, {NULL}}, {"GET", 0, e2b_sandbox_list_v1, {"metadata"}}}},
    {"/v2/sandboxes",
     {{"POST", R_JSON, e2b_sandbox_create, {NULL}},
      {"GET", 0, e2b_sandbox_list, {"metadata", "state", "limit", "nextToken", "template", "order", "startedAfter"}}}},
    {"/sandboxes/*", {{"GET", 0, e2b_sandbox_get, {NULL}}, {"DELETE", 0, e2b_sandbox_kill, {NULL}}}},
    {"/sandboxes/*/timeout", {{"POST", R_JSON, e2b_sandbox_timeout, {NULL}}}},
    {"/sandboxes/*/connect", {{"POST", R_JSON, e2b_sandbox_connect, {NULL}}}},
    {"/v2/sandboxes/*/connect", {{"POST", R_JSON, e2b_sandbox_connect, {NULL}}}},
    {"/sandboxes/*/network", {{"PUT", R_JSON, e2b_sandbox_sealed, {NULL}}}},
    {"/sandboxes/*/pause", {{"POST", R_JSON, e2b_sandbox_pause, {NULL}}}},
    {"/sandboxes/*/resume", {{"POST", R_JSON, e2b_sandbox_resume, {NULL}}}},
    {"/sandboxes/*/snapshots", {{"POST", R_JSON, e2b_sandbox_unsupported, {NULL}}}},
    {"/sandboxes/*/fork", {{"POST", R_JSON, e2b_sandbox_unsupported, {NULL}}}},
    /* data plane: the sandbox is the E2b-Sandbox-Id header */
    {"/execute", {{"POST", R_JSON, e2b_execute, {"source"}}}},
    {"/process.Process/Start", {{"POST", R_RAW | R_CONNECT, e2b_process_start, {NULL}}}},
    {"/contexts", {{"GET", 0, e2b_contexts_list, {"source"}}, {"POST", R_JSON, e2b_contexts_create, {"source"}}}},
    {"/process.Process/SendInput", {{"POST", R_JSON | R_CONNECT, e2b_process_send_input, {NULL}}}},
    {"/process.Process/CloseStdin", {{"POST", R_JSON | R_CONNECT, e2b_process_close_stdin, {NULL}}}},
    {"/process.Process/Connect", {{"POST", R_RAW | R_CONNECT, e2b_process_connect, {NULL}}}},
    {"/contexts/*", {{"DELETE", 0, e2b_contexts_remove, {"source"}}}},
    {"/contexts/*/restart", {{"POST", R_JSON, e2b_contexts_restart, {"source"}}}},
    {"/process.Process/List", {{"POST", R_JSON | R_CONNECT, e2b_process_list, {NULL}}}},
    {"/process.Process/SendSignal", {{"POST", R_JSON | R_CONNECT, e2b_process_signal, {NULL}}}},
    {"/process.Process/Update", {{"POST", R_JSON | R_CONNECT, e2b_process_update, {NULL}}}},
    {"/files",
     {{"GET", 0, e2b_files_get, {"path", "username", "signature", "signature_expiration"}},
      {"POST", R_UPLOAD, e2b_files_post_end, {"path", "username", "signature", "signature_expiration"},
       e2b_files_post_begin, e2b_files_post_data, e2b_files_post_cleanup}}},
    {"/filesystem.Filesystem/ListDir", {{"POST", R_JSON | R_CONNECT, e2b_fs_list, {NULL}}}},
    {"/filesystem.Filesystem/Stat", {{"POST", R_JSON | R_CONNECT, e2b_fs_stat, {NULL}}}},
    {"/filesystem.Filesystem/MakeDir", {{"POST", R_JSON | R_CONNECT, e2b_fs_make_dir, {NULL}}}},
    {"/filesystem.Filesystem/Move", {{"POST", R_JSON | R_CONNECT, e2b_fs_move, {NULL}}}},
    {"/filesystem.Filesystem/WatchDir", {{"POST", R_RAW | R_CONNECT, e2b_fs_watch_dir, {NULL}}}},
    {"/filesystem.Filesystem/Remove", {{"POST", R_JSON | R_CONNECT, e2b_fs_remove, {NULL}}}},
};

struct listener {
    struct daemon *d;
    const struct route *routes;
    size_t n_routes;
    int flavor; /* enum http_flavor */
};

struct http_server {
    struct daemon *d;
    struct MHD_Daemon *tcp;
    struct MHD_Daemon *unix_sock;
    struct MHD_Daemon *e2b;
    struct listener native_l, e2b_l;
    bool quiesced;
};

/* Everything about one request, from the first callback to completion. */
struct conn_ctx {
    struct http_req req;
    const struct route *rt;
    const struct route_method *m;
    struct buf body;   /* R_JSON */
    bool discard;      /* the reply is decided; swallow the rest of the body */
    uint64_t drained;  /* body bytes swallowed after the reply was decided */
    bool upload_begun; /* R_UPLOAD: the route's begin ran */
    bool begun;        /* the first on_request call ran */
    bool raw_nul;      /* the raw request target has a %00 (on_uri) */
    bool must_close;   /* the body's framing is in doubt: answer at once, close */
};

/* ---- per-request timing */

/* Monotonic microseconds, never 0 (0 means "mark not reached"). */
static uint64_t now_us(void) { return now_mono_us() + 1u; }

void http_mark(struct http_req *req, enum http_mark m) { req->t[m] = now_us(); }

/* One debug line per request, when it ends: route, status, and the time
 * spent between consecutive marks, then "send" (reply handed to MHD until the
 * last byte was written: for a stream, the whole run) and the total. No URL
 * (paths and queries may name user files), no key, no body. */
static void log_timing(struct conn_ctx *ctx, enum MHD_RequestTerminationCode toe)
{
    static const char *const names[HTTP_T_N] = {
        [HTTP_T_ADMITTED] = "admission", [HTTP_T_BODY] = "body",   [HTTP_T_LOOKUP] = "lookup",
        [HTTP_T_CREATED] = "create",     [HTTP_T_AGENT] = "agent", [HTTP_T_REPLIED] = "reply",
    };
    struct http_req *req = &ctx->req;
    if (!log_enabled(LOG_LVL_DEBUG) || !req->t[HTTP_T_START])
        return;
    uint64_t start = req->t[HTTP_T_START], end = now_us();
    char line[320];
    size_t n = 0;
    uint64_t prev = start;
    for (int m = HTTP_T_START + 1; m < HTTP_T_N; m++) {
        if (!req->t[m] || n >= sizeof(line))
            continue;
        n += (size_t)snprintf(line + n, sizeof(line) - n, " %s=%.3f", names[m], (double)(req->t[m] - prev) / 1000.0);
        prev = req->t[m];
    }
    log_debug("timing %s %s -> %u%s:%s send=%.3f total=%.3f ms", ctx->m ? ctx->m->method : "-",
              ctx->rt ? ctx->rt->pattern : "(no route)", req->status,
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (ended early)", n < sizeof(line) ? line : "",
              (double)(end - prev) / 1000.0, (double)(end - start) / 1000.0);
}

/* ---- replies */

void http_reply_response(struct http_req *req, unsigned status, struct MHD_Response *resp)
{
    if (req->response)
        MHD_destroy_response(req->response);
    req->status = status;
    req->response = resp;
    req->reply_whole = false;
}

/* The compact text of j in a buffer of our own, or NULL. Not json_dumps:
 * jansson 2.14 ignores a failed append of an object's key into its growing
 * buffer, so out of memory it returns invalid JSON ({"id":"x",":"python"},
 * found by fault injection, tests/e2e/test_faults.py). json_dumpb into a
 * buffer sized first never appends to a jansson buffer. */
static char *dump_json(const json_t *j)
{
    size_t n = j ? json_dumpb(j, NULL, 0, JSON_COMPACT) : 0;
    char *text = n ? malloc(n + 1) : NULL;
    if (!text)
        return NULL;
    if (json_dumpb(j, text, n, JSON_COMPACT) != n) {
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

void http_reply_json(struct http_req *req, unsigned status, json_t *body)
{
    if (req->reply_hook && status < 400)
        req->reply_hook(req, &status, &body);
    char *text = dump_json(body);
    json_decref(body);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        status = 500;
        text = strdup(oom);
        if (!text)
            return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    http_reply_response(req, status, resp);
    req->reply_whole = true;
}

void http_reply_error(struct http_req *req, const struct api_error *err)
{
    unsigned status = err->status ? err->status : 500;
    if (status == 500)
        log_warn("%s: %s", err->code, err->message);
    else if (status > 500)
        log_debug("%s: %s", err->code, err->message);
    if (req->e2b == HTTP_E2B_STREAM) {
        struct MHD_Response *resp = e2b_stream_error(status, err->message);
        if (resp)
            http_reply_response(req, 200, resp);
        return;
    }
    if (req->e2b) {
        http_reply_json(req, status, e2b_error_json(req->e2b == HTTP_E2B_CONNECT, status, err->message));
        return;
    }
    http_reply_json(req, status, api_error_json(err));
}

void http_reply_errorf(struct http_req *req, unsigned status, const char *code, const char *fmt, ...)
{
    struct api_error err = {.status = status};
    snprintf(err.code, sizeof(err.code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof(err.message), fmt, ap);
    va_end(ap);
    http_reply_error(req, &err);
}

const char *http_query(struct http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(struct http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

bool http_fd_gone(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    int n = poll(&p, 1, 0);
    return n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* ---- routing */

/* Match url against pattern; the first "*" segment is copied into param,
 * a second one (a context's id, a process's pid:
 * /v1/sandboxes/{id}/contexts/{context}) into param2. */
static bool route_match(const char *pattern, const char *url, char *param, size_t plen, char *param2, size_t plen2)
{
    const char *p = pattern, *u = url;
    int stars = 0;
    param2[0] = '\0'; /* an earlier route that matched a part may have left one */
    while (*p && *u) {
        if (*p == '*') {
            char *dst = stars == 0 ? param : param2;
            size_t max = stars == 0 ? plen : plen2;
            const char *end = strchr(u, '/');
            size_t n = end ? (size_t)(end - u) : strlen(u);
            if (n == 0 || n >= max || stars >= 2)
                return false;
            stars++;
            memcpy(dst, u, n);
            dst[n] = '\0';
            p++;
            u += n;
            continue;
        }
        if (*p != *u)
            return false;
        p++;
        u++;
    }
    return *p == '\0' && *u == '\0';
}

static const struct route *find_route(const struct listener *l, const char *url, char *param, size_t plen,
                                      char *param2, size_t plen2)
{
    for (size_t i = 0; i < l->n_routes; i++)
        if (route_match(l->routes[i].pattern, url, param, plen, param2, plen2))
            return &l->routes[i];
    return NULL;
}

struct query_check {
    const struct route_method *m;
    const char *bad;  /* not accepted by the route */
    const char *dup;  /* given twice: which one counts would be a guess */
    bool bad_bytes;   /* a NUL or invalid UTF-8 in a name or value */
    bool seen[ARRAY_SIZE(((struct route_method *)0)->query)];
};

static enum MHD_Result check_query_arg(void *cls, enum MHD_ValueKind kind UNUSED, const char *key, size_t key_size,
                                       const char *value, size_t value_size)
{
    struct query_check *qc = cls;
    /* libmicrohttpd %-decodes values in place: a %00 shows as a length
     * beyond the C string, which every later step would cut there */
    if (strlen(key) != key_size || (value && strlen(value) != value_size) || !path_utf8_valid(key, key_size) ||
        (value && !path_utf8_valid(value, value_size))) {
        qc->bad_bytes = true;
        return MHD_NO;
    }
    for (size_t i = 0; i < ARRAY_SIZE(qc->m->query) && qc->m->query[i]; i++) {
        if (strcmp(key, qc->m->query[i]) != 0)
            continue;
        if (qc->seen[i]) {
            qc->dup = key;
            return MHD_NO;
        }
        qc->seen[i] = true;
        return MHD_YES;
    }
    qc->bad = key;
    return MHD_NO;
}

struct cl_count {
    unsigned n;
    const char *first;
    bool differ;
};

static enum MHD_Result count_cl(void *cls, enum MHD_ValueKind kind UNUSED, const char *key, const char *value)
{
    struct cl_count *c = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
        return MHD_YES;
    if (c->n++ == 0)
        c->first = value;
    else if (!value || !c->first || strcmp(value, c->first) != 0)
        c->differ = true;
    return MHD_YES;
}

/* Two different Content-Length headers: which one frames the body is a
 * guess (and a classic request-smuggling vector), so the request is
 * refused at once and the connection closed. */
static bool check_framing(struct conn_ctx *ctx)
{
    struct cl_count c = {0};
    MHD_get_connection_values(ctx->req.conn, MHD_HEADER_KIND, count_cl, &c);
    if (!c.differ)
        return true;
    ctx->must_close = true;
    http_reply_errorf(&ctx->req, 400, "invalid_request", "conflicting Content-Length headers");
    return false;
}

/* Decide everything that needs only the headers: sizes, route, method,
 * shutdown, auth and limits (admission.c), query. Replies (into req) on
 * failure. */
static void begin_request(struct conn_ctx *ctx, const struct listener *l, const char *url, const char *method)
{
    struct http_req *req = &ctx->req;
    http_mark(req, HTTP_T_START);
    if (!admission_size_ok(req, url))
        return;
    if (!check_framing(ctx))
        return;
    if (ctx->raw_nul || !path_utf8_valid(url, strlen(url))) {
        /* a %00 in the path cuts the {id} segment short: another sandbox's */
        http_reply_errorf(req, 400, "invalid_request", "the request target contains a NUL byte or is not valid UTF-8");
        return;
    }
    const struct route *rt = find_route(l, url, req->param, sizeof(req->param), req->param2, sizeof(req->param2));
    ctx->rt = rt;
    if (!rt) {
        http_reply_errorf(req, 404, "not_found", "no route %s %s", method, url);
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(rt->m) && rt->m[i].method; i++)
        if (strcmp(rt->m[i].method, method) == 0)
            ctx->m = &rt->m[i];
    if (!ctx->m) {
        char allow[64] = "";
        for (size_t i = 0; i < ARRAY_SIZE(rt->m) && rt->m[i].method; i++)
            snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s", i ? ", " : "", rt->m[i].method);
        http_reply_errorf(req, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)", method, url,
                          allow);
        if (req->response)
            MHD_add_response_header(req->response, "Allow", allow);
        return;
    }
    if (atomic_load(&req->d->shutting_down)) {
        http_reply_errorf(req, 503, "unavailable", "the daemon is shutting down");
        return;
    }
    if (req->e2b && (ctx->m->flags & R_CONNECT))
        req->e2b = ctx->m->flags & R_RAW ? HTTP_E2B_STREAM : HTTP_E2B_CONNECT;
    if (!(ctx->m->flags & R_NOAUTH) && !admission_auth(req, ctx->m->flags & R_ADMIN))
        return;
    struct query_check qc = {.m = ctx->m};
    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, check_query_arg, &qc);
    if (qc.bad_bytes) {
        http_reply_errorf(req, 400, "invalid_request", "a query parameter contains a NUL byte or is not valid UTF-8");
        return;
    }
    if (qc.bad) {
        http_reply_errorf(req, 400, "invalid_request", "unknown query parameter '%s'", qc.bad);
        return;
    }
    if (qc.dup) {
        http_reply_errorf(req, 400, "invalid_request", "query parameter '%s' given more than once", qc.dup);
        return;
    }
    http_mark(req, HTTP_T_ADMITTED);
    if (ctx->m->flags & (R_JSON | R_RAW)) {
        const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > HTTP_MAX_JSON_BODY) {
            http_reply_errorf(req, 413, "payload_too_large", "JSON body larger than %u MiB", HTTP_MAX_JSON_BODY >> 20);
            return;
        }
    }
    if (ctx->m->flags & R_UPLOAD) {
        ctx->upload_begun = true;
        ctx->m->begin(req);
    }
}

/* The whole JSON body is here: parse it and call the handler. */
static void run_json_handler(struct conn_ctx *ctx)
{
    struct http_req *req = &ctx->req;
    json_error_t jerr;
    if (ctx->body.len == 0) {
        req->body = json_object();
    } else {
        req->body = json_loadb(ctx->body.data, ctx->body.len, JSON_REJECT_DUPLICATES, &jerr);
        if (!req->body) {
            http_reply_errorf(req, 400, "invalid_json", "invalid JSON body: %s (line %d, column %d)", jerr.text,
                              jerr.line, jerr.column);
            return;
        }
        if (!json_is_object(req->body)) {
            http_reply_errorf(req, 400, "invalid_json", "the body must be a JSON object");
            return;
        }
    }
    http_mark(req, HTTP_T_BODY);
    ctx->m->handle(req);
}

static enum MHD_Result queue_reply(struct conn_ctx *ctx)
{
    struct http_req *req = &ctx->req;
    if (!req->response) {
        log_error("handler left %s without a reply (bug)", req->param);
        http_reply_errorf(req, 500, "internal", "no reply (bug)");
        if (!req->response)
            return MHD_NO;
    }
    http_mark(req, HTTP_T_REPLIED);
    /* A whole reply ends the request's work: its key's slot goes back now.
     * on_completed runs only after the reply is sent, and a client that
     * waits for each answer could otherwise send its next request (on a
     * new connection, another thread) before that, and be refused 429
     * too_many_requests with nothing in progress. A streamed reply keeps
     * its slot until on_completed: its work goes on while it is read. */
    if (req->reply_whole)
        admission_end(req);
    enum MHD_Result ok = MHD_queue_response(req->conn, req->status, req->response);
    MHD_destroy_response(req->response);
    req->response = NULL;
    return ok;
}

/* Beyond this, a body is not worth reading to the end just to answer it:
 * the connection is closed instead. */
#define DRAIN_MAX (2ull << 30)

/* May a reply decided from the headers be sent before the body is read?
 * MHD then closes the connection without reading the body, and a client that
 * is still sending it gets a reset and may never see the reply (Python's
 * http.client, requests). So answer early only when nothing would be lost:
 * no body, a client waiting for "100 Continue", or a body too big to drain. */
static bool can_answer_early(struct conn_ctx *ctx)
{
    struct http_req *req = &ctx->req;
    /* A body declared too big is refused before it is sent: reading 1 GiB
     * only to answer 413 is what a client's limit is there to avoid. So is
     * a body whose length is in doubt. */
    if (ctx->must_close || req->status == 413)
        return true;
    const char *expect = http_header(req, MHD_HTTP_HEADER_EXPECT);
    if (expect && strcasestr(expect, "100-continue"))
        return true;
    const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl)
        return strtoull(cl, NULL, 10) == 0 || strtoull(cl, NULL, 10) > DRAIN_MAX;
    return http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) == NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version UNUSED, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct conn_ctx *ctx = *con_cls;
    if (!ctx) {
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
            return MHD_NO;
        *con_cls = ctx;
    }
    const struct listener *l = cls;
    if (!ctx->begun) {
        ctx->begun = true;
        ctx->req.d = l->d;
        ctx->req.e2b = l->flavor;
        ctx->req.conn = conn;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        ctx->req.client_fd = ci ? ci->connect_fd : -1;
        begin_request(ctx, l, url, method);
        if (ctx->req.response) {
            /* answered from the headers alone */
            ctx->discard = true;
            if (ctx->must_close)
                MHD_add_response_header(ctx->req.response, MHD_HTTP_HEADER_CONNECTION, "close");
            if (can_answer_early(ctx))
                return queue_reply(ctx);
        }
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (ctx->discard) {
            ctx->drained += n;
            return ctx->drained > DRAIN_MAX ? MHD_NO : MHD_YES;
        }
        if (ctx->m->flags & R_UPLOAD) {
            ctx->m->chunk(&ctx->req, upload_data, n);
        } else if (ctx->body.len + n > HTTP_MAX_JSON_BODY) {
            http_reply_errorf(&ctx->req, 413, "payload_too_large", "JSON body larger than %u MiB",
                              HTTP_MAX_JSON_BODY >> 20);
            buf_free(&ctx->body);
        } else if (buf_append(&ctx->body, upload_data, n) < 0) {
            http_reply_errorf(&ctx->req, 500, "internal", "out of memory reading the body");
            buf_free(&ctx->body);
        }
        if (ctx->req.response)
            ctx->discard = true; /* decided mid-body (413, agent error): answered at the end */
        return MHD_YES;
    }

    /* end of the request body */
    if (ctx->discard) {
        if (!ctx->req.response)
            return MHD_YES; /* answered early */
        return queue_reply(ctx);
    }
    ctx->discard = true;
    if (ctx->m->flags & R_JSON) {
        run_json_handler(ctx);
    } else if (ctx->m->flags & R_RAW) {
        ctx->req.raw = ctx->body.data ? ctx->body.data : "";
        ctx->req.raw_len = ctx->body.len;
        http_mark(&ctx->req, HTTP_T_BODY);
        ctx->m->handle(&ctx->req);
    } else {
        http_mark(&ctx->req, HTTP_T_BODY);
        ctx->m->handle(&ctx->req);
    }
    return queue_reply(ctx);
}

/* One thread serves each connection, so an idle keep-alive connection would
 * hold a thread forever: MHD closes it after this long without traffic. A
 * streamed response that waits on silent code is not idle, so streaming
 * handlers lift the limit for their request (http_stream_begin) and
 * on_completed puts it back for the next request on the connection. */
#define HTTP_IDLE_TIMEOUT_S 120u

void http_stream_begin(struct http_req *req)
{
    MHD_set_connection_option(req->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
}

static void on_completed(void *cls UNUSED, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_ctx *ctx = *con_cls;
    if (!ctx)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        log_debug("request ended early (%d)", (int)toe);
    log_timing(ctx, toe);
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, HTTP_IDLE_TIMEOUT_S);
    admission_end(&ctx->req);
    if (ctx->upload_begun)
        ctx->m->cleanup(&ctx->req);
    if (ctx->req.response)
        MHD_destroy_response(ctx->req.response);
    json_decref(ctx->req.body);
    buf_free(&ctx->body);
    free(ctx);
    *con_cls = NULL;
}

/* Called with the raw request target, before libmicrohttpd %-decodes it
 * (after which a %00 is invisible in the C strings it hands on): note it.
 * The return value becomes the request's *con_cls. */
static void *on_uri(void *cls UNUSED, const char *uri, struct MHD_Connection *conn UNUSED)
{
    struct conn_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx && uri)
        ctx->raw_nul = strstr(uri, "%00") != NULL;
    return ctx;
}

static void mhd_log(void *cls UNUSED, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    log_warn("http: %s", line);
}

/* ---- listeners */

static int resolve_listen(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    struct addrinfo *ai = NULL;
    const char *h = host;
    char stripped[256];
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { /* [::1]:7070 */
        snprintf(stripped, sizeof(stripped), "%.*s", (int)(hl - 2), host + 1);
        h = stripped;
    }
    int rc = getaddrinfo(h, portstr, &hints, &ai);
    if (rc != 0) {
        log_error("resolve --listen %s: %s", host, gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static int open_unix_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_error("--socket %s: path too long", path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            log_error("--socket %s: exists and is not a socket", path);
            return -EEXIST;
        }
        if (unlink(path) < 0) {
            int r = -errno;
            log_error("remove stale socket %s: %s", path, strerror(-r));
            return r;
        }
    }
    cleanup_fd int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int r = -errno;
        log_error("socket(AF_UNIX): %s", strerror(-r));
        return r;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int r = -errno;
        log_error("bind %s: %s", path, strerror(-r));
        return r;
    }
    /* root and the socket's group may connect: auth is still by key */
    if (chmod(path, 0660) < 0) {
        int r = -errno;
        log_error("chmod %s: %s", path, strerror(-r));
        return r;
    }
    if (listen(fd, 128) < 0) {
        int r = -errno;
        log_error("listen %s: %s", path, strerror(-r));
        return r;
    }
    return steal_fd(&fd);
}

/* Each connection's memory pool. libmicrohttpd answers a head that does
 * not fit by itself, in HTML; admission.c's limits (64 headers, 32 KiB)
 * refuse in JSON long before that, as long as the pool holds the head plus
 * libmicrohttpd's bookkeeping for each header line (~80 bytes each with a
 * short line). 1 MiB fits about 12,000 short header lines (10,000 with room)
 * or one 1 MiB header; beyond that the library's own 431 stands. Not more:
 * libmicrohttpd 0.9.75 zeroes the whole pool when a keep-alive connection
 * goes idle, so every idle connection holds this much resident memory
 * (measured: 2 MiB cost 2 MiB per idle connection, 256 KiB 271 KiB). */
#define HTTP_CONN_MEMORY ((size_t)1 << 20)

static struct MHD_Daemon *start_mhd(struct listener *d, const struct sockaddr *sa, int listen_fd)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (sa && sa->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (listen_fd >= 0)
        return MHD_start_daemon(flags, 0, NULL, NULL, on_request, d, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                                NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONN_MEMORY,
                                MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
                                MHD_OPTION_CONNECTION_TIMEOUT, HTTP_IDLE_TIMEOUT_S, MHD_OPTION_END);
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, d, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                            MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONN_MEMORY,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
                            MHD_OPTION_CONNECTION_TIMEOUT, HTTP_IDLE_TIMEOUT_S, MHD_OPTION_END);
}

int http_start(struct daemon *d, struct http_server **out)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->d = d;
    s->native_l = (struct listener){d, ROUTES, ARRAY_SIZE(ROUTES), HTTP_NATIVE};
    s->e2b_l = (struct listener){d, E2B_ROUTES, ARRAY_SIZE(E2B_ROUTES), HTTP_E2B_REST};
    struct sockaddr_storage ss;
    socklen_t sl;
    int r = resolve_listen(d->cfg.listen_host, d->cfg.listen_port, &ss, &sl);
    if (r < 0) {
        free(s);
        return r;
    }
    s->tcp = start_mhd(&s->native_l, (struct sockaddr *)&ss, -1);
    if (!s->tcp) {
        log_error("listen on %s:%u failed (address in use or not available?)", d->cfg.listen_host,
                  d->cfg.listen_port);
        free(s);
        return -EADDRNOTAVAIL;
    }
    if (d->cfg.socket_path) {
        int fd = open_unix_socket(d->cfg.socket_path);
        if (fd < 0) {
            http_stop(s);
            return fd;
        }
        s->unix_sock = start_mhd(&s->native_l, NULL, fd);
        if (!s->unix_sock) {
            log_error("serve the unix socket %s failed", d->cfg.socket_path);
            close(fd);
            http_stop(s);
            return -EIO;
        }
    }
    if (d->cfg.e2b_listen_port) {
        /* a listener of its own, not a path prefix: E2B's SDKs put their
         * paths at the root of E2B_API_URL and E2B_SANDBOX_URL */
        r = resolve_listen(d->cfg.e2b_listen_host, d->cfg.e2b_listen_port, &ss, &sl);
        if (r < 0) {
            http_stop(s);
            return r;
        }
        s->e2b = start_mhd(&s->e2b_l, (struct sockaddr *)&ss, -1);
        if (!s->e2b) {
            log_error("--e2b-listen on %s:%u failed (address in use or not available?)", d->cfg.e2b_listen_host,
                      d->cfg.e2b_listen_port);
            http_stop(s);
            return -EADDRNOTAVAIL;
        }
    }
    *out = s;
    faultinj_arm(); /* test builds only: injected faults count from here */
    return 0;
}

void http_quiesce(struct http_server *s)
{
    /* MHD hands the listening sockets back; closing them refuses new
     * connections while the ones in flight finish. */
    if (s->quiesced)
        return;
    s->quiesced = true;
    MHD_socket fd = MHD_quiesce_daemon(s->tcp);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    if (s->unix_sock) {
        fd = MHD_quiesce_daemon(s->unix_sock);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
    if (s->e2b) {
        fd = MHD_quiesce_daemon(s->e2b);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    if (s->e2b)
        MHD_stop_daemon(s->e2b);
    if (s->unix_sock)
        MHD_stop_daemon(s->unix_sock);
    if (s->tcp)
        MHD_stop_daemon(s->tcp);
    if (s->unix_sock || (s->d->cfg.socket_path && s->tcp))
        (void)unlink(s->d->cfg.socket_path);
    free(s);
}
