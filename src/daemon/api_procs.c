/* api_procs.c - background processes: POST /exec {"background": true} and
 * /v1/sandboxes/{id}/processes[/{pid}[/signal|/stdin|/output]]
 * (docs/api.md). The table and its limits are proctab.c's; this file
 * parses, answers, and streams a process's output as NDJSON. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_errors.h"
#include "buf.h"
#include "build.h"
#include "proctab.h"
#include "proto.h"
#include "registry.h"
#include "store.h"
#include "util.h"

#define WAIT_MAX_S 3600 /* one wait call; a client waits longer by calling again */

struct bgproc;
static void stream_reply(struct http_req *req, struct sandbox *sb, struct bgproc *p, uint64_t from);

/* 365 days: "no limit" for the agent, which no sandbox outlives */
#define BG_NO_TIMEOUT_MS (365ll * 86400 * 1000)

/* The exit of a background process, added to its audit event as a
 * foreground run's is (api_code.c run_free). The daemon's store outlives
 * every sandbox (main.c frees the registry first), so the pump may write. */
struct audit_end {
    struct store *store;
    int64_t row;
};

static void audit_end(void *ctx, int pid, const json_t *result)
{
    struct audit_end *ae = ctx;
    if (result) { /* the outcome is written once (it replaces): here, or by the start that failed */
        json_t *o = json_pack("{s:b,s:b,s:i,s:O?,s:O?}", "started", 1, "completed", 1, "pid", pid, "exit_code",
                              json_object_get(result, "exit_code"), "killed_signal",
                              json_object_get(result, "killed_signal"));
        if (o)
            (void)store_audit_outcome(ae->store, ae->row, o);
        json_decref(o);
    }
    free(ae);
}

void api_exec_background(struct http_req *req, json_t *payload, json_t *audit, unsigned timeout_s)
{
    json_auto_t *detail = audit;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    json_t *env = json_deep_copy(sandbox_env(sb));
    json_t *req_env = json_object_get(payload, "env");
    if (json_is_object(req_env))
        json_object_update(env, req_env);
    json_object_set_new(payload, "env", env);
    json_object_set_new(payload, "timeout_ms",
                        json_integer(timeout_s ? (json_int_t)timeout_s * 1000 : (json_int_t)BG_NO_TIMEOUT_MS));

    /* fails closed like every exec: no event, no process (api_code.c) */
    struct audit_rec a = {.key_id = req->key.id, .action = "exec", .sandbox_id = sandbox_id(sb), .detail = detail};
    int64_t row = 0;
    int r = store_audit_begin(req->d->store, &a, &row);
    if (r < 0) {
        struct api_error err = {0};
        api_error_audit(&err, r, "the command");
        http_reply_error(req, &err);
        return;
    }
    json_t *cmd = json_object_get(req->body, "cmd");
    json_t *cwd = json_object_get(req->body, "cwd");
    json_auto_t *desc = json_pack("{s:O,s:O?,s:b}", "cmd", cmd, "cwd", json_is_string(cwd) ? cwd : NULL, "pty",
                                  json_object_get(payload, "pty") != NULL);
    json_t *e2b_config = json_object_get(req->body, "_e2b_config"); /* what E2B's List shows */
    if (desc && e2b_config)
        json_object_set(desc, "_config", e2b_config);
    int pid = 0;
    uint32_t id = 0;
    struct op_error oerr = {0};
    struct audit_end *ae = malloc(sizeof(*ae));
    if (!ae) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    ae->store = req->d->store;
    ae->row = row;
    r = proctab_start(sandbox_procs(sb), sandbox_agent(sb), payload, desc, audit_end, ae, &pid, &id, &oerr);
    if (r < 0) {
        json_auto_t *outcome = json_pack("{s:b,s:s}", "completed", 0, "error", oerr.msg);
        (void)store_audit_outcome(req->d->store, row, outcome);
        api_reply_op_error(req, r, &oerr);
        return;
    }
    http_mark(req, HTTP_T_AGENT);
    struct bgproc *p = proctab_get(sandbox_procs(sb), id, true);
    if (p && json_is_true(json_object_get(req->body, "_e2b_close_stdin")))
        (void)proctab_stdin(sandbox_procs(sb), p, NULL, 0, true); /* E2B's Start without stdin: EOF, as envd */
    if (p && req->event_hook) { /* the E2B listener's Start: its stream from the first byte */
        stream_reply(req, steal_ptr(&sb), p, 0);
        return;
    }
    json_t *info = p ? proctab_info(sandbox_procs(sb), p) : json_pack("{s:i,s:I}", "pid", pid, "id", (json_int_t)id);
    proctab_put(sandbox_procs(sb), p);
    http_reply_json(req, 201, info);
}

void api_procs_list(struct http_req *req)
{
    const char *state = http_query(req, "state");
    if (state && strcmp(state, "running") != 0 && strcmp(state, "all") != 0) {
        http_reply_errorf(req, 400, "invalid_request", "state must be \"running\" or \"all\"");
        return;
    }
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    http_reply_json(req, 200, proctab_list(sandbox_procs(sb), state && !strcmp(state, "running"), false));
}

/* The route's sandbox and process; NULL after replying. */
static struct bgproc *route_proc(struct http_req *req, struct sandbox **sb_out)
{
    char *end = NULL;
    long long pid = strtoll(req->param2, &end, 10);
    if (!req->param2[0] || *end || pid <= 0 || pid > (1 << 22)) {
        http_reply_errorf(req, 400, "invalid_request", "the process is named by its pid, a positive integer");
        return NULL;
    }
    struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return NULL;
    struct bgproc *p = proctab_get(sandbox_procs(sb), pid, false);
    if (!p) {
        sandbox_unref(sb);
        http_reply_errorf(req, 404, "not_found",
                          "no background process with pid %lld in sandbox %s (exited ones are kept: the last %d)", pid,
                          req->param, PROC_MAX_EXITED);
        return NULL;
    }
    *sb_out = sb;
    return p;
}

static bool client_gone(void *ctx) { return http_fd_gone(*(int *)ctx); }

/* GET .../processes/{pid}?wait_s=N: its state, after waiting up to N s for
 * it to exit (then "state" says whether it did). */
void api_proc_get(struct http_req *req)
{
    const char *w = http_query(req, "wait_s");
    long wait_s = 0;
    if (w) {
        char *end = NULL;
        wait_s = strtol(w, &end, 10);
        if (!*w || *end || wait_s < 0 || wait_s > WAIT_MAX_S) {
            http_reply_errorf(req, 400, "invalid_request", "wait_s must be an integer between 0 and %d", WAIT_MAX_S);
            return;
        }
    }
    cleanup_sandbox struct sandbox *sb = NULL;
    struct bgproc *p = route_proc(req, &sb);
    if (!p)
        return;
    if (wait_s > 0)
        (void)proctab_wait(sandbox_procs(sb), p, now_mono_ms() + (uint64_t)wait_s * 1000, client_gone, &req->client_fd);
    json_t *info = proctab_info(sandbox_procs(sb), p);
    proctab_put(sandbox_procs(sb), p);
    http_reply_json(req, 200, info);
}

static const struct {
    const char *name;
    int sig;
} SIGNALS[] = {
    {"SIGTERM", SIGTERM}, {"SIGKILL", SIGKILL}, {"SIGINT", SIGINT}, {"SIGHUP", SIGHUP}, {"SIGQUIT", SIGQUIT},
    {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGSTOP", SIGSTOP}, {"SIGCONT", SIGCONT}, {"SIGWINCH", SIGWINCH},
};

/* POST .../signal {"signal": "SIGTERM" | 15}: to its process group */
void api_proc_signal(struct http_req *req)
{
    json_t *v = json_object_get(req->body, "signal");
    int sig = 0;
    if (!v || json_is_null(v))
        sig = SIGTERM;
    else if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 64)
        sig = (int)json_integer_value(v);
    else if (json_is_string(v))
        for (size_t i = 0; i < sizeof(SIGNALS) / sizeof(SIGNALS[0]); i++)
            if (!strcmp(json_string_value(v), SIGNALS[i].name) || !strcmp(json_string_value(v), SIGNALS[i].name + 3))
                sig = SIGNALS[i].sig;
    if (!sig) {
        http_reply_errorf(req, 400, "invalid_request", "signal must be 1..64 or a name such as \"SIGTERM\"");
        return;
    }
    cleanup_sandbox struct sandbox *sb = NULL;
    struct bgproc *p = route_proc(req, &sb);
    if (!p)
        return;
    int r = proctab_signal(sandbox_procs(sb), p, sig);
    proctab_put(sandbox_procs(sb), p);
    if (r == -ESRCH)
        http_reply_errorf(req, 409, "exited", "process %s has already exited", req->param2);
    else if (r < 0)
        http_reply_errorf(req, 503, "unavailable", "the sandbox agent is gone");
    else
        http_reply_json(req, 202, json_pack("{s:i}", "signal", sig));
}

/* POST .../resize {"rows", "cols"}: a pty process's window */
void api_proc_resize(struct http_req *req)
{
    unsigned rows = 0, cols = 0;
    if (api_field_uint(req, "rows", 1, 1000, &rows) < 0 || api_field_uint(req, "cols", 1, 1000, &cols) < 0)
        return;
    if (!rows || !cols) {
        http_reply_errorf(req, 400, "invalid_request", "rows and cols are required (1..1000)");
        return;
    }
    cleanup_sandbox struct sandbox *sb = NULL;
    struct bgproc *p = route_proc(req, &sb);
    if (!p)
        return;
    struct op_error oerr = {0};
    int r = proctab_resize(sandbox_procs(sb), p, rows, cols, &oerr);
    proctab_put(sandbox_procs(sb), p);
    if (r == -ESRCH)
        http_reply_errorf(req, 409, "exited", "process %s has already exited", req->param2);
    else if (r == -ENOTTY)
        http_reply_errorf(req, 409, "not_a_terminal", "process %s was not started with pty", req->param2);
    else if (r < 0)
        api_reply_op_error(req, r, &oerr);
    else
        http_reply_json(req, 200, json_pack("{s:i,s:i}", "rows", rows, "cols", cols));
}

/* POST .../stdin {"data": text, "eof": bool} */
void api_proc_stdin(struct http_req *req)
{
    json_t *data = json_object_get(req->body, "data");
    bool eof = false;
    if (data && !json_is_null(data) && !json_is_string(data)) {
        http_reply_errorf(req, 400, "invalid_request", "data must be a string");
        return;
    }
    if (api_field_bool(req, "eof", &eof) < 0)
        return;
    size_t n = json_is_string(data) ? json_string_length(data) : 0;
    if (n > PROTO_MAX_PAYLOAD) {
        http_reply_errorf(req, 413, "payload_too_large", "at most %u bytes of stdin per call", PROTO_MAX_PAYLOAD);
        return;
    }
    cleanup_sandbox struct sandbox *sb = NULL;
    struct bgproc *p = route_proc(req, &sb);
    if (!p)
        return;
    int r = proctab_stdin(sandbox_procs(sb), p, n ? json_string_value(data) : NULL, n, eof);
    proctab_put(sandbox_procs(sb), p);
    if (r == -ESRCH)
        http_reply_errorf(req, 409, "exited", "process %s has already exited", req->param2);
    else if (r == -EBADF)
        http_reply_errorf(req, 409, "stdin_closed", "the stdin of process %s is closed", req->param2);
    else if (r < 0)
        http_reply_errorf(req, 503, "unavailable", "the sandbox agent is gone");
    else
        http_reply_json(req, 200, json_pack("{s:I,s:b}", "bytes", (json_int_t)n, "eof", eof));
}

/* ---- GET .../output: NDJSON, replayed from the buffer, then live */

struct out_stream {
    struct sandbox *sb;
    struct proc_reader *rd;
    struct buf pending;
    int client_fd;
    unsigned seq;
    bool eos;
    /* another framing of the events (the E2B listener; http.h) */
    void (*event_hook)(void *ctx, json_t *ev, struct buf *out);
    void *hook_ctx;
    void (*hook_free)(void *ctx);
};

static void out_emit(struct out_stream *s, json_t *ev /* stolen */)
{
    char ts[40];
    format_time(now_wall_ms(), true, ts, sizeof(ts));
    json_object_set_new(ev, "seq", json_integer(s->seq++));
    json_object_set_new(ev, "ts", json_string(ts));
    if (s->event_hook) {
        s->event_hook(s->hook_ctx, ev, &s->pending);
        json_decref(ev);
        return;
    }
    char *line = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (line) {
        (void)buf_append_str(&s->pending, line);
        (void)buf_append(&s->pending, "\n", 1);
        free(line);
    }
}

static ssize_t out_read(void *cls, uint64_t pos UNUSED, char *out, size_t max)
{
    struct out_stream *s = cls;
    while (s->pending.len == 0) {
        if (s->eos)
            return MHD_CONTENT_READER_END_OF_STREAM;
        json_t *ev = proctab_reader_next(s->rd, &s->eos);
        if (!ev) {
            if (!s->eos && http_fd_gone(s->client_fd))
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        out_emit(s, ev);
    }
    size_t n = s->pending.len < max ? s->pending.len : max;
    memcpy(out, s->pending.data, n);
    buf_consume(&s->pending, n);
    return (ssize_t)n;
}

static void out_free(void *cls)
{
    struct out_stream *s = cls;
    proctab_reader_free(s->rd);
    if (s->hook_free)
        s->hook_free(s->hook_ctx);
    sandbox_unref(s->sb);
    buf_free(&s->pending);
    free(s);
}

/* Answer req with the output stream of p (a reference the stream takes
 * over, as it does sb's), from byte `from`; with req's event hook, in its
 * framing, after a start event naming the process. */
static void stream_reply(struct http_req *req, struct sandbox *sb, struct bgproc *p, uint64_t from)
{
    struct out_stream *s = calloc(1, sizeof(*s));
    if (s)
        s->rd = proctab_reader_new(sandbox_procs(sb), p, from);
    proctab_put(sandbox_procs(sb), p); /* the reader holds its own */
    if (!s || !s->rd) {
        free(s);
        sandbox_unref(sb);
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    s->sb = sb;
    s->client_fd = req->client_fd;
    s->event_hook = req->event_hook;
    s->hook_ctx = steal_ptr(&req->hook_ctx);
    s->hook_free = req->hook_free;
    if (s->event_hook) { /* E2B's process API names the process before its output */
        json_t *info = proctab_info(sandbox_procs(sb), p);
        out_emit(s, json_pack("{s:s,s:O}", "type", "start", "id", json_object_get(info, "id")));
        json_decref(info);
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, out_read, s, out_free);
    if (!resp) {
        out_free(s);
        http_reply_errorf(req, 500, "internal", "create the streaming response");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            req->stream_type ? req->stream_type : "application/x-ndjson");
    http_stream_begin(req);
    http_reply_response(req, 200, resp);
}

void api_proc_stream(struct http_req *req, struct sandbox *sb, long long id, bool from_now)
{
    struct bgproc *p = proctab_get(sandbox_procs(sb), id, true);
    if (!p) {
        sandbox_unref(sb);
        http_reply_errorf(req, 404, "not_found", "no running command with pid %lld", id);
        return;
    }
    json_t *info = proctab_info(sandbox_procs(sb), p);
    const char *state = json_string_value(json_object_get(info, "state"));
    bool running = state && !strcmp(state, "running");
    uint64_t end = (uint64_t)json_integer_value(json_object_get(json_object_get(info, "output"), "bytes"));
    json_decref(info);
    if (!running) {
        proctab_put(sandbox_procs(sb), p);
        sandbox_unref(sb);
        http_reply_errorf(req, 404, "not_found", "no running command with pid %lld", id);
        return;
    }
    stream_reply(req, sb, p, from_now ? end : 0);
}

void api_proc_output(struct http_req *req)
{
    const char *f = http_query(req, "from");
    unsigned long long from = 0;
    if (f) {
        char *end = NULL;
        from = strtoull(f, &end, 10);
        if (!*f || *end || f[0] == '-') {
            http_reply_errorf(req, 400, "invalid_request", "from must be a byte offset (an integer >= 0)");
            return;
        }
    }
    struct sandbox *sb = NULL;
    struct bgproc *p = route_proc(req, &sb);
    if (!p)
        return;
    stream_reply(req, sb, p, from);
}
