/* api_egress.c - a sandbox's egress policy and log (docs/egress.md):
 *
 *   the create body's "egress" (api_egress_parse, for api_sandboxes.c)
 *   GET  /v1/sandboxes/{id}/egress      the allow-list
 *   PUT  /v1/sandboxes/{id}/egress      replace it, atomically, at once
 *   GET  /v1/sandboxes/{id}/egress/log  its connections, allowed and denied
 */
#include <errno.h>
#include <stdio.h>

#include "api.h"
#include "api_errors.h"
#include "build.h"
#include "egress_proxy.h"
#include "registry.h"
#include "store.h"
#include "util.h"

/* false -> sealed (*out NULL); {"allow":[...]} -> a policy; true -> the
 * open policy (mode 3). 0, or -1 with the answer sent. */
int api_egress_parse(struct http_req *req, const json_t *v, struct egress_policy **out)
{
    *out = NULL;
    if (!v || json_is_null(v) || json_is_false(v))
        return 0;
    if (json_is_true(v)) {
        if (egress_policy_new_open(out) < 0) {
            http_reply_errorf(req, 500, "internal", "out of memory");
            return -1;
        }
        return 0;
    }
    if (!json_is_object(v) || !json_object_get(v, "allow") || json_object_size(v) != 1) {
        http_reply_errorf(req, 400, "invalid_request",
                          "egress must be false, true (open egress), or {\"allow\": [\"host:port\", "
                          "\"*.domain:port\", \"cidr:port\"]}");
        return -1;
    }
    char err[512];
    if (egress_policy_parse(json_object_get(v, "allow"), out, err, sizeof(err)) < 0) {
        http_reply_errorf(req, 400, "invalid_request", "%s", err);
        return -1;
    }
    return 0;
}

/* The route's sandbox and its proxy (NULL for a jail sandbox created sealed
 * that no PUT has opened yet: nothing listens, nothing routes); NULL with
 * the answer sent. */
static struct sandbox *egress_sandbox(struct http_req *req, struct egress_proxy **px)
{
    /* the policy lives in the daemon's proxy: a paused sandbox's too */
    struct sandbox *sb = api_route_sandbox_any(req);
    if (!sb)
        return NULL;
    if (!sandbox_egress_capable(sb)) {
        http_reply_errorf(req, 400, "egress_unavailable",
                          "sandbox %s has no egress: its backend (vm) has no network; it is sealed for its life",
                          req->param);
        sandbox_unref(sb);
        return NULL;
    }
    *px = sandbox_egress(sb);
    return sb;
}

void api_egress_get(struct http_req *req)
{
    struct egress_proxy *px;
    cleanup_sandbox struct sandbox *sb = egress_sandbox(req, &px);
    if (sb)
        http_reply_json(req, 200, px ? egress_proxy_policy_json(px) : json_pack("{s:[]}", "allow"));
}

/* The body: {"allow": [...]} (an allow-list), or {"egress": false | true |
 * {"allow": [...]}} (any mode; false on a sandbox created with egress is
 * the empty list: no route, the proxy refuses everything). */
void api_egress_put(struct http_req *req)
{
    json_t *v = req->body;
    if (json_is_object(v) && json_object_get(v, "egress") && json_object_size(v) == 1)
        v = json_object_get(v, "egress");
    else if (!json_is_object(v) || !json_object_get(v, "allow")) {
        http_reply_errorf(req, 400, "invalid_request",
                          "the body must be {\"allow\": [\"host:port\", ...]} or {\"egress\": false | true | "
                          "{\"allow\": [...]}}");
        return;
    }
    struct egress_policy *pol = NULL;
    if (api_egress_parse(req, v, &pol) < 0)
        return;
    bool sealing = !pol || (!pol->open && pol->n == 0); /* false, or the empty list */
    if (!pol) {
        json_auto_t *none = json_array();
        char err[128];
        if (egress_policy_parse(none, &pol, err, sizeof(err)) < 0) {
            http_reply_errorf(req, 500, "internal", "%s", err);
            return;
        }
    }
    struct egress_proxy *px;
    cleanup_sandbox struct sandbox *sb = egress_sandbox(req, &px);
    if (!sb) {
        egress_policy_free(pol);
        return;
    }
    /* the audit row first: a change the store refuses is not made */
    json_t *detail = egress_policy_json(pol);
    int r = store_audit(req->d->store, req->key.id, "egress_policy", sandbox_id(sb), detail);
    json_decref(detail);
    if (r < 0) {
        egress_policy_free(pol);
        struct api_error err = {0};
        api_error_audit(&err, r, "the egress change");
        http_reply_error(req, &err);
        return;
    }
    unsigned closed = 0;
    struct op_error oerr = {0};
    if (!px && sealing) {
        /* sealed and staying so: no proxy is made just to refuse */
        egress_policy_free(pol);
        http_reply_json(req, 200, json_pack("{s:[],s:i}", "allow", "closed", 0));
        return;
    }
    /* created sealed: the first policy makes the proxy (and route) now */
    if (!px && (r = sandbox_attach_egress(sb, pol, &oerr)) < 0) {
        api_reply_op_error(req, r, &oerr);
        return;
    }
    if (px || r == 1)
        r = sandbox_set_egress(sb, pol, &closed, &oerr);
    px = sandbox_egress(sb);
    if (r < 0) {
        api_reply_op_error(req, r, &oerr);
        return;
    }
    json_t *j = egress_proxy_policy_json(px);
    json_object_set_new(j, "closed", json_integer(closed));
    http_reply_json(req, 200, j);
}

void api_egress_log(struct http_req *req)
{
    struct egress_proxy *px;
    cleanup_sandbox struct sandbox *sb = egress_sandbox(req, &px);
    if (sb)
        http_reply_json(req, 200, px ? egress_proxy_log_json(px) : json_pack("{s:[]}", "entries"));
}
