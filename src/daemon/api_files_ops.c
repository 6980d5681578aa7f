/* api_files_ops.c - the files routes that are one agent call each: list
 * (with a depth), delete, mkdir, rename and info. The transfers (upload,
 * download) are api_files.c, several files at once api_files_batch.c, a
 * watch api_files_watch.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_errors.h"
#include "api_files.h"
#include "path.h"
#include "proto.h"
#include "registry.h"
#include "util.h"

#define LIST_MAX_DEPTH 64 /* the agent's FILES_LIST_MAX_DEPTH */

/* An optional true/false query parameter into *out (left as is when
 * absent); -EINVAL after replying 400. */
int api_files_bool_param(struct http_req *req, const char *name, bool *out)
{
    const char *v = http_query(req, name);
    if (!v)
        return 0;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else {
        http_reply_errorf(req, 400, "invalid_request", "%s must be true or false", name);
        return -EINVAL;
    }
    return 0;
}

/* An optional integer query parameter in [min, max] into *out; -EINVAL
 * after replying 400. */
static int int_param(struct http_req *req, const char *name, int min, int max, int *out)
{
    const char *v = http_query(req, name);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max) {
        http_reply_errorf(req, 400, "invalid_request", "%s must be an integer from %d to %d", name, min, max);
        return -EINVAL;
    }
    *out = (int)n;
    return 0;
}

/* One agent call of a files route, answered with the agent's OK object as
 * it is (status) or its error. */
static void files_call(struct http_req *req, struct sandbox *sb, uint8_t type, json_t *payload, unsigned status,
                       int64_t audit_row)
{
    struct op_error oerr = {0};
    json_t *reply = NULL;
    int r = agent_call(sandbox_agent(sb), type, payload, FILE_OP_TIMEOUT_MS, &reply, &oerr);
    json_decref(payload);
    if (audit_row)
        api_audit_outcome(req, audit_row, json_pack("{s:b}", "completed", r >= 0));
    if (r < 0) {
        struct api_error err = {0};
        api_files_reply_agent_error(req, sb, api_error_from_op(&err, r, &oerr), &err);
        return;
    }
    if (!json_is_object(reply)) {
        json_decref(reply);
        http_reply_errorf(req, 500, "internal", "agent answered %s without an object", proto_type_name(type));
        return;
    }
    http_reply_json(req, status, reply);
}

void api_files_mkdir(struct http_req *req)
{
    char norm[PATH_NORM_MAX];
    const char *path = api_files_path_param(req, "path", true, norm);
    if (!path)
        return;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    int64_t row = 0;
    if (api_files_audit_before(req, "file_mkdir", path, -1, &row) < 0)
        return;
    files_call(req, sb, PROTO_FILE_MKDIR, json_pack("{s:s}", "path", path), 200, row);
}

void api_files_rename(struct http_req *req)
{
    char from[PATH_NORM_MAX], to[PATH_NORM_MAX];
    const char *src = api_files_path_param(req, "path", true, from);
    if (!src)
        return;
    const char *dst = api_files_path_param(req, "to", true, to);
    if (!dst)
        return;
    bool overwrite = false;
    if (api_files_bool_param(req, "overwrite", &overwrite) < 0)
        return;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    /* the event names both ends: "path" the source, "to" the destination */
    int64_t row = 0;
    if (api_audit_begin(req, "file_rename", req->param, json_pack("{s:s,s:s}", "path", src, "to", dst), NULL, &row) <
        0)
        return;
    files_call(req, sb, PROTO_FILE_RENAME, json_pack("{s:s,s:s,s:b}", "path", src, "to", dst, "overwrite", overwrite),
               200, row);
}

void api_files_info(struct http_req *req)
{
    char norm[PATH_NORM_MAX];
    const char *path = api_files_path_param(req, "path", true, norm);
    if (!path)
        return;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    files_call(req, sb, PROTO_FILE_STAT, json_pack("{s:s}", "path", path), 200, 0);
}

void api_files_list(struct http_req *req)
{
    char norm[PATH_NORM_MAX];
    const char *path = api_files_path_param(req, "path", false, norm);
    if (!path)
        return;
    int depth = 1;
    if (int_param(req, "depth", 1, LIST_MAX_DEPTH, &depth) < 0)
        return;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    struct op_error oerr = {0};
    json_t *reply = NULL, *payload = json_pack("{s:s,s:i}", "path", path, "depth", depth);
    int r = agent_call(sandbox_agent(sb), PROTO_FILE_LIST, payload, FILE_OP_TIMEOUT_MS, &reply, &oerr);
    json_decref(payload);
    if (r < 0) {
        struct api_error err = {0};
        api_files_reply_agent_error(req, sb, api_error_from_op(&err, r, &oerr), &err);
        return;
    }
    json_t *entries = json_object_get(reply, "entries");
    /* "o" steals a reference: a new one to the agent's array, or a fresh
     * empty one when the agent sent none (with "O", that one leaked) */
    json_t *out = json_pack("{s:s,s:o}", "path", path, "entries",
                            json_is_array(entries) ? json_incref(entries) : json_array());
    if (json_is_true(json_object_get(reply, "truncated")))
        json_object_set_new(out, "truncated", json_true());
    json_decref(reply);
    http_reply_json(req, 200, out);
}

void api_files_delete(struct http_req *req)
{
    char norm[PATH_NORM_MAX];
    const char *path = api_files_path_param(req, "path", true, norm);
    if (!path)
        return;
    /* a directory goes with everything in it, as users of every peer's
     * files.remove expect; recursive=false keeps the old refusal of a
     * non-empty one */
    bool recursive = true;
    if (api_files_bool_param(req, "recursive", &recursive) < 0)
        return;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    int64_t row = 0;
    if (api_files_audit_before(req, "file_delete", path, -1, &row) < 0)
        return;
    struct op_error oerr = {0};
    json_t *reply = NULL, *payload = json_pack("{s:s,s:b}", "path", path, "recursive", recursive);
    int r = agent_call(sandbox_agent(sb), PROTO_FILE_DELETE, payload, FILE_OP_TIMEOUT_MS, &reply, &oerr);
    json_decref(payload);
    api_audit_outcome(req, row, json_pack("{s:b}", "completed", r >= 0));
    if (r < 0) {
        struct api_error err = {0};
        int e = api_error_from_op(&err, r, &oerr);
        if (e != -EPIPE && err.status == 404) {
            /* nothing there: the wanted state already holds (deleted: false) */
            http_reply_json(req, 200, json_pack("{s:s,s:b}", "path", path, "deleted", 0));
            return;
        }
        api_files_reply_agent_error(req, sb, e, &err);
        return;
    }
    json_decref(reply);
    http_reply_json(req, 200, json_pack("{s:s,s:b}", "path", path, "deleted", 1));
}
