/* api_family.c - fork families (docs/api.md, `POST /v1/sandboxes/{id}/fork`):
 *
 *   POST /v1/sandboxes/{id}/fork {"n":1..32}      -> 201 {"sandboxes":[...], "state":"full"|"files"}
 *   GET  /v1/sandboxes/{a}/diff/{b}               -> 200 {"added","removed","changed"}
 *   POST /v1/sandboxes/{child}/merge_into/{parent} -> 200 {"id","merged_from","state":"files",...}
 *
 * Ownership is sandbox_get's (someone else's sandbox is 404, like an unknown
 * one); diff and merge_into need two sandboxes of one family (409
 * not_same_family otherwise). Each writes its audit event on the sandbox it
 * acts on before it acts (fails closed), its outcome after.
 */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api_errors.h"
#include "build.h"
#include "daemon.h"
#include "famfiles.h"
#include "log.h"
#include "registry.h"
#include "store.h"
#include "util.h"

void api_sandbox_fork(struct http_req *req)
{
    struct daemon *d = req->d;
    unsigned n = 1;
    if (api_field_uint(req, "n", 1, SANDBOX_FORK_MAX, &n) < 0)
        return;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    int64_t row = 0;
    if (api_audit_begin(req, "fork", req->param, json_pack("{s:i}", "n", (int)n), NULL, &row) < 0)
        return;
    struct sandbox *kids[SANDBOX_FORK_MAX] = {NULL};
    bool full = false;
    struct op_error err = {0};
    unsigned per_key = req->key.admin && d->cfg.admin_unlimited ? 0 : d->cfg.max_sandboxes_per_key;
    int r = sandbox_fork(d, sb, n, req->key.id, per_key, kids, &full, &err);
    if (r < 0) {
        api_audit_outcome(req, row, json_pack("{s:b,s:s}", "completed", 0, "error", err.msg));
        log_warn("sandbox %s: fork failed: %s", req->param, err.msg);
        api_reply_op_error(req, r, &err);
        return;
    }
    const char *state = full ? "full" : "files";
    json_t *arr = json_array(), *ids = json_array();
    for (unsigned i = 0; i < n; i++) {
        json_t *j = sandbox_json(kids[i], &req->key);
        if (j)
            json_object_set_new(j, "fork_state", json_string(state));
        json_array_append_new(arr, j ? j : json_null());
        json_array_append_new(ids, json_string(sandbox_id(kids[i])));
        sandbox_unref(kids[i]);
    }
    api_audit_outcome(req, row, json_pack("{s:b,s:o,s:s}", "completed", 1, "children", ids, "state", state));
    http_reply_json(req, 201, json_pack("{s:o,s:s,s:s}", "sandboxes", arr, "state", state, "parent_id", req->param));
}

/* The route's second sandbox ({b}, {parent}): referenced, or NULL after
 * replying (404 for an unknown or another key's, as for the first). */
static struct sandbox *second_sandbox(struct http_req *req, struct sandbox *first)
{
    struct sandbox *sb = NULL;
    struct op_error err = {0};
    int r = sandbox_get(req->d, &req->key, req->param2, &sb, &err);
    if (r < 0) {
        api_reply_op_error(req, r, &err);
        return NULL;
    }
    if (sb == first) {
        sandbox_unref(sb);
        http_reply_errorf(req, 400, "invalid_request", "both ids name sandbox %s", req->param);
        return NULL;
    }
    if (!sandbox_same_family(first, sb)) {
        sandbox_unref(sb);
        struct op_error fe = {0};
        op_error_set(&fe, -EXDEV, ERR_NOT_FAMILY, "sandboxes %s and %s are not of one fork family", req->param,
                     req->param2);
        api_reply_op_error(req, -EXDEV, &fe);
        return NULL;
    }
    return sb;
}

void api_sandbox_diff(struct http_req *req)
{
    cleanup_sandbox struct sandbox *a = api_route_sandbox(req);
    if (!a)
        return;
    cleanup_sandbox struct sandbox *b = second_sandbox(req, a);
    if (!b)
        return;
    int64_t row = 0;
    if (api_audit_begin(req, "diff", req->param, json_pack("{s:s}", "other", req->param2), NULL, &row) < 0)
        return;
    json_auto_t *ma = NULL, *mb = NULL;
    struct op_error err = {0};
    int r = famfiles_manifest(sandbox_agent(a), &ma, &err);
    if (r == 0)
        r = famfiles_manifest(sandbox_agent(b), &mb, &err);
    if (r < 0) {
        api_audit_outcome(req, row, json_pack("{s:b}", "completed", 0));
        struct sandbox *gone = agent_conn_is_dead(sandbox_agent(a)) ? a : b;
        if (err.code == ERR_AGENT_GONE) {
            struct api_error ae = {0};
            api_error_gone(&ae, gone);
            http_reply_error(req, &ae);
            return;
        }
        api_reply_op_error(req, r, &err);
        return;
    }
    json_t *diff = famfiles_diff(ma, mb);
    if (!diff) {
        http_reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    api_audit_outcome(req, row,
                  json_pack("{s:b,s:i,s:i,s:i}", "completed", 1, "added", (int)json_array_size(json_object_get(diff, "added")),
                            "removed", (int)json_array_size(json_object_get(diff, "removed")), "changed",
                            (int)json_array_size(json_object_get(diff, "changed"))));
    json_object_set_new(diff, "a", json_string(req->param));
    json_object_set_new(diff, "b", json_string(req->param2));
    json_object_set_new(diff, "roots", json_pack("[s,s,s]", famfiles_roots[0], famfiles_roots[1], famfiles_roots[2]));
    http_reply_json(req, 200, diff);
}

void api_sandbox_merge_into(struct http_req *req)
{
    cleanup_sandbox struct sandbox *child = api_route_sandbox(req);
    if (!child)
        return;
    cleanup_sandbox struct sandbox *parent = second_sandbox(req, child);
    if (!parent)
        return;
    int64_t row = 0;
    if (api_audit_begin(req, "merge", req->param2, json_pack("{s:s,s:s}", "from", req->param, "state", "files"), NULL, &row) <
        0)
        return;
    unsigned files = 0;
    unsigned long long bytes = 0;
    struct op_error err = {0};
    int r = famfiles_copy(sandbox_agent(child), sandbox_agent(parent), &files, &bytes, &err);
    if (r < 0) {
        /* the parent may hold part of the child's files now: said in the
         * error; the child is kept, so the merge can be tried again */
        api_audit_outcome(req, row, json_pack("{s:b,s:s}", "completed", 0, "error", err.msg));
        char why[OP_ERR_MSG_MAX];
        snprintf(why, sizeof(why), "%s", err.msg);
        op_error_set(&err, r, err.code == ERR_AGENT_GONE ? ERR_AGENT_GONE : ERR_INTERNAL,
                     "merge_into: copying the files failed part way (the child is kept): %s", why);
        api_reply_op_error(req, r, &err);
        return;
    }
    api_audit_outcome(req, row, json_pack("{s:b,s:i,s:I}", "completed", 1, "files", (int)files, "bytes", (json_int_t)bytes));
    /* the child's own record says why it went */
    int dr = sandbox_destroy_detached(child, "merged", req->key.id);
    if (dr < 0)
        log_warn("sandbox %s: merged into %s, but it was already being destroyed", req->param, req->param2);
    http_reply_json(req, 200,
                    json_pack("{s:s,s:s,s:s,s:i,s:I,s:o}", "id", req->param2, "merged_from", req->param, "state",
                              "files", "files", (int)files, "bytes", (json_int_t)bytes, "sandbox",
                              sandbox_json(parent, &req->key)));
}
