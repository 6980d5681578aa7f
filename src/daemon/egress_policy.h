/* egress_policy.h - a sandbox's egress allow-list, and the decisions on it.
 *
 * Pure: no I/O, no locks, no resolver. The proxy (egress_proxy.c) asks two
 * questions, in this order, and never resolves a name before the first one
 * said yes, so a name on no list is never looked up:
 *
 *   egress_policy_check_host  the requested host (a name or an IP literal)
 *                             and port, before anything is resolved
 *   egress_policy_check_addr  each address an allowed name resolved to
 *
 * Rules ("allow" strings):
 *   "pypi.internal.example:443"  that name, that port
 *   "*.corp.example:443"         any name below corp.example (not itself)
 *   "10.20.0.0/16:5432"          addresses in that range, that port; also the
 *   "10.1.2.3:80"                only way an IP literal, or a name resolving
 *   "[fd00::/8]:443"             into loopback/link-local/private, is allowed
 */
#ifndef AIRLOCK_EGRESS_POLICY_H
#define AIRLOCK_EGRESS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#define EGRESS_MAX_RULES 256
#define EGRESS_HOST_MAX 253

enum egress_rule_kind { EGRESS_NAME, EGRESS_WILDCARD, EGRESS_CIDR };

struct egress_rule {
    enum egress_rule_kind kind;
    char host[EGRESS_HOST_MAX + 1]; /* NAME: the name; WILDCARD: the suffix with its dot (".corp.example") */
    int family;                     /* CIDR: AF_INET or AF_INET6 */
    uint8_t addr[16];               /* CIDR: network, host bits zero */
    unsigned prefix;
    uint16_t port;
    char text[EGRESS_HOST_MAX + 16]; /* the rule as given, for logs and the 403 body */
};

struct egress_policy {
    /* open egress (docs/egress.md, mode 3): any name on any port, but an
     * address in a special range still needs a CIDR rule */
    bool open;
    size_t n;
    struct egress_rule rules[];
};

enum egress_verdict {
    EGRESS_ALLOW = 0,
    EGRESS_DENY_NO_RULE,  /* no rule names this host and port */
    EGRESS_DENY_LITERAL,  /* an IP literal no CIDR rule allows */
    EGRESS_DENY_INVALID,  /* not a host name or IP literal */
    EGRESS_DENY_INTERNAL, /* resolved into loopback/link-local/private, no CIDR rule for it */
    EGRESS_DENY_LOCAL,    /* one of the host's own addresses, no CIDR rule for it */
};

/* allow: a JSON array of rule strings. 0 and *out (egress_policy_free), or
 * -EINVAL with a message naming the bad rule. */
int egress_policy_parse(const json_t *allow, struct egress_policy **out, char *err, size_t errlen);
/* The open policy (no rules): 0 and *out, or -ENOMEM. */
int egress_policy_new_open(struct egress_policy **out);
void egress_policy_free(struct egress_policy *p);
static inline void egress_policy_freep(struct egress_policy **p) { egress_policy_free(*p); }
/* {"allow":[...]} as given; {"open": true, "allow": []} for the open one. */
json_t *egress_policy_json(const struct egress_policy *p);
/* "a, b, c": the rules, for the 403 body. */
void egress_policy_describe(const struct egress_policy *p, char *buf, size_t len);

/* Before any resolution. For an IP literal, *literal is set true and the
 * verdict is final (the caller connects to sa, filled in); for a name it is
 * only "may be resolved". host may be in brackets ("[::1]"). */
enum egress_verdict egress_policy_check_host(const struct egress_policy *p, const char *host, uint16_t port,
                                             bool *literal, struct sockaddr_storage *sa);
/* After resolution of an allowed name: an address in a special range
 * (loopback, link-local, RFC 1918, CGNAT, ULA, unspecified, multicast) needs
 * a CIDR rule containing it. */
enum egress_verdict egress_policy_check_addr(const struct egress_policy *p, const struct sockaddr *sa, uint16_t port);
/* An address the caller found to be the host's own (egress_proxy.c asks
 * the kernel): allowed only by a CIDR rule containing it. */
enum egress_verdict egress_policy_check_local(const struct egress_policy *p, const struct sockaddr *sa, uint16_t port);
/* True for the special ranges above. */
bool egress_addr_internal(const struct sockaddr *sa);
const char *egress_verdict_name(enum egress_verdict v);

#endif
