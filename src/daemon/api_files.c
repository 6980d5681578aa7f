/* api_files.c - files inside a sandbox: PUT (streamed upload) and GET
 * (streamed download), both optionally gzip; the other files routes are
 * api_files_ops.c, api_files_batch.c and api_files_watch.c. File bytes pass through the daemon in chunks and
 * are never written to the host disk nor held whole in memory: an upload
 * chunk from libmicrohttpd becomes a FILE_DATA frame at once, a download
 * frame is copied to the client as the client reads, and acknowledged to
 * the agent (FILE_ACK) only then: the agent keeps at most PROTO_GET_WINDOW
 * bytes unacknowledged, so a client that stops reading stops its own
 * download and nothing else (the sandbox's other requests share the stream). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_errors.h"
#include "api_files.h"
#include "gzip.h"
#include "log.h"
#include "path.h"
#include "proto.h"
#include "registry.h"
#include "util.h"

/* FILE_OP_TIMEOUT_MS (list, delete, final upload reply) is api_files.h's */
#define DOWNLOAD_FRAME_TIMEOUT_MS 120000
#define GONE_POLL_MS 1000
#define DOWNLOAD_ACK_BATCH PROTO_DATA_CHUNK /* acknowledge in chunks: few frames */

/* A whole window must fit in a request's queue, or the reader thread would
 * wait for a slow download client again (agent_client.h). */
_Static_assert(PROTO_GET_WINDOW <= AGENT_QUEUE_MAX_BYTES, "download window larger than the agent queue");

/* The reply for a failed agent request: 410 if the sandbox expired under
 * it, 503 if its agent went away, else the error as filled. */
void api_files_reply_agent_error(struct http_req *req, struct sandbox *sb, int r, struct api_error *err)
{
    if (r == -EPIPE)
        api_error_gone(err, sb);
    else if (r == -EAGAIN) /* paused between the lookup and the send */
        api_error_set(err, r, 409, "sandbox_paused", "sandbox %s is paused: resume it first", sandbox_id(sb));
    http_reply_error(req, err);
}

/* The `path` query parameter, required; NULL after replying 400. It is
 * normalised (absolute: a relative one is under /home/user) into norm
 * (PATH_NORM_MAX bytes) and returned, so every answer names the file it
 * acted on. names_file: a path ending in '/' names a directory, which an
 * upload cannot write (the CLI and SDK append the local name). The
 * agent decides the rest (where the path leads), but what can be decided
 * from the string is decided here, before anything reaches the agent: a
 * NUL (libmicrohttpd decodes %00: the value is longer than its C string,
 * which would name another file), invalid UTF-8, and /proc, /sys, /dev
 * (src/common/path.h). http.c refuses NULs in every query value already;
 * this is the files routes' own check. The rename's destination (`to`) is
 * a path too and is checked the same way (path_param_named). */
static const char *path_param_named(struct http_req *req, const char *name, bool required, const char *dflt,
                                    char *norm, bool names_file)
{
    const char *path = NULL;
    size_t len = 0;
    if (MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &path, &len) != MHD_YES ||
        !path || len == 0) {
        if (!required) {
            snprintf(norm, PATH_NORM_MAX, "%s", dflt);
            return norm;
        }
        http_reply_errorf(req, 400, "invalid_request", "the %s query parameter is required", name);
        return NULL;
    }
    struct api_error err = {0};
    if (api_files_check_path(path, len, norm, names_file, &err) < 0) {
        http_reply_error(req, &err);
        return NULL;
    }
    return norm;
}

int api_files_check_path(const char *path, size_t len, char *norm, bool names_file, struct api_error *err)
{
    const char *msg;
    if (path_normalize(path, len, norm, &msg) < 0)
        return api_error_set(err, -EINVAL, 400, "invalid_request", "%s", msg);
    if (path_is_kernel(norm))
        return api_error_set(err, -EINVAL, 400, "path_forbidden",
                             "%s is under /proc, /sys or /dev: kernel interfaces, not files; the file API refuses them",
                             norm);
    if (names_file && (len == 0 || path[len - 1] == '/'))
        return api_error_set(err, -EINVAL, 400, "invalid_request",
                             "path %.*s ends in '/': name the file to write (the CLI and SDK add the local file's name)",
                             (int)(len > 400 ? 400 : len), path);
    return 0;
}

const char *api_files_path_param(struct http_req *req, const char *name, bool required, char *norm)
{
    return path_param_named(req, name, required, "/home/user", norm, false);
}

static const char *path_param(struct http_req *req, bool required, const char *dflt, char *norm, bool names_file)
{
    return path_param_named(req, "path", required, dflt, norm, names_file);
}

/* X-Content-SHA256 of an upload: 0 with hex lower-cased into out (65
 * bytes), 1 if absent, -EINVAL if malformed. */
static int upload_digest(struct http_req *req, char *out)
{
    const char *v = http_header(req, "X-Content-SHA256");
    if (!v)
        return 1;
    if (strlen(v) != 64 || strspn(v, "0123456789abcdefABCDEF") != 64)
        return -EINVAL;
    for (int i = 0; i < 64; i++)
        out[i] = (char)tolower((unsigned char)v[i]);
    out[64] = '\0';
    return 0;
}

/* A file operation's event names its path (and size when known), written
 * before it (api_audit.c). */
int api_files_audit_before(struct http_req *req, const char *action, const char *path, long long size, int64_t *row)
{
    json_t *detail = size >= 0 ? json_pack("{s:s,s:I}", "path", path, "size", (json_int_t)size)
                               : json_pack("{s:s}", "path", path);
    return api_audit_begin(req, action, req->param, detail, NULL, row);
}

/* ---- PUT: streamed upload */

struct upload {
    struct sandbox *sb;
    struct agent_req *areq;
    char *path;
    uint64_t received;
    struct gunzip *gz;  /* Content-Encoding: gzip: inflated on the way */
    uint64_t inflated;  /* bytes the agent got (received, unless gz) */
    bool done; /* the request is over on the agent side (END or ERROR sent, or it answered) */
    int64_t audit_row;  /* the upload's event, written before the first byte went to the agent */
    long long stored;   /* bytes the agent confirmed, or -1: not (yet) stored */
};

/* Abort the agent-side file: an ERROR frame instead of the final data frame. */
static void upload_abort(struct upload *u, const char *code, const char *message)
{
    if (u->done || !u->areq)
        return;
    json_t *j = json_pack("{s:s,s:s}", "code", code, "message", message);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text)
        (void)agent_req_send(u->areq, PROTO_ERROR, PROTO_F_END, text, strlen(text));
    free(text);
    json_decref(j);
    u->done = true;
}

void api_files_put_begin(struct http_req *req)
{
    char norm[PATH_NORM_MAX];
    const char *path = path_param(req, true, NULL, norm, true);
    if (!path)
        return;
    unsigned mode = 0644;
    const char *ms = http_query(req, "mode");
    if (ms) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(ms, &end, 8);
        if (!*ms || *end || errno || v > 07777) {
            http_reply_errorf(req, 400, "invalid_request", "mode must be an octal permission like 0644");
            return;
        }
        mode = (unsigned)v;
    }
    char sha[65];
    int dr = upload_digest(req, sha);
    if (dr < 0) {
        http_reply_errorf(req, 400, "invalid_request", "X-Content-SHA256 must be 64 hex digits");
        return;
    }
    uint64_t max = req->d->cfg.max_upload_bytes;
    const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > max) {
        http_reply_errorf(req, 413, "payload_too_large", "upload larger than %llu MiB",
                          (unsigned long long)(max >> 20));
        return;
    }
    const char *ce = http_header(req, MHD_HTTP_HEADER_CONTENT_ENCODING);
    bool gz = ce && strcasecmp(ce, "gzip") == 0;
    if (ce && !gz && strcasecmp(ce, "identity") != 0) {
        http_reply_errorf(req, 400, "invalid_request", "Content-Encoding %s: an upload is raw or gzip", ce);
        return;
    }
    struct upload *u = calloc(1, sizeof(*u));
    if (!u || !(u->path = strdup(path)) || (gz && gunzip_new(&u->gz) < 0)) {
        if (u)
            free(u->path);
        free(u);
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    req->upload = u;
    u->stored = -1;
    if (!(u->sb = api_route_sandbox(req)))
        return;
    if (api_files_audit_before(req, "upload", u->path, -1, &u->audit_row) < 0)
        return;
    json_t *payload = json_pack("{s:s,s:i}", "path", path, "mode", (int)mode);
    if (payload && dr == 0) /* the agent checks it before it renames the file into place */
        json_object_set_new(payload, "sha256", json_string(sha));
    int r = agent_req_start(sandbox_agent(u->sb), PROTO_FILE_PUT, payload, &u->areq);
    json_decref(payload);
    if (r < 0) {
        u->done = true;
        struct api_error err = {0};
        api_error_set(&err, r, 500, "internal", "send FILE_PUT: %s", strerror(-r));
        api_files_reply_agent_error(req, u->sb, r, &err);
    }
}

/* The agent may refuse early (bad path, no space): look without waiting. */
static bool upload_check_agent(struct http_req *req, struct upload *u)
{
    cleanup_frame struct agent_frame *f = NULL;
    int r = agent_req_next(u->areq, 0, &f);
    if (r == -ETIMEDOUT)
        return true;
    struct api_error err = {0};
    u->done = true;
    if (r < 0)
        api_files_reply_agent_error(req, u->sb, r, &err);
    else if (f->type == PROTO_ERROR)
        api_files_reply_agent_error(req, u->sb, api_error_from_agent(&err, (const char *)f->data, f->len), &err);
    else
        http_reply_errorf(req, 500, "internal", "agent answered FILE_PUT early with %s", proto_type_name(f->type));
    return false;
}

/* File bytes to the agent, in frames of PROTO_DATA_CHUNK; -errno after
 * replying. */
static int upload_send(struct http_req *req, struct upload *u, const char *data, size_t size)
{
    u->inflated += size;
    uint64_t max = req->d->cfg.max_upload_bytes;
    if (u->inflated > max) { /* a gzip body that inflates past the limit */
        upload_abort(u, "payload_too_large", "upload exceeds the daemon's limit");
        http_reply_errorf(req, 413, "payload_too_large", "upload larger than %llu MiB (inflated)",
                          (unsigned long long)(max >> 20));
        return -EFBIG;
    }
    while (size > 0) {
        size_t n = size < PROTO_DATA_CHUNK ? size : PROTO_DATA_CHUNK;
        int r = agent_req_send(u->areq, PROTO_FILE_DATA, 0, data, n);
        if (r < 0) {
            u->done = true;
            struct api_error err = {0};
            api_error_set(&err, r, 500, "internal", "send FILE_DATA: %s", strerror(-r));
            api_files_reply_agent_error(req, u->sb, r, &err);
            return r;
        }
        data += n;
        size -= n;
    }
    return 0;
}

struct upload_sink {
    struct http_req *req;
    struct upload *u;
};

static int upload_send_inflated(void *ctx, const void *data, size_t n)
{
    struct upload_sink *s = ctx;
    return upload_send(s->req, s->u, data, n);
}

void api_files_put_data(struct http_req *req, const char *data, size_t size)
{
    struct upload *u = req->upload;
    if (!u || !u->areq || u->done)
        return;
    u->received += size;
    uint64_t max = req->d->cfg.max_upload_bytes;
    if (u->received > max) {
        upload_abort(u, "payload_too_large", "upload exceeds the daemon's limit");
        http_reply_errorf(req, 413, "payload_too_large", "upload larger than %llu MiB",
                          (unsigned long long)(max >> 20));
        return;
    }
    if (!upload_check_agent(req, u))
        return;
    if (u->gz) {
        struct upload_sink sink = {.req = req, .u = u};
        int r = gunzip_feed(u->gz, data, size, PROTO_DATA_CHUNK, upload_send_inflated, &sink);
        if (r == -EINVAL) {
            upload_abort(u, "invalid_request", "the upload is not gzip");
            http_reply_errorf(req, 400, "invalid_request", "Content-Encoding gzip, but the body is not gzip");
        }
        return; /* other failures were answered by upload_send */
    }
    (void)upload_send(req, u, data, size);
}

void api_files_put_end(struct http_req *req)
{
    struct upload *u = req->upload;
    if (!u || !u->areq || u->done) {
        if (!req->response)
            http_reply_errorf(req, 500, "internal", "upload ended in an unexpected state");
        return;
    }
    if (u->gz && !gunzip_complete(u->gz)) { /* cut short: nothing is put in place */
        upload_abort(u, "invalid_request", "the gzip body ended early");
        http_reply_errorf(req, 400, "invalid_request", "the gzip body ended before its end (cut short?)");
        return;
    }
    struct api_error err = {0};
    int r = agent_req_send(u->areq, PROTO_FILE_DATA, PROTO_F_END, NULL, 0);
    u->done = true;
    if (r < 0) {
        api_error_set(&err, r, 500, "internal", "send FILE_DATA: %s", strerror(-r));
        api_files_reply_agent_error(req, u->sb, r, &err);
        return;
    }
    cleanup_frame struct agent_frame *f = NULL;
    r = agent_req_next(u->areq, now_mono_ms() + FILE_OP_TIMEOUT_MS, &f);
    if (r < 0) {
        api_error_set(&err, r, 503, "unavailable", "sandbox agent did not confirm the upload");
        api_files_reply_agent_error(req, u->sb, r, &err);
        return;
    }
    if (f->type == PROTO_ERROR) {
        api_files_reply_agent_error(req, u->sb, api_error_from_agent(&err, (const char *)f->data, f->len), &err);
        return;
    }
    json_t *ok = f->type == PROTO_OK ? json_loadb((const char *)f->data, f->len, 0, NULL) : NULL;
    json_t *jsize = json_object_get(ok, "size");
    long long size = json_is_integer(jsize) ? (long long)json_integer_value(jsize) : (long long)u->inflated;
    json_decref(ok);
    if (f->type != PROTO_OK) {
        http_reply_errorf(req, 500, "internal", "agent answered FILE_PUT with %s", proto_type_name(f->type));
        return;
    }
    u->stored = size;
    http_reply_json(req, 201, json_pack("{s:s,s:I}", "path", u->path, "size", (json_int_t)size));
}

void api_files_put_cleanup(struct http_req *req)
{
    struct upload *u = req->upload;
    if (!u)
        return;
    /* the client went away mid-upload: drop the partial file */
    upload_abort(u, "internal", "upload aborted by the client");
    api_audit_outcome(req, u->audit_row,
                  u->stored >= 0 ? json_pack("{s:b,s:I}", "completed", 1, "size", (json_int_t)u->stored)
                                 : json_pack("{s:b}", "completed", 0));
    agent_req_free(u->areq);
    if (u->sb)
        sandbox_unref(u->sb);
    gunzip_free(u->gz);
    free(u->path);
    free(u);
    req->upload = NULL;
}

/* ---- GET: streamed download */

struct download {
    struct sandbox *sb;
    struct agent_req *areq;
    struct agent_frame *cur;
    size_t off;
    int client_fd;
    uint64_t unacked; /* bytes handed to the client, not yet acknowledged */
    bool finished;    /* the agent ended the request (a frame with END) */
    struct gzip_enc *gz; /* Accept-Encoding: gzip: deflated on the way */
    bool gz_done;        /* the gzip trailer is out */
};

/* Stop the agent's side of a download the client will not finish: it
 * closes the file and frees the request's window. A dead stream needs
 * nothing (the send fails, harmlessly). */
static void download_cancel(struct agent_req *areq)
{
    static const char msg[] = "{\"code\":\"internal\",\"message\":\"download cancelled by the daemon\"}";
    int r = agent_req_send(areq, PROTO_ERROR, PROTO_F_END, msg, sizeof(msg) - 1);
    if (r < 0)
        log_debug("send ERROR to cancel download %u: %s", agent_req_id(areq), strerror(-r));
}

int api_files_stream_open(struct http_req *req, struct sandbox *sb, uint8_t type, json_t *payload, bool end_ok,
                          void (*cancel)(struct agent_req *), struct agent_req **areq, struct agent_frame **first)
{
    struct api_error err = {0};
    cleanup_agent_req struct agent_req *a = NULL;
    int r = agent_req_start(sandbox_agent(sb), type, payload, &a);
    if (r < 0) {
        api_error_set(&err, r, 500, "internal", "send %s: %s", proto_type_name(type), strerror(-r));
        api_files_reply_agent_error(req, sb, r, &err);
        return -1;
    }
    cleanup_frame struct agent_frame *f = NULL;
    r = agent_req_next(a, now_mono_ms() + FILE_OP_TIMEOUT_MS, &f);
    if (r < 0) {
        if (r == -ETIMEDOUT) /* a late OK would start a stream nobody reads */
            cancel(a);
        api_error_set(&err, r, 503, "unavailable", "sandbox agent did not answer %s", proto_type_name(type));
        api_files_reply_agent_error(req, sb, r, &err);
        return -1;
    }
    if (f->type == PROTO_ERROR) {
        api_files_reply_agent_error(req, sb, api_error_from_agent(&err, (const char *)f->data, f->len), &err);
        return -1;
    }
    if (f->type != PROTO_OK || (!end_ok && (f->flags & PROTO_F_END))) {
        if (!(f->flags & PROTO_F_END))
            cancel(a);
        http_reply_errorf(req, 500, "internal", "agent answered %s with %s", proto_type_name(type),
                          proto_type_name(f->type));
        return -1;
    }
    *areq = steal_ptr(&a);
    *first = steal_ptr(&f);
    return 0;
}

/* Return the client's consumed bytes to the agent's window. */
static void download_ack(struct download *dl)
{
    if (dl->unacked == 0 || dl->finished)
        return;
    char body[48];
    int n = snprintf(body, sizeof(body), "{\"bytes\":%llu}", (unsigned long long)dl->unacked);
    int r = agent_req_send(dl->areq, PROTO_FILE_ACK, 0, body, (size_t)n);
    if (r < 0) /* the agent is gone: the next agent_req_next says so */
        log_debug("sandbox %s: send FILE_ACK: %s", sandbox_id(dl->sb), strerror(-r));
    dl->unacked = 0;
}

/* The next frame of the download into dl->cur: at once if queued, else
 * after acknowledging what the client took (the agent may be waiting for
 * exactly that) and waiting in slices, to notice a client that left. */
static int download_next_frame(struct download *dl)
{
    int r = agent_req_next(dl->areq, 0, &dl->cur);
    if (r != -ETIMEDOUT)
        return r;
    download_ack(dl);
    uint64_t deadline = now_mono_ms() + DOWNLOAD_FRAME_TIMEOUT_MS;
    do {
        uint64_t slice = now_mono_ms() + GONE_POLL_MS;
        r = agent_req_next(dl->areq, slice < deadline ? slice : deadline, &dl->cur);
    } while (r == -ETIMEDOUT && now_mono_ms() < deadline && !http_fd_gone(dl->client_fd));
    return r;
}

/* Drop the frame sent and take the next, which must carry file data: 0,
 * or -1 when the download cannot go on (the agent went away or ended it
 * with something else: the client must see a broken transfer, never a
 * short one reported whole). */
static int download_advance(struct download *dl)
{
    agent_frame_free(dl->cur);
    dl->cur = NULL;
    dl->off = 0;
    if (download_next_frame(dl) < 0)
        return -1;
    if (dl->cur->flags & PROTO_F_END)
        dl->finished = true;
    if (dl->cur->type != PROTO_FILE_DATA) {
        log_warn("sandbox %s: download ended by %s", sandbox_id(dl->sb), proto_type_name(dl->cur->type));
        return -1;
    }
    return 0;
}

static ssize_t download_read(void *cls, uint64_t pos UNUSED, char *buf, size_t max)
{
    struct download *dl = cls;
    for (;;) {
        if (dl->cur && dl->off < dl->cur->len) {
            size_t n = dl->cur->len - dl->off;
            if (n > max)
                n = max;
            memcpy(buf, dl->cur->data + dl->off, n);
            dl->off += n;
            dl->unacked += n;
            if (dl->unacked >= DOWNLOAD_ACK_BATCH)
                download_ack(dl);
            return (ssize_t)n;
        }
        if (dl->cur && (dl->cur->flags & PROTO_F_END))
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (download_advance(dl) < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

/* The same, deflated: input is taken from the frames as the output needs it. */
static ssize_t download_read_gzip(void *cls, uint64_t pos UNUSED, char *buf, size_t max)
{
    struct download *dl = cls;
    for (;;) {
        if (dl->gz_done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        bool have = dl->cur && dl->off < dl->cur->len;
        /* no frame will follow: the agent ended (at the OK for an empty file) */
        bool last = dl->finished && (!dl->cur || (dl->cur->flags & PROTO_F_END));
        if (!have && !last) {
            if (download_advance(dl) < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        const uint8_t *in = have ? dl->cur->data + dl->off : NULL;
        size_t in_len = have ? dl->cur->len - dl->off : 0, before = in_len;
        ssize_t n = gzip_enc_step(dl->gz, &in, &in_len, last, buf, max, &dl->gz_done);
        if (n < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        dl->off += before - in_len;
        dl->unacked += before - in_len;
        if (dl->unacked >= DOWNLOAD_ACK_BATCH)
            download_ack(dl);
        if (n > 0)
            return n;
    }
}

/* Whether the client takes gzip: a "gzip" coding in Accept-Encoding whose
 * q is not 0 (RFC 9110 12.5.3). */
static bool accepts_gzip(const char *ae)
{
    while (ae && *ae) {
        ae += strspn(ae, " \t,");
        size_t n = strcspn(ae, ",");
        size_t tok = strcspn(ae, " \t;,");
        if (tok == 4 && strncasecmp(ae, "gzip", 4) == 0) {
            const char *q = strstr(ae, "q=");
            return !(q && q < ae + n && strtod(q + 2, NULL) == 0.0);
        }
        ae += n;
    }
    return false;
}

static void download_free(void *cls)
{
    struct download *dl = cls;
    if (!dl->finished) /* the client left, or the agent stopped answering */
        download_cancel(dl->areq);
    agent_frame_free(dl->cur);
    gzip_enc_free(dl->gz);
    agent_req_free(dl->areq); /* frames still coming are dropped */
    sandbox_unref(dl->sb);
    free(dl);
}

void api_files_get(struct http_req *req)
{
    char norm[PATH_NORM_MAX];
    const char *path = path_param(req, true, NULL, norm, false);
    if (!path)
        return;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    cleanup_agent_req struct agent_req *areq = NULL;
    cleanup_frame struct agent_frame *f = NULL;
    json_t *payload = json_pack("{s:s}", "path", path);
    int r = api_files_stream_open(req, sb, PROTO_FILE_GET, payload, true, download_cancel, &areq, &f);
    json_decref(payload);
    if (r < 0)
        return;
    json_t *ok = json_loadb((const char *)f->data, f->len, 0, NULL);
    json_t *jsize = json_object_get(ok, "size");
    uint64_t size = json_is_integer(jsize) && json_integer_value(jsize) >= 0 ? (uint64_t)json_integer_value(jsize)
                                                                               : MHD_SIZE_UNKNOWN;
    /* the agent hashed the file before sending it (src/agent/files.c):
     * the client checks it against the bytes it got */
    char sha[65] = "";
    const char *jsha = json_string_value(json_object_get(ok, "sha256"));
    if (jsha && strlen(jsha) == 64 && strspn(jsha, "0123456789abcdef") == 64)
        memcpy(sha, jsha, sizeof(sha));
    json_decref(ok);

    struct download *dl = calloc(1, sizeof(*dl));
    if (!dl) {
        if (!(f->flags & PROTO_F_END))
            download_cancel(areq);
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    dl->client_fd = req->client_fd;
    if (f->flags & PROTO_F_END) { /* an agent that ends at OK: empty file */
        size = 0;
        dl->finished = true;
    }
    /* gzip: the length is not known before the end, so the uncompressed
     * size goes in X-Content-Length (and gzip's own trailer ends the body) */
    if (accepts_gzip(http_header(req, MHD_HTTP_HEADER_ACCEPT_ENCODING)) && gzip_enc_new(&dl->gz) < 0)
        dl->gz = NULL;
    struct MHD_Response *resp =
        dl->gz ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, download_read_gzip, dl, download_free)
               : MHD_create_response_from_callback(size, 64 * 1024, download_read, dl, download_free);
    if (!resp) {
        if (!dl->finished)
            download_cancel(areq);
        gzip_enc_free(dl->gz);
        free(dl);
        http_reply_errorf(req, 500, "internal", "create the download response");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    if (dl->gz) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
        if (size != MHD_SIZE_UNKNOWN) {
            char len[24];
            snprintf(len, sizeof(len), "%llu", (unsigned long long)size);
            MHD_add_response_header(resp, "X-Content-Length", len);
        }
    }
    dl->sb = steal_ptr(&sb);
    dl->areq = steal_ptr(&areq);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    if (sha[0])
        MHD_add_response_header(resp, "X-Content-SHA256", sha);
    int64_t row = 0;
    if (api_files_audit_before(req, "download", path, size == MHD_SIZE_UNKNOWN ? -1 : (long long)size, &row) < 0) {
        MHD_destroy_response(resp); /* download_free releases the agent request and the sandbox */
        return;
    }
    http_reply_response(req, 200, resp);
}
