/* e2b_files.c - envd's file API for E2B's SDKs (docs/e2b.md): GET and POST
 * /files (download; upload as multipart/form-data or octet-stream) and the
 * filesystem.Filesystem RPCs (ListDir, Stat, MakeDir, Move, Remove), over
 * Airlock's file handlers (api_files.c) and agent file operations.
 *
 * Paths are Airlock's (path.h): relative ones start at /home/user, which
 * is also E2B's home directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "api_errors.h"
#include "build.h"
#include "e2b.h"
#include "path.h"
#include "proto.h"
#include "registry.h"
#include "util.h"

#define FS_OP_TIMEOUT_MS 30000
#define MOVE_TIMEOUT_S 60

/* ---- EntryInfo */

static const char *file_type(const char *airlock)
{
    if (!airlock)
        return "FILE_TYPE_UNSPECIFIED";
    if (!strcmp(airlock, "file"))
        return "FILE_TYPE_FILE";
    if (!strcmp(airlock, "dir"))
        return "FILE_TYPE_DIRECTORY";
    if (!strcmp(airlock, "symlink"))
        return "FILE_TYPE_SYMLINK";
    return "FILE_TYPE_UNSPECIFIED";
}

/* "drwxr-xr-x" as envd writes permissions */
static void permissions(const char *type, unsigned mode, char out[11])
{
    out[0] = type && !strcmp(type, "dir") ? 'd' : type && !strcmp(type, "symlink") ? 'l' : '-';
    static const char rwx[] = "rwx";
    for (int i = 0; i < 9; i++)
        out[1 + i] = (mode >> (8 - i)) & 1 ? rwx[i % 3] : '-';
    out[10] = '\0';
}

/* envd's EntryInfo (proto3 JSON) of an entry of Airlock's FILE_LIST in dir */
static json_t *entry_info(const char *dir, const json_t *e)
{
    const char *name = json_string_value(json_object_get(e, "name"));
    const char *type = json_string_value(json_object_get(e, "type"));
    unsigned mode = (unsigned)json_integer_value(json_object_get(e, "mode"));
    char path[PATH_NORM_MAX + 256], perms[11], mtime[40];
    snprintf(path, sizeof(path), "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name ? name : "");
    permissions(type, mode, perms);
    format_time((uint64_t)json_integer_value(json_object_get(e, "mtime")) * 1000, false, mtime, sizeof(mtime));
    return json_pack("{s:s?,s:s,s:s,s:I,s:i,s:s,s:s,s:s,s:s}", "name", name, "type", file_type(type), "path", path,
                     "size", json_integer_value(json_object_get(e, "size")), "mode",
                     (int)(mode | (type && !strcmp(type, "dir") ? S_IFDIR : S_IFREG)), "permissions", perms, "owner",
                     "user", "group", "user", "modifiedTime", mtime);
}

/* The path of a Connect request's field, normalised; NULL after replying. */
static const char *body_path(struct http_req *req, const char *field, char *norm)
{
    json_t *p = json_object_get(req->body, field);
    const char *msg = NULL;
    if (!json_is_string(p) || !json_string_length(p)) {
        http_reply_errorf(req, 400, "invalid_request", "%s is required", field);
        return NULL;
    }
    if (path_normalize(json_string_value(p), json_string_length(p), norm, &msg) < 0) {
        http_reply_errorf(req, 400, "invalid_request", "%s", msg);
        return NULL;
    }
    return norm;
}

/* EntryInfo of one path: a FILE_LIST of its parent, the entry of its name.
 * 0, -ENOENT (not there), or another -errno with a reply made. */
static int stat_entry(struct http_req *req, const char *norm, json_t **out)
{
    char dir[PATH_NORM_MAX];
    snprintf(dir, sizeof(dir), "%s", norm);
    char *slash = strrchr(dir, '/');
    const char *name = norm + (slash - dir) + 1;
    if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (!*name) { /* the root */
        json_t *root = json_pack("{s:s,s:s,s:i,s:I}", "name", "", "type", "dir", "mode", 0755, "mtime", (json_int_t)0);
        *out = entry_info("/", root);
        json_decref(root);
        (void)json_object_set_new(*out, "path", json_string("/"));
        return 0;
    }
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return -ESRCH; /* replied */
    struct op_error oerr = {0};
    json_t *reply = NULL, *payload = json_pack("{s:s}", "path", dir);
    int r = agent_call(sandbox_agent(sb), PROTO_FILE_LIST, payload, FS_OP_TIMEOUT_MS, &reply, &oerr);
    json_decref(payload);
    if (r < 0) {
        struct api_error err = {0};
        api_error_from_op(&err, r, &oerr);
        if (err.status == 404) /* the parent is not there either */
            return -ENOENT;
        http_reply_error(req, &err);
        return r == -ENOENT ? -EIO : r;
    }
    size_t i;
    json_t *e;
    int found = -ENOENT;
    json_array_foreach(json_object_get(reply, "entries"), i, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "name")) ?: "", name)) {
            *out = entry_info(dir, e);
            found = 0;
            break;
        }
    }
    json_decref(reply);
    return found;
}

void e2b_fs_stat(struct http_req *req)
{
    char norm[PATH_NORM_MAX];
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT) || !body_path(req, "path", norm))
        return;
    json_t *entry = NULL;
    int r = stat_entry(req, norm, &entry);
    if (r == -ENOENT) {
        http_reply_errorf(req, 404, "not_found", "no such file or directory: %s", norm);
        return;
    }
    if (r < 0)
        return;
    http_reply_json(req, 200, json_pack("{s:o}", "entry", entry));
}

static void list_hook(struct http_req *req UNUSED, unsigned *status UNUSED, json_t **body)
{
    const char *dir = json_string_value(json_object_get(*body, "path"));
    json_t *entries = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(*body, "entries"), i, e)
        json_array_append_new(entries, entry_info(dir ? dir : "/", e));
    json_decref(*body);
    *body = json_pack("{s:o}", "entries", entries);
}

/* the native handlers read their path from the query string */
static bool set_query_path(struct http_req *req, const char *norm)
{
    char *copy = strdup(norm);
    json_t *keep = copy ? json_string(copy) : NULL; /* lives as long as the request's body */
    free(copy);
    if (!keep || json_object_set_new(req->body, "_path", keep) < 0 ||
        MHD_set_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "path", json_string_value(keep)) != MHD_YES) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return false;
    }
    return true;
}

void e2b_fs_list(struct http_req *req)
{
    char norm[PATH_NORM_MAX];
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT) || !body_path(req, "path", norm))
        return;
    json_t *depth = json_object_get(req->body, "depth");
    if (json_is_integer(depth) && json_integer_value(depth) > 1) {
        http_reply_errorf(req, 400, "invalid_request", "Airlock lists one level of a directory (depth 1)");
        return;
    }
    if (!set_query_path(req, norm))
        return;
    req->reply_hook = list_hook;
    api_files_list(req);
}

void e2b_fs_make_dir(struct http_req *req)
{
    char norm[PATH_NORM_MAX];
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT) || !body_path(req, "path", norm))
        return;
    json_t *entry = NULL;
    int r = stat_entry(req, norm, &entry);
    if (r == 0) {
        json_decref(entry);
        http_reply_errorf(req, 409, "already_exists", "%s already exists", norm);
        return;
    }
    if (r != -ENOENT)
        return;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    struct op_error oerr = {0};
    json_t *reply = NULL, *payload = json_pack("{s:s}", "path", norm);
    r = agent_call(sandbox_agent(sb), PROTO_FILE_MKDIR, payload, FS_OP_TIMEOUT_MS, &reply, &oerr);
    json_decref(payload);
    json_decref(reply);
    if (r < 0) {
        api_reply_op_error(req, r, &oerr);
        return;
    }
    if (stat_entry(req, norm, &entry) < 0) {
        if (!req->response)
            http_reply_errorf(req, 500, "internal", "%s was made but cannot be found", norm);
        return;
    }
    http_reply_json(req, 200, json_pack("{s:o}", "entry", entry));
}

static void remove_hook(struct http_req *req, unsigned *status, json_t **body)
{
    bool deleted = json_is_true(json_object_get(*body, "deleted"));
    char msg[PATH_NORM_MAX + 64];
    snprintf(msg, sizeof(msg), "no such file or directory: %s", json_string_value(json_object_get(*body, "path")));
    json_decref(*body);
    *body = deleted ? json_object() : e2b_error_json(true, 404, msg);
    if (!deleted)
        *status = 404;
    (void)req;
}

void e2b_fs_remove(struct http_req *req)
{
    char norm[PATH_NORM_MAX];
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT) || !body_path(req, "path", norm) || !set_query_path(req, norm))
        return;
    req->reply_hook = remove_hook;
    api_files_delete(req);
}

/* Move: Airlock's agent has no rename, so it is mv(1) in the sandbox
 * through Airlock's exec, answered with the destination's entry. */
static void move_hook(struct http_req *req, unsigned *status, json_t **body)
{
    json_t *ec = json_object_get(*body, "exit_code");
    const char *dst = json_string_value(json_object_get(req->body, "_dst"));
    json_t *entry = NULL;
    if (json_integer_value(ec) != 0 || !json_is_integer(ec)) {
        const char *err = json_string_value(json_object_get(*body, "stderr"));
        bool missing = err && strstr(err, "No such file");
        *status = missing ? 404 : 400;
        json_t *e = e2b_error_json(true, *status, err && *err ? err : "mv failed");
        json_decref(*body);
        *body = e;
        return;
    }
    int r = stat_entry(req, dst, &entry);
    json_decref(*body);
    if (r < 0) {
        *status = 500;
        *body = e2b_error_json(true, 500, "moved, but the destination cannot be found");
        if (req->response) { /* stat_entry replied: keep the move's answer instead */
            MHD_destroy_response(req->response);
            req->response = NULL;
        }
        return;
    }
    *body = json_pack("{s:o}", "entry", entry);
}

void e2b_fs_move(struct http_req *req)
{
    char src[PATH_NORM_MAX], dst[PATH_NORM_MAX];
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT) || !body_path(req, "source", src) || !body_path(req, "destination", dst))
        return;
    json_t *b = json_pack("{s:[s,s,s,s,s],s:i,s:s}", "cmd", "mv", "-T", "--", src, dst, "timeout_s", MOVE_TIMEOUT_S,
                          "_dst", dst);
    if (!b) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    json_decref(req->body);
    req->body = b;
    req->reply_hook = move_hook;
    api_exec(req);
}

/* ---- /files */

void e2b_files_get(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT))
        return;
    api_files_get(req);
}

/* POST /files: E2B's SDK sends multipart/form-data (one "file" part), or
 * the raw bytes as application/octet-stream; both go to Airlock's upload
 * (api_files.c), whose path is the path query parameter. */
struct e2b_upload {
    struct MHD_PostProcessor *pp; /* multipart only */
    bool begun;
};

static void upload_free(struct http_req *req)
{
    struct e2b_upload *u = req->shim;
    if (!u)
        return;
    if (u->pp)
        MHD_destroy_post_processor(u->pp);
    free(u);
    req->shim = NULL;
}

static enum MHD_Result multipart_part(void *cls, enum MHD_ValueKind kind UNUSED, const char *key,
                                      const char *filename UNUSED, const char *content_type UNUSED,
                                      const char *transfer_encoding UNUSED, const char *data, uint64_t off UNUSED,
                                      size_t size)
{
    struct http_req *req = cls;
    struct e2b_upload *u = req->shim;
    if (!key || strcmp(key, "file") != 0 || req->response)
        return MHD_YES;
    if (!u->begun) {
        u->begun = true;
        api_files_put_begin(req);
    }
    if (size && !req->response)
        api_files_put_data(req, data, size);
    return MHD_YES;
}

void e2b_files_post_begin(struct http_req *req)
{
    if (!e2b_route_sandbox(req, E2B_ENVD_PORT))
        return;
    if (!http_query(req, "path")) {
        http_reply_errorf(req, 400, "invalid_request", "the path query parameter is required (one file per upload)");
        return;
    }
    struct e2b_upload *u = calloc(1, sizeof(*u));
    if (!u) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    req->shim = u;
    const char *ct = http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
        u->pp = MHD_create_post_processor(req->conn, 64 * 1024, multipart_part, req);
        if (!u->pp)
            http_reply_errorf(req, 400, "invalid_request", "a multipart/form-data body without a boundary");
        return;
    }
    u->begun = true;
    api_files_put_begin(req);
}

void e2b_files_post_data(struct http_req *req, const char *data, size_t size)
{
    struct e2b_upload *u = req->shim;
    if (!u || req->response)
        return;
    if (!u->pp) {
        api_files_put_data(req, data, size);
        return;
    }
    if (MHD_post_process(u->pp, data, size) != MHD_YES && !req->response)
        http_reply_errorf(req, 400, "invalid_request", "malformed multipart/form-data body");
}

static void upload_hook(struct http_req *req UNUSED, unsigned *status, json_t **body)
{
    const char *path = json_string_value(json_object_get(*body, "path"));
    const char *name = path ? strrchr(path, '/') : NULL;
    json_t *e = json_pack("[{s:s?,s:s,s:s?}]", "name", name ? name + 1 : path, "type", "file", "path", path);
    json_decref(*body);
    *body = e;
    *status = 200;
}

void e2b_files_post_end(struct http_req *req)
{
    struct e2b_upload *u = req->shim;
    if (!u || req->response)
        return;
    if (u->pp) {
        MHD_destroy_post_processor(u->pp); /* flushes the last part */
        u->pp = NULL;
    }
    if (req->response)
        return;
    if (!u->begun) {
        http_reply_errorf(req, 400, "invalid_request", "no \"file\" part in the multipart/form-data body");
        return;
    }
    req->reply_hook = upload_hook;
    api_files_put_end(req);
}

void e2b_files_post_cleanup(struct http_req *req)
{
    upload_free(req);
    api_files_put_cleanup(req);
}
