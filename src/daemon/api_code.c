/* api_code.c - POST /code (RUN_CODE) and POST /exec (EXEC).
 *
 * Both send one request to the agent and read back STDOUT/STDERR frames and
 * a final RESULT. Without streaming, the output is collected and answered as
 * one result object; with `Accept: application/x-ndjson`, each frame becomes
 * an event line as it arrives. Output bytes are made valid UTF-8 here (jansson
 * refuses anything else), keeping characters split across frames whole.
 *
 * A client that disconnects before the result: an exec process is killed
 * (SIGNAL SIGKILL); a code run is left to finish (its REPL state matters),
 * its remaining frames are dropped. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_errors.h"
#include "buf.h"
#include "log.h"
#include "proto.h"
#include "registry.h"
#include "utf8.h"
#include "util.h"

#define RUN_TIMEOUT_DEFAULT_S 60 /* when a call gives none; --max-call-timeout caps what it may give */
/* The agent protocol carries a request in one frame of PROTO_MAX_PAYLOAD
 * (1 MiB), so no code can be longer; refusing it here names the field. A
 * shorter code can still make the frame too big with a large env or many
 * escaped characters: that is the 413 of agent_req_start. */
#define RUN_CODE_MAX_BYTES PROTO_MAX_PAYLOAD
#define RUN_GRACE_MS 30000          /* the agent enforces timeout_s; this is our backstop */
#define RUN_OUTPUT_CAP (16u << 20)  /* per stream, whatever the agent sends */
#define GONE_POLL_MS 1000

struct run {
    struct daemon *d;
    struct sandbox *sb;
    struct agent_req *areq;
    bool is_exec;
    char language[16];
    uint64_t oom_before;
    uint64_t deadline;   /* CLOCK_MONOTONIC ms */
    int client_fd;
    char key_id[KEY_ID_LEN + 1];
    json_t *audit;       /* outcome of the run, merged into its audit event when the run ends */
    int64_t audit_row;   /* that event, written before the run was sent */
    bool repl_restarted; /* the result said so: a repl_restarted event follows */
    bool finished;       /* RESULT or ERROR received, or the agent is gone */

    /* collecting */
    struct buf out, err;
    bool out_capped, err_capped;

    /* streaming */
    struct utf8_stream out_u8, err_u8;
    unsigned seq;
    struct buf pending; /* event lines not yet handed to the client */
    bool eos;
    bool client_gone;
    /* another framing of the events (the E2B listener; http.h) */
    void (*event_hook)(void *ctx, json_t *ev, struct buf *out);
    void *hook_ctx;
    void (*hook_free)(void *ctx);
};

static void run_free(struct run *run)
{
    if (!run)
        return;
    if (!run->finished && run->areq && run->is_exec) {
        /* nobody will read the result: kill the process */
        json_t *sig = json_pack("{s:I,s:i}", "target", (json_int_t)agent_req_id(run->areq), "signal", SIGKILL);
        (void)agent_send_oneway(sandbox_agent(run->sb), PROTO_SIGNAL, sig);
        json_decref(sig);
    }
    if (run->audit) {
        json_object_set_new(run->audit, "completed", json_boolean(run->finished));
        (void)store_audit_outcome(run->d->store, run->audit_row, run->audit);
        json_decref(run->audit);
    }
    if (run->repl_restarted) {
        /* the sandbox's events tell that its REPL state was lost here */
        json_t *detail = json_pack("{s:s}", "message", "the Python REPL was restarted; its state is lost");
        (void)store_audit(run->d->store, NULL, "repl_restarted", sandbox_id(run->sb), detail);
        json_decref(detail);
    }
    agent_req_free(run->areq);
    if (run->hook_free)
        run->hook_free(run->hook_ctx);
    if (run->sb)
        sandbox_unref(run->sb);
    buf_free(&run->out);
    buf_free(&run->err);
    buf_free(&run->pending);
    free(run);
}

static void run_freep(struct run **run) { run_free(*run); }
#define cleanup_run __attribute__((cleanup(run_freep)))

/* The next frame of the run, waiting in slices so that a client which went
 * away is noticed. -EPIPE (agent gone), -ETIMEDOUT (past the deadline),
 * -ECONNRESET (client gone). */
static int run_next(struct run *run, struct agent_frame **f)
{
    for (;;) {
        uint64_t now = now_mono_ms();
        if (now >= run->deadline)
            return -ETIMEDOUT;
        uint64_t slice = now + GONE_POLL_MS;
        int r = agent_req_next(run->areq, slice < run->deadline ? slice : run->deadline, f);
        if (r != -ETIMEDOUT)
            return r;
        if (http_fd_gone(run->client_fd))
            return -ECONNRESET;
    }
}

/* The error for a run that failed at the request level. */
static void run_error(struct run *run, int r, const struct agent_frame *f, struct api_error *err)
{
    if (f && f->type == PROTO_ERROR)
        api_error_from_agent(err, (const char *)f->data, f->len);
    else if (f)
        api_error_set(err, -EPROTO, 500, "internal", "agent sent %s during a run", proto_type_name(f->type));
    else if (r == -EPIPE)
        api_error_gone(err, run->sb);
    else if (r == -ETIMEDOUT)
        api_error_set(err, r, 503, "unavailable", "sandbox agent did not finish the run in time");
    else
        api_error_set(err, r, 500, "internal", "run: %s", strerror(-r));
}

/* The languages served by a persistent runner in the sandbox (the agent's
 * lang.c), as error messages name them; NULL for any other. */
static const char *repl_label(const char *language)
{
    if (!strcmp(language, "python"))
        return "Python";
    if (!strcmp(language, "r"))
        return "R";
    if (!strcmp(language, "javascript"))
        return "JavaScript";
    if (!strcmp(language, "context")) /* a context's, language not given: the agent knows which */
        return "REPL";
    return NULL;
}

/* The result fields from a RESULT payload (output excluded), with the OOM
 * verdict applied. Never NULL unless out of memory. */
static json_t *result_fields(struct run *run, const struct agent_frame *f)
{
    json_t *res = json_loadb((const char *)f->data, f->len, 0, NULL);
    if (!json_is_object(res)) {
        json_decref(res);
        res = json_object();
    }
    json_t *exit_code = json_object_get(res, "exit_code");
    json_t *error = json_object_get(res, "error");
    json_t *results = json_object_get(res, "results");
    json_t *ks = json_object_get(res, "killed_signal");
    json_t *count = json_object_get(res, "execution_count");
    run->repl_restarted = json_is_true(json_object_get(res, "repl_restarted"));
    json_t *out = json_pack("{s:o,s:o,s:o,s:I,s:b,s:b,s:b,s:o,s:b}", "exit_code",
                            json_is_integer(exit_code) ? json_incref(exit_code) : json_null(), "error",
                            json_is_object(error) ? json_incref(error) : json_null(), "results",
                            json_is_array(results) ? json_incref(results) : json_array(), "duration_ms",
                            json_integer_value(json_object_get(res, "duration_ms")), "stdout_truncated",
                            json_is_true(json_object_get(res, "stdout_truncated")) || run->out_capped ||
                                agent_req_output_dropped(run->areq, PROTO_STDOUT),
                            "stderr_truncated",
                            json_is_true(json_object_get(res, "stderr_truncated")) || run->err_capped ||
                                agent_req_output_dropped(run->areq, PROTO_STDERR),
                            "timed_out",
                            json_is_true(json_object_get(res, "timed_out")), "killed_signal",
                            json_is_integer(ks) ? json_incref(ks) : json_null(), "repl_restarted",
                            run->repl_restarted);
    /* a vm guest's agent says so itself (src/agent/oomwatch.c): its
     * processes are in no host cgroup of their own */
    bool guest_oom = json_is_true(json_object_get(res, "oom_killed"));
    /* a REPL's RESULT names its context's language (a call may name only the context) */
    const char *res_lang = json_string_value(json_object_get(res, "language"));
    if (!run->is_exec && res_lang && repl_label(res_lang) && strcmp(res_lang, "context") != 0)
        snprintf(run->language, sizeof(run->language), "%s", res_lang);
    /* Python: the cell's number in the REPL (IPython's In [n]); null for shell runs */
    if (out && json_object_set_new(out, "execution_count", json_is_integer(count) ? json_incref(count) : json_null()) < 0) {
        json_decref(out);
        out = NULL;
    }
    json_decref(res);
    if (!out)
        return NULL;

    /* only a failed run can have been an OOM kill: a successful one (the
     * common case) skips reading the cgroup counter again */
    bool failed = json_is_object(json_object_get(out, "error")) || json_integer_value(json_object_get(out, "killed_signal")) == SIGKILL;
    if (failed && (guest_oom || sandbox_oom_kills(run->sb) > run->oom_before)) {
        char msg[256];
        const char *repl = repl_label(run->language);
        if (!run->is_exec && repl)
            snprintf(msg, sizeof(msg),
                     "the sandbox ran out of memory (limit %u MiB); the %s process was killed and restarted, "
                     "its state is lost",
                     sandbox_memory_mb(run->sb), repl);
        else
            snprintf(msg, sizeof(msg), "the sandbox ran out of memory (limit %u MiB); the process was killed",
                     sandbox_memory_mb(run->sb));
        json_object_set_new(out, "error",
                            json_pack("{s:s,s:s,s:s}", "name", "OutOfMemory", "value", msg, "traceback", ""));
    }
    if (run->audit) {
        json_object_set(run->audit, "exit_code", json_object_get(out, "exit_code"));
        if (run->repl_restarted)
            json_object_set_new(run->audit, "repl_restarted", json_true());
    }
    return out;
}

static void append_capped(struct buf *b, bool *capped, const struct agent_frame *f)
{
    size_t n = f->len;
    if (b->len + n > RUN_OUTPUT_CAP) {
        n = RUN_OUTPUT_CAP - b->len;
        *capped = true;
    }
    if (n && buf_append(b, f->data, n) < 0)
        *capped = true;
}

static json_t *text_json(const struct buf *raw)
{
    struct buf clean = {0};
    if (utf8_sanitize((const uint8_t *)raw->data, raw->len, true, &clean) < 0) {
        buf_free(&clean);
        return json_string("");
    }
    json_t *s = json_stringn(clean.data ? clean.data : "", clean.len);
    buf_free(&clean);
    return s ? s : json_string("");
}

/* ---- collected: one result object */


/* The next frame of a run, classified once for both answers (collected and
 * streamed): 0 with *f for STDOUT, STDERR and RESULT; -ECONNRESET when the
 * HTTP client left; -EIO with err filled when the run failed (an agent
 * ERROR, the agent gone, a timeout, or a frame that has no place here). */
static int run_next_frame(struct run *run, struct agent_frame **f, struct api_error *err)
{
    int r = run_next(run, f);
    if (r == -ECONNRESET)
        return r;
    if (r < 0 || (*f)->type == PROTO_ERROR ||
        ((*f)->type != PROTO_STDOUT && (*f)->type != PROTO_STDERR && (*f)->type != PROTO_RESULT)) {
        run->finished = r < 0 ? r == -EPIPE : ((*f)->flags & PROTO_F_END) != 0;
        run_error(run, r, r < 0 ? NULL : *f, err);
        return -EIO;
    }
    return 0;
}
static void run_collect(struct http_req *req, struct run *run)
{
    for (;;) {
        cleanup_frame struct agent_frame *f = NULL;
        struct api_error err = {0};
        int r = run_next_frame(run, &f, &err);
        if (r == -ECONNRESET) {
            http_reply_errorf(req, 503, "unavailable", "client disconnected"); /* nobody reads it */
            return;
        }
        if (r < 0) {
            http_reply_error(req, &err);
            return;
        }
        if (f->type == PROTO_STDOUT) {
            append_capped(&run->out, &run->out_capped, f);
        } else if (f->type == PROTO_STDERR) {
            append_capped(&run->err, &run->err_capped, f);
        } else {
            http_mark(req, HTTP_T_AGENT);
            run->finished = true;
            json_t *res = result_fields(run, f);
            if (!res) {
                http_reply_errorf(req, 500, "internal", "out of memory");
                return;
            }
            json_object_set_new(res, "stdout", text_json(&run->out));
            json_object_set_new(res, "stderr", text_json(&run->err));
            http_reply_json(req, 200, res);
            return;
        }
    }
}

/* ---- streamed: NDJSON events */

static void emit(struct run *run, json_t *ev)
{
    char ts[40];
    format_time(now_wall_ms(), true, ts, sizeof(ts));
    json_object_set_new(ev, "seq", json_integer(run->seq++));
    json_object_set_new(ev, "ts", json_string(ts));
    if (run->event_hook) {
        run->event_hook(run->hook_ctx, ev, &run->pending);
        json_decref(ev);
        return;
    }
    char *line = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (line) {
        (void)buf_append_str(&run->pending, line);
        (void)buf_append(&run->pending, "\n", 1);
        free(line);
    }
}

static void emit_output(struct run *run, const char *type, struct utf8_stream *u8, const uint8_t *data, size_t len,
                        bool final)
{
    struct buf text = {0};
    int r = final ? utf8_stream_finish(u8, &text) : utf8_stream_feed(u8, data, len, &text);
    if (r == 0 && text.len > 0)
        emit(run, json_pack("{s:s,s:s%}", "type", type, "data", text.data, text.len));
    buf_free(&text);
}

static void emit_error(struct run *run, const struct api_error *err)
{
    emit(run, json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "code", err->code, "message", err->message));
    run->eos = true;
}

/* Wait for the next frame and turn it into event lines. */
static void stream_step(struct run *run)
{
    cleanup_frame struct agent_frame *f = NULL;
    struct api_error err = {0};
    int r = run_next_frame(run, &f, &err);
    if (r == -ECONNRESET) {
        run->eos = run->client_gone = true; /* nobody listens; end the response */
        return;
    }
    if (r < 0) {
        emit_error(run, &err);
        return;
    }
    if (f->type == PROTO_STDOUT) {
        emit_output(run, "stdout", &run->out_u8, f->data, f->len, false);
        return;
    }
    if (f->type == PROTO_STDERR) {
        emit_output(run, "stderr", &run->err_u8, f->data, f->len, false);
        return;
    }
    run->finished = true;
    emit_output(run, "stdout", &run->out_u8, NULL, 0, true);
    emit_output(run, "stderr", &run->err_u8, NULL, 0, true);
    json_t *res = result_fields(run, f);
    if (!res) {
        api_error_set(&err, -ENOMEM, 500, "internal", "out of memory");
        emit_error(run, &err);
        return;
    }
    json_t *exit_code = json_incref(json_object_get(res, "exit_code"));
    json_t *ev = json_pack("{s:s}", "type", "result"); /* "type" first, for readers of the stream */
    json_object_update(ev, res);
    json_decref(res);
    emit(run, ev);
    emit(run, json_pack("{s:s,s:o}", "type", "exit", "exit_code", exit_code ? exit_code : json_null()));
    run->eos = true;
}

static ssize_t stream_read(void *cls, uint64_t pos UNUSED, char *buf, size_t max)
{
    struct run *run = cls;
    while (run->pending.len == 0) {
        if (run->client_gone)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (run->eos)
            return MHD_CONTENT_READER_END_OF_STREAM;
        stream_step(run);
    }
    size_t n = run->pending.len < max ? run->pending.len : max;
    memcpy(buf, run->pending.data, n);
    buf_consume(&run->pending, n);
    return (ssize_t)n;
}

static void stream_free(void *cls) { run_free(cls); }

static bool wants_ndjson(struct http_req *req)
{
    const char *accept = http_header(req, MHD_HTTP_HEADER_ACCEPT);
    return accept && strstr(accept, "application/x-ndjson");
}

/* ---- common start */

static void run_start(struct http_req *req, bool is_exec, const char *language, unsigned timeout_s, json_t *payload,
                      json_t *audit)
{
    struct daemon *d = req->d;
    cleanup_run struct run *run = calloc(1, sizeof(*run));
    if (!run) {
        json_decref(audit);
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    run->d = d;
    run->event_hook = req->event_hook;
    run->hook_ctx = steal_ptr(&req->hook_ctx);
    run->hook_free = req->hook_free;
    run->is_exec = is_exec;
    run->client_fd = req->client_fd;
    snprintf(run->language, sizeof(run->language), "%s", language);
    snprintf(run->key_id, sizeof(run->key_id), "%s", req->key.id);
    struct api_error err = {0};
    struct op_error oerr = {0};
    int gr = sandbox_get(d, &req->key, req->param, &run->sb, &oerr);
    if (gr < 0) {
        json_decref(audit);
        api_reply_op_error(req, gr, &oerr);
        return;
    }
    http_mark(req, HTTP_T_LOOKUP);
    run->oom_before = sandbox_oom_kills(run->sb);
    json_t *env = json_deep_copy(sandbox_env(run->sb));
    json_t *req_env = json_object_get(payload, "env");
    if (json_is_object(req_env))
        json_object_update(env, req_env);
    json_object_set_new(payload, "env", env);
    json_object_set_new(payload, "timeout_ms", json_integer((json_int_t)timeout_s * 1000));
    json_object_set_new(payload, "max_output", json_integer(0));
    run->deadline = now_mono_ms() + (uint64_t)timeout_s * 1000 + RUN_GRACE_MS;

    /* The audit log fails closed: the event is written before the run is
     * sent, and a run whose event cannot be written does not happen. Its
     * outcome is added when it ends (run_free). */
    struct audit_rec a = {.key_id = req->key.id, .action = is_exec ? "exec" : "code",
                          .sandbox_id = sandbox_id(run->sb), .detail = audit};
    int r = store_audit_begin(d->store, &a, &run->audit_row);
    json_decref(audit);
    audit = NULL;
    if (r < 0) {
        api_error_audit(&err, r, is_exec ? "the command" : "the code");
        http_reply_error(req, &err);
        return;
    }
    r = agent_req_start(sandbox_agent(run->sb), is_exec ? PROTO_EXEC : PROTO_RUN_CODE, payload, &run->areq);
    if (r < 0) {
        json_t *o = json_pack("{s:b,s:s}", "completed", 0, "error", "not sent to the agent");
        (void)store_audit_outcome(d->store, run->audit_row, o);
        json_decref(o);
        if (r == -EMSGSIZE)
            api_error_set(&err, r, 413, "payload_too_large", "the request is larger than the agent protocol allows (1 MiB)");
        else if (r == -EPIPE)
            api_error_gone(&err, run->sb);
        else if (r == -EAGAIN) /* paused between the lookup and the send */
            api_error_set(&err, r, 409, "sandbox_paused", "sandbox %s is paused: resume it first", sandbox_id(run->sb));
        else
            api_error_set(&err, r, 500, "internal", "send the run to the agent: %s", strerror(-r));
        http_reply_error(req, &err);
        return;
    }
    run->audit = json_object(); /* from now on the run's outcome is recorded, whatever happens */

    if (!wants_ndjson(req) && !run->event_hook) {
        run_collect(req, run);
        return;
    }
    if (run->event_hook) /* E2B's process API names the run before its output */
        emit(run, json_pack("{s:s,s:I}", "type", "start", "id", (json_int_t)agent_req_id(run->areq)));
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, run,
                                                                  stream_free);
    if (!resp) {
        http_reply_errorf(req, 500, "internal", "create the streaming response");
        return;
    }
    steal_ptr(&run); /* owned by the response now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            req->stream_type ? req->stream_type : "application/x-ndjson");
    http_stream_begin(req);
    http_reply_response(req, 200, resp);
}

/* timeout_s: absent is the default, 0 is "no per-call limit": the longest a
 * call may take, which no sandbox outlives (its expiry ends the call). */
static int timeout_field(struct http_req *req, unsigned *timeout_s)
{
    unsigned max = req->d->cfg.max_call_timeout_s;
    *timeout_s = RUN_TIMEOUT_DEFAULT_S < max ? RUN_TIMEOUT_DEFAULT_S : max;
    if (api_field_uint(req, "timeout_s", 0, max, timeout_s) < 0)
        return -EINVAL;
    if (*timeout_s == 0)
        *timeout_s = max;
    return 0;
}

void api_code(struct http_req *req)
{
    const char *code = NULL, *language = "python";
    unsigned timeout_s;
    json_t *env = NULL; /* the call's own variables, over the sandbox's (borrowed) */
    int r = api_field_string(req, "code", &code);
    if (r < 0)
        return;
    if (r > 0) {
        http_reply_errorf(req, 400, "invalid_request", "code is required");
        return;
    }
    const char *context = NULL; /* a code context's id (api_contexts.c); none: the language's default */
    if (api_field_string(req, "language", &language) < 0 || api_field_string(req, "context", &context) < 0)
        return;
    bool language_given = json_is_string(json_object_get(req->body, "language"));
    if (!strcmp(language, "js"))
        language = "javascript";
    if (strcmp(language, "bash") != 0 && (!repl_label(language) || !strcmp(language, "context"))) {
        http_reply_errorf(req, 400, "invalid_request", "unknown language \"%.64s\": available are python, bash, r, javascript",
                          language);
        return;
    }
    if (context && !*context) {
        http_reply_errorf(req, 400, "invalid_request", "context must be a context id");
        return;
    }
    if (timeout_field(req, &timeout_s) < 0 || api_field_env(req, "env", 64 * 1024, &env) < 0)
        return;
    size_t code_len = json_string_length(json_object_get(req->body, "code"));
    if (code_len > RUN_CODE_MAX_BYTES) {
        http_reply_errorf(req, 413, "payload_too_large", "code is larger than %u MiB", RUN_CODE_MAX_BYTES >> 20);
        return;
    }
    json_t *payload = json_pack("{s:s%}", "code", code, code_len);
    /* in a context its language rules: one given must match (the agent checks) */
    if (payload && (language_given || !context))
        json_object_set_new(payload, "language", json_string(language));
    if (payload && context)
        json_object_set_new(payload, "context", json_string(context));
    if (payload && env)
        json_object_set(payload, "env", env);
    json_t *audit = json_pack("{s:s,s:I,s:i}", "language", language, "code_bytes", (json_int_t)code_len,
                              "timeout_s", (int)timeout_s);
    if (audit && context)
        json_object_set_new(audit, "context", json_string(context));
    /* the OOM message names the process: a context's without a language given is "the REPL" */
    run_start(req, false, context && !language_given ? "context" : language, timeout_s, payload, audit);
    json_decref(payload);
}

static bool nul_free(json_t *s) { return json_string_length(s) == strlen(json_string_value(s)); }

void api_exec(struct http_req *req)
{
    json_t *cmd = json_object_get(req->body, "cmd");
    json_t *payload = json_object();
    json_t *audit = json_object();
    unsigned timeout_s;
    const char *cwd = NULL, *stdin_data = NULL;
    json_t *env = NULL;

    if (json_is_string(cmd) && json_string_length(cmd) > 0 && nul_free(cmd)) {
        json_object_set(payload, "shell", cmd);
        json_object_set_new(audit, "shell", json_true());
        json_object_set_new(audit, "cmd_bytes", json_integer((json_int_t)json_string_length(cmd)));
    } else if (json_is_array(cmd) && json_array_size(cmd) > 0) {
        size_t i;
        json_t *v;
        json_array_foreach(cmd, i, v)
        {
            if (!json_is_string(v) || !nul_free(v)) {
                http_reply_errorf(req, 400, "invalid_request", "cmd[%zu] must be a string without NUL", i);
                goto out;
            }
        }
        if (json_string_length(json_array_get(cmd, 0)) == 0) {
            http_reply_errorf(req, 400, "invalid_request", "cmd[0] must not be empty");
            goto out;
        }
        json_object_set(payload, "argv", cmd);
        json_object_set_new(audit, "argv0", json_copy(json_array_get(cmd, 0)));
        json_object_set_new(audit, "argc", json_integer((json_int_t)json_array_size(cmd)));
    } else {
        http_reply_errorf(req, 400, "invalid_request",
                          "cmd is required: a non-empty array of strings or a non-empty shell string");
        goto out;
    }
    if (api_field_env(req, "env", 64 * 1024, &env) < 0 || api_field_string(req, "cwd", &cwd) < 0 ||
        api_field_string(req, "stdin", &stdin_data) < 0 || timeout_field(req, &timeout_s) < 0)
        goto out;
    if (env)
        json_object_set(payload, "env", env);
    if (cwd)
        json_object_set(payload, "cwd", json_object_get(req->body, "cwd"));
    /* E2B's commands with stdin (e2b_envd.c: SendInput, CloseStdin); not a
     * field of Airlock's own API, whose stdin is one string */
    if (req->e2b && json_is_true(json_object_get(req->body, "stdin_open")))
        json_object_set_new(payload, "stdin_open", json_true());
    if (stdin_data) {
        json_object_set(payload, "stdin", json_object_get(req->body, "stdin"));
        json_object_set_new(audit, "stdin_bytes",
                            json_integer((json_int_t)json_string_length(json_object_get(req->body, "stdin"))));
    }
    bool background = false;
    json_t *pty = json_object_get(req->body, "pty");
    if (api_field_bool(req, "background", &background) < 0)
        goto out;
    if (pty && !json_is_null(pty) && !json_is_false(pty)) {
        /* a terminal (agent job.c: a pty pair from the sandbox's own devpts):
         * true is 24x80; the agent checks rows and cols */
        if (!json_is_true(pty) && !json_is_object(pty)) {
            http_reply_errorf(req, 400, "invalid_request", "pty must be true or {\"rows\": n, \"cols\": n}");
            goto out;
        }
        json_t *size = json_object();
        if (json_is_object(pty)) {
            json_t *r = json_object_get(pty, "rows"), *c = json_object_get(pty, "cols");
            if ((r && !json_is_integer(r)) || (c && !json_is_integer(c))) {
                json_decref(size);
                http_reply_errorf(req, 400, "invalid_request", "pty rows and cols must be integers 1..1000");
                goto out;
            }
            if (r)
                json_object_set(size, "rows", r);
            if (c)
                json_object_set(size, "cols", c);
        }
        json_object_set_new(payload, "pty", size);
        json_object_set_new(audit, "pty", json_true());
    }
    if (background) {
        unsigned bg_timeout = 0; /* none: it runs until it exits, is killed or the sandbox ends */
        if (api_field_uint(req, "timeout_s", 0, req->d->cfg.max_call_timeout_s, &bg_timeout) < 0)
            goto out;
        json_object_set_new(audit, "background", json_true());
        json_object_set_new(audit, "timeout_s", json_integer(bg_timeout));
        api_exec_background(req, payload, steal_ptr(&audit), bg_timeout);
        goto out;
    }
    json_object_set_new(audit, "timeout_s", json_integer(timeout_s));
    run_start(req, true, "exec", timeout_s, payload, steal_ptr(&audit));
out:
    json_decref(payload);
    json_decref(audit);
}
