/* http.h - the HTTP layer: libmicrohttpd daemons, the route table, bodies.
 *
 * http.c owns the HTTP mechanics and calls handlers only through its
 * ROUTES[]; who may come in (the Bearer key, sizes, rate and in-flight
 * limits) is decided by admission.c (with auth.c), which fills in the key.
 * An api_*.c handler sees one struct http_req with the authenticated key,
 * the path parameter and the parsed JSON body, and answers with one of the
 * http_reply_* calls. */
#ifndef AIRLOCK_HTTP_H
#define AIRLOCK_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <microhttpd.h>

#include "daemon.h"
#include "errors.h"
#include "store.h"

struct buf;

#define HTTP_MAX_JSON_BODY (16u << 20)

struct http_server;

/* Per-request timing marks, in the order a request passes them (monotonic
 * microseconds, 0 = not reached). At --log-level debug the end of each
 * request logs one line with the time between consecutive marks, so a
 * regression shows which phase grew. Marks are cheap (vDSO clock), so they
 * are taken whatever the level. */
enum http_mark {
    HTTP_T_START,    /* headers arrived */
    HTTP_T_ADMITTED, /* route, auth, rate and in-flight limits passed */
    HTTP_T_BODY,     /* body read and parsed, handler called */
    HTTP_T_LOOKUP,   /* sandbox found in the registry (owner checked) */
    HTTP_T_CREATED,  /* create: sandbox built and its agent answering */
    HTTP_T_AGENT,    /* run/exec: the agent's result arrived */
    HTTP_T_REPLIED,  /* reply built and handed to MHD */
    HTTP_T_N
};

/* HTTP_E2B_STREAM: a streamed Connect RPC, whose errors are an HTTP 200
 * with an end-of-stream envelope (Connect clients read no other) */
enum http_flavor { HTTP_NATIVE, HTTP_E2B_REST, HTTP_E2B_CONNECT, HTTP_E2B_STREAM };

struct http_req {
    struct daemon *d;
    struct MHD_Connection *conn;
    int client_fd;          /* the connection's socket, for http_client_gone */
    char param[80];         /* {id} of the route */
    char param2[80];        /* a second {...} of the route (a context's id, a process's pid, the other
                             * sandbox of diff and merge_into), else "" */
    struct key_info key;    /* the authenticated caller */
    bool holds_slot;        /* an in-flight slot of key (admission.c) */
    bool reply_whole;       /* the reply is one buffer (http_reply_json): the work is over when it is queued */
    json_t *body;           /* JSON routes: the parsed object */
    const char *raw;        /* raw routes: the whole body as sent (not NUL-terminated) */
    size_t raw_len;
    /* The E2B listener (docs/e2b.md): its requests authenticate with
     * X-API-Key / X-Access-Token instead of Bearer, and its handlers may
     * reuse a native handler under a translation of what it answers.
     * Errors then take E2B's shapes: {"code":<status>,"message"} on the
     * REST routes, Connect's {"code":"<name>","message"} on envd's RPCs. */
    int e2b; /* enum http_flavor */
    /* Set by a handler that reuses another: each JSON reply (success or
     * error) passes through here before it is sent, to reshape it. */
    void (*reply_hook)(struct http_req *req, unsigned *status, json_t **body);
    /* Set likewise for a streamed run (api_code.c): each event of the
     * native NDJSON stream is handed here instead, and this appends the
     * bytes that go out (another framing). stream_type is its Content-Type.
     * hook_ctx is handed to it; a run that starts takes it (sets it NULL)
     * and calls hook_free(hook_ctx) when it is over. */
    void (*event_hook)(void *ctx, json_t *ev, struct buf *out);
    void *hook_ctx;
    void (*hook_free)(void *ctx);
    const char *stream_type;
    void *upload;           /* upload routes: the handler's state */
    void *shim;             /* the state of an E2B handler around a native one */
    /* the reply, set by http_reply_* */
    unsigned status;
    struct MHD_Response *response;
    uint64_t t[HTTP_T_N]; /* enum http_mark */
};

/* Record that req reached mark m now. */
void http_mark(struct http_req *req, enum http_mark m);
int http_start(struct daemon *d, struct http_server **out);
/* A streamed response may wait a long time between chunks: exempt this
 * request from the idle-connection timeout. */
void http_stream_begin(struct http_req *req);
/* Stop accepting new connections (shutdown begins). */
void http_quiesce(struct http_server *s);
/* Close all connections, join their threads, free. */
void http_stop(struct http_server *s);

void http_reply_json(struct http_req *req, unsigned status, json_t *body /* stolen */);
void http_reply_error(struct http_req *req, const struct api_error *err);
void http_reply_errorf(struct http_req *req, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void http_reply_response(struct http_req *req, unsigned status, struct MHD_Response *resp /* stolen */);
const char *http_query(struct http_req *req, const char *name);
const char *http_header(struct http_req *req, const char *name);
/* True if the client closed its side of fd (poll, no wait). */
bool http_fd_gone(int fd);

#endif
