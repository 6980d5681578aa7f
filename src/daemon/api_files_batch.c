/* api_files_batch.c - POST /v1/sandboxes/{id}/files: several files in one
 * request, as multipart/form-data (each part a file; its filename is the
 * path to write, as E2B's SDK sends them).
 *
 * Why multipart: it is what HTTP clients and E2B's SDK already send, and
 * libmicrohttpd parses it incrementally (MHD_PostProcessor), so each part
 * streams to the sandbox like a single upload, one FILE_PUT after another,
 * and is never held whole nor written to the host. A JSON batch would
 * carry the bytes base64-encoded and be buffered whole (JSON bodies are
 * parsed at the end); a tar stream would need a tar parser, which the
 * daemon does not have and should not hand-write.
 *
 * Each file is atomic (the agent's temporary file, renamed at the end of
 * its part); the batch is not: the parts are written in order, and the
 * first that fails ends the request with its error, the files before it
 * written, it and the ones after not. Every part passes the checks a
 * single upload does (api_files_check_path here, the path policy in the
 * agent), and has its own audit event, written before its first byte. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_errors.h"
#include "api_files.h"
#include "path.h"
#include "proto.h"
#include "util.h"

#define BATCH_PARSE_BUF (64 * 1024) /* MHD's buffer for part headers: holds a 4096-byte path, escaped */

struct batch {
    struct http_req *req;
    struct sandbox *sb;
    struct MHD_PostProcessor *pp;
    struct agent_req *areq; /* the part being written; NULL between parts */
    char path[PATH_NORM_MAX];
    uint64_t size;     /* of the current part */
    uint64_t received; /* of the whole body */
    int64_t audit_row;
    json_t *written;   /* [{"path","size"}] */
    bool failed;       /* the reply is decided: the rest of the body is ignored */
};

static void batch_fail(struct batch *b, struct api_error *err, int r)
{
    if (!b->failed)
        api_files_reply_agent_error(b->req, b->sb, r, err);
    b->failed = true;
}

/* Drop the current part's file in the sandbox (an ERROR instead of its END). */
static void part_abort(struct batch *b)
{
    if (!b->areq)
        return;
    static const char msg[] = "{\"code\":\"internal\",\"message\":\"batch upload aborted\"}";
    (void)agent_req_send(b->areq, PROTO_ERROR, PROTO_F_END, msg, sizeof(msg) - 1);
    api_audit_outcome(b->req, b->audit_row, json_pack("{s:b}", "completed", 0));
    agent_req_free(b->areq);
    b->areq = NULL;
}

/* END the current part and wait for the agent to rename it into place. */
static int part_finish(struct batch *b)
{
    if (!b->areq)
        return 0;
    struct api_error err = {0};
    int r = agent_req_send(b->areq, PROTO_FILE_DATA, PROTO_F_END, NULL, 0);
    cleanup_frame struct agent_frame *f = NULL;
    if (r == 0)
        r = agent_req_next(b->areq, now_mono_ms() + FILE_OP_TIMEOUT_MS, &f);
    if (r < 0)
        api_error_set(&err, r, 503, "unavailable", "sandbox agent did not confirm the upload of %s", b->path);
    else if (f->type == PROTO_ERROR)
        r = api_error_from_agent(&err, (const char *)f->data, f->len);
    else if (f->type != PROTO_OK)
        r = api_error_set(&err, -EPROTO, 500, "internal", "agent answered FILE_PUT with %s", proto_type_name(f->type));
    api_audit_outcome(b->req, b->audit_row,
                            r < 0 ? json_pack("{s:b}", "completed", 0)
                                  : json_pack("{s:b,s:I}", "completed", 1, "size", (json_int_t)b->size));
    agent_req_free(b->areq);
    b->areq = NULL;
    if (r < 0) {
        batch_fail(b, &err, r);
        return r;
    }
    json_array_append_new(b->written, json_pack("{s:s,s:I}", "path", b->path, "size", (json_int_t)b->size));
    return 0;
}

static int part_start(struct batch *b, const char *filename)
{
    struct api_error err = {0};
    if (!filename) {
        api_error_set(&err, -EINVAL, 400, "invalid_request",
                      "every part must be a file whose filename is the path to write");
        batch_fail(b, &err, -EINVAL);
        return -EINVAL;
    }
    int r = api_files_check_path(filename, strlen(filename), b->path, true, &err);
    if (r < 0) {
        batch_fail(b, &err, r);
        return r;
    }
    if (api_files_audit_before(b->req, "upload", b->path, -1, &b->audit_row) < 0) {
        b->failed = true; /* replied 503 */
        return -EIO;
    }
    json_t *payload = json_pack("{s:s,s:i}", "path", b->path, "mode", 0644);
    r = agent_req_start(sandbox_agent(b->sb), PROTO_FILE_PUT, payload, &b->areq);
    json_decref(payload);
    b->size = 0;
    if (r < 0) {
        api_error_set(&err, r, 500, "internal", "send FILE_PUT: %s", strerror(-r));
        api_audit_outcome(b->req, b->audit_row, json_pack("{s:b}", "completed", 0));
        batch_fail(b, &err, r);
    }
    return r;
}

/* The agent may refuse a part early (the path policy, no space): look
 * without waiting, so the rest of the part is not streamed for nothing. */
static int part_check_agent(struct batch *b)
{
    cleanup_frame struct agent_frame *f = NULL;
    int r = agent_req_next(b->areq, 0, &f);
    if (r == -ETIMEDOUT)
        return 0;
    struct api_error err = {0};
    if (r == 0 && f->type == PROTO_ERROR)
        r = api_error_from_agent(&err, (const char *)f->data, f->len);
    else if (r == 0)
        r = api_error_set(&err, -EPROTO, 500, "internal", "agent answered FILE_PUT early with %s",
                          proto_type_name(f->type));
    api_audit_outcome(b->req, b->audit_row, json_pack("{s:b}", "completed", 0));
    agent_req_free(b->areq);
    b->areq = NULL;
    batch_fail(b, &err, r);
    return r;
}

static enum MHD_Result batch_iter(void *cls, enum MHD_ValueKind kind, const char *key UNUSED, const char *filename,
                                  const char *content_type UNUSED, const char *transfer_encoding UNUSED,
                                  const char *data, uint64_t off, size_t size)
{
    struct batch *b = cls;
    if (b->failed)
        return MHD_NO;
    if (kind != MHD_POSTDATA_KIND)
        return MHD_YES;
    if (off == 0) { /* a new part */
        if (part_finish(b) < 0 || part_start(b, filename) < 0)
            return MHD_NO;
    }
    if (!b->areq)
        return MHD_NO;
    if (part_check_agent(b) < 0)
        return MHD_NO;
    while (size > 0) {
        size_t n = size < PROTO_DATA_CHUNK ? size : PROTO_DATA_CHUNK;
        int r = agent_req_send(b->areq, PROTO_FILE_DATA, 0, data, n);
        if (r < 0) {
            struct api_error err = {0};
            api_error_set(&err, r, 500, "internal", "send FILE_DATA: %s", strerror(-r));
            part_abort(b);
            batch_fail(b, &err, r);
            return MHD_NO;
        }
        b->size += n;
        data += n;
        size -= n;
    }
    return MHD_YES;
}

void api_files_batch_begin(struct http_req *req)
{
    const char *ct = http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0) {
        http_reply_errorf(req, 400, "invalid_request",
                          "several files are sent as multipart/form-data, one part per file (filename: its path); "
                          "PUT writes one file from a raw body");
        return;
    }
    uint64_t max = req->d->cfg.max_upload_bytes;
    const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > max) {
        http_reply_errorf(req, 413, "payload_too_large", "upload larger than %llu MiB", (unsigned long long)(max >> 20));
        return;
    }
    struct batch *b = calloc(1, sizeof(*b));
    if (!b || !(b->written = json_array())) {
        free(b);
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    b->req = req;
    req->upload = b;
    if (!(b->sb = api_route_sandbox(req))) {
        b->failed = true;
        return;
    }
    if (!(b->pp = MHD_create_post_processor(req->conn, BATCH_PARSE_BUF, batch_iter, b))) {
        b->failed = true;
        http_reply_errorf(req, 400, "invalid_request", "multipart/form-data needs a boundary of 2 to 70 characters");
    }
}

void api_files_batch_data(struct http_req *req, const char *data, size_t size)
{
    struct batch *b = req->upload;
    if (!b || b->failed)
        return;
    b->received += size;
    uint64_t max = req->d->cfg.max_upload_bytes;
    if (b->received > max) {
        part_abort(b);
        b->failed = true;
        http_reply_errorf(req, 413, "payload_too_large", "upload larger than %llu MiB", (unsigned long long)(max >> 20));
        return;
    }
    if (MHD_post_process(b->pp, data, size) != MHD_YES && !b->failed) {
        part_abort(b);
        b->failed = true;
        http_reply_errorf(req, 400, "invalid_request", "malformed multipart/form-data body");
    }
}

void api_files_batch_end(struct http_req *req)
{
    struct batch *b = req->upload;
    if (!b || b->failed) {
        if (!req->response)
            http_reply_errorf(req, 500, "internal", "batch upload ended in an unexpected state");
        return;
    }
    /* the parser hands over what it still holds of the last part */
    enum MHD_Result done = MHD_destroy_post_processor(b->pp);
    b->pp = NULL;
    if (b->failed)
        return;
    if (done != MHD_YES) {
        part_abort(b);
        b->failed = true;
        http_reply_errorf(req, 400, "invalid_request", "malformed multipart/form-data body (cut short?)");
        return;
    }
    if (part_finish(b) < 0)
        return;
    if (json_array_size(b->written) == 0) {
        b->failed = true;
        http_reply_errorf(req, 400, "invalid_request", "the body has no files (one part per file)");
        return;
    }
    http_reply_json(req, 201, json_pack("{s:O}", "files", b->written));
}

void api_files_batch_cleanup(struct http_req *req)
{
    struct batch *b = req->upload;
    if (!b)
        return;
    if (b->pp)
        (void)MHD_destroy_post_processor(b->pp);
    part_abort(b); /* the client went away mid-part: its file is dropped */
    json_decref(b->written);
    if (b->sb)
        sandbox_unref(b->sb);
    free(b);
    req->upload = NULL;
}
