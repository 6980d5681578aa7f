/* api_contexts.c - code contexts: independent REPLs in one sandbox.
 *
 *   POST   /v1/sandboxes/{id}/contexts {"language","cwd"}  201 context
 *   GET    /v1/sandboxes/{id}/contexts                      200 {"contexts":[...],"max"}
 *   GET    /v1/sandboxes/{id}/contexts/{ctx}                200 context
 *   POST   /v1/sandboxes/{id}/contexts/{ctx}/restart        200 context (state gone)
 *   DELETE /v1/sandboxes/{id}/contexts/{ctx}                200 {"id","removed":true}
 *
 * A context is {"id","language","cwd","default"}. The table lives in the
 * sandbox's agent (src/agent/context.c), which is the one authority on what
 * exists; the daemon keeps no copy, so a sandbox restored from a snapshot or
 * forked has whatever its agent has. Each handler is one CTX_* round trip.
 * POST /code takes "context" (an id) to run in one (api_code.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent_client.h"
#include "api.h"
#include "api_errors.h"
#include "log.h"
#include "proto.h"
#include "registry.h"
#include "store.h"

/* A new context's runner is started before the agent replies: a fork of the
 * zygote takes milliseconds, an exec'd Python with IPython a second or two
 * on a loaded host; this bounds a wedged agent. */
#define CONTEXT_CALL_TIMEOUT_MS 30000

int api_context_call(struct sandbox *sb, uint8_t type, json_t *payload, json_t **reply, struct api_error *err)
{
    struct op_error oerr = {0};
    *reply = NULL;
    int r = agent_call(sandbox_agent(sb), type, payload, CONTEXT_CALL_TIMEOUT_MS, reply, &oerr);
    if (r < 0) {
        api_error_from_op(err, r, &oerr);
        if (r == -EPIPE)
            api_error_gone(err, sb);
        return r;
    }
    if (type != PROTO_CTX_DELETE && !json_is_object(*reply)) {
        json_decref(*reply);
        *reply = NULL;
        return api_error_set(err, -EPROTO, 500, "internal", "agent answered %s without an object", proto_type_name(type));
    }
    return 0;
}

/* The call, its audit event when it changed something, and the reply. */
static void context_reply(struct http_req *req, struct sandbox *sb, uint8_t type, json_t *payload, unsigned status,
                          const char *audit_action)
{
    json_t *reply = NULL;
    struct api_error err = {0};
    int r = api_context_call(sb, type, payload, &reply, &err);
    json_decref(payload);
    if (r < 0) {
        http_reply_error(req, &err);
        return;
    }
    if (audit_action) {
        json_t *detail = json_pack("{s:s}", "context", type == PROTO_CTX_DELETE ? req->param2
                                                          : json_string_value(json_object_get(reply, "id")));
        if (detail && type == PROTO_CTX_CREATE)
            json_object_set(detail, "language", json_object_get(reply, "language"));
        (void)store_audit(req->d->store, req->key.id, audit_action, sandbox_id(sb), detail);
        json_decref(detail);
    }
    if (type == PROTO_CTX_DELETE) {
        json_decref(reply);
        reply = json_pack("{s:s,s:b}", "id", req->param2, "removed", 1);
    }
    http_reply_json(req, status, reply);
}

void api_contexts_create(struct http_req *req)
{
    const char *language = "python", *cwd = NULL;
    if (api_field_string(req, "language", &language) < 0 || api_field_string(req, "cwd", &cwd) < 0)
        return;
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    json_t *p = json_pack("{s:s}", "language", language);
    if (p && cwd)
        json_object_set_new(p, "cwd", json_string(cwd));
    context_reply(req, sb, PROTO_CTX_CREATE, p, 201, "context_create");
}

void api_contexts_list(struct http_req *req)
{
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    context_reply(req, sb, PROTO_CTX_LIST, json_object(), 200, NULL);
}

void api_context_get(struct http_req *req)
{
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    json_t *reply = NULL;
    struct api_error err = {0};
    json_t *p = json_object();
    int r = api_context_call(sb, PROTO_CTX_LIST, p, &reply, &err);
    json_decref(p);
    if (r < 0) {
        http_reply_error(req, &err);
        return;
    }
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(reply, "contexts"), i, c)
    {
        if (json_is_string(json_object_get(c, "id")) && strcmp(json_string_value(json_object_get(c, "id")), req->param2) == 0) {
            http_reply_json(req, 200, json_incref(c));
            json_decref(reply);
            return;
        }
    }
    json_decref(reply);
    http_reply_errorf(req, 404, "not_found", "code context %s not found", req->param2);
}

void api_context_restart(struct http_req *req)
{
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    context_reply(req, sb, PROTO_CTX_RESTART, json_pack("{s:s}", "id", req->param2), 200, "context_restart");
}

void api_context_delete(struct http_req *req)
{
    cleanup_sandbox struct sandbox *sb = api_route_sandbox(req);
    if (!sb)
        return;
    context_reply(req, sb, PROTO_CTX_DELETE, json_pack("{s:s}", "id", req->param2), 200, "context_delete");
}
