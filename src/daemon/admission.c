#include "admission.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "auth.h"
#include "http.h"
#include "log.h"
#include "ratelimit.h"
#include "util.h"

/* Names remembered at most, per table. A key's entry is idle (and dropped
 * when room is needed) once its bucket is full again and nothing is in
 * flight, so only keys active in the last burst/rate seconds count; client
 * addresses are idle once their failures have been forgiven. */
#define KEYS_MAX_ENTRIES 4096
#define ADDRS_MAX_ENTRIES 4096

struct admission {
    struct rl_table *keys;     /* NULL: no per-key rate or concurrency limit */
    struct rl_table *failures; /* NULL: auth failures are not limited */
    bool admin_unlimited;
    double rate;
    unsigned burst;
};

int admission_new(const struct config *cfg, struct admission **out)
{
    struct admission *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->admin_unlimited = cfg->admin_unlimited;
    a->rate = cfg->rate_limit;
    a->burst = cfg->rate_burst;
    int r = 0;
    if (cfg->rate_limit > 0 || cfg->max_concurrent > 0) {
        struct rl_config kc = {.rate = cfg->rate_limit, .burst = cfg->rate_burst,
                               .max_inflight = cfg->max_concurrent, .max_entries = KEYS_MAX_ENTRIES};
        r = rl_table_new(&kc, &a->keys);
    }
    if (r == 0 && cfg->auth_fail_rate > 0) {
        struct rl_config fc = {.rate = cfg->auth_fail_rate, .burst = cfg->auth_fail_burst,
                               .max_entries = ADDRS_MAX_ENTRIES};
        r = rl_table_new(&fc, &a->failures);
    }
    if (r < 0) {
        admission_free(a);
        return r;
    }
    *out = a;
    return 0;
}

void admission_free(struct admission *a)
{
    if (!a)
        return;
    rl_table_free(a->keys);
    rl_table_free(a->failures);
    free(a);
}

/* ---- step 1: sizes */

struct size_count {
    size_t n, bytes;
};

static enum MHD_Result count_value(void *cls, enum MHD_ValueKind kind UNUSED, const char *key, const char *value)
{
    struct size_count *c = cls;
    c->n++;
    c->bytes += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF, or "&" and "=" */
    return MHD_YES;
}

bool admission_size_ok(struct http_req *req, const char *url)
{
    /* libmicrohttpd bounds the whole request head by its connection memory
     * limit and answers beyond that itself (HTML, not JSON). These bounds
     * are far below it, so every request a client can reasonably make is
     * answered here, in JSON. */
    struct size_count h = {0}, q = {0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_value, &h);
    if (h.n > ADM_MAX_HEADERS || h.bytes > ADM_MAX_HEADER_BYTES) {
        http_reply_errorf(req, 431, "headers_too_large", "request headers too large (at most %u headers, %u KiB)",
                          ADM_MAX_HEADERS, ADM_MAX_HEADER_BYTES / 1024);
        return false;
    }
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, count_value, &q);
    if (strlen(url) + q.bytes > ADM_MAX_URL_BYTES) {
        http_reply_errorf(req, 414, "uri_too_long", "request URL longer than %u KiB", ADM_MAX_URL_BYTES / 1024);
        return false;
    }
    if (q.n > ADM_MAX_QUERY_ARGS) {
        http_reply_errorf(req, 400, "invalid_request", "more than %u query parameters", ADM_MAX_QUERY_ARGS);
        return false;
    }
    return true;
}

/* ---- steps 2-6 */

/* Who failed to authenticate: an IPv4 address, an IPv6 /64 (one host
 * usually owns a whole /64, so single addresses would be free to take), or
 * the peer's uid on the unix socket. */
static void client_name(struct http_req *req, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa && sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
        snprintf(out, len, "ip4:%s", ip);
        return;
    }
    if (sa && sa->sa_family == AF_INET6) {
        struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            inet_ntop(AF_INET, &a.s6_addr[12], ip, sizeof(ip));
            snprintf(out, len, "ip4:%s", ip);
            return;
        }
        memset(&a.s6_addr[8], 0, 8);
        inet_ntop(AF_INET6, &a, ip, sizeof(ip));
        snprintf(out, len, "ip6:%s/64", ip);
        return;
    }
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (req->client_fd >= 0 && getsockopt(req->client_fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
        snprintf(out, len, "unix:uid=%u", (unsigned)cred.uid);
    else
        snprintf(out, len, "unix:?"); /* every such client shares one budget */
}

static void retry_after(struct http_req *req, unsigned s)
{
    char v[16];
    snprintf(v, sizeof(v), "%u", s);
    if (req->response)
        MHD_add_response_header(req->response, MHD_HTTP_HEADER_RETRY_AFTER, v);
}

/* Steps 2 and 3. */
static bool authenticate(struct http_req *req)
{
    struct admission *a = req->d->adm;
    const char *header = http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    char bearer[512];
    if (req->e2b) {
        /* E2B's SDKs send the API key as X-API-Key to the control plane and
         * the envdAccessToken of the create answer (the same key) as
         * X-Access-Token to the data plane, and its trafficAccessToken (the
         * same key) as E2B-Traffic-Access-Token to the code interpreter's
         * /contexts (docs/e2b.md) */
        const char *k = http_header(req, "X-API-Key");
        if (!k)
            k = http_header(req, "X-Access-Token");
        if (!k)
            k = http_header(req, "E2B-Traffic-Access-Token");
        header = NULL;
        if (k && (size_t)snprintf(bearer, sizeof(bearer), "Bearer %s", k) < sizeof(bearer))
            header = bearer;
    }
    char who[RL_NAME_MAX + 1] = "";
    unsigned wait_s = 1;
    uint64_t now = now_mono_ms();
    /* A request without a key guesses nothing: it gets its 401 and costs
     * no budget, so a client that forgot its key cannot lock out others. */
    if (header && a->failures) {
        client_name(req, who, sizeof(who));
        if (rl_exhausted(a->failures, who, now, &wait_s)) {
            http_reply_errorf(req, 429, "too_many_auth_failures",
                              "too many failed authentications from this client; retry in %u s", wait_s);
            retry_after(req, wait_s);
            return false;
        }
    }
    if (auth_check(req->d->store, header, &req->key) == 0)
        return true;
    if (header && a->failures) {
        (void)rl_take(a->failures, who, now, false, &wait_s);
        if (rl_exhausted(a->failures, who, now, &wait_s))
            log_info("client %s: too many failed authentications; its requests are refused for %u s", who, wait_s);
    }
    http_reply_errorf(req, 401, "unauthorized", "missing, malformed, unknown or revoked API key");
    return false;
}

bool admission_auth(struct http_req *req, bool admin_only)
{
    struct admission *a = req->d->adm;
    if (!authenticate(req))
        return false;
    if (a->keys && !(req->key.admin && a->admin_unlimited)) {
        unsigned wait_s = 1;
        switch (rl_take(a->keys, req->key.id, now_mono_ms(), true, &wait_s)) {
        case RL_OK:
            req->holds_slot = true;
            break;
        case RL_RATE:
            http_reply_errorf(req, 429, "rate_limited",
                              "more than %g requests per second (burst %u) with this key; retry in %u s", a->rate,
                              a->burst, wait_s);
            retry_after(req, wait_s);
            return false;
        case RL_INFLIGHT:
        case RL_FULL:
            http_reply_errorf(req, 429, "too_many_requests",
                              "too many requests with this key in progress at once; retry when one has finished");
            retry_after(req, wait_s);
            return false;
        }
    }
    if (admin_only && !req->key.admin) {
        http_reply_errorf(req, 403, "forbidden", "this endpoint needs an admin key");
        return false;
    }
    return true;
}

void admission_end(struct http_req *req)
{
    if (!req->holds_slot)
        return;
    req->holds_slot = false;
    rl_release(req->d->adm->keys, req->key.id);
}
