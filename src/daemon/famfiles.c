/* famfiles.c - manifests, diffs and copies of a sandbox's writable files
 * (famfiles.h), for fork, diff and merge_into (registry.c, api_family.c).
 *
 * Every byte moves through the agents: FILE_LIST walks a root, FILE_GET's
 * first reply carries the file's SHA-256 (the agent hashes before it sends),
 * so a manifest asks for that reply and cancels the rest; a copy streams
 * FILE_GET's data frames of one agent into a FILE_PUT of the other, with the
 * digest, so the receiving agent refuses a file that changed on the way. The
 * daemon holds at most one agent window (PROTO_GET_WINDOW) of a file at a
 * time. A file that changes while it is copied or hashed is the caller's
 * race, as with any download.
 */
#include "famfiles.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proto.h"
#include "util.h"

#define FAM_OP_MS 120000
#define FAM_DEPTH 64

const char *const famfiles_roots[3] = {"/tmp", "/data", "/home/user"};

/* The entries of one root, pre-order (a directory before what it holds). */
static int list_root(struct agent_conn *c, const char *root, json_t **entries, struct op_error *err)
{
    json_t *req = json_pack("{s:s,s:i}", "path", root, "depth", FAM_DEPTH);
    json_t *reply = NULL;
    int r = req ? agent_call(c, PROTO_FILE_LIST, req, FAM_OP_MS, &reply, err) : -ENOMEM;
    json_decref(req);
    if (r == -ENOMEM)
        return op_error_set(err, r, ERR_INTERNAL, "out of memory");
    if (r < 0)
        return r;
    if (json_is_true(json_object_get(reply, "truncated"))) {
        json_decref(reply);
        return op_error_set(err, -EMSGSIZE, ERR_TOO_LARGE, "%s holds too many files to list in one reply", root);
    }
    json_t *e = json_object_get(reply, "entries");
    *entries = json_is_array(e) ? json_incref(e) : json_array();
    json_decref(reply);
    return 0;
}

static void cancel_get(struct agent_req *req)
{
    static const char msg[] = "{\"code\":\"internal\",\"message\":\"cancelled by the daemon\"}";
    (void)agent_req_send(req, PROTO_ERROR, PROTO_F_END, msg, sizeof(msg) - 1);
}

/* FILE_GET's first reply: 0 with *ok (its JSON) and *ended (no data
 * follows), or the agent's error. */
static int get_start(struct agent_conn *c, const char *path, struct agent_req **out, json_t **ok, bool *ended,
                     struct op_error *err)
{
    json_t *p = json_pack("{s:s}", "path", path);
    struct agent_req *req = NULL;
    int r = p ? agent_req_start(c, PROTO_FILE_GET, p, &req) : -ENOMEM;
    json_decref(p);
    if (r < 0)
        return op_error_set(err, r, r == -EPIPE ? ERR_AGENT_GONE : ERR_INTERNAL, "FILE_GET %s: %s", path,
                            strerror(-r));
    cleanup_frame struct agent_frame *f = NULL;
    if ((r = agent_req_next(req, now_mono_ms() + FAM_OP_MS, &f)) < 0) {
        agent_req_free(req);
        return op_error_set(err, r, r == -ETIMEDOUT ? ERR_AGENT_TIMEOUT : ERR_AGENT_GONE,
                            "FILE_GET %s: the agent did not answer", path);
    }
    if (f->type == PROTO_ERROR) {
        agent_req_free(req);
        return op_error_from_agent(err, (const char *)f->data, f->len);
    }
    if (f->type != PROTO_OK) {
        if (!(f->flags & PROTO_F_END))
            cancel_get(req);
        agent_req_free(req);
        return op_error_set(err, -EPROTO, ERR_INTERNAL, "FILE_GET %s: the agent sent %s", path,
                            proto_type_name(f->type));
    }
    *ok = json_loadb((const char *)f->data, f->len, 0, NULL);
    *ended = (f->flags & PROTO_F_END) != 0;
    *out = req;
    return *ok ? 0 : op_error_set(err, -EPROTO, ERR_INTERNAL, "FILE_GET %s: a reply that is not JSON", path);
}

int famfiles_manifest(struct agent_conn *c, json_t **out, struct op_error *err)
{
    json_t *m = json_object();
    if (!m)
        return op_error_set(err, -ENOMEM, ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < 3; i++) {
        json_t *entries = NULL;
        int r = list_root(c, famfiles_roots[i], &entries, err);
        if (r < 0) {
            json_decref(m);
            return r;
        }
        size_t k;
        json_t *e;
        json_array_foreach(entries, k, e)
        {
            const char *type = json_string_value(json_object_get(e, "type"));
            const char *path = json_string_value(json_object_get(e, "path"));
            if (!type || !path || strcmp(type, "file") != 0)
                continue;
            struct agent_req *req = NULL;
            json_t *ok = NULL;
            bool ended = false;
            if ((r = get_start(c, path, &req, &ok, &ended, err)) < 0) {
                json_decref(entries);
                json_decref(m);
                return r;
            }
            if (!ended)
                cancel_get(req); /* the digest is all a manifest needs */
            agent_req_free(req);
            json_t *sha = json_object_get(ok, "sha256");
            json_object_set_new(m, path,
                                json_pack("{s:O,s:O}", "size", json_object_get(ok, "size"), "sha256",
                                          sha ? sha : json_null()));
            json_decref(ok);
        }
        json_decref(entries);
    }
    *out = m;
    return 0;
}

static json_t *file_entry(const char *path, json_t *info)
{
    return json_pack("{s:s,s:O,s:O}", "path", path, "size", json_object_get(info, "size"), "sha256",
                     json_object_get(info, "sha256"));
}

/* Sorted by path: the manifests are objects, their order is not the API's. */
static int by_path(const void *x, const void *y)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)x, "path")),
                  json_string_value(json_object_get(*(json_t *const *)y, "path")));
}

static json_t *sorted(json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t **v = n ? calloc(n, sizeof(*v)) : NULL;
    if (!v)
        return arr;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof(*v), by_path);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
    return arr;
}

json_t *famfiles_diff(json_t *a, json_t *b)
{
    json_t *added = json_array(), *removed = json_array(), *changed = json_array();
    const char *path;
    json_t *ia, *ib;
    json_object_foreach(b, path, ib)
    {
        ia = json_object_get(a, path);
        if (!ia) {
            json_array_append_new(added, file_entry(path, ib));
        } else if (!json_equal(json_object_get(ia, "sha256"), json_object_get(ib, "sha256")) ||
                   !json_equal(json_object_get(ia, "size"), json_object_get(ib, "size"))) {
            json_array_append_new(changed,
                                  json_pack("{s:s,s:O,s:O,s:O,s:O}", "path", path, "size_a",
                                            json_object_get(ia, "size"), "size_b", json_object_get(ib, "size"),
                                            "sha256_a", json_object_get(ia, "sha256"), "sha256_b",
                                            json_object_get(ib, "sha256")));
        }
    }
    json_object_foreach(a, path, ia)
        if (!json_object_get(b, path))
            json_array_append_new(removed, file_entry(path, ia));
    return json_pack("{s:o,s:o,s:o}", "added", sorted(added), "removed", sorted(removed), "changed",
                     sorted(changed));
}

/* One file from src into dst at the same path, streamed. */
static int copy_file(struct agent_conn *src, struct agent_conn *dst, const char *path, unsigned long long *bytes,
                     struct op_error *err)
{
    struct agent_req *get = NULL;
    json_t *ok = NULL;
    bool ended = false;
    int r = get_start(src, path, &get, &ok, &ended, err);
    if (r < 0)
        return r;
    json_int_t mode = json_integer_value(json_object_get(ok, "mode"));
    const char *sha = json_string_value(json_object_get(ok, "sha256"));
    json_t *p = sha ? json_pack("{s:s,s:I,s:s}", "path", path, "mode", mode & 07777, "sha256", sha)
                    : json_pack("{s:s,s:I}", "path", path, "mode", mode & 07777);
    json_decref(ok);
    cleanup_agent_req struct agent_req *put = NULL;
    r = p ? agent_req_start(dst, PROTO_FILE_PUT, p, &put) : -ENOMEM;
    json_decref(p);
    if (r < 0) {
        if (!ended)
            cancel_get(get);
        agent_req_free(get);
        return op_error_set(err, r, r == -EPIPE ? ERR_AGENT_GONE : ERR_INTERNAL, "FILE_PUT %s: %s", path,
                            strerror(-r));
    }
    unsigned long long unacked = 0;
    while (!ended) {
        cleanup_frame struct agent_frame *f = NULL;
        if ((r = agent_req_next(get, now_mono_ms() + FAM_OP_MS, &f)) < 0) {
            op_error_set(err, r, r == -ETIMEDOUT ? ERR_AGENT_TIMEOUT : ERR_AGENT_GONE, "read %s: the agent stopped",
                         path);
            break;
        }
        if (f->type == PROTO_ERROR) {
            r = op_error_from_agent(err, (const char *)f->data, f->len);
            ended = true;
            break;
        }
        if (f->type != PROTO_FILE_DATA) {
            r = op_error_set(err, -EPROTO, ERR_INTERNAL, "read %s: the agent sent %s", path, proto_type_name(f->type));
            break;
        }
        ended = (f->flags & PROTO_F_END) != 0;
        if (f->len && (r = agent_req_send(put, PROTO_FILE_DATA, 0, f->data, f->len)) < 0) {
            op_error_set(err, r, ERR_AGENT_GONE, "write %s: %s", path, strerror(-r));
            break;
        }
        *bytes += f->len;
        unacked += f->len;
        if (!ended && unacked >= PROTO_GET_WINDOW / 2) {
            char body[48];
            int n = snprintf(body, sizeof(body), "{\"bytes\":%llu}", unacked);
            (void)agent_req_send(get, PROTO_FILE_ACK, 0, body, (size_t)n);
            unacked = 0;
        }
    }
    if (!ended)
        cancel_get(get);
    agent_req_free(get);
    if (r < 0) {
        static const char abort_msg[] = "{\"code\":\"internal\",\"message\":\"copy aborted\"}";
        (void)agent_req_send(put, PROTO_ERROR, PROTO_F_END, abort_msg, sizeof(abort_msg) - 1);
        return r;
    }
    if ((r = agent_req_send(put, PROTO_FILE_DATA, PROTO_F_END, NULL, 0)) < 0)
        return op_error_set(err, r, ERR_AGENT_GONE, "write %s: %s", path, strerror(-r));
    cleanup_frame struct agent_frame *f = NULL;
    if ((r = agent_req_next(put, now_mono_ms() + FAM_OP_MS, &f)) < 0)
        return op_error_set(err, r, r == -ETIMEDOUT ? ERR_AGENT_TIMEOUT : ERR_AGENT_GONE,
                            "write %s: the agent did not confirm it", path);
    if (f->type == PROTO_ERROR)
        return op_error_from_agent(err, (const char *)f->data, f->len);
    return f->type == PROTO_OK ? 0
                               : op_error_set(err, -EPROTO, ERR_INTERNAL, "write %s: the agent sent %s", path,
                                              proto_type_name(f->type));
}

static int simple_call(struct agent_conn *c, uint8_t type, json_t *req, struct op_error *err)
{
    json_t *reply = NULL;
    int r = req ? agent_call(c, type, req, FAM_OP_MS, &reply, err)
                : op_error_set(err, -ENOMEM, ERR_INTERNAL, "out of memory");
    json_decref(req);
    json_decref(reply);
    return r;
}

int famfiles_copy(struct agent_conn *src, struct agent_conn *dst, unsigned *copied, unsigned long long *bytes,
                  struct op_error *err)
{
    *copied = 0;
    *bytes = 0;
    int r = 0;
    for (size_t i = 0; i < 3 && r == 0; i++) {
        json_t *se = NULL, *de = NULL;
        if ((r = list_root(src, famfiles_roots[i], &se, err)) < 0)
            break;
        if ((r = list_root(dst, famfiles_roots[i], &de, err)) < 0) {
            json_decref(se);
            break;
        }
        /* path -> type of src's entries, for what dst must lose */
        json_t *have = json_object();
        size_t k;
        json_t *e;
        json_array_foreach(se, k, e)
        {
            const char *path = json_string_value(json_object_get(e, "path"));
            const char *type = json_string_value(json_object_get(e, "type"));
            if (path && type)
                json_object_set_new(have, path, json_string(type));
        }
        /* dst's entries src has not (or of another type) go first; a
         * directory's removal takes what it holds, so later entries under
         * it fail with not_found, which is what was wanted */
        json_array_foreach(de, k, e)
        {
            const char *path = json_string_value(json_object_get(e, "path"));
            const char *type = json_string_value(json_object_get(e, "type"));
            json_t *st = path ? json_object_get(have, path) : NULL;
            if (!path || !type || (st && strcmp(json_string_value(st), type) == 0 && strcmp(type, "file") != 0))
                continue;
            if (st && strcmp(type, "file") == 0 && strcmp(json_string_value(st), "file") == 0)
                continue; /* overwritten below */
            struct op_error derr = {0};
            if (simple_call(dst, PROTO_FILE_DELETE, json_pack("{s:s,s:b}", "path", path, "recursive", 1), &derr) < 0 &&
                !(derr.code == ERR_AGENT && strcmp(derr.agent_code, "not_found") == 0)) {
                *err = derr;
                r = -EIO;
                break;
            }
        }
        json_array_foreach(se, k, e)
        {
            if (r < 0)
                break;
            const char *path = json_string_value(json_object_get(e, "path"));
            const char *type = json_string_value(json_object_get(e, "type"));
            if (!path || !type)
                continue;
            if (strcmp(type, "dir") == 0)
                r = simple_call(dst, PROTO_FILE_MKDIR, json_pack("{s:s}", "path", path), err);
            else if (strcmp(type, "file") == 0 && (r = copy_file(src, dst, path, bytes, err)) == 0)
                (*copied)++;
            /* symlinks and other types are not copied (docs/api.md) */
        }
        json_decref(have);
        json_decref(se);
        json_decref(de);
    }
    return r;
}
