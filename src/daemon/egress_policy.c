/* egress_policy.c - the allow-list and its decisions (egress_policy.h). */
#include "egress_policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A host name as DNS allows it: labels of [a-z0-9-], 1-63 bytes, not
 * starting or ending with '-'. Lower-cased into out; a trailing dot dropped. */
static bool normalize_name(const char *in, size_t len, char *out)
{
    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0 || len > EGRESS_HOST_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char c = (char)tolower((unsigned char)in[i]);
        if (c == '.') {
            if (label == 0 || out[i - 1] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            if (c == '-' && label == 0)
                return false;
            if (++label > 63)
                return false;
        } else {
            return false;
        }
        out[i] = c;
    }
    if (out[len - 1] == '-')
        return false;
    out[len] = '\0';
    return true;
}

/* "1.2.3.4", "::1" or "[::1]" into family/addr; false if not a literal. */
static bool parse_literal(const char *s, size_t len, int *family, uint8_t addr[16])
{
    char buf[64];
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

static int parse_port(const char *s, uint16_t *port)
{
    if (!*s || strlen(s) > 5)
        return -EINVAL;
    unsigned v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(*c - '0');
    }
    if (v < 1 || v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

static int parse_rule(const char *text, struct egress_rule *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    size_t len = strlen(text);
    if (len >= sizeof(r->text)) {
        snprintf(err, errlen, "egress rule is too long: %.40s...", text);
        return -EINVAL;
    }
    memcpy(r->text, text, len + 1);
    const char *colon = strrchr(text, ':');
    /* an IPv6 rule must be bracketed, so the last ':' is the port's */
    if (!colon || (strchr(text, ':') != colon && text[0] != '[') || parse_port(colon + 1, &r->port) < 0) {
        snprintf(err, errlen, "egress rule '%s' must be host:port (port 1-65535; IPv6 in brackets)", text);
        return -EINVAL;
    }
    size_t hlen = (size_t)(colon - text);
    const char *h = text;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    char host[EGRESS_HOST_MAX + 1];
    if (hlen == 0 || hlen > EGRESS_HOST_MAX) {
        snprintf(err, errlen, "egress rule '%s' has no valid host", text);
        return -EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *slash = strchr(host, '/');
    unsigned prefix = 0;
    bool has_prefix = false;
    if (slash) {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end || errno || v > 128) {
            snprintf(err, errlen, "egress rule '%s' has a bad prefix length", text);
            return -EINVAL;
        }
        prefix = (unsigned)v;
        has_prefix = true;
        *slash = '\0';
    }
    if (parse_literal(host, strlen(host), &r->family, r->addr)) {
        unsigned max = r->family == AF_INET ? 32 : 128;
        if (!has_prefix)
            prefix = max;
        if (prefix > max) {
            snprintf(err, errlen, "egress rule '%s' has a prefix longer than the address", text);
            return -EINVAL;
        }
        uint8_t net[16] = {0};
        memcpy(net, r->addr, prefix / 8);
        if (prefix % 8)
            net[prefix / 8] = (uint8_t)(r->addr[prefix / 8] & (0xff << (8 - prefix % 8)));
        if (memcmp(net, r->addr, 16) != 0) {
            snprintf(err, errlen, "egress rule '%s' has host bits set below its prefix", text);
            return -EINVAL;
        }
        r->kind = EGRESS_CIDR;
        r->prefix = prefix;
        return 0;
    }
    if (has_prefix) {
        snprintf(err, errlen, "egress rule '%s': a prefix needs an IP address", text);
        return -EINVAL;
    }
    if (host[0] == '*') {
        if (host[1] != '.' || !normalize_name(host + 2, strlen(host + 2), r->host + 1) || !strchr(r->host + 1, '.')) {
            snprintf(err, errlen, "egress rule '%s': a wildcard is '*.' and a name of two labels or more", text);
            return -EINVAL;
        }
        r->host[0] = '.';
        r->kind = EGRESS_WILDCARD;
        return 0;
    }
    if (!normalize_name(host, strlen(host), r->host)) {
        snprintf(err, errlen, "egress rule '%s' has no valid host name", text);
        return -EINVAL;
    }
    r->kind = EGRESS_NAME;
    return 0;
}

int egress_policy_parse(const json_t *allow, struct egress_policy **out, char *err, size_t errlen)
{
    if (!json_is_array(allow)) {
        snprintf(err, errlen, "egress.allow must be an array of \"host:port\" strings");
        return -EINVAL;
    }
    size_t n = json_array_size(allow);
    if (n > EGRESS_MAX_RULES) {
        snprintf(err, errlen, "egress.allow has more than %d rules", EGRESS_MAX_RULES);
        return -EINVAL;
    }
    struct egress_policy *p = calloc(1, sizeof(*p) + n * sizeof(p->rules[0]));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(allow, i));
        if (!s) {
            snprintf(err, errlen, "egress.allow[%zu] must be a string", i);
            free(p);
            return -EINVAL;
        }
        if (parse_rule(s, &p->rules[i], err, errlen) < 0) {
            free(p);
            return -EINVAL;
        }
    }
    p->n = n;
    *out = p;
    return 0;
}

int egress_policy_new_open(struct egress_policy **out)
{
    struct egress_policy *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->open = true;
    *out = p;
    return 0;
}

void egress_policy_free(struct egress_policy *p) { free(p); }

json_t *egress_policy_json(const struct egress_policy *p)
{
    json_t *a = json_array();
    for (size_t i = 0; p && i < p->n; i++)
        json_array_append_new(a, json_string(p->rules[i].text));
    if (p && p->open)
        return json_pack("{s:b,s:o}", "open", 1, "allow", a);
    return json_pack("{s:o}", "allow", a);
}

void egress_policy_describe(const struct egress_policy *p, char *buf, size_t len)
{
    size_t off = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; p && i < p->n && off < len; i++) {
        int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", p->rules[i].text);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (p && p->open)
        snprintf(buf, len, "(open: any public address; loopback, link-local and private ranges refused)");
    else if (!p || p->n == 0)
        snprintf(buf, len, "(empty: nothing is allowed)");
}

static void sa_addr(const struct sockaddr *sa, int *family, uint8_t addr[16])
{
    memset(addr, 0, 16);
    if (sa->sa_family == AF_INET) {
        *family = AF_INET;
        memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return;
    }
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    /* a v4-mapped address is the v4 one: rules and ranges see it as such */
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
        *family = AF_INET;
        memcpy(addr, a6->s6_addr + 12, 4);
        return;
    }
    *family = AF_INET6;
    memcpy(addr, a6->s6_addr, 16);
}

static bool cidr_allows(const struct egress_policy *p, int family, const uint8_t addr[16], uint16_t port)
{
    for (size_t i = 0; i < p->n; i++) {
        const struct egress_rule *r = &p->rules[i];
        if (r->kind == EGRESS_CIDR && r->port == port && r->family == family && prefix_match(addr, r->addr, r->prefix))
            return true;
    }
    return false;
}

static const struct {
    int family;
    uint8_t net[16];
    unsigned prefix;
} internal_ranges[] = {
    {AF_INET, {0}, 8},                    /* 0.0.0.0/8 "this network" */
    {AF_INET, {10}, 8},                   /* RFC 1918 */
    {AF_INET, {100, 64}, 10},             /* CGNAT, RFC 6598 */
    {AF_INET, {127}, 8},                  /* loopback */
    {AF_INET, {169, 254}, 16},            /* link-local, the metadata address */
    {AF_INET, {172, 16}, 12},             /* RFC 1918 */
    {AF_INET, {192, 168}, 16},            /* RFC 1918 */
    {AF_INET, {224}, 3},                  /* multicast, reserved, broadcast */
    {AF_INET6, {0}, 127},                 /* :: and ::1 */
    {AF_INET6, {0xfc}, 7},                /* ULA */
    {AF_INET6, {0xfe, 0x80}, 10},         /* link-local */
    {AF_INET6, {0xff}, 8},                /* multicast */
    {AF_INET6, {0, 0x64, 0xff, 0x9b}, 96}, /* NAT64: may embed anything */
};

static bool addr_internal(int family, const uint8_t addr[16])
{
    for (size_t i = 0; i < sizeof(internal_ranges) / sizeof(internal_ranges[0]); i++)
        if (internal_ranges[i].family == family && prefix_match(addr, internal_ranges[i].net, internal_ranges[i].prefix))
            return true;
    return false;
}

bool egress_addr_internal(const struct sockaddr *sa)
{
    int family;
    uint8_t addr[16];
    sa_addr(sa, &family, addr);
    return addr_internal(family, addr);
}

enum egress_verdict egress_policy_check_host(const struct egress_policy *p, const char *host, uint16_t port,
                                             bool *literal, struct sockaddr_storage *sa)
{
    int family;
    uint8_t addr[16];
    *literal = false;
    size_t len = strlen(host);
    if (parse_literal(host, len, &family, addr)) {
        *literal = true;
        memset(sa, 0, sizeof(*sa));
        if (family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
            s4->sin_family = AF_INET;
            s4->sin_port = htons(port);
            memcpy(&s4->sin_addr, addr, 4);
        } else {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons(port);
            memcpy(&s6->sin6_addr, addr, 16);
        }
        sa_addr((struct sockaddr *)sa, &family, addr); /* v4-mapped counts as v4 */
        if (p->open && !addr_internal(family, addr))
            return EGRESS_ALLOW;
        return cidr_allows(p, family, addr, port) ? EGRESS_ALLOW : EGRESS_DENY_LITERAL;
    }
    char name[EGRESS_HOST_MAX + 1];
    if (!normalize_name(host, len, name))
        return EGRESS_DENY_INVALID;
    if (p->open) /* may be resolved; its addresses are checked next */
        return EGRESS_ALLOW;
    size_t nlen = strlen(name);
    for (size_t i = 0; i < p->n; i++) {
        const struct egress_rule *r = &p->rules[i];
        if (r->port != port)
            continue;
        if (r->kind == EGRESS_NAME && strcmp(r->host, name) == 0)
            return EGRESS_ALLOW;
        if (r->kind == EGRESS_WILDCARD) {
            size_t slen = strlen(r->host);
            if (nlen > slen && strcmp(name + nlen - slen, r->host) == 0)
                return EGRESS_ALLOW;
        }
    }
    return EGRESS_DENY_NO_RULE;
}

enum egress_verdict egress_policy_check_addr(const struct egress_policy *p, const struct sockaddr *sa, uint16_t port)
{
    int family;
    uint8_t addr[16];
    sa_addr(sa, &family, addr);
    if (!addr_internal(family, addr))
        return EGRESS_ALLOW;
    return cidr_allows(p, family, addr, port) ? EGRESS_ALLOW : EGRESS_DENY_INTERNAL;
}

enum egress_verdict egress_policy_check_local(const struct egress_policy *p, const struct sockaddr *sa, uint16_t port)
{
    int family;
    uint8_t addr[16];
    sa_addr(sa, &family, addr);
    return cidr_allows(p, family, addr, port) ? EGRESS_ALLOW : EGRESS_DENY_LOCAL;
}

const char *egress_verdict_name(enum egress_verdict v)
{
    switch (v) {
    case EGRESS_ALLOW:
        return "allowed";
    case EGRESS_DENY_NO_RULE:
        return "no rule allows this host and port";
    case EGRESS_DENY_LITERAL:
        return "an IP address no CIDR rule allows";
    case EGRESS_DENY_INVALID:
        return "not a valid host name";
    case EGRESS_DENY_INTERNAL:
        return "the name resolves to a loopback, link-local or private address no CIDR rule allows";
    case EGRESS_DENY_LOCAL:
        return "the address is one of the host's own, which no CIDR rule allows";
    }
    return "denied";
}
