/* The egress allow-list (rules, matching before resolution, internal
 * ranges) and the ClientHello's server name: pure, no sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "egress_policy.h"
#include "egress_tls.h"
#include "unit.h"

static struct egress_policy *policy(const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    struct egress_policy *p = NULL;
    char err[256] = "";
    CHECK(egress_policy_parse(j, &p, err, sizeof(err)) == 0);
    json_decref(j);
    return p;
}

static int parse_fails(const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    struct egress_policy *p = NULL;
    char err[256] = "";
    int r = egress_policy_parse(j, &p, err, sizeof(err));
    json_decref(j);
    egress_policy_free(p);
    return r == -EINVAL && err[0];
}

static enum egress_verdict host(const struct egress_policy *p, const char *h, uint16_t port, bool *lit)
{
    struct sockaddr_storage sa;
    return egress_policy_check_host(p, h, port, lit, &sa);
}

static enum egress_verdict addr(const struct egress_policy *p, const char *a, uint16_t port)
{
    struct sockaddr_storage ss = {0};
    if (inet_pton(AF_INET, a, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
    } else {
        ss.ss_family = AF_INET6;
        CHECK(inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1);
    }
    return egress_policy_check_addr(p, (struct sockaddr *)&ss, port);
}

static void test_parse(void)
{
    CHECK(parse_fails("[\"pypi.example\"]"));          /* no port */
    CHECK(parse_fails("[\"pypi.example:0\"]"));
    CHECK(parse_fails("[\"pypi.example:65536\"]"));
    CHECK(parse_fails("[\"pypi.example:44x\"]"));
    CHECK(parse_fails("[\"*.example:443\"]"));         /* a wildcard over a TLD */
    CHECK(parse_fails("[\"*example.com:443\"]"));
    CHECK(parse_fails("[\"a*.example.com:443\"]"));
    CHECK(parse_fails("[\"bad_name.example:443\"]"));
    CHECK(parse_fails("[\"10.20.0.1/16:5432\"]"));     /* host bits */
    CHECK(parse_fails("[\"10.0.0.0/33:1\"]"));
    CHECK(parse_fails("[\"name.example/8:1\"]"));
    CHECK(parse_fails("[\"fd00::/8:443\"]"));          /* IPv6 unbracketed */
    CHECK(parse_fails("[42]"));
    CHECK(parse_fails("{\"a\":1}"));
    struct egress_policy *p = policy("[\"PyPI.internal.example.:443\", \"*.corp.example:443\", \"10.20.0.0/16:5432\", \"[fd00::/8]:443\", \"10.1.2.3:80\"]");
    CHECK(p && p->n == 5);
    json_t *j = egress_policy_json(p);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(j, "allow"), 0)), "PyPI.internal.example.:443");
    json_decref(j);
    char d[256];
    egress_policy_describe(p, d, sizeof(d));
    CHECK(strstr(d, "*.corp.example:443, 10.20.0.0/16:5432") != NULL);
    egress_policy_free(p);
    p = policy("[]");
    egress_policy_describe(p, d, sizeof(d));
    CHECK(strstr(d, "nothing") != NULL);
    egress_policy_free(p);
}

static void test_names(void)
{
    struct egress_policy *p = policy("[\"pypi.internal.example:443\", \"*.corp.example:443\", \"10.20.0.0/16:5432\"]");
    bool lit = true;
    CHECK(host(p, "pypi.internal.example", 443, &lit) == EGRESS_ALLOW && !lit);
    CHECK(host(p, "PYPI.Internal.Example.", 443, &lit) == EGRESS_ALLOW);
    CHECK(host(p, "pypi.internal.example", 80, &lit) == EGRESS_DENY_NO_RULE); /* every port is a rule's */
    CHECK(host(p, "evil.example", 443, &lit) == EGRESS_DENY_NO_RULE);
    CHECK(host(p, "pypi.internal.example.evil.example", 443, &lit) == EGRESS_DENY_NO_RULE);
    CHECK(host(p, "xpypi.internal.example", 443, &lit) == EGRESS_DENY_NO_RULE);
    CHECK(host(p, "a.corp.example", 443, &lit) == EGRESS_ALLOW);
    CHECK(host(p, "a.b.corp.example", 443, &lit) == EGRESS_ALLOW);
    CHECK(host(p, "corp.example", 443, &lit) == EGRESS_DENY_NO_RULE); /* the apex is not below itself */
    CHECK(host(p, "evilcorp.example", 443, &lit) == EGRESS_DENY_NO_RULE);
    CHECK(host(p, "a.corp.example\n", 443, &lit) == EGRESS_DENY_INVALID);
    CHECK(host(p, "a..corp.example", 443, &lit) == EGRESS_DENY_INVALID);
    CHECK(host(p, "", 443, &lit) == EGRESS_DENY_INVALID);
    /* IP literals: only CIDR rules, on their port */
    CHECK(host(p, "10.20.3.4", 5432, &lit) == EGRESS_ALLOW && lit);
    CHECK(host(p, "10.20.3.4", 443, &lit) == EGRESS_DENY_LITERAL && lit);
    CHECK(host(p, "10.21.3.4", 5432, &lit) == EGRESS_DENY_LITERAL);
    CHECK(host(p, "1.1.1.1", 443, &lit) == EGRESS_DENY_LITERAL);
    CHECK(host(p, "[::ffff:10.20.0.9]", 5432, &lit) == EGRESS_ALLOW); /* v4-mapped is v4 */
    CHECK(host(p, "[::1]", 443, &lit) == EGRESS_DENY_LITERAL);
    egress_policy_free(p);
}

static void test_addrs(void)
{
    struct egress_policy *p = policy("[\"a.example:443\", \"10.20.0.0/16:443\", \"[fd00::/8]:443\"]");
    CHECK(addr(p, "93.184.216.34", 443) == EGRESS_ALLOW);
    CHECK(addr(p, "2606:4700::1", 443) == EGRESS_ALLOW);
    const char *internal[] = {"127.0.0.1", "10.1.1.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                              "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
                              "fc00::1", "ff02::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1"};
    for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++)
        CHECK(addr(p, internal[i], 443) == EGRESS_DENY_INTERNAL);
    CHECK(addr(p, "172.32.0.1", 443) == EGRESS_ALLOW);
    CHECK(addr(p, "10.20.9.9", 443) == EGRESS_ALLOW); /* a CIDR rule names the range */
    CHECK(addr(p, "10.20.9.9", 80) == EGRESS_DENY_INTERNAL);
    CHECK(addr(p, "fd12::5", 443) == EGRESS_ALLOW);
    egress_policy_free(p);
}

static const char hello_hex[] = "1603010200010001fc0303c0da576a82534c2f08e1484fd7e7bb3f9ff9ed95b0db9c7e6b31f3a9564a984520fb2e8d8e72059acd8e883f614ffb87598f703114940b91b44d11ac5141dc793f003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010001750000001a0018000015707970692e696e7465726e616c2e6578616d706c65000b000403000102000a00160014001d0017001e0019001801000101010201030104002300000016000000170000000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d00020101003300260024001d002012d3842dbe87b107d036e8f34dc9a0708bdb64f351433dd7cca6381a9625897f001500ba000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

static void test_sni(void)
{
    size_t n = strlen(hello_hex) / 2;
    uint8_t *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        CHECK(sscanf(hello_hex + 2 * i, "%2hhx", &b[i]) == 1);
    char name[256];
    CHECK(egress_tls_sni(b, n, name, sizeof(name)) == 1);
    CHECK_STREQ(name, "pypi.internal.example");
    for (size_t cut = 0; cut < n; cut++) /* every prefix is "read more" */
        CHECK(egress_tls_sni(b, cut, name, sizeof(name)) == -EAGAIN);
    CHECK(egress_tls_sni(b, n, name, 8) == -EPROTO); /* does not fit: refused, not truncated */
    uint8_t plain[] = "GET / HTTP/1.1\r\n";
    CHECK(egress_tls_sni(plain, sizeof(plain) - 1, name, sizeof(name)) == -ENOTSUP);
    /* a handshake length that runs past the record */
    b[8] = 0xff;
    CHECK(egress_tls_sni(b, n, name, sizeof(name)) == -EPROTO);
    free(b);
}

/* open egress's policy in the proxy: any name and port; addresses (literal
 * or resolved) never in the internal ranges */
static void test_open(void)
{
    struct egress_policy *p = NULL;
    CHECK(egress_policy_new_open(&p) == 0 && p->open && p->n == 0);
    bool lit = true;
    CHECK(host(p, "pypi.org", 443, &lit) == EGRESS_ALLOW && !lit);
    CHECK(host(p, "any.example", 25, &lit) == EGRESS_ALLOW);
    CHECK(host(p, "bad_name..example", 443, &lit) == EGRESS_DENY_INVALID);
    CHECK(host(p, "93.184.216.34", 80, &lit) == EGRESS_ALLOW && lit);
    const char *internal[] = {"127.0.0.1", "10.1.1.1", "169.254.169.254", "100.64.0.1", "192.168.0.1",
                              "[::1]", "[fd00::1]", "[fe80::1]", "[::ffff:127.0.0.1]", "0.0.0.0"};
    for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++)
        CHECK(host(p, internal[i], 80, &lit) == EGRESS_DENY_LITERAL);
    CHECK(addr(p, "93.184.216.34", 443) == EGRESS_ALLOW);
    CHECK(addr(p, "10.0.0.1", 443) == EGRESS_DENY_INTERNAL); /* a public name resolving inside */
    CHECK(addr(p, "169.254.169.254", 80) == EGRESS_DENY_INTERNAL);
    struct sockaddr_in self = {.sin_family = AF_INET};
    CHECK(inet_pton(AF_INET, "203.0.113.7", &self.sin_addr) == 1);
    CHECK(egress_policy_check_local(p, (struct sockaddr *)&self, 80) == EGRESS_DENY_LOCAL);
    json_t *j = egress_policy_json(p);
    CHECK(json_is_true(json_object_get(j, "open")) && json_array_size(json_object_get(j, "allow")) == 0);
    json_decref(j);
    char d[256];
    egress_policy_describe(p, d, sizeof(d));
    CHECK(strstr(d, "open") != NULL);
    egress_policy_free(p);
}

int main(void)
{
    test_parse();
    test_open();
    test_names();
    test_addrs();
    test_sni();
    UNIT_DONE();
}
