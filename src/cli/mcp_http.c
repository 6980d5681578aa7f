/* mcp_http.c - the Streamable HTTP transport of `airlock mcp`
 * (MCP 2025-03-26 and later), on libmicrohttpd.
 *
 *   POST   /mcp  one JSON-RPC message (or a 2025-03-26 batch); the answer is
 *                application/json (no SSE: every answer is a single response,
 *                which the specification lets the server choose), 202 with
 *                no body when the message needs none. An initialize starts a
 *                session and its answer carries its Mcp-Session-Id; every
 *                other message names its session in that header.
 *   DELETE /mcp  ends the session: its sandbox is destroyed.
 *   GET    /mcp  405: this server opens no server-to-client stream.
 *
 * Each session has its own airlockd client and sandbox (mcp_session.c).
 * Connections get a thread each, so one session's long run_python does not
 * hold up another's; two requests of one session take turns on its lock.
 * A session nobody has used for --sandbox-timeout (its client vanished
 * without a DELETE) is ended by the main loop, as its sandbox expires.
 *
 * DNS rebinding (the specification's warning): an Origin header, which
 * browsers send, must name a loopback host; with --token every request must
 * carry it as a bearer token. The default listen address is 127.0.0.1.
 */
#include "cli.h"
#include "mcp.h"

#include "util.h"

#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_SESSIONS 64
/* upload_file's content travels inside the message (base64: 4/3 of the file) */
#define MAX_BODY (96u << 20)
#define SESSION_ID_BYTES 16
/* connections at once: each may hold a body of up to MAX_BODY */
#define MAX_CONNECTIONS 32

struct http_session {
    char id[2 * SESSION_ID_BYTES + 1];
    struct mcp_session s;
    pthread_mutex_t lock;   /* one request of the session at a time */
    int refs;               /* the table's and each request's; under table_lock */
    bool ended;             /* under lock */
    uint64_t last_used_ms;  /* under table_lock */
    struct http_session *next;
};

struct server {
    const struct mcp_config *cfg;
    const char *token;
    pthread_mutex_t table_lock;
    struct http_session *sessions;
    int n_sessions;
};

/* One request's body, gathered over the access handler's calls. */
struct request {
    char *body;
    size_t len;
    bool too_big;
};

/* ---- the session table ------------------------------------------------- */

static struct http_session *session_get(struct server *srv, const char *id)
{
    pthread_mutex_lock(&srv->table_lock);
    struct http_session *hs = srv->sessions;
    while (hs && strcmp(hs->id, id) != 0)
        hs = hs->next;
    if (hs)
        hs->refs++;
    pthread_mutex_unlock(&srv->table_lock);
    return hs;
}

static void session_put(struct server *srv, struct http_session *hs)
{
    pthread_mutex_lock(&srv->table_lock);
    hs->last_used_ms = now_mono_ms();
    bool last = --hs->refs == 0;
    pthread_mutex_unlock(&srv->table_lock);
    if (!last)
        return;
    pthread_mutex_destroy(&hs->lock);
    free(hs);
}

/* Take hs out of the table (under table_lock); the table's reference passes
 * to the caller. */
static void unlink_locked(struct server *srv, struct http_session *hs)
{
    for (struct http_session **p = &srv->sessions; *p; p = &(*p)->next) {
        if (*p == hs) {
            *p = hs->next;
            srv->n_sessions--;
            return;
        }
    }
}

/* End an unlinked session: waits for its request in progress, destroys its
 * sandbox, drops the table's reference. */
static void session_finish(struct server *srv, struct http_session *hs)
{
    pthread_mutex_lock(&hs->lock);
    if (!hs->ended) {
        mcp_session_end(&hs->s);
        hs->ended = true;
    }
    pthread_mutex_unlock(&hs->lock);
    session_put(srv, hs);
}

/* End the session with this id: 0, or -ENOENT. */
static int session_delete(struct server *srv, const char *id)
{
    pthread_mutex_lock(&srv->table_lock);
    struct http_session *hs = srv->sessions;
    while (hs && strcmp(hs->id, id) != 0)
        hs = hs->next;
    if (hs)
        unlink_locked(srv, hs);
    pthread_mutex_unlock(&srv->table_lock);
    if (!hs)
        return -ENOENT;
    fprintf(stderr, "airlock mcp: session %s ended by its client\n", id);
    session_finish(srv, hs);
    return 0;
}

/* End the sessions idle for longer than idle_ms (all of them: 0). */
static void sweep(struct server *srv, uint64_t idle_ms)
{
    for (;;) {
        pthread_mutex_lock(&srv->table_lock);
        uint64_t now = now_mono_ms();
        struct http_session *hs = srv->sessions;
        /* a session with a request in progress is in use, however long it runs */
        while (hs && idle_ms && (hs->refs > 1 || now - hs->last_used_ms <= idle_ms))
            hs = hs->next;
        if (hs)
            unlink_locked(srv, hs);
        pthread_mutex_unlock(&srv->table_lock);
        if (!hs)
            return;
        if (idle_ms)
            fprintf(stderr, "airlock mcp: session %s idle for %llu s: ended\n", hs->id,
                    (unsigned long long)(idle_ms / 1000));
        session_finish(srv, hs);
    }
}

/* A new session in the table, with one reference for the caller; NULL when
 * the table is full or on failure (*why says which). */
static struct http_session *session_new(struct server *srv, const char **why)
{
    struct http_session *hs = calloc(1, sizeof(*hs));
    if (!hs || random_hex(hs->id, SESSION_ID_BYTES) < 0 || pthread_mutex_init(&hs->lock, NULL) != 0) {
        free(hs);
        *why = "cannot start a session";
        return NULL;
    }
    if (mcp_session_init(&hs->s, srv->cfg) < 0) {
        fprintf(stderr, "airlock mcp: %s\n", hs->s.client.err.message);
        client_cleanup(&hs->s.client);
        pthread_mutex_destroy(&hs->lock);
        free(hs);
        *why = "cannot start a session";
        return NULL;
    }
    pthread_mutex_lock(&srv->table_lock);
    bool full = srv->n_sessions >= MAX_SESSIONS;
    if (!full) {
        hs->refs = 2;
        hs->last_used_ms = now_mono_ms();
        hs->next = srv->sessions;
        srv->sessions = hs;
        srv->n_sessions++;
    }
    pthread_mutex_unlock(&srv->table_lock);
    if (full) {
        mcp_session_end(&hs->s);
        pthread_mutex_destroy(&hs->lock);
        free(hs);
        *why = "too many MCP sessions on this server: end one first (DELETE /mcp)";
        return NULL;
    }
    return hs;
}

/* ---- replies ------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, json_t *body, const char *session_id)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text)
        return MHD_NO;
    struct MHD_Response *r = text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE)
                                  : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_YES;
    if (text)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (ok == MHD_YES && session_id)
        ok = MHD_add_response_header(r, "Mcp-Session-Id", session_id);
    if (ok == MHD_YES && status == MHD_HTTP_METHOD_NOT_ALLOWED)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST, DELETE");
    if (ok == MHD_YES && status == MHD_HTTP_UNAUTHORIZED)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* An HTTP-level failure, its body a JSON-RPC error (as the SDKs' servers
 * answer them); -32000 is the range the specification leaves to servers. */
static enum MHD_Result fail(struct MHD_Connection *conn, unsigned status, int code, const char *message)
{
    json_auto_t *e = mcp_rpc_error(NULL, code, message);
    return reply(conn, status, e, NULL);
}

/* ---- checks every request passes ----------------------------------------- */

/* An Origin that is not a loopback host is a web page's script on some other
 * site reaching us through the user's browser. */
static bool origin_ok(const char *origin)
{
    if (!origin)
        return true;
    static const char *const hosts[] = {"http://localhost", "http://127.0.0.1", "http://[::1]",
                                        "https://localhost", "https://127.0.0.1", "https://[::1]"};
    for (size_t i = 0; i < ARRAY_SIZE(hosts); i++) {
        size_t n = strlen(hosts[i]);
        if (strncmp(origin, hosts[i], n) == 0 && (origin[n] == '\0' || origin[n] == ':'))
            return origin[n] == '\0' || strspn(origin + n + 1, "0123456789") == strlen(origin + n + 1);
    }
    return false;
}

static bool token_ok(const struct server *srv, struct MHD_Connection *conn)
{
    if (!srv->token)
        return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    size_t n = strlen(srv->token);
    return strlen(h + 7) == n && CRYPTO_memcmp(h + 7, srv->token, n) == 0;
}

/* ---- the methods ----------------------------------------------------------- */

static enum MHD_Result on_post(struct server *srv, struct MHD_Connection *conn, struct request *req)
{
    const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ctype || strncasecmp(ctype, "application/json", 16) != 0 || (ctype[16] && ctype[16] != ';' && ctype[16] != ' '))
        return fail(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, -32000, "Content-Type must be application/json");
    if (req->too_big)
        return fail(conn, MHD_HTTP_CONTENT_TOO_LARGE, -32000, "message too large");
    json_error_t jerr;
    /* flags as in mcp_handle_text (mcp_rpc.c) */
    json_auto_t *msg = json_loadb(req->body ? req->body : "", req->len,
                                  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!msg) {
        cleanup_free char *text = NULL;
        if (asprintf(&text, "Parse error: %s", jerr.text) < 0)
            text = NULL;
        return fail(conn, MHD_HTTP_BAD_REQUEST, RPC_PARSE_ERROR, text ? text : "Parse error");
    }
    const char *sid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Mcp-Session-Id");
    const char *version = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "MCP-Protocol-Version");
    if (version && !mcp_protocol_supported(version))
        return fail(conn, MHD_HTTP_BAD_REQUEST, -32000, "unsupported MCP-Protocol-Version");

    struct http_session *hs;
    bool init = mcp_is_initialize(msg);
    if (init) {
        /* an initialize starts a session: alone, and not inside one */
        const char *why = NULL;
        if (sid)
            return fail(conn, MHD_HTTP_BAD_REQUEST, RPC_INVALID_REQUEST, "initialize starts a new session: "
                                                                          "send it without Mcp-Session-Id");
        if (!(hs = session_new(srv, &why)))
            return fail(conn, MHD_HTTP_SERVICE_UNAVAILABLE, -32000, why);
        fprintf(stderr, "airlock mcp: session %s started\n", hs->id);
    } else {
        if (json_is_array(msg)) {
            size_t i;
            json_t *m;
            json_array_foreach(msg, i, m) if (mcp_is_initialize(m)) return fail(
                conn, MHD_HTTP_BAD_REQUEST, RPC_INVALID_REQUEST, "initialize must be sent alone");
        }
        if (!sid)
            return fail(conn, MHD_HTTP_BAD_REQUEST, -32000, "Mcp-Session-Id header is required");
        if (!(hs = session_get(srv, sid)))
            return fail(conn, MHD_HTTP_NOT_FOUND, -32001, "Session not found");
    }

    pthread_mutex_lock(&hs->lock);
    bool ended = hs->ended;
    json_auto_t *answer = ended ? NULL : mcp_handle(&hs->s, msg);
    pthread_mutex_unlock(&hs->lock);
    enum MHD_Result r;
    if (ended)
        r = fail(conn, MHD_HTTP_NOT_FOUND, -32001, "Session not found");
    else if (answer)
        r = reply(conn, MHD_HTTP_OK, answer, init ? hs->id : NULL);
    else
        r = reply(conn, MHD_HTTP_ACCEPTED, NULL, NULL);
    session_put(srv, hs);
    return r;
}

static enum MHD_Result on_delete(struct server *srv, struct MHD_Connection *conn)
{
    const char *sid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Mcp-Session-Id");
    if (!sid)
        return fail(conn, MHD_HTTP_BAD_REQUEST, -32000, "Mcp-Session-Id header is required");
    if (session_delete(srv, sid) < 0)
        return fail(conn, MHD_HTTP_NOT_FOUND, -32001, "Session not found");
    return reply(conn, MHD_HTTP_NO_CONTENT, NULL, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct server *srv = cls;
    struct request *req = *con_cls;
    if (!req) {
        /* refused before its body is read: a stranger's upload costs nothing */
        if (strcmp(url, "/mcp") != 0)
            return fail(conn, MHD_HTTP_NOT_FOUND, -32000, "not found: the MCP endpoint is /mcp");
        if (!origin_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin")))
            return fail(conn, MHD_HTTP_FORBIDDEN, -32000, "Origin not allowed");
        if (!token_ok(srv, conn))
            return fail(conn, MHD_HTTP_UNAUTHORIZED, -32000, "missing or wrong bearer token (--token)");
        if (!(req = calloc(1, sizeof(*req))))
            return MHD_NO;
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* gathered even when too big, so the answer comes after the whole body */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->too_big || req->len + n > MAX_BODY) {
            req->too_big = true;
            return MHD_YES;
        }
        char *p = realloc(req->body, req->len + n + 1);
        if (!p)
            return MHD_NO;
        memcpy(p + req->len, upload_data, n);
        req->body = p;
        req->len += n;
        return MHD_YES;
    }
    if (strcmp(method, "POST") == 0)
        return on_post(srv, conn, req);
    if (strcmp(method, "DELETE") == 0)
        return on_delete(srv, conn);
    return fail(conn, MHD_HTTP_METHOD_NOT_ALLOWED, -32000, "Method not allowed: this server answers POST and DELETE");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    struct request *req = *con_cls;
    if (req) {
        free(req->body);
        free(req);
    }
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("airlock mcp: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* ---- serving ---------------------------------------------------------------- */

/* "HOST:PORT" or "[V6]:PORT" as an address. */
static int parse_listen(const char *listen, struct addrinfo **out)
{
    cleanup_free char *copy = strdup(listen);
    if (!copy)
        return -ENOMEM;
    char *colon = strrchr(copy, ':');
    if (!colon || colon == copy || !colon[1])
        return -EINVAL;
    *colon = '\0';
    char *host = copy;
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']')
            return -EINVAL;
        host[n - 1] = '\0';
        host++;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    return getaddrinfo(host, colon + 1, &hints, out) == 0 ? 0 : -EINVAL;
}

int mcp_http_serve(const struct mcp_config *cfg, const char *listen, const char *token)
{
    /* a bad --url is said now, not at the first client */
    struct client probe;
    int bad_url = client_init(&probe, cfg->url, cfg->key);
    if (bad_url < 0)
        client_print_error(&probe);
    client_cleanup(&probe);
    if (bad_url < 0)
        return EXIT_ERROR;
    struct addrinfo *ai = NULL;
    if (parse_listen(listen, &ai) < 0)
        return cli_usage_error(&cmd_mcp, "--listen wants HOST:PORT (or [V6]:PORT), not '%s'", listen);
    struct server srv = {.cfg = cfg, .token = token};
    if (pthread_mutex_init(&srv.table_lock, NULL) != 0) {
        freeaddrinfo(ai);
        return EXIT_ERROR;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &srv, MHD_OPTION_EXTERNAL_LOGGER,
                                            mhd_log, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
                                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d) {
        fprintf(stderr, "airlock mcp: cannot listen on %s: %m\n", listen);
        pthread_mutex_destroy(&srv.table_lock);
        return EXIT_ERROR;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    cleanup_free char *host = strndup(listen, (size_t)(strrchr(listen, ':') - listen));
    /* the line the tests (and a supervisor) read the address from */
    fprintf(stderr, "airlock mcp: serving MCP (Streamable HTTP) on http://%s:%u/mcp%s\n", host ? host : "?",
            info ? info->port : 0, token ? " (bearer token required)" : "");

    /* until SIGINT/SIGTERM (g_interrupted, also aborting transfers in
     * flight); sessions whose client vanished end with their sandbox's lifetime */
    while (!g_interrupted) {
        struct timespec ts = {.tv_sec = 1};
        nanosleep(&ts, NULL);
        sweep(&srv, (uint64_t)cfg->lifetime_s * 1000);
    }
    MHD_stop_daemon(d);
    sweep(&srv, 0);
    pthread_mutex_destroy(&srv.table_lock);
    fprintf(stderr, "airlock mcp: stopped\n");
    return 0;
}
