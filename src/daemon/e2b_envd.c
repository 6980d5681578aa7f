/* e2b_envd.c - the data plane E2B's SDKs send to a sandbox (docs/e2b.md):
 * envd's Connect RPCs (process.Process) and /files, and the code
 * interpreter's /execute, mapped onto Airlock's agent through its own
 * handlers (api_code.c, api_files.c).
 *
 * E2B's SDK sends Connect in its JSON encoding (connect-web with
 * useBinaryFormat false), so the messages are jansson objects: a unary RPC
 * is a plain JSON body, a streamed one a sequence of envelopes (one flags
 * byte, a 4-byte big-endian length, the JSON message), ended by an
 * end-of-stream envelope (flag 0x02) that carries the error, if any. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "api.h"
#include "buf.h"
#include "build.h"
#include "e2b.h"
#include "proctab.h"
#include "proto.h"
#include "registry.h"
#include "util.h"


#define CONNECT_END_STREAM 0x02
#define CONNECT_COMPRESSED 0x01

/* The sandbox of a data-plane call: E2B's SDK names it in a header (it
 * would be in the host name of E2B's cloud URLs). false after replying. */
bool e2b_route_sandbox(struct http_req *req, int port)
{
    const char *id = http_header(req, "E2b-Sandbox-Id");
    if (!id || !*id || strlen(id) >= sizeof(req->param)) {
        http_reply_errorf(req, 400, "invalid_request",
                          "the E2b-Sandbox-Id header is required: set E2B_SANDBOX_URL to this listener");
        return false;
    }
    const char *p = http_header(req, "E2b-Sandbox-Port");
    if (p && atoi(p) != port) {
        http_reply_errorf(req, 403, "sealed",
                          "Airlock sandboxes are sealed: port %s of a sandbox cannot be reached from outside "
                          "(only envd's %d and the code interpreter's %d are served, by airlockd itself)",
                          p, E2B_ENVD_PORT, E2B_JUPYTER_PORT);
        return false;
    }
    snprintf(req->param, sizeof(req->param), "%s", id);
    return true;
}

/* What E2B's proxy answers for a sandbox that is gone: 502, which the
 * SDK's isRunning reads as "not running". */
void e2b_health(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT))
        return;
    struct sandbox *sb = NULL;
    struct op_error oerr = {0};
    if (sandbox_get(req->d, &req->key, req->param, &sb, &oerr) < 0) {
        http_reply_errorf(req, 502, "not_running", "sandbox %s is not running", req->param);
        return;
    }
    sandbox_unref(sb);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp)
        http_reply_response(req, 204, resp);
}

/* ---- /execute: the code interpreter's NDJSON */

/* Airlock's mime bundle keys to E2B's result fields */
static const struct {
    const char *mime, *field;
} MIME_FIELDS[] = {
    {"text/plain", "text"},           {"text/html", "html"},     {"text/markdown", "markdown"},
    {"image/svg+xml", "svg"},         {"image/png", "png"},      {"image/jpeg", "jpeg"},
    {"application/pdf", "pdf"},       {"text/latex", "latex"},   {"application/json", "json"},
    {"application/javascript", "javascript"},
};

static void put_line(struct buf *out, json_t *msg /* stolen */)
{
    char *line = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!line)
        return;
    (void)buf_append_str(out, line);
    (void)buf_append(out, "\n", 1);
    free(line);
}

static void execute_event(void *ctx UNUSED, json_t *ev, struct buf *out)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type)
        return;
    if (!strcmp(type, "stdout") || !strcmp(type, "stderr")) {
        put_line(out, json_pack("{s:s,s:O}", "type", type, "text", json_object_get(ev, "data")));
    } else if (!strcmp(type, "result")) {
        size_t i;
        json_t *bundle;
        json_array_foreach(json_object_get(ev, "results"), i, bundle)
        {
            json_t *r = json_pack("{s:s,s:b}", "type", "result", "is_main_result",
                                  json_is_true(json_object_get(bundle, "is_main_result")));
            for (size_t k = 0; r && k < ARRAY_SIZE(MIME_FIELDS); k++) {
                json_t *v = json_object_get(bundle, MIME_FIELDS[k].mime);
                if (v)
                    json_object_set(r, MIME_FIELDS[k].field, v);
            }
            put_line(out, r);
        }
        json_t *err = json_object_get(ev, "error");
        if (json_is_object(err))
            put_line(out, json_pack("{s:s,s:O?,s:O?,s:O?}", "type", "error", "name", json_object_get(err, "name"),
                                    "value", json_object_get(err, "value"), "traceback",
                                    json_object_get(err, "traceback")));
        put_line(out, json_pack("{s:s}", "type", "end_of_execution"));
    } else if (!strcmp(type, "error")) {
        /* the run itself failed (the agent went away, a timeout) */
        json_t *e = json_object_get(ev, "error");
        put_line(out, json_pack("{s:s,s:O?,s:O?,s:s}", "type", "error", "name", json_object_get(e, "code"), "value",
                                json_object_get(e, "message"), "traceback", ""));
    }
}

static bool e2b_context_exists(struct http_req *req, const char *id);

void e2b_execute(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_JUPYTER_PORT))
        return;
    json_t *in = req->body;
    json_t *code = json_object_get(in, "code");
    if (!json_is_string(code)) {
        http_reply_errorf(req, 400, "invalid_request", "code must be a string");
        return;
    }
    /* a code context (api_contexts.c): its REPL, in its language */
    json_t *ctx = json_object_get(in, "context_id");
    if (ctx && !json_is_null(ctx) && !json_is_string(ctx)) {
        http_reply_errorf(req, 400, "invalid_request", "context_id must be a string");
        return;
    }
    const char *lang = json_string_value(json_object_get(in, "language"));
    if (!lang || !strcmp(lang, "python") || !strcmp(lang, "py"))
        lang = "python";
    else if (!strcmp(lang, "bash") || !strcmp(lang, "sh"))
        lang = "bash";
    else if (!strcmp(lang, "r") || !strcmp(lang, "R"))
        lang = "r";
    else if (!strcmp(lang, "js") || !strcmp(lang, "javascript") || !strcmp(lang, "node"))
        lang = "javascript";
    else {
        http_reply_errorf(req, 400, "invalid_request",
                          "language %s is not available: Airlock runs python, bash, r and javascript", lang);
        return;
    }
    /* timeout 0: as long as the daemon allows; the SDK enforces its own
     * timeoutMs by closing the stream */
    if (json_is_string(ctx) && !e2b_context_exists(req, json_string_value(ctx)))
        return;
    json_t *b = json_pack("{s:O,s:i}", "code", code, "timeout_s", 0);
    if (b && json_is_string(ctx))
        json_object_set(b, "context", ctx); /* E2B sends context or language, never both */
    else if (b)
        json_object_set_new(b, "language", json_string(lang));
    json_t *env = json_object_get(in, "env_vars");
    if (b && json_is_object(env))
        json_object_set(b, "env", env);
    json_decref(req->body);
    req->body = b;
    if (!b) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    req->event_hook = execute_event;
    req->stream_type = "application/x-ndjson";
    api_code(req);
}

/* ---- process.Process: Connect streaming in JSON */

static void put_envelope(struct buf *out, uint8_t flags, json_t *msg /* stolen */)
{
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text)
        text = strdup("{}");
    if (!text)
        return;
    size_t n = strlen(text);
    uint8_t head[5] = {flags, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    (void)buf_append(out, head, sizeof(head));
    (void)buf_append(out, text, n);
    free(text);
}

struct MHD_Response *e2b_stream_error(unsigned status, const char *message)
{
    struct buf b = {0};
    put_envelope(&b, CONNECT_END_STREAM, json_pack("{s:o}", "error", e2b_error_json(true, status, message)));
    struct MHD_Response *resp =
        b.len ? MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) {
        buf_free(&b);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/connect+json");
    return resp;
}

/* proto3 JSON writes bytes as standard base64 */
static json_t *base64_json(const char *data, size_t len)
{
    char *b64 = malloc(4 * ((len + 2) / 3) + 1);
    if (!b64)
        return NULL;
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)data, (int)len);
    json_t *s = json_string(b64);
    free(b64);
    return s;
}

/* Commands run as Airlock background processes (proctab.h), as envd's do:
 * a command outlives its Start stream (the SDK's disconnect() leaves it
 * running), Connect attaches to it again, List shows the running ones. The
 * E2B pid is the agent's request id of the process. This framing turns the
 * native stream's events into Connect envelopes. */
static void process_event(void *ctx, json_t *ev, struct buf *out);
/* the hook's ctx for a pty process: its output is envd's "pty" data */
static const int PTY_FRAMING = 1;

static void process_event(void *ctx, json_t *ev, struct buf *out)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type)
        return;
    if (!strcmp(type, "start")) {
        put_envelope(out, 0,
                     json_pack("{s:{s:{s:O}}}", "event", "start", "pid", json_object_get(ev, "id")));
    } else if (!strcmp(type, "stdout") || !strcmp(type, "stderr")) {
        json_t *d = json_object_get(ev, "data");
        json_t *b = base64_json(json_string_value(d), json_string_length(d));
        if (b)
            put_envelope(out, 0, json_pack("{s:{s:{s:o}}}", "event", "data", ctx == &PTY_FRAMING ? "pty" : type, b));
    } else if (!strcmp(type, "result")) {
        json_t *ec = json_object_get(ev, "exit_code");
        json_t *sig = json_object_get(ev, "killed_signal");
        char status[64];
        json_t *end;
        if (json_is_integer(ec)) {
            snprintf(status, sizeof(status), "exit status %d", (int)json_integer_value(ec));
            end = json_pack("{s:I,s:b,s:s}", "exitCode", json_integer_value(ec), "exited", 1, "status", status);
        } else {
            int s = json_is_integer(sig) ? (int)json_integer_value(sig) : SIGKILL;
            snprintf(status, sizeof(status), "signal: %s", s == SIGKILL ? "killed" : s == SIGTERM ? "terminated" : strsignal(s));
            end = json_pack("{s:i,s:b,s:s}", "exitCode", -1, "exited", 0, "status", status);
        }
        json_t *err = json_object_get(ev, "error");
        if (end && json_is_object(err) && json_is_string(json_object_get(err, "value")))
            json_object_set(end, "error", json_object_get(err, "value"));
        else if (end && json_is_false(json_object_get(ev, "output_complete")))
            /* E2B's end event has no such field: say it where a client looks */
            json_object_set_new(end, "error", json_string("output incomplete: bytes were dropped from the "
                                                          "command's 1 MiB output buffer before this stream read them"));
        put_envelope(out, 0, json_pack("{s:{s:o}}", "event", "end", end));
        put_envelope(out, CONNECT_END_STREAM, json_object());
    } else if (!strcmp(type, "error")) {
        json_t *e = json_object_get(ev, "error");
        put_envelope(out, CONNECT_END_STREAM,
                     json_pack("{s:{s:s,s:O?}}", "error", "code", "unavailable", "message",
                               json_object_get(e, "message")));
    }
}

/* The one message of a client-streaming envelope body, or NULL after
 * replying. */
static json_t *connect_request(struct http_req *req)
{
    const uint8_t *p = (const uint8_t *)req->raw;
    if (req->raw_len < 5) {
        http_reply_errorf(req, 400, "invalid_request", "expected one Connect envelope");
        return NULL;
    }
    size_t n = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    if (p[0] & CONNECT_COMPRESSED) {
        http_reply_errorf(req, 400, "invalid_request", "compressed Connect messages are not accepted");
        return NULL;
    }
    if (n != req->raw_len - 5) {
        http_reply_errorf(req, 400, "invalid_request", "the Connect envelope's length does not match the body");
        return NULL;
    }
    json_error_t jerr;
    json_t *msg = json_loadb(req->raw + 5, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(msg)) {
        json_decref(msg);
        http_reply_errorf(req, 400, "invalid_request", "invalid JSON message: %s", jerr.text);
        return NULL;
    }
    return msg;
}

void e2b_process_start(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT))
        return;
    json_auto_t *msg = connect_request(req);
    if (!msg)
        return;
    /* sbx.pty.create: {"pty":{"size":{"cols","rows"}}}, a terminal of the
     * sandbox's own devpts (docs/api.md, exec "pty") */
    json_t *pty = json_object_get(msg, "pty");
    json_t *size = json_object_get(pty, "size");
    if (pty && !json_is_null(pty) && !json_is_object(pty)) {
        http_reply_errorf(req, 400, "invalid_request", "pty must be an object {\"size\": {\"cols\", \"rows\"}}");
        return;
    }
    json_t *proc = json_object_get(msg, "process");
    json_t *cmd = json_object_get(proc, "cmd");
    if (!json_is_string(cmd)) {
        http_reply_errorf(req, 400, "invalid_request", "process.cmd must be a string");
        return;
    }
    json_t *argv = json_array();
    json_array_append(argv, cmd);
    json_t *args = json_object_get(proc, "args");
    if (json_is_array(args))
        json_array_extend(argv, args);
    /* Airlock's exec checks every field of this (api_code.c) */
    json_t *b = json_pack("{s:o,s:i}", "cmd", argv, "timeout_s", 0);
    json_t *v;
    if (b && (v = json_object_get(proc, "envs")) && json_is_object(v))
        json_object_set(b, "env", v);
    if (b && (v = json_object_get(proc, "cwd")) && json_is_string(v))
        json_object_set(b, "cwd", v);
    /* stdin stays open for SendInput / CloseStdin either way (background);
     * without "stdin": true the SDK sends nothing and closes nothing, and a
     * command that reads stdin would wait: close it at once, as envd does */
    if (b) {
        json_object_set_new(b, "background", json_true());
        json_object_set(b, "_e2b_config", proc);
    }
    if (b && json_is_object(pty)) {
        json_t *sz = json_object();
        json_t *v2;
        if ((v2 = json_object_get(size, "rows")))
            json_object_set(sz, "rows", v2);
        if ((v2 = json_object_get(size, "cols")))
            json_object_set(sz, "cols", v2);
        json_object_set_new(b, "pty", sz);
    }
    if (!b) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    req->body = b; /* freed with the request */
    req->event_hook = process_event;
    req->hook_ctx = json_is_object(pty) ? (void *)&PTY_FRAMING : NULL;
    req->hook_free = NULL;
    req->stream_type = "application/connect+json";
    if (!json_is_true(json_object_get(msg, "stdin")) && !json_is_object(pty))
        json_object_set_new(b, "_e2b_close_stdin", json_true());
    api_exec(req);
}

/* ---- filesystem.Filesystem/WatchDir (e2b_watch.c) */

void e2b_fs_watch_dir(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT))
        return;
    json_auto_t *msg = connect_request(req);
    if (!msg)
        return;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req); /* the caller's, or 404 */
    if (!sb)
        return;
    e2b_fs_watch(req, msg);
}

/* ---- Connect: attach to a running command's output */

/* Connect: {"process":{"pid"}} -> the command's start event, then its
 * output and end as they come (what came before is not replayed: envd's
 * Connect does not either; Airlock's own API can, .../output?from=0) */
void e2b_process_connect(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT))
        return;
    json_auto_t *msg = connect_request(req);
    if (!msg)
        return;
    json_t *pid = json_object_get(json_object_get(msg, "process"), "pid");
    if (!json_is_integer(pid)) {
        http_reply_errorf(req, 400, "invalid_request", "process.pid is required");
        return;
    }
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req); /* the caller's, or 404 */
    if (!sb)
        return;
    struct bgproc *p = proctab_get(sandbox_procs(sb), json_integer_value(pid), true);
    json_t *info = p ? proctab_info(sandbox_procs(sb), p) : NULL;
    bool is_pty = json_is_true(json_object_get(info, "pty"));
    json_decref(info);
    proctab_put(sandbox_procs(sb), p);
    req->event_hook = process_event;
    req->hook_ctx = is_pty ? (void *)&PTY_FRAMING : NULL;
    req->stream_type = "application/connect+json";
    api_proc_stream(req, steal_ptr(&sb), json_integer_value(pid), true);
}

/* The pid of a ProcessSelector ({"pid":n}; a tag is not kept here), or
 * -1 after replying. */
static json_int_t selector_pid(struct http_req *req)
{
    json_t *pid = json_object_get(json_object_get(req->body, "process"), "pid");
    if (!json_is_integer(pid) || json_integer_value(pid) <= 0 || json_integer_value(pid) > UINT32_MAX) {
        http_reply_errorf(req, 400, "invalid_request", "process.pid is required");
        return -1;
    }
    return json_integer_value(pid);
}

/* Stdin for the command pid of this sandbox. */
static void send_stdin(struct http_req *req, json_int_t pid, const unsigned char *data, size_t len, bool eof)
{
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    struct bgproc *p = proctab_get(sandbox_procs(sb), pid, true);
    int r = p ? proctab_stdin(sandbox_procs(sb), p, data, len, eof) : -ESRCH;
    proctab_put(sandbox_procs(sb), p);
    if (r == -ESRCH)
        http_reply_errorf(req, 404, "not_found", "no running command with pid %lld", (long long)pid);
    else if (r == -EBADF)
        http_reply_errorf(req, 400, "invalid_request", "the stdin of command %lld is closed", (long long)pid);
    else if (r < 0)
        http_reply_errorf(req, 503, "unavailable", "the sandbox agent is gone");
    else
        http_reply_json(req, 200, json_object());
}

/* SendInput: {"process":{"pid"},"input":{"stdin":base64}} */
void e2b_process_send_input(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT))
        return;
    json_int_t pid = selector_pid(req);
    if (pid < 0)
        return;
    json_t *input = json_object_get(req->body, "input");
    json_t *in = json_object_get(input, "stdin");
    if (!in)
        in = json_object_get(input, "pty"); /* a terminal's input goes the same way */
    if (!json_is_string(in)) {
        http_reply_errorf(req, 400, "invalid_request", "input.stdin or input.pty (bytes) is required");
        return;
    }
    size_t n = json_string_length(in);
    if (n > 4 * (PROTO_MAX_PAYLOAD / 3)) {
        http_reply_errorf(req, 413, "payload_too_large", "at most %u bytes of stdin per call", PROTO_MAX_PAYLOAD);
        return;
    }
    const char *b64 = json_string_value(in);
    if (n % 4 != 0) {
        http_reply_errorf(req, 400, "invalid_request", "input.stdin must be padded base64");
        return;
    }
    unsigned char *data = malloc(n / 4 * 3 + 1);
    if (!data) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    int len = n ? EVP_DecodeBlock(data, (const unsigned char *)b64, (int)n) : 0;
    if (len < 0) {
        free(data);
        http_reply_errorf(req, 400, "invalid_request", "input.stdin is not base64");
        return;
    }
    /* EVP_DecodeBlock counts the padding as bytes */
    for (size_t i = n; i > 0 && b64[i - 1] == '=' && len > 0; i--)
        len--;
    send_stdin(req, pid, data, (size_t)len, false);
    free(data);
}

void e2b_process_close_stdin(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT))
        return;
    json_int_t pid = selector_pid(req);
    if (pid >= 0)
        send_stdin(req, pid, NULL, 0, true);
}

/* List: the running commands of this sandbox started through this
 * listener (ProcessInfo: config, pid) */
void e2b_process_list(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT))
        return;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req); /* the caller's, or 404 */
    if (!sb)
        return;
    json_auto_t *all = proctab_list(sandbox_procs(sb), true, true);
    json_t *list = json_array();
    size_t i;
    json_t *info;
    json_array_foreach(json_object_get(all, "processes"), i, info)
    {
        json_t *cfg = json_object_get(info, "_config");
        if (list && cfg)
            json_array_append_new(list, json_pack("{s:O,s:O}", "config", cfg, "pid", json_object_get(info, "id")));
    }
    http_reply_json(req, 200, json_pack("{s:o}", "processes", list ? list : json_array()));
}

/* ---- the code interpreter's contexts: Airlock's code contexts
 * (api_contexts.c), in E2B's shape {id, language, cwd} */

static json_t *e2b_context(json_t *c)
{
    return json_pack("{s:O,s:O,s:O}", "id", json_object_get(c, "id"), "language", json_object_get(c, "language"), "cwd",
                     json_object_get(c, "cwd"));
}

/* One CTX_* call for the sandbox of the E2b-Sandbox-Id header: its reply,
 * or NULL after replying the error. */
static json_t *e2b_context_call(struct http_req *req, uint8_t type, json_t *payload)
{
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb) {
        json_decref(payload);
        return NULL;
    }
    json_t *reply = NULL;
    struct api_error err = {0};
    int r = api_context_call(sb, type, payload, &reply, &err);
    json_decref(payload);
    if (r < 0) {
        http_reply_error(req, &err);
        return NULL;
    }
    return reply ? reply : json_object();
}

/* runCode's context, checked before the stream starts: the SDK rejects a
 * call only for an HTTP error, and once streaming an unknown context would
 * be an error line in a 200 (true: it exists; false: replied 404). */
static bool e2b_context_exists(struct http_req *req, const char *id)
{
    json_t *reply = e2b_context_call(req, PROTO_CTX_LIST, json_object());
    if (!reply)
        return false;
    size_t i;
    json_t *c;
    bool found = false;
    json_array_foreach(json_object_get(reply, "contexts"), i, c)
        found = found || !strcmp(json_string_value(json_object_get(c, "id")) ? json_string_value(json_object_get(c, "id")) : "", id);
    json_decref(reply);
    if (!found)
        http_reply_errorf(req, 404, "not_found", "code context %s not found", id);
    return found;
}

void e2b_contexts_list(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_JUPYTER_PORT))
        return;
    json_t *reply = e2b_context_call(req, PROTO_CTX_LIST, json_object());
    if (!reply)
        return;
    json_t *list = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(reply, "contexts"), i, c)
        json_array_append_new(list, e2b_context(c));
    json_decref(reply);
    http_reply_json(req, 200, list);
}

/* DELETE /contexts/{id}, POST /contexts/{id}/restart */
static void contexts_change(struct http_req *req, uint8_t type)
{
    char ctx[sizeof(req->param)];
    snprintf(ctx, sizeof(ctx), "%s", req->param); /* the route's {id}, before the sandbox's replaces it */
    if (!e2b_route_sandbox(req, E2B_JUPYTER_PORT))
        return;
    json_t *reply = e2b_context_call(req, type, json_pack("{s:s}", "id", ctx));
    if (!reply)
        return;
    json_decref(reply);
    http_reply_json(req, 200, json_object());
}

void e2b_contexts_remove(struct http_req *req) { contexts_change(req, PROTO_CTX_DELETE); }
void e2b_contexts_restart(struct http_req *req) { contexts_change(req, PROTO_CTX_RESTART); }

void e2b_contexts_create(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_JUPYTER_PORT))
        return;
    json_t *lang = json_object_get(req->body, "language");
    json_t *cwd = json_object_get(req->body, "cwd");
    if ((lang && !json_is_null(lang) && !json_is_string(lang)) || (cwd && !json_is_null(cwd) && !json_is_string(cwd))) {
        http_reply_errorf(req, 400, "invalid_request", "language and cwd must be strings");
        return;
    }
    const char *l = json_is_string(lang) ? json_string_value(lang) : "python";
    if (!strcmp(l, "py"))
        l = "python";
    else if (!strcmp(l, "R"))
        l = "r";
    else if (!strcmp(l, "js") || !strcmp(l, "node"))
        l = "javascript";
    json_t *p = json_pack("{s:s}", "language", l);
    if (p && json_is_string(cwd))
        json_object_set(p, "cwd", cwd);
    json_t *reply = e2b_context_call(req, PROTO_CTX_CREATE, p);
    if (!reply)
        return;
    json_t *c = e2b_context(reply);
    json_decref(reply);
    http_reply_json(req, 200, c);
}

/* Update: {"process":{"pid"},"pty":{"size":{"cols","rows"}}}: a pty's window */
void e2b_process_update(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT))
        return;
    json_int_t pid = selector_pid(req);
    if (pid < 0)
        return;
    json_t *size = json_object_get(json_object_get(req->body, "pty"), "size");
    json_t *rows = json_object_get(size, "rows"), *cols = json_object_get(size, "cols");
    if (!json_is_integer(rows) || !json_is_integer(cols) || json_integer_value(rows) < 1 ||
        json_integer_value(rows) > 1000 || json_integer_value(cols) < 1 || json_integer_value(cols) > 1000) {
        http_reply_errorf(req, 400, "invalid_request", "pty.size.rows and pty.size.cols (1..1000) are required");
        return;
    }
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    struct bgproc *p = proctab_get(sandbox_procs(sb), pid, true);
    struct op_error oerr = {0};
    int r = p ? proctab_resize(sandbox_procs(sb), p, (unsigned)json_integer_value(rows),
                               (unsigned)json_integer_value(cols), &oerr)
              : -ESRCH;
    proctab_put(sandbox_procs(sb), p);
    if (r == -ESRCH)
        http_reply_errorf(req, 404, "not_found", "no running command with pid %lld", (long long)pid);
    else if (r == -ENOTTY)
        http_reply_errorf(req, 400, "invalid_request", "command %lld has no pty", (long long)pid);
    else if (r < 0)
        http_reply_errorf(req, 503, "unavailable", "%s", oerr.msg[0] ? oerr.msg : "the sandbox agent is gone");
    else
        http_reply_json(req, 200, json_object());
}

/* SendSignal: the pid is the agent's id of the run (its start event) */
void e2b_process_signal(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT))
        return;
    json_t *pid = json_object_get(json_object_get(req->body, "process"), "pid");
    const char *name = json_string_value(json_object_get(req->body, "signal"));
    json_t *num = json_object_get(req->body, "signal");
    int sig = name && !strcmp(name, "SIGNAL_SIGTERM") ? SIGTERM
              : name && !strcmp(name, "SIGNAL_SIGKILL") ? SIGKILL
              : json_is_integer(num) ? (int)json_integer_value(num)
                                     : 0;
    if (!json_is_integer(pid) || (sig != SIGKILL && sig != SIGTERM)) {
        http_reply_errorf(req, 400, "invalid_request", "process.pid and signal SIGNAL_SIGKILL or SIGNAL_SIGTERM are required");
        return;
    }
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    struct bgproc *p = proctab_get(sandbox_procs(sb), json_integer_value(pid), true);
    int r = p ? proctab_signal(sandbox_procs(sb), p, sig) : -ESRCH;
    proctab_put(sandbox_procs(sb), p);
    if (r == -ESRCH) {
        http_reply_errorf(req, 404, "not_found", "no running command with pid %lld", (long long)json_integer_value(pid));
        return;
    }
    if (r < 0) {
        http_reply_errorf(req, 503, "unavailable", "the sandbox agent is gone");
        return;
    }
    http_reply_json(req, 200, json_object());
}
