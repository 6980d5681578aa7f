/* mcp.h - `airlock mcp`: a Model Context Protocol server in the CLI binary
 * (docs/mcp.md), so an air-gapped host needs nothing but `airlock`.
 *
 * Layers, one file each:
 *   cmd_mcp.c      the command, its flags (the sandbox's shape) and the
 *                  stdio transport (newline-delimited JSON-RPC)
 *   mcp_http.c     the Streamable HTTP transport (libmicrohttpd, POST/DELETE /mcp)
 *   mcp_rpc.c      JSON-RPC 2.0 and the MCP methods (initialize, ping,
 *                  tools/list, tools/call), whatever the transport
 *   mcp_tools.c    the tools: their schemas and their calls to airlockd
 *   mcp_content.c  airlockd's results as MCP content (text, image, resource)
 *   mcp_session.c  one session = one airlockd client + at most one sandbox
 *
 * A session's sandbox is created on its first tool call, from the server's
 * flags only (the model chooses code, never template, limits or egress), its
 * lifetime is renewed at every tool call, and it is destroyed when the
 * session ends; a server that dies without ending it leaves the sandbox to
 * expire after that lifetime.
 */
#ifndef AIRLOCK_CLI_MCP_H
#define AIRLOCK_CLI_MCP_H

#include "client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define MCP_SERVER_NAME "airlock"
#define MCP_SERVER_VERSION "0.1.0"

/* JSON-RPC 2.0 error codes */
enum {
    RPC_PARSE_ERROR = -32700,
    RPC_INVALID_REQUEST = -32600,
    RPC_METHOD_NOT_FOUND = -32601,
    RPC_INVALID_PARAMS = -32602,
    RPC_INTERNAL_ERROR = -32603,
};

/* What every session's sandbox is made of: the server's flags. */
struct mcp_config {
    const char *url, *key;     /* airlockd (NULL: $AIRLOCK_URL / $AIRLOCK_API_KEY) */
    const char *template_name; /* NULL: the daemon's default (host) */
    long memory_mb;            /* 0: the daemon's default */
    double cpus;               /* 0: the daemon's default */
    long lifetime_s;           /* the sandbox's lifetime, renewed at every tool call */
    long call_timeout_s;       /* per run_python / run_bash call */
    bool egress;
    json_t *env;               /* object string->string, or NULL */
    long max_file_bytes;       /* download_file's cap: the answer is one JSON message */
};

#define MCP_MAX_CHILDREN 32

struct mcp_session {
    const struct mcp_config *cfg;
    struct client client;
    char *sandbox_id;          /* NULL until the first tool call needs it */
    /* the fork tool's children of this session (ids), destroyed with it;
     * tools take one as "sandbox" (mcp_tools.c) */
    char *children[MCP_MAX_CHILDREN];
    unsigned n_children;
    char *client_name;         /* clientInfo.name from initialize, or NULL */
    char protocol[16];         /* negotiated at initialize */
    bool initialized;
};

/* ---- mcp_session.c ------------------------------------------------------ */

/* 0, or -1 with s->client.err set (a bad --url). */
int mcp_session_init(struct mcp_session *s, const struct mcp_config *cfg);
/* Destroy the session's sandbox (if it has one) and free the session. */
void mcp_session_end(struct mcp_session *s);
/* The session's sandbox, created or renewed: 0, or -1 with s->client.err
 * set. *note (if note) is set to a static text when the sandbox was
 * replaced because the previous one had expired. */
int mcp_session_sandbox(struct mcp_session *s, const char **note);
/* Forget (not destroy) a sandbox airlockd says is gone. */
void mcp_session_lost(struct mcp_session *s);
/* The session's child with this id (from the fork tool), or NULL. */
const char *mcp_session_child(const struct mcp_session *s, const char *id);
/* Add (0; -1 when MCP_MAX_CHILDREN are held) or forget one. */
int mcp_session_child_add(struct mcp_session *s, const char *id);
void mcp_session_child_forget(struct mcp_session *s, const char *id);

/* ---- mcp_rpc.c ---------------------------------------------------------- */

/* One parsed JSON-RPC message (or a 2025-03-26 batch) in; the answer to
 * send (a response, an array of them) or NULL when there is none
 * (notifications, responses). Never fails: every problem is an error response. */
json_t *mcp_handle(struct mcp_session *s, json_t *msg);
/* The same from text; a message that is not JSON is a -32700 response. */
json_t *mcp_handle_text(struct mcp_session *s, const char *buf, size_t len);
/* A JSON-RPC error response (id may be NULL: json null). */
json_t *mcp_rpc_error(json_t *id, int code, const char *message);
/* Whether msg is an initialize request. */
bool mcp_is_initialize(json_t *msg);
/* Whether we speak this protocol revision. */
bool mcp_protocol_supported(const char *version);

/* ---- mcp_tools.c -------------------------------------------------------- */

/* tools/list's "tools" array (a new reference). */
json_t *mcp_tools_list(void);
/* tools/call: a CallToolResult (failures inside it, isError: true), or NULL
 * when no tool has that name (a JSON-RPC -32602 then). */
json_t *mcp_tools_call(struct mcp_session *s, const char *name, json_t *args);

/* ---- mcp_content.c ------------------------------------------------------ */

/* CallToolResult helpers: content blocks appended to result["content"]. */
json_t *mcp_result_new(void);
int mcp_add_text(json_t *result, const char *text);
int mcp_add_textf(json_t *result, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mcp_add_image(json_t *result, const char *mime, const char *base64);
int mcp_add_resource(json_t *result, const char *uri, const char *mime, const char *data, size_t len);
/* A result with isError: true and this text. */
json_t *mcp_tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Append a code/exec result object of airlockd (docs/api.md "Result") as
 * content; sets isError for a failed run. */
int mcp_add_run_result(json_t *result, json_t *run, bool is_exec);
/* Standard base64 (no line breaks); decode refuses anything else. */
char *mcp_base64_encode(const unsigned char *data, size_t len);
int mcp_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len);

/* ---- mcp_http.c --------------------------------------------------------- */

/* Serve Streamable HTTP on listen ("HOST:PORT") at /mcp until SIGINT/SIGTERM,
 * then end every session. token: a bearer token clients must present, or
 * NULL. A process exit code. */
int mcp_http_serve(const struct mcp_config *cfg, const char *listen, const char *token);

#endif
