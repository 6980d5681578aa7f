/* egress_proxy.c - the allow-list proxy's I/O (egress_proxy.h). */
#include "egress_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>

#include "egress_log.h"
#include "egress_tls.h"
#include "log.h"
#include "util.h"

#define HEAD_MAX 16384         /* a request head larger than this is refused (431) */
#define HEAD_TIMEOUT_S 30      /* to send the head */
#define CONNECT_TIMEOUT_MS 10000
#define RELAY_BUF 65536

struct conn {
    struct egress_proxy *px;
    int cfd, ufd;
    struct egress_log_entry e;
    uint64_t t0;
    /* what the connection goes to, for a runtime policy change; set under
     * px->lock when relaying starts */
    bool relaying, literal, revoked;
    bool socks; /* a SOCKS5 client: refusals are SOCKS replies, not HTTP */
    struct sockaddr_storage ua;
    struct conn *prev, *next;
};

struct egress_proxy {
    char id[SANDBOX_ID_LEN + 1];
    struct store *store;
    struct egress_log *log;
    int lfd, stop_efd;
    pthread_t acceptor;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    struct egress_policy *pol; /* guarded by lock */
    struct conn *conns;        /* guarded by lock */
    unsigned nconns;
    bool stopping;
};

/* ---- the log */

void egress_proxy_record(struct egress_proxy *px, const struct egress_log_entry *e)
{
    egress_log_add(px->log, e);
    json_t *detail = egress_log_entry_json(e);
    /* the audit row is the durable copy; a full state disk loses it but
     * must not stop the proxy (the in-memory log still has it) */
    int r = px->store ? store_audit(px->store, NULL, "egress", px->id, detail) : 0;
    if (r < 0)
        log_warn("sandbox %s: egress audit row not written: %s", px->id, strerror(-r));
    json_decref(detail);
    log_debug("sandbox %s: egress %s %s:%u %s (%s)", px->id, e->method, e->host, e->port, e->verdict, e->reason);
}

static void conn_finish(struct conn *c, const char *verdict, const char *reason)
{
    snprintf(c->e.verdict, sizeof(c->e.verdict), "%s", verdict);
    if (reason)
        snprintf(c->e.reason, sizeof(c->e.reason), "%.*s", (int)sizeof(c->e.reason) - 1, reason);
    c->e.duration_ms = now_mono_ms() - c->t0;
    egress_proxy_record(c->px, &c->e);
}

/* ---- answers to the sandbox */

static void send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

/* SOCKS5's reply codes for our statuses (RFC 1928 section 6) */
static void socks_reply(struct conn *c, int status)
{
    uint8_t rep = status == 403 ? 0x02 /* not allowed by ruleset */
                  : status == 502 ? 0x04 /* host unreachable */
                  : status == 504 ? 0x06 /* TTL expired: timed out */
                  : status == 501 ? 0x07 /* command not supported */
                  : 0x01;                /* general failure */
    const uint8_t r[10] = {5, rep, 0, 1, 0, 0, 0, 0, 0, 0};
    send_all(c->cfd, r, sizeof(r));
}

static void reply(struct conn *c, int status, const char *phrase, const char *body)
{
    if (c->socks) {
        socks_reply(c, status);
        return;
    }
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
                     "X-Airlock-Egress: %s\r\nConnection: close\r\n\r\n",
                     status, phrase, strlen(body), status == 403 ? "denied" : "error");
    send_all(c->cfd, head, (size_t)n);
    send_all(c->cfd, body, strlen(body));
}

/* 403 naming what was refused, why, and the rule set: pip and urllib print
 * the body (or its first line), so the user sees which list to change. */
static void deny(struct conn *c, const char *why)
{
    char rules[2048];
    pthread_mutex_lock(&c->px->lock);
    egress_policy_describe(c->px->pol, rules, sizeof(rules));
    pthread_mutex_unlock(&c->px->lock);
    char body[3072];
    bool v6 = strchr(c->e.host, ':') != NULL;
    snprintf(body, sizeof(body), "airlock egress proxy: %s %s%s%s:%u refused: %s. This sandbox's egress allow-list: %s\n",
             c->e.method, v6 ? "[" : "", c->e.host, v6 ? "]" : "", c->e.port, why, rules);
    reply(c, 403, "Forbidden", body);
    conn_finish(c, "denied", why);
}

static void fail(struct conn *c, int status, const char *phrase, const char *why)
{
    char body[1024];
    snprintf(body, sizeof(body), "airlock egress proxy: %s %s:%u: %s\n", c->e.method, c->e.host, c->e.port, why);
    reply(c, status, phrase, body);
    conn_finish(c, status == 502 || status == 504 ? "failed" : "denied", why);
}

/* ---- the request head, through libhttp-parser */

struct head {
    char buf[HEAD_MAX];
    size_t len;
    char url[4096];
    size_t url_len;
    bool url_too_long, done, too_big, msg_done;
    /* plain HTTP: the headers sent on, rebuilt from the parser's fields
     * (hop-by-hop ones and Host dropped), and the body bytes read with the
     * head */
    char out[HEAD_MAX];
    size_t out_len;
    char field[256], value[HEAD_MAX];
    size_t field_len, value_len;
    bool in_value;
    char body[HEAD_MAX];
    size_t body_len;
};

static bool append(char *dst, size_t cap, size_t *len, const char *src, size_t n)
{
    if (*len + n >= cap)
        return false;
    memcpy(dst + *len, src, n);
    *len += n;
    dst[*len] = '\0';
    return true;
}

/* Not sent on: the proxy's own (hop-by-hop, RFC 9110 7.6.1), and Host,
 * which the proxy writes itself from the URL it checked, so a request for
 * an allowed name cannot ask the same server for another virtual host. */
static bool dropped_header(const char *name)
{
    static const char *const drop[] = {"host", "connection", "proxy-connection", "keep-alive", "proxy-authorization",
                                       "te", "upgrade", "transfer-encoding", "trailer"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (strcasecmp(name, drop[i]) == 0)
            return true;
    return false;
}

static void flush_header(struct head *h)
{
    if (!h->in_value)
        return;
    h->in_value = false;
    if (!dropped_header(h->field) &&
        (!append(h->out, sizeof(h->out), &h->out_len, h->field, h->field_len) ||
         !append(h->out, sizeof(h->out), &h->out_len, ": ", 2) ||
         !append(h->out, sizeof(h->out), &h->out_len, h->value, h->value_len) ||
         !append(h->out, sizeof(h->out), &h->out_len, "\r\n", 2)))
        h->too_big = true;
    h->field_len = h->value_len = 0;
    h->field[0] = h->value[0] = '\0';
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct head *h = hp->data;
    flush_header(h);
    if (!append(h->field, sizeof(h->field), &h->field_len, at, len))
        h->too_big = true;
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    struct head *h = hp->data;
    h->in_value = true;
    if (!append(h->value, sizeof(h->value), &h->value_len, at, len))
        h->too_big = true;
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    struct head *h = hp->data;
    if (!append(h->body, sizeof(h->body), &h->body_len, at, len))
        h->too_big = true;
    return 0;
}

/* The end of the first request: anything after it (a pipelined second
 * request) is never sent on. */
static int on_message_complete(http_parser *hp)
{
    struct head *h = hp->data;
    h->msg_done = true;
    http_parser_pause(hp, 1);
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    struct head *h = hp->data;
    if (h->url_len + len >= sizeof(h->url)) {
        h->url_too_long = true;
        return 1;
    }
    memcpy(h->url + h->url_len, at, len);
    h->url_len += len;
    h->url[h->url_len] = '\0';
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    struct head *h = hp->data;
    flush_header(h);
    h->done = true;
    /* CONNECT: the parser stops by itself after the head (an "upgrade"),
     * returning exactly the head's length, and what follows is the tunnel.
     * Others: pause, the body (if any) is relayed as it is; a pause inside
     * this callback leaves the head's last byte unconsumed, which is why
     * CONNECT must not pause (the tunnel would start with a stray '\n'). */
    if (hp->method != HTTP_CONNECT)
        http_parser_pause(hp, 1);
    return 0;
}

/* Read until the head is complete. 0, with *consumed the bytes of buf the
 * head took (for CONNECT: what follows is already tunnel data); or the
 * HTTP status to answer. */
static int read_head(struct conn *c, struct head *h, http_parser *hp, size_t *consumed)
{
    static const http_parser_settings settings = {.on_url = on_url,
                                                  .on_header_field = on_header_field,
                                                  .on_header_value = on_header_value,
                                                  .on_headers_complete = on_headers_complete};
    http_parser_init(hp, HTTP_REQUEST);
    hp->data = h;
    size_t parsed = 0;
    while (!h->done) {
        if (h->len == sizeof(h->buf))
            return 431;
        ssize_t n = recv(c->cfd, h->buf + h->len, sizeof(h->buf) - h->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1; /* gone, or too slow: nothing to answer */
        h->len += (size_t)n;
        size_t done = http_parser_execute(hp, &settings, h->buf + parsed, h->len - parsed);
        parsed += done;
        enum http_errno he = HTTP_PARSER_ERRNO(hp);
        if (h->url_too_long)
            return 414;
        if (h->too_big)
            return 431;
        if (he == HPE_PAUSED)
            break;
        if (he != HPE_OK)
            return 400;
        if (hp->upgrade) /* CONNECT: the parser stops at the end of the head */
            break;
    }
    if (!h->done)
        return 400;
    *consumed = parsed;
    return 0;
}

/* Plain HTTP, after the head: the body bytes that came with it (h->body),
 * and how many more the client may still send (*rest). 0, or the status. */
static int read_body_start(struct head *h, http_parser *hp, size_t parsed, uint64_t *rest)
{
    static const http_parser_settings settings = {.on_body = on_body, .on_message_complete = on_message_complete};
    if (hp->flags & F_CHUNKED)
        return 501; /* a chunked body's end needs parsing all the way: use CONNECT */
    uint64_t clen = hp->content_length == ULLONG_MAX ? 0 : hp->content_length;
    http_parser_pause(hp, 0);
    if (parsed < h->len) {
        (void)http_parser_execute(hp, &settings, h->buf + parsed, h->len - parsed);
        enum http_errno he = HTTP_PARSER_ERRNO(hp);
        if (he != HPE_OK && he != HPE_PAUSED)
            return 400;
    }
    if (h->too_big)
        return 431;
    *rest = h->body_len >= clen ? 0 : clen - h->body_len;
    return 0;
}

static void url_field(const char *url, const struct http_parser_url *u, int f, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!(u->field_set & (1 << f)))
        return;
    size_t n = u->field_data[f].len < outlen - 1 ? u->field_data[f].len : outlen - 1;
    memcpy(out, url + u->field_data[f].off, n);
    out[n] = '\0';
}

/* ---- out */

static void format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)sa;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
        port = ntohs(s->sin_port);
        snprintf(out, len, "%s:%u", ip, port);
    } else {
        const struct sockaddr_in6 *s = (const void *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
        port = ntohs(s->sin6_port);
        snprintf(out, len, "[%s]:%u", ip, port);
    }
}

/* A connected socket to sa, or -errno. Bounded by CONNECT_TIMEOUT_MS. */
static int connect_to(const struct sockaddr *sa, socklen_t salen)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, sa, salen) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r;
    do
        r = poll(&p, 1, CONNECT_TIMEOUT_MS);
    while (r < 0 && errno == EINTR);
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (r == 0)
        soerr = ETIMEDOUT;
    else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr) {
        close(fd);
        return -soerr;
    }
    return fd;
}

static socklen_t sa_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* Under the current policy (held lock): may c go on? */
static bool still_allowed_locked(struct conn *c)
{
    bool lit;
    struct sockaddr_storage sa;
    if (egress_policy_check_host(c->px->pol, c->e.host, (uint16_t)c->e.port, &lit, &sa) != EGRESS_ALLOW)
        return false;
    return c->literal || egress_policy_check_addr(c->px->pol, (struct sockaddr *)&c->ua, (uint16_t)c->e.port) ==
                             EGRESS_ALLOW;
}

/* Under the lock: a policy change or a stop may shut it down at once. */
static void set_upstream(struct conn *c, int fd, const void *sa, socklen_t len)
{
    pthread_mutex_lock(&c->px->lock);
    c->ufd = fd;
    memcpy(&c->ua, sa, len);
    pthread_mutex_unlock(&c->px->lock);
}

/* Resolve (host side) and connect. 0 and c->ufd, or a reply was sent. */
/* Whether sa is one of the host's own addresses, as the kernel sees it: a
 * bind to it succeeds (or is in use) only then. No interface list to keep
 * current, and it covers local routes for whole ranges. */
static bool host_local(const struct sockaddr *sa)
{
    int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true; /* cannot tell: the caller refuses */
    struct sockaddr_storage b;
    memcpy(&b, sa, sa_len(sa));
    if (b.ss_family == AF_INET)
        ((struct sockaddr_in *)&b)->sin_port = 0;
    else
        ((struct sockaddr_in6 *)&b)->sin6_port = 0;
    int r = bind(fd, (struct sockaddr *)&b, sa_len(sa));
    int e = errno;
    close(fd);
    return r == 0 || e != EADDRNOTAVAIL;
}

/* The policy's verdict on connecting to sa, the host's own addresses
 * included (an allowed name, or open egress's any public address, must not
 * lead to a service of the host's). Under no lock: host_local is I/O. */
static enum egress_verdict check_local(struct conn *c, const struct sockaddr *sa)
{
    if (!host_local(sa))
        return EGRESS_ALLOW;
    pthread_mutex_lock(&c->px->lock);
    enum egress_verdict v = egress_policy_check_local(c->px->pol, sa, (uint16_t)c->e.port);
    pthread_mutex_unlock(&c->px->lock);
    return v;
}

static int open_upstream(struct conn *c)
{
    struct egress_proxy *px = c->px;
    bool literal;
    struct sockaddr_storage sa;
    pthread_mutex_lock(&px->lock);
    enum egress_verdict v = egress_policy_check_host(px->pol, c->e.host, (uint16_t)c->e.port, &literal, &sa);
    pthread_mutex_unlock(&px->lock);
    if (v != EGRESS_ALLOW) { /* decided before any name is looked up */
        deny(c, egress_verdict_name(v));
        return -1;
    }
    c->literal = literal;
    if (literal) {
        format_addr((struct sockaddr *)&sa, c->e.address, sizeof(c->e.address));
        if ((v = check_local(c, (struct sockaddr *)&sa)) != EGRESS_ALLOW) {
            c->e.address[0] = '\0';
            deny(c, egress_verdict_name(v));
            return -1;
        }
        int fd = connect_to((struct sockaddr *)&sa, sa_len((struct sockaddr *)&sa));
        if (fd < 0) {
            fail(c, 502, "Bad Gateway", strerror(-fd));
            return -1;
        }
        set_upstream(c, fd, &sa, sizeof(sa));
        return 0;
    }
    char port[8];
    snprintf(port, sizeof(port), "%u", c->e.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(c->e.host, port, &hints, &res);
    if (g != 0) {
        char why[256];
        snprintf(why, sizeof(why), "cannot resolve the name: %s", gai_strerror(g));
        fail(c, 502, "Bad Gateway", why);
        return -1;
    }
    bool refused = false, local = false;
    int last = -EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        pthread_mutex_lock(&px->lock);
        v = egress_policy_check_addr(px->pol, ai->ai_addr, (uint16_t)c->e.port);
        pthread_mutex_unlock(&px->lock);
        format_addr(ai->ai_addr, c->e.address, sizeof(c->e.address));
        if (v == EGRESS_ALLOW && (v = check_local(c, ai->ai_addr)) != EGRESS_ALLOW)
            local = true;
        if (v != EGRESS_ALLOW) {
            refused = true;
            continue;
        }
        int fd = connect_to(ai->ai_addr, ai->ai_addrlen);
        if (fd >= 0) {
            set_upstream(c, fd, ai->ai_addr, ai->ai_addrlen);
            freeaddrinfo(res);
            return 0;
        }
        last = fd;
    }
    freeaddrinfo(res);
    if (refused && last == -EHOSTUNREACH)
        deny(c, egress_verdict_name(local ? EGRESS_DENY_LOCAL : EGRESS_DENY_INTERNAL));
    else
        fail(c, 502, "Bad Gateway", strerror(-last));
    return -1;
}

/* The connection joins the relaying set, checked once more under the lock
 * so a policy change since the first check cannot be missed. */
static bool start_relaying(struct conn *c)
{
    pthread_mutex_lock(&c->px->lock);
    bool ok = still_allowed_locked(c) && !c->px->stopping;
    c->relaying = ok;
    pthread_mutex_unlock(&c->px->lock);
    return ok;
}

/* ---- the relay: both directions, non-blocking, each with one buffer */

struct dir {
    int from, to;
    char *buf;
    size_t len, off;
    bool eof;
    uint64_t *count;
    uint64_t limit; /* bytes `from` may still send on (plain HTTP: the rest of the body) */
};

static int pump_in(struct dir *d)
{
    ssize_t n = recv(d->from, d->buf, d->limit < RELAY_BUF ? (size_t)d->limit : RELAY_BUF, 0);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0) {
        d->eof = true;
        (void)shutdown(d->to, SHUT_WR);
        return 0;
    }
    d->len = (size_t)n;
    d->off = 0;
    *d->count += (uint64_t)n;
    d->limit -= (uint64_t)n;
    if (d->limit == 0)
        d->eof = true; /* no more: stop reading, but do not half-close */
    return 0;
}

static int pump_out(struct dir *d)
{
    ssize_t n = send(d->to, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    d->off += (size_t)n;
    if (d->off == d->len)
        d->len = d->off = 0;
    return 0;
}

static void relay(struct conn *c, const char *pending, size_t npending, uint64_t up_limit)
{
    char *b1 = malloc(RELAY_BUF), *b2 = malloc(RELAY_BUF);
    if (!b1 || !b2) {
        free(b1);
        free(b2);
        return;
    }
    struct dir up = {.from = c->cfd, .to = c->ufd, .buf = b1, .count = &c->e.bytes_out, .limit = up_limit,
                     .eof = up_limit == 0};
    struct dir down = {.from = c->ufd, .to = c->cfd, .buf = b2, .count = &c->e.bytes_in, .limit = UINT64_MAX};
    if (npending) {
        memcpy(b1, pending, npending); /* npending <= HEAD_MAX < RELAY_BUF */
        up.len = npending;
        c->e.bytes_out += npending;
    }
    (void)fcntl(c->cfd, F_SETFL, O_NONBLOCK);
    (void)fcntl(c->ufd, F_SETFL, O_NONBLOCK);
    struct dir *dirs[2] = {&up, &down};
    while (!(up.eof && up.len == 0 && down.eof && down.len == 0)) {
        struct pollfd p[2] = {{.fd = c->cfd}, {.fd = c->ufd}};
        for (int i = 0; i < 2; i++) {
            struct dir *d = dirs[i];
            struct pollfd *pin = d->from == c->cfd ? &p[0] : &p[1], *pout = d->to == c->cfd ? &p[0] : &p[1];
            if (d->len)
                pout->events |= POLLOUT;
            else if (!d->eof)
                pin->events |= POLLIN;
        }
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if ((p[0].revents | p[1].revents) & POLLNVAL)
            break;
        bool err = false;
        for (int i = 0; i < 2 && !err; i++) {
            struct dir *d = dirs[i];
            short rin = (d->from == c->cfd ? p[0] : p[1]).revents, rout = (d->to == c->cfd ? p[0] : p[1]).revents;
            if (d->len && (rout & (POLLOUT | POLLERR | POLLHUP)))
                err = pump_out(d) < 0;
            else if (!d->len && !d->eof && (rin & (POLLIN | POLLERR | POLLHUP)))
                err = pump_in(d) < 0;
        }
        if (err)
            break;
    }
    free(b1);
    free(b2);
}

/* The first bytes of a CONNECT tunnel: a TLS ClientHello's server name must
 * be the CONNECT host (no domain fronting through an allowed name). Read
 * until the hello is whole (buf, len: the bytes to forward). false: a
 * denial was logged. */
static bool check_hello(struct conn *c, char *buf, size_t cap, size_t *len)
{
    for (;;) {
        char sni[256];
        int r = egress_tls_sni((const uint8_t *)buf, *len, sni, sizeof(sni));
        if (r == -ENOTSUP || r == 0)
            return true; /* not TLS, or a hello naming no server */
        if (r == 1) {
            size_t n = strlen(sni);
            if (n && sni[n - 1] == '.')
                sni[--n] = '\0';
            if (strcasecmp(sni, c->e.host) == 0)
                return true;
            char why[400];
            snprintf(why, sizeof(why), "the TLS server name '%s' is not the CONNECT host", sni);
            conn_finish(c, "denied", why);
            return false;
        }
        if (r == -EPROTO || *len == cap) {
            conn_finish(c, "denied", "the tunnel's first bytes are a malformed TLS ClientHello");
            return false;
        }
        ssize_t n = recv(c->cfd, buf + *len, cap - *len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            conn_finish(c, "denied", "the client left before its TLS ClientHello was whole");
            return false;
        }
        *len += (size_t)n;
    }
}

/* A CONNECT (or SOCKS5) tunnel, after its success reply: pending is what
 * the client sent after its request. 0 when relayed, -1 when it ended
 * logged (a denied hello, a client that left). */
static int tunnel(struct conn *c, const char *pending, size_t npending)
{
    char *hello = malloc(EGRESS_TLS_MAX_HELLO);
    if (!hello) {
        conn_finish(c, "failed", "out of memory");
        return -1;
    }
    size_t n = npending < EGRESS_TLS_MAX_HELLO ? npending : EGRESS_TLS_MAX_HELLO;
    if (n)
        memcpy(hello, pending, n);
    if (n == 0) {
        /* Who speaks first: a TLS client always does, and its hello is
         * checked; a server that does (SMTP, MySQL, an SSH banner) is
         * no TLS handshake, so the tunnel is relayed as it is. */
        struct pollfd pf[2] = {{.fd = c->cfd, .events = POLLIN}, {.fd = c->ufd, .events = POLLIN}};
        int pr;
        do
            pr = poll(pf, 2, HEAD_TIMEOUT_S * 1000);
        while (pr < 0 && errno == EINTR);
        if (pr > 0 && !(pf[0].revents & POLLIN) && (pf[1].revents & POLLIN)) {
            free(hello);
            relay(c, NULL, 0, UINT64_MAX);
            return 0;
        }
        ssize_t r = -1;
        if (pr > 0)
            do
                r = recv(c->cfd, hello, EGRESS_TLS_MAX_HELLO, 0);
            while (r < 0 && errno == EINTR);
        if (r <= 0) {
            free(hello);
            conn_finish(c, "allowed", "the tunnel closed before either side sent");
            return -1;
        }
        n = (size_t)r;
    }
    if (!check_hello(c, hello, EGRESS_TLS_MAX_HELLO, &n)) {
        free(hello);
        return -1;
    }
    /* the relay's first write is the hello */
    send_all(c->ufd, hello, n);
    c->e.bytes_out += n;
    free(hello);
    relay(c, NULL, 0, UINT64_MAX);
    return 0;
}

static void finish_relayed(struct conn *c)
{
    pthread_mutex_lock(&c->px->lock);
    bool revoked = c->revoked;
    pthread_mutex_unlock(&c->px->lock);
    conn_finish(c, revoked ? "revoked" : "allowed",
                revoked ? "closed: the egress policy changed and no longer allows it" : "");
}

/* ---- SOCKS5 (RFC 1928), CONNECT only, no authentication: for clients
 * that honour ALL_PROXY=socks5h://. With socks5h the name comes to us
 * unresolved, so it is matched before any lookup, as for HTTP. */

/* n bytes exactly (the socket's receive timeout bounds a slow client). */
static int recv_exact(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void serve_socks(struct conn *c)
{
    c->socks = true;
    snprintf(c->e.method, sizeof(c->e.method), "SOCKS5");
    uint8_t b[256 + 2];
    /* greeting: version, methods; we take "no authentication" (0) only */
    if (recv_exact(c->cfd, b, 2) < 0 || b[0] != 5 || b[1] == 0 || recv_exact(c->cfd, b + 2, b[1]) < 0) {
        conn_finish(c, "denied", "not a SOCKS5 greeting");
        return;
    }
    if (!memchr(b + 2, 0, b[1])) {
        static const uint8_t none[2] = {5, 0xff};
        send_all(c->cfd, none, sizeof(none));
        conn_finish(c, "denied", "the SOCKS5 client offers no method without authentication");
        return;
    }
    static const uint8_t noauth[2] = {5, 0};
    send_all(c->cfd, noauth, sizeof(noauth));
    /* request: version, command, reserved, address type, address, port */
    if (recv_exact(c->cfd, b, 4) < 0 || b[0] != 5) {
        conn_finish(c, "denied", "not a SOCKS5 request");
        return;
    }
    uint8_t cmd = b[1], atyp = b[3];
    if (atyp == 1 || atyp == 4) {
        size_t n = atyp == 1 ? 4 : 16;
        if (recv_exact(c->cfd, b, n) < 0 ||
            !inet_ntop(atyp == 1 ? AF_INET : AF_INET6, b, c->e.host, sizeof(c->e.host))) {
            conn_finish(c, "denied", "a truncated SOCKS5 request");
            return;
        }
    } else if (atyp == 3) {
        if (recv_exact(c->cfd, b, 1) < 0 || b[0] == 0 || recv_exact(c->cfd, c->e.host, b[0]) < 0) {
            conn_finish(c, "denied", "a truncated SOCKS5 request");
            return;
        }
        c->e.host[b[0]] = '\0';
        /* a NUL inside the name would hide what follows it from the checks */
        if (strlen(c->e.host) != b[0]) {
            fail(c, 400, "Bad Request", "a SOCKS5 host name with a NUL byte");
            return;
        }
    } else {
        const uint8_t r[10] = {5, 0x08 /* address type not supported */, 0, 1, 0, 0, 0, 0, 0, 0};
        send_all(c->cfd, r, sizeof(r));
        conn_finish(c, "denied", "an unknown SOCKS5 address type");
        return;
    }
    uint8_t pb[2];
    if (recv_exact(c->cfd, pb, 2) < 0) {
        conn_finish(c, "denied", "a truncated SOCKS5 request");
        return;
    }
    c->e.port = (unsigned)pb[0] << 8 | pb[1];
    if (cmd != 1) {
        fail(c, 501, "Not Implemented", "only SOCKS5 CONNECT is served (no BIND, no UDP ASSOCIATE)");
        return;
    }
    if (open_upstream(c) < 0)
        return;
    if (!start_relaying(c)) {
        deny(c, "the egress policy changed before the connection was made");
        return;
    }
    /* success; the bound address is not the sandbox's business */
    static const uint8_t ok[10] = {5, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    send_all(c->cfd, ok, sizeof(ok));
    if (tunnel(c, NULL, 0) == 0)
        finish_relayed(c);
}

static void serve(struct conn *c)
{
    /* a SOCKS5 greeting starts with its version, 5: never an HTTP method */
    uint8_t first;
    ssize_t pk;
    do
        pk = recv(c->cfd, &first, 1, MSG_PEEK);
    while (pk < 0 && errno == EINTR);
    if (pk == 1 && first == 5) {
        serve_socks(c);
        return;
    }
    struct head *h = calloc(1, sizeof(*h));
    http_parser hp;
    size_t consumed = 0;
    if (!h)
        return;
    snprintf(c->e.method, sizeof(c->e.method), "?");
    int st = read_head(c, h, &hp, &consumed);
    if (st != 0) {
        if (st > 0)
            fail(c, st, st == 431 ? "Request Header Fields Too Large" : st == 414 ? "URI Too Long" : "Bad Request",
                 "the request could not be read");
        else
            conn_finish(c, "denied", "the client sent no complete request");
        goto out;
    }
    bool is_connect = hp.method == HTTP_CONNECT;
    snprintf(c->e.method, sizeof(c->e.method), "%s", http_method_str((enum http_method)hp.method));
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(h->url, h->url_len, is_connect, &u) != 0 || !(u.field_set & (1 << UF_HOST))) {
        fail(c, 400, "Bad Request",
             is_connect ? "CONNECT needs host:port" : "a proxy request needs an absolute http:// URL");
        goto out;
    }
    char schema[16], portstr[8];
    url_field(h->url, &u, UF_HOST, c->e.host, sizeof(c->e.host));
    url_field(h->url, &u, UF_SCHEMA, schema, sizeof(schema));
    url_field(h->url, &u, UF_PORT, portstr, sizeof(portstr));
    c->e.port = (u.field_set & (1 << UF_PORT)) ? u.port : 80;
    if (!is_connect && strcasecmp(schema, "http") != 0) {
        fail(c, 400, "Bad Request", "only http:// URLs are proxied as plain requests; use CONNECT for others");
        goto out;
    }
    uint64_t body_rest = 0;
    if (!is_connect && (st = read_body_start(h, &hp, consumed, &body_rest)) != 0) {
        fail(c, st, st == 501 ? "Not Implemented" : st == 431 ? "Request Header Fields Too Large" : "Bad Request",
             st == 501 ? "a chunked request body cannot be proxied as a plain request; use CONNECT"
                       : "the request could not be read");
        goto out;
    }
    if (open_upstream(c) < 0)
        goto out;
    if (!start_relaying(c)) {
        deny(c, "the egress policy changed before the connection was made");
        goto out;
    }
    if (is_connect) {
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        send_all(c->cfd, ok, sizeof(ok) - 1);
        if (tunnel(c, h->buf + consumed, h->len - consumed) < 0)
            goto out;
    } else {
        /* one request per connection, rebuilt: the request line in origin
         * form, Host from the checked URL, the client's other end-to-end
         * headers, Connection: close, then the body */
        char path[4096], query[4096], line[9000];
        url_field(h->url, &u, UF_PATH, path, sizeof(path));
        url_field(h->url, &u, UF_QUERY, query, sizeof(query));
        bool v6 = strchr(c->e.host, ':') != NULL;
        int n = snprintf(line, sizeof(line), "%s %s%s%s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n", c->e.method,
                         path[0] ? path : "/", query[0] ? "?" : "", query, v6 ? "[" : "", c->e.host, v6 ? "]" : "",
                         portstr[0] ? ":" : "", portstr);
        send_all(c->ufd, line, (size_t)n);
        send_all(c->ufd, h->out, h->out_len);
        send_all(c->ufd, "Connection: close\r\n\r\n", 21);
        send_all(c->ufd, h->body, h->body_len);
        c->e.bytes_out += (uint64_t)n + h->out_len + 21 + h->body_len;
        relay(c, NULL, 0, body_rest);
    }
    finish_relayed(c);
out:
    free(h);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct egress_proxy *px = c->px;
    serve(c);
    pthread_mutex_lock(&px->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        px->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    px->nconns--;
    pthread_cond_broadcast(&px->idle);
    pthread_mutex_unlock(&px->lock);
    close(c->cfd);
    if (c->ufd >= 0)
        close(c->ufd);
    free(c);
    return NULL;
}

static void accept_one(struct egress_proxy *px)
{
    int fd = accept4(px->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_warn("sandbox %s: egress proxy: accept: %s", px->id, strerror(errno));
        return;
    }
    struct timeval tv = {.tv_sec = HEAD_TIMEOUT_S};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->px = px;
    c->cfd = fd;
    c->ufd = -1;
    c->t0 = now_mono_ms();
    c->e.time_ms = now_wall_ms();
    pthread_mutex_lock(&px->lock);
    if (px->nconns >= EGRESS_PROXY_MAX_CONNS || px->stopping) {
        pthread_mutex_unlock(&px->lock);
        snprintf(c->e.method, sizeof(c->e.method), "?");
        conn_finish(c, "denied", "too many open egress connections");
        close(fd);
        free(c);
        return;
    }
    c->next = px->conns;
    if (px->conns)
        px->conns->prev = c;
    px->conns = c;
    px->nconns++;
    pthread_mutex_unlock(&px->lock);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 512 * 1024); /* getaddrinfo's NSS modules take some */
    pthread_t t;
    int r = pthread_create(&t, &attr, conn_main, c);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        log_warn("sandbox %s: egress proxy: no thread for a connection: %s", px->id, strerror(r));
        pthread_mutex_lock(&px->lock);
        if (c->prev)
            c->prev->next = c->next;
        else
            px->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        px->nconns--;
        pthread_mutex_unlock(&px->lock);
        close(fd);
        free(c);
    }
}

static void *acceptor_main(void *arg)
{
    struct egress_proxy *px = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = px->lfd, .events = POLLIN}, {.fd = px->stop_efd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("sandbox %s: egress proxy: poll: %s", px->id, strerror(errno));
            return NULL;
        }
        if (p[1].revents)
            return NULL;
        if (p[0].revents & POLLIN)
            accept_one(px);
        else if (p[0].revents)
            return NULL;
    }
}

int egress_proxy_start(int listen_fd, const char *sandbox_id, struct store *store, struct egress_policy *pol,
                       struct egress_proxy **out)
{
    struct egress_proxy *px = calloc(1, sizeof(*px));
    int r = -ENOMEM;
    if (!px)
        goto fail;
    snprintf(px->id, sizeof(px->id), "%s", sandbox_id);
    px->store = store;
    px->lfd = listen_fd;
    px->pol = pol;
    px->stop_efd = eventfd(0, EFD_CLOEXEC);
    if (px->stop_efd < 0) {
        r = -errno;
        goto fail;
    }
    if ((r = egress_log_new(&px->log)) < 0)
        goto fail;
    (void)fcntl(listen_fd, F_SETFL, O_NONBLOCK);
    pthread_mutex_init(&px->lock, NULL);
    pthread_cond_init(&px->idle, NULL);
    if ((r = -pthread_create(&px->acceptor, NULL, acceptor_main, px)) < 0) {
        pthread_cond_destroy(&px->idle);
        pthread_mutex_destroy(&px->lock);
        goto fail;
    }
    *out = px;
    return 0;
fail:
    if (px) {
        egress_log_free(px->log);
        if (px->stop_efd > 0)
            close(px->stop_efd);
        free(px);
    }
    close(listen_fd);
    egress_policy_free(pol);
    return r;
}

unsigned egress_proxy_set_policy(struct egress_proxy *px, struct egress_policy *pol)
{
    unsigned closed = 0;
    pthread_mutex_lock(&px->lock);
    struct egress_policy *old = px->pol;
    px->pol = pol;
    for (struct conn *c = px->conns; c; c = c->next) {
        if (!c->relaying || c->revoked || still_allowed_locked(c))
            continue;
        c->revoked = true;
        /* wakes the relay's poll; the thread logs it and closes */
        (void)shutdown(c->cfd, SHUT_RDWR);
        if (c->ufd >= 0)
            (void)shutdown(c->ufd, SHUT_RDWR);
        closed++;
    }
    pthread_mutex_unlock(&px->lock);
    egress_policy_free(old);
    return closed;
}

json_t *egress_proxy_policy_json(struct egress_proxy *px)
{
    pthread_mutex_lock(&px->lock);
    json_t *j = egress_policy_json(px->pol);
    pthread_mutex_unlock(&px->lock);
    return j;
}

json_t *egress_proxy_log_json(struct egress_proxy *px) { return egress_log_json(px->log); }

void egress_proxy_shutdown(struct egress_proxy *px)
{
    if (!px)
        return;
    pthread_mutex_lock(&px->lock);
    bool first = !px->stopping;
    px->stopping = true;
    pthread_mutex_unlock(&px->lock);
    if (!first)
        return;
    uint64_t one = 1;
    if (write(px->stop_efd, &one, sizeof(one)) != sizeof(one))
        log_error("sandbox %s: egress proxy: cannot wake the acceptor: %s", px->id, strerror(errno));
    pthread_join(px->acceptor, NULL);
    pthread_mutex_lock(&px->lock);
    for (struct conn *c = px->conns; c; c = c->next) {
        (void)shutdown(c->cfd, SHUT_RDWR);
        if (c->ufd >= 0)
            (void)shutdown(c->ufd, SHUT_RDWR);
    }
    while (px->nconns)
        pthread_cond_wait(&px->idle, &px->lock);
    pthread_mutex_unlock(&px->lock);
    /* the listener holds the sandbox's network namespace: closed now, not
     * when the last reference to the sandbox goes */
    close(px->lfd);
    px->lfd = -1;
}

void egress_proxy_free(struct egress_proxy *px)
{
    if (!px)
        return;
    egress_proxy_shutdown(px);
    close(px->stop_efd);
    pthread_cond_destroy(&px->idle);
    pthread_mutex_destroy(&px->lock);
    egress_log_free(px->log);
    egress_policy_free(px->pol);
    free(px);
}

bool egress_proxy_is_open(struct egress_proxy *px)
{
    pthread_mutex_lock(&px->lock);
    bool open = px->pol && px->pol->open;
    pthread_mutex_unlock(&px->lock);
    return open;
}
