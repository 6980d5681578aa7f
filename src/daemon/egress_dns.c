/* egress_dns.c - the resolver of an open-egress sandbox (egress_dns.h).
 *
 * The sandbox's /etc/resolv.conf names no server, and glibc's default is
 * then 127.0.0.1:53: the socket the daemon holds there, in the sandbox's
 * own namespace. Each query is parsed (libresolv's ns_initparse: one
 * question, or it is refused), sent on by the daemon's own resolver
 * (res_nsend, the host's /etc/resolv.conf), its answer relayed back, and
 * both recorded: name, type, the addresses answered, verdict. An answer
 * with an address in a special range (loopback, private, link-local...) is
 * withheld (REFUSED), as is a reverse lookup into one: the sandbox learns
 * nothing of the host's internal names. DNS to any
 * other server is refused by the filter (egress_net.c), so this is the
 * sandbox's only resolver, and every name it looks up is in its log.
 *
 * One thread, one query at a time: a sandbox's lookups are few, and a slow
 * upstream only slows that sandbox.
 */
#include "egress_dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "egress_policy.h"
#include "log.h"
#include "util.h"

#define DNS_MAX 4096
/* Each query is a log entry and an audit row: a sandbox that floods its
 * resolver is refused past this rate (REFUSED, counted in one entry when it
 * slows down) rather than fill the state store. */
#define DNS_RATE 50   /* queries a second, sustained */
#define DNS_BURST 200

struct egress_dns {
    int fd, stop_efd;
    pthread_t thread;
    struct egress_proxy *px;
};

/* The question's type for the log (libresolv's p_type is deprecated). */
static const char *type_name(int t, char *buf, size_t len)
{
    switch (t) {
    case ns_t_a: return "A";
    case ns_t_aaaa: return "AAAA";
    case ns_t_cname: return "CNAME";
    case ns_t_mx: return "MX";
    case ns_t_txt: return "TXT";
    case ns_t_ns: return "NS";
    case ns_t_ptr: return "PTR";
    case ns_t_srv: return "SRV";
    case ns_t_soa: return "SOA";
    case 65: return "HTTPS";
    }
    snprintf(buf, len, "TYPE%d", t);
    return buf;
}

static void record(struct egress_dns *d, const char *name, const char *verdict, const char *reason,
                   const char *first, size_t out, size_t in, uint64_t t0)
{
    struct egress_log_entry e = {.time_ms = now_wall_ms(), .port = 53, .bytes_out = out, .bytes_in = in};
    snprintf(e.method, sizeof(e.method), "DNS");
    snprintf(e.host, sizeof(e.host), "%s", name);
    snprintf(e.address, sizeof(e.address), "%s", first ? first : "");
    snprintf(e.verdict, sizeof(e.verdict), "%s", verdict);
    snprintf(e.reason, sizeof(e.reason), "%s", reason);
    e.duration_ms = now_mono_ms() - t0;
    egress_proxy_record(d->px, &e);
}

/* "A 198.51.100.10, 198.51.100.11" (or the rcode) into reason; the first
 * address into first; *internal if any is in a special range. */
static void answers(const unsigned char *ans, int alen, const char *qtype, char *reason, size_t rlen, char *first,
                    size_t flen, bool *internal)
{
    ns_msg m;
    first[0] = '\0';
    *internal = false;
    if (ns_initparse(ans, alen, &m) < 0) {
        snprintf(reason, rlen, "%s: unparsable answer", qtype);
        return;
    }
    int rcode = ns_msg_getflag(m, ns_f_rcode);
    size_t off = (size_t)snprintf(reason, rlen, "%s", qtype);
    if (rcode != ns_r_noerror) {
        snprintf(reason + off, rlen - off, ": rcode %d", rcode);
        return;
    }
    unsigned n = 0;
    for (int i = 0; i < ns_msg_count(m, ns_s_an) && off < rlen; i++) {
        ns_rr rr;
        if (ns_parserr(&m, ns_s_an, i, &rr) < 0)
            break;
        char a[INET6_ADDRSTRLEN];
        int t = ns_rr_type(rr);
        if (!((t == ns_t_a && ns_rr_rdlen(rr) == 4) || (t == ns_t_aaaa && ns_rr_rdlen(rr) == 16)))
            continue;
        if (!inet_ntop(t == ns_t_a ? AF_INET : AF_INET6, ns_rr_rdata(rr), a, sizeof(a)))
            continue;
        struct sockaddr_storage ss = {.ss_family = t == ns_t_a ? AF_INET : AF_INET6};
        if (t == ns_t_a)
            memcpy(&((struct sockaddr_in *)&ss)->sin_addr, ns_rr_rdata(rr), 4);
        else
            memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, ns_rr_rdata(rr), 16);
        if (egress_addr_internal((struct sockaddr *)&ss))
            *internal = true;
        if (n++ == 0)
            snprintf(first, flen, "%s", a);
        int w = snprintf(reason + off, rlen - off, "%s%s", n == 1 ? " " : ", ", a);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (n == 0 && off < rlen)
        snprintf(reason + off, rlen - off, ": no address");
}

/* The query's header with QR and an rcode: the answer when nothing better
 * can be said. */
static void reply_rcode(int fd, unsigned char *q, size_t len, int rcode, const struct sockaddr *to, socklen_t tolen)
{
    if (len < 12)
        return;
    q[2] |= 0x80;                                  /* QR */
    q[3] = (unsigned char)((q[3] & 0xf0) | rcode); /* RA kept, rcode set */
    (void)sendto(fd, q, len, MSG_DONTWAIT, to, tolen);
}

/* A reverse lookup into the internal network: every ip6.arpa name (the
 * link has no IPv6), and in-addr.arpa names of a special range. Their
 * answers would map the host's network for the sandbox. */
static bool internal_reverse(const char *name)
{
    size_t n = strlen(name);
    if (n >= 8 && strcasecmp(name + n - 8, "ip6.arpa") == 0)
        return true;
    static const char v4[] = ".in-addr.arpa";
    if (n < sizeof(v4) - 1 || strcasecmp(name + n - (sizeof(v4) - 1), v4) != 0)
        return false;
    /* labels are the octets, last first: "2.0.77.10" is 10.77.0.2 */
    uint8_t oct[4] = {0};
    unsigned k = 0;
    const char *p = name, *end = name + n - (sizeof(v4) - 1);
    unsigned vals[4];
    while (p < end && k < 4) {
        char *e;
        unsigned long v = strtoul(p, &e, 10);
        if (e == p || v > 255 || (e != end && *e != '.'))
            return true; /* not an address: refuse rather than guess */
        vals[k++] = (unsigned)v;
        p = e + (e != end);
    }
    for (unsigned i = 0; i < k; i++)
        oct[i] = (uint8_t)vals[k - 1 - i];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    memcpy(&sa.sin_addr, oct, 4);
    return egress_addr_internal((struct sockaddr *)&sa);
}

static void serve_one(struct egress_dns *d, struct __res_state *rs, unsigned char *q, size_t qlen,
                      const struct sockaddr *from, socklen_t fromlen)
{
    uint64_t t0 = now_mono_ms();
    ns_msg m;
    ns_rr rr;
    if (ns_initparse(q, (int)qlen, &m) < 0 || ns_msg_count(m, ns_s_qd) != 1 || ns_parserr(&m, ns_s_qd, 0, &rr) < 0) {
        reply_rcode(d->fd, q, qlen, ns_r_formerr, from, fromlen);
        record(d, "", "denied", "not a DNS query with one question", NULL, qlen, 0, t0);
        return;
    }
    char name[NS_MAXDNAME];
    snprintf(name, sizeof(name), "%s", ns_rr_name(rr));
    char tbuf[16];
    const char *qtype = type_name(ns_rr_type(rr), tbuf, sizeof(tbuf));
    if (ns_rr_type(rr) == ns_t_ptr && internal_reverse(name)) {
        reply_rcode(d->fd, q, qlen, ns_r_refused, from, fromlen);
        record(d, name, "denied", "PTR: a reverse lookup into an internal range is not sent on", NULL, qlen, 0, t0);
        return;
    }
    unsigned char ans[DNS_MAX];
    int alen = res_nsend(rs, q, (int)qlen, ans, sizeof(ans));
    if (alen < 0) {
        reply_rcode(d->fd, q, qlen, ns_r_servfail, from, fromlen);
        char reason[64];
        snprintf(reason, sizeof(reason), "%s: the daemon's resolver did not answer", qtype);
        record(d, name, "failed", reason, NULL, qlen, 0, t0);
        return;
    }
    char reason[160], first[INET6_ADDRSTRLEN];
    bool internal;
    answers(ans, alen, qtype, reason, sizeof(reason), first, sizeof(first), &internal);
    if (internal) {
        /* the sandbox could not connect there anyway (the filter), and the
         * answer itself would tell it the host's internal names */
        reply_rcode(d->fd, q, qlen, ns_r_refused, from, fromlen);
        size_t off = strlen(reason);
        snprintf(reason + off, sizeof(reason) - off, " (internal: withheld)");
        record(d, name, "denied", reason, NULL, qlen, (size_t)alen, t0);
        return;
    }
    (void)sendto(d->fd, ans, (size_t)alen, MSG_DONTWAIT, from, fromlen);
    record(d, name, "allowed", reason, first[0] ? first : NULL, qlen, (size_t)alen, t0);
}

static void flush_over(struct egress_dns *d, unsigned *over, uint64_t t0)
{
    if (!*over)
        return;
    char reason[128];
    snprintf(reason, sizeof(reason), "%u queries refused unsent: over %d a second", *over, DNS_RATE);
    record(d, "", "denied", reason, NULL, 0, 0, t0);
    *over = 0;
}

static void *dns_thread(void *arg)
{
    struct egress_dns *d = arg;
    struct __res_state rs;
    memset(&rs, 0, sizeof(rs));
    if (res_ninit(&rs) < 0)
        log_warn("egress dns: res_ninit failed: the host's resolver configuration is unreadable");
    /* a truncated answer goes back as it is: the sandbox's resolver sees TC
     * and says so, instead of this thread retrying over TCP */
    rs.options |= RES_IGNTC;
    unsigned char q[DNS_MAX];
    double tokens = DNS_BURST;
    uint64_t last = now_mono_ms(), t_over = 0;
    unsigned over = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = d->fd, .events = POLLIN}, {.fd = d->stop_efd, .events = POLLIN}};
        /* refusals are counted in one entry once the flood pauses */
        int pr = poll(p, 2, over ? 1000 : -1);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (pr == 0 || over >= 100000) {
            flush_over(d, &over, t_over);
            continue;
        }
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(d->fd, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&from, &fromlen);
        if (n < 0)
            continue;
        uint64_t now = now_mono_ms();
        tokens += (double)(now - last) * DNS_RATE / 1000.0;
        if (tokens > DNS_BURST)
            tokens = DNS_BURST;
        last = now;
        if (tokens < 1.0) {
            if (over++ == 0)
                t_over = now;
            reply_rcode(d->fd, q, (size_t)n, ns_r_refused, (struct sockaddr *)&from, fromlen);
            continue;
        }
        tokens -= 1.0;
        flush_over(d, &over, t_over);
        serve_one(d, &rs, q, (size_t)n, (struct sockaddr *)&from, fromlen);
    }
    res_nclose(&rs);
    return NULL;
}

int egress_dns_start(int fd, struct egress_proxy *px, struct egress_dns **out)
{
    struct egress_dns *d = calloc(1, sizeof(*d));
    if (!d) {
        close(fd);
        return -ENOMEM;
    }
    d->fd = fd;
    d->px = px;
    d->stop_efd = eventfd(0, EFD_CLOEXEC);
    if (d->stop_efd < 0) {
        int e = -errno;
        close(fd);
        free(d);
        return e;
    }
    int r = pthread_create(&d->thread, NULL, dns_thread, d);
    if (r != 0) {
        close(d->stop_efd);
        close(fd);
        free(d);
        return -r;
    }
    *out = d;
    return 0;
}

void egress_dns_stop(struct egress_dns *d)
{
    if (!d)
        return;
    uint64_t one = 1;
    if (write(d->stop_efd, &one, sizeof(one)) != sizeof(one))
        log_error("egress dns: cannot wake the resolver thread: %s", strerror(errno));
    pthread_join(d->thread, NULL);
    close(d->stop_efd);
    close(d->fd);
    free(d);
}
