/* api_files_watch.c - GET /v1/sandboxes/{id}/files/watch: a directory's
 * changes as they happen, streamed as NDJSON (one event per line, like a
 * streamed run). The agent watches (src/agent/watch.c: inotify, the path
 * policy of a read); this file turns its FILE_EVENT frames into lines.
 *
 *   {"type":"ready","path":"/abs/P","recursive":false,"seq":0,"ts":".."}
 *   {"type":"create","path":"/abs/P/x","is_dir":false,"seq":1,"ts":".."}
 *   ...  create | write | remove | rename | chmod | overflow
 *   {"type":"end","reason":"the watched directory was removed",..}
 *
 * "ready" comes once the kernel watches are in place: a change made after
 * the client read it is reported. The stream lasts until the client leaves
 * (the agent's watch is cancelled with an ERROR frame), the directory goes
 * ("end"), or the sandbox does ({"type":"error"}); a stream that stops
 * without "end" or "error" was cut. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_errors.h"
#include "api_files.h"
#include "buf.h"
#include "path.h"
#include "proto.h"
#include "store.h"
#include "util.h"

#define WATCH_GONE_POLL_MS 1000 /* how soon a client that left is noticed while nothing happens */

struct watch {
    struct sandbox *sb;
    struct agent_req *areq;
    int client_fd;
    struct buf pending; /* lines not yet handed to the client */
    uint64_t seq;
    bool eos;      /* the last line is pending: end after it */
    bool finished; /* the agent ended the watch (END), nothing to cancel */
};

static void emit(struct watch *w, json_t *ev)
{
    char ts[40];
    format_time(now_wall_ms(), true, ts, sizeof(ts));
    json_object_set_new(ev, "seq", json_integer((json_int_t)w->seq++));
    json_object_set_new(ev, "ts", json_string(ts));
    char *line = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (line) {
        (void)buf_append_str(&w->pending, line);
        (void)buf_append(&w->pending, "\n", 1);
        free(line);
    }
}

static void emit_error(struct watch *w, const struct api_error *err)
{
    emit(w, json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "code", err->code, "message", err->message));
    w->eos = true;
}

/* The events of one FILE_EVENT frame, as lines; then an "overflow" if
 * frames were dropped meanwhile (the client read too slowly: the queue
 * behind this frame was full). */
static void emit_frame(struct watch *w, const struct agent_frame *f)
{
    json_t *msg = json_loadb((const char *)f->data, f->len, 0, NULL);
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(msg, "events"), i, ev)
    {
        if (json_is_object(ev) && json_is_string(json_object_get(ev, "type")))
            emit(w, json_deep_copy(ev));
    }
    if (agent_req_output_dropped(w->areq, PROTO_FILE_EVENT))
        emit(w, json_pack("{s:s,s:s}", "type", "overflow", "reason", "events were dropped: the client read too slowly"));
    if (f->flags & PROTO_F_END) {
        const char *reason = json_string_value(json_object_get(msg, "end"));
        emit(w, json_pack("{s:s,s:s}", "type", "end", "reason", reason ? reason : "the watch ended"));
        w->eos = true;
        w->finished = true;
    }
    json_decref(msg);
}

/* Wait for the agent's next frame in slices, watching for a client that
 * left; 1 when it did. */
static int watch_step(struct watch *w)
{
    cleanup_frame struct agent_frame *f = NULL;
    int r;
    do {
        r = agent_req_next(w->areq, now_mono_ms() + WATCH_GONE_POLL_MS, &f);
        if (r == -ETIMEDOUT && http_fd_gone(w->client_fd))
            return 1;
    } while (r == -ETIMEDOUT);
    struct api_error err = {0};
    if (r < 0) {
        if (r == -EPIPE)
            api_error_gone(&err, w->sb);
        else
            api_error_set(&err, r, 503, "unavailable", "sandbox agent: %s", strerror(-r));
        emit_error(w, &err);
        return 0;
    }
    if (f->type == PROTO_ERROR) {
        w->finished = true;
        api_error_from_agent(&err, (const char *)f->data, f->len);
        emit_error(w, &err);
    } else if (f->type == PROTO_FILE_EVENT) {
        emit_frame(w, f);
    } else {
        log_warn("sandbox %s: watch got %s", sandbox_id(w->sb), proto_type_name(f->type));
    }
    return 0;
}

static ssize_t watch_read(void *cls, uint64_t pos UNUSED, char *buf, size_t max)
{
    struct watch *w = cls;
    while (w->pending.len == 0) {
        if (w->eos)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (watch_step(w))
            return MHD_CONTENT_READER_END_WITH_ERROR; /* nobody listens */
    }
    size_t n = w->pending.len < max ? w->pending.len : max;
    memcpy(buf, w->pending.data, n);
    buf_consume(&w->pending, n);
    return (ssize_t)n;
}

static void watch_cancel(struct agent_req *areq)
{
    static const char msg[] = "{\"code\":\"internal\",\"message\":\"watch cancelled by the daemon\"}";
    (void)agent_req_send(areq, PROTO_ERROR, PROTO_F_END, msg, sizeof(msg) - 1);
}

static void watch_free(void *cls)
{
    struct watch *w = cls;
    if (!w->finished)
        watch_cancel(w->areq);
    agent_req_free(w->areq);
    sandbox_unref(w->sb);
    buf_free(&w->pending);
    free(w);
}

void api_files_watch(struct http_req *req)
{
    char norm[PATH_NORM_MAX];
    const char *path = api_files_path_param(req, "path", true, norm);
    if (!path)
        return;
    bool recursive = false;
    if (api_files_bool_param(req, "recursive", &recursive) < 0)
        return;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    cleanup_agent_req struct agent_req *areq = NULL;
    cleanup_frame struct agent_frame *f = NULL;
    json_t *payload = json_pack("{s:s,s:b}", "path", path, "recursive", recursive);
    int r = api_files_stream_open(req, sb, PROTO_FILE_WATCH, payload, false, watch_cancel, &areq, &f);
    json_decref(payload);
    if (r < 0)
        return;
    struct watch *w = calloc(1, sizeof(*w));
    if (!w) {
        watch_cancel(areq);
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    json_t *ok = json_loadb((const char *)f->data, f->len, 0, NULL);
    json_t *jdirs = json_object_get(ok, "dirs");
    emit(w, json_pack("{s:s,s:s,s:b,s:I}", "type", "ready", "path", path, "recursive", recursive, "dirs",
                      (json_int_t)(json_is_integer(jdirs) ? json_integer_value(jdirs) : 1)));
    json_decref(ok);
    w->client_fd = req->client_fd;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, watch_read, w,
                                                                  watch_free);
    if (!resp) {
        watch_cancel(areq);
        buf_free(&w->pending);
        free(w);
        http_reply_errorf(req, 500, "internal", "create the watch response");
        return;
    }
    w->sb = steal_ptr(&sb);
    w->areq = steal_ptr(&areq);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
    http_stream_begin(req);
    http_reply_response(req, 200, resp);
}
