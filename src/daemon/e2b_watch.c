/* e2b_watch.c - filesystem.Filesystem/WatchDir for E2B's SDKs (files.watchDir,
 * docs/e2b.md), by polling: Airlock's agent has no inotify, so the stream
 * lists the directory (the agent's FILE_LIST) every WATCH_POLL_MS and
 * answers what changed since the last listing: CREATE, WRITE (size or
 * mtime), CHMOD, REMOVE. One level (no recursive watching); a change that
 * keeps size and mtime within one second is not seen. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "build.h"
#include "buf.h"
#include "e2b.h"
#include "path.h"
#include "proto.h"
#include "registry.h"
#include "util.h"

#define WATCH_POLL_MS 500
#define WATCH_LIST_TIMEOUT_MS 30000

struct watch {
    struct daemon *d;
    struct key_info key;
    char sandbox[80];
    char path[PATH_NORM_MAX];
    int client_fd;
    json_t *last; /* name -> entry of the previous listing */
    struct buf pending;
    bool eos;
};

static void put_event(struct watch *w, uint8_t flags, json_t *msg /* stolen */)
{
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text)
        return;
    size_t n = strlen(text);
    uint8_t head[5] = {flags, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    (void)buf_append(&w->pending, head, sizeof(head));
    (void)buf_append(&w->pending, text, n);
    free(text);
}

static void end_with_error(struct watch *w, unsigned status, const char *msg)
{
    put_event(w, 0x02, json_pack("{s:o}", "error", e2b_error_json(true, status, msg)));
    w->eos = true;
}

static void fs_event(struct watch *w, const char *name, const char *type)
{
    put_event(w, 0, json_pack("{s:{s:s,s:s}}", "filesystem", "name", name, "type", type));
}

/* name -> entry of the directory now, or NULL after ending the stream */
static json_t *listing(struct watch *w)
{
    cleanup_sandbox struct sandbox *sb = NULL;
    struct op_error oerr = {0};
    if (sandbox_get(w->d, &w->key, w->sandbox, &sb, &oerr) < 0) {
        end_with_error(w, 404, "the sandbox is gone");
        return NULL;
    }
    json_t *reply = NULL, *payload = json_pack("{s:s}", "path", w->path);
    int r = agent_call(sandbox_agent(sb), PROTO_FILE_LIST, payload, WATCH_LIST_TIMEOUT_MS, &reply, &oerr);
    json_decref(payload);
    if (r < 0) {
        char msg[PATH_NORM_MAX + sizeof(oerr.msg) + 16];
        snprintf(msg, sizeof(msg), "list %s: %s", w->path, oerr.msg);
        end_with_error(w, r == -EREMOTEIO ? 404 : 503, msg);
        return NULL;
    }
    json_t *by_name = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(reply, "entries"), i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        if (name)
            json_object_set(by_name, name, e);
    }
    json_decref(reply);
    return by_name;
}

static bool differs(const json_t *a, const json_t *b, const char *field)
{
    return !json_equal(json_object_get(a, field), json_object_get(b, field));
}

/* one poll: the events since the last listing */
static void poll_once(struct watch *w)
{
    json_t *now = listing(w);
    if (!now)
        return;
    const char *name;
    json_t *e, *old;
    json_object_foreach(now, name, e)
    {
        old = json_object_get(w->last, name);
        if (!old)
            fs_event(w, name, "EVENT_TYPE_CREATE");
        else if (differs(old, e, "size") || differs(old, e, "mtime"))
            fs_event(w, name, "EVENT_TYPE_WRITE");
        else if (differs(old, e, "mode"))
            fs_event(w, name, "EVENT_TYPE_CHMOD");
    }
    json_object_foreach(w->last, name, old)
    {
        if (!json_object_get(now, name))
            fs_event(w, name, "EVENT_TYPE_REMOVE");
    }
    json_decref(w->last);
    w->last = now;
}

static ssize_t watch_read(void *cls, uint64_t pos UNUSED, char *out, size_t max)
{
    struct watch *w = cls;
    while (w->pending.len == 0) {
        if (w->eos)
            return MHD_CONTENT_READER_END_OF_STREAM;
        /* wait a poll interval, or less if the client leaves */
        struct pollfd p = {.fd = w->client_fd, .events = POLLRDHUP};
        if (poll(&p, 1, WATCH_POLL_MS) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        poll_once(w);
    }
    size_t n = w->pending.len < max ? w->pending.len : max;
    memcpy(out, w->pending.data, n);
    buf_consume(&w->pending, n);
    return (ssize_t)n;
}

static void watch_free(void *cls)
{
    struct watch *w = cls;
    json_decref(w->last);
    buf_free(&w->pending);
    free(w);
}

void e2b_fs_watch(struct http_req *req, json_t *msg)
{
    json_t *path = json_object_get(msg, "path");
    const char *emsg = NULL;
    if (json_is_true(json_object_get(msg, "recursive"))) {
        http_reply_errorf(req, 400, "invalid_request",
                          "recursive watching is not available: Airlock watches one directory level");
        return;
    }
    if (json_is_true(json_object_get(msg, "includeEntry"))) {
        http_reply_errorf(req, 400, "invalid_request", "includeEntry is not available");
        return;
    }
    struct watch *w = calloc(1, sizeof(*w));
    if (!w) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    if (!json_is_string(path) || path_normalize(json_string_value(path), json_string_length(path), w->path, &emsg) < 0) {
        free(w);
        http_reply_errorf(req, 400, "invalid_request", "%s", emsg ? emsg : "path is required");
        return;
    }
    w->d = req->d;
    w->key = req->key;
    w->client_fd = req->client_fd;
    snprintf(w->sandbox, sizeof(w->sandbox), "%s", req->param);
    w->last = listing(w);
    if (!w->last) { /* not a directory there, or no sandbox: answered as an error */
        json_t *e = NULL;
        json_error_t jerr;
        /* the ended stream holds the error envelope: its message */
        if (w->pending.len > 5)
            e = json_loadb(w->pending.data + 5, w->pending.len - 5, 0, &jerr);
        const char *m = json_string_value(json_object_get(json_object_get(e, "error"), "message"));
        http_reply_errorf(req, 404, "not_found", "%s", m ? m : "cannot watch that path");
        json_decref(e);
        watch_free(w);
        return;
    }
    put_event(w, 0, json_pack("{s:{}}", "start"));
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, watch_read, w, watch_free);
    if (!resp) {
        watch_free(w);
        http_reply_errorf(req, 500, "internal", "create the streaming response");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/connect+json");
    http_stream_begin(req);
    http_reply_response(req, 200, resp);
}
