/* mcp_rpc.c - JSON-RPC 2.0 and the MCP methods, whatever the transport.
 *
 * A tools-only server: initialize (the protocol revision negotiated as the
 * specification says: the client's when we speak it, else our latest),
 * ping, tools/list, tools/call; notifications are taken and not answered.
 * Requests are answered one at a time, in order.
 */
#include "mcp.h"

#include "util.h"

#include <string.h>

/* Newest first: the first is what we offer a client that asks for another. */
static const char *const protocol_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};

static const char instructions[] =
    "Tools of an Airlock sandbox: a sealed Linux sandbox (no network) that lives as long as this session. "
    "run_python keeps one Python interpreter for the whole session; run_bash runs shell commands; "
    "upload_file, download_file and list_files move files in and out (the home directory is /home/user). "
    "The sandbox is destroyed when the session ends.";

bool mcp_protocol_supported(const char *version)
{
    for (size_t i = 0; version && i < ARRAY_SIZE(protocol_versions); i++)
        if (strcmp(version, protocol_versions[i]) == 0)
            return true;
    return false;
}

json_t *mcp_rpc_error(json_t *id, int code, const char *message)
{
    return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error", "code", code,
                     "message", message);
}

static json_t *rpc_result(json_t *id, json_t *result)
{
    if (!result)
        return mcp_rpc_error(id, RPC_INTERNAL_ERROR, "out of memory");
    return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
}

bool mcp_is_initialize(json_t *msg)
{
    const char *m = json_string_value(json_object_get(msg, "method"));
    return m && strcmp(m, "initialize") == 0 && json_object_get(msg, "id");
}

/* ---- the methods ------------------------------------------------------- */

static json_t *initialize(struct mcp_session *s, json_t *params)
{
    const char *asked = json_string_value(json_object_get(params, "protocolVersion"));
    const char *version = mcp_protocol_supported(asked) ? asked : protocol_versions[0];
    snprintf(s->protocol, sizeof(s->protocol), "%s", version);
    const char *name = json_string_value(json_object_get(json_object_get(params, "clientInfo"), "name"));
    free(s->client_name);
    s->client_name = name ? strndup(name, 128) : NULL;
    s->initialized = true;
    return json_pack("{s:s, s:{s:{s:b}}, s:{s:s, s:s, s:s}, s:s}", "protocolVersion", version, "capabilities", "tools",
                     "listChanged", 0, "serverInfo", "name", MCP_SERVER_NAME, "title", "Airlock sandbox", "version",
                     MCP_SERVER_VERSION, "instructions", instructions);
}

static json_t *tools_call(struct mcp_session *s, json_t *id, json_t *params)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    json_t *args = json_object_get(params, "arguments");
    if (!name)
        return mcp_rpc_error(id, RPC_INVALID_PARAMS, "tools/call needs params.name");
    if (args && !json_is_object(args) && !json_is_null(args))
        return mcp_rpc_error(id, RPC_INVALID_PARAMS, "tools/call: params.arguments must be an object");
    json_auto_t *empty = json_object();
    if (!json_is_object(args))
        args = empty;
    json_t *result = mcp_tools_call(s, name, args);
    if (!result) {
        cleanup_free char *msg = NULL;
        if (asprintf(&msg, "Unknown tool: %.200s", name) < 0)
            msg = NULL;
        return mcp_rpc_error(id, RPC_INVALID_PARAMS, msg ? msg : "Unknown tool");
    }
    return rpc_result(id, result);
}

static json_t *request(struct mcp_session *s, const char *method, json_t *id, json_t *params)
{
    if (strcmp(method, "initialize") == 0)
        return rpc_result(id, initialize(s, params));
    if (strcmp(method, "ping") == 0)
        return rpc_result(id, json_object());
    if (strcmp(method, "tools/list") == 0)
        return rpc_result(id, json_pack("{s:o}", "tools", mcp_tools_list()));
    if (strcmp(method, "tools/call") == 0)
        return tools_call(s, id, params);
    cleanup_free char *msg = NULL;
    if (asprintf(&msg, "Method not found: %.200s", method) < 0)
        msg = NULL;
    return mcp_rpc_error(id, RPC_METHOD_NOT_FOUND, msg ? msg : "Method not found");
}

/* ---- messages ------------------------------------------------------------ */

static json_t *one(struct mcp_session *s, json_t *msg)
{
    if (!json_is_object(msg))
        return mcp_rpc_error(NULL, RPC_INVALID_REQUEST, "a JSON-RPC message is an object");
    json_t *id = json_object_get(msg, "id");
    /* MCP ids are strings or integers, never null */
    bool good_id = json_is_string(id) || json_is_integer(id);
    const char *version = json_string_value(json_object_get(msg, "jsonrpc"));
    json_t *method = json_object_get(msg, "method");
    if (!version || strcmp(version, "2.0") != 0)
        return mcp_rpc_error(good_id ? id : NULL, RPC_INVALID_REQUEST, "jsonrpc must be \"2.0\"");
    if (!method) {
        /* a response to a request of ours (we send none) is dropped */
        if (good_id && (json_object_get(msg, "result") || json_object_get(msg, "error")))
            return NULL;
        return mcp_rpc_error(good_id ? id : NULL, RPC_INVALID_REQUEST, "a request needs a method");
    }
    if (!json_is_string(method) || (id && !good_id))
        return mcp_rpc_error(good_id ? id : NULL, RPC_INVALID_REQUEST,
                             "method must be a string, id a string or an integer");
    json_t *params = json_object_get(msg, "params");
    if (params && !json_is_object(params) && !json_is_array(params))
        return id ? mcp_rpc_error(id, RPC_INVALID_REQUEST, "params must be an object") : NULL;
    if (!id)
        return NULL; /* notifications/initialized, notifications/cancelled, ...: nothing to answer */
    return request(s, json_string_value(method), id, params);
}

json_t *mcp_handle(struct mcp_session *s, json_t *msg)
{
    if (!json_is_array(msg))
        return one(s, msg);
    /* a batch (protocol 2025-03-26): the answers of its requests, in order */
    if (json_array_size(msg) == 0)
        return mcp_rpc_error(NULL, RPC_INVALID_REQUEST, "an empty batch");
    json_t *answers = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(msg, i, m)
    {
        json_t *a = one(s, m);
        if (a && answers)
            json_array_append_new(answers, a);
        else
            json_decref(a);
    }
    if (!answers || json_array_size(answers) > 0)
        return answers;
    json_decref(answers);
    return NULL;
}

/* JSON_ALLOW_NUL: a "\u0000" inside a string is valid JSON; refusing the
 * message would leave its request unanswered (its id unread), so the tools
 * check their own strings instead (mcp_tools.c). */
json_t *mcp_handle_text(struct mcp_session *s, const char *buf, size_t len)
{
    json_error_t jerr;
    json_auto_t *msg = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!msg) {
        cleanup_free char *text = NULL;
        if (asprintf(&text, "Parse error: %s", jerr.text) < 0)
            text = NULL;
        return mcp_rpc_error(NULL, RPC_PARSE_ERROR, text ? text : "Parse error");
    }
    return mcp_handle(s, msg);
}
