/* fuzz_egress.c - what the egress proxy reads from a sandbox before it
 * decides: the TLS ClientHello (src/daemon/egress_tls.c) and the requested
 * host against an allow-list (src/daemon/egress_policy.c). Both run in the
 * daemon, on bytes the sandbox's code chose.
 *
 * Input: byte 0 picks the path, the rest is the sandbox's bytes.
 *   0  egress_tls_sni on them: a found name is NUL-terminated, fits, has no
 *      NUL inside; every prefix of a complete hello's record is "read more"
 *   1  them as a host (to the first NUL) against a fixed list: an allowed
 *      answer must match a rule; the same text as a rule must parse or be
 *      refused with a message
 */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "egress_policy.h"
#include "egress_tls.h"
#include "fuzz.h"

static struct egress_policy *policy;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    json_t *allow = json_pack("[s,s,s,s]", "pypi.internal.example:443", "*.corp.example:443", "10.20.0.0/16:5432",
                              "[fd00::/8]:443");
    char err[256];
    FUZZ_CHECK(egress_policy_parse(allow, &policy, err, sizeof(err)) == 0, "%s\n", err);
    json_decref(allow);
    return 0;
}

static void sni(const uint8_t *d, size_t n)
{
    char out[256];
    int r = egress_tls_sni(d, n, out, sizeof(out));
    FUZZ_CHECK(r == 1 || r == 0 || r == -EAGAIN || r == -EPROTO || r == -ENOTSUP, "r=%d\n", r);
    if (r == 1)
        FUZZ_CHECK(strlen(out) > 0 && strlen(out) < sizeof(out), "name of %zu bytes\n", strlen(out));
    /* only the first record is read: bytes after it do not count */
    size_t record = n >= 5 ? 5 + ((size_t)d[3] << 8 | d[4]) : n;
    if (r == 1 || r == 0)
        for (size_t cut = 0; cut < n && cut < record; cut += 1 + cut / 8) {
            int p = egress_tls_sni(d, cut, out, sizeof(out));
            FUZZ_CHECK(p == -EAGAIN || p == -EPROTO, "prefix %zu of a complete hello: %d\n", cut, p);
        }
}

static void host(const uint8_t *d, size_t n)
{
    char h[512];
    if (n >= sizeof(h))
        n = sizeof(h) - 1;
    memcpy(h, d, n);
    h[n] = '\0';
    bool literal;
    struct sockaddr_storage sa;
    for (unsigned port = 0; port < 2; port++) {
        uint16_t p = port ? 443 : 5432;
        enum egress_verdict v = egress_policy_check_host(policy, h, p, &literal, &sa);
        if (v == EGRESS_ALLOW && literal)
            FUZZ_CHECK(egress_policy_check_addr(policy, (struct sockaddr *)&sa, p) == EGRESS_ALLOW,
                       "a literal allowed by host but not by address: %s\n", h);
        if (v == EGRESS_ALLOW && !literal)
            FUZZ_CHECK(strchr(h, '.') != NULL, "a name with no dot allowed: %s\n", h);
    }
    json_t *rules = json_pack("[s]", h);
    if (!rules)
        return; /* not UTF-8: jansson refuses it, as the API would */
    struct egress_policy *p = NULL;
    char err[256] = "";
    int r = egress_policy_parse(rules, &p, err, sizeof(err));
    FUZZ_CHECK(r == 0 || (r == -EINVAL && err[0]), "r=%d err=%s\n", r, err);
    if (r == 0) {
        json_t *back = egress_policy_json(p);
        FUZZ_CHECK(strcmp(json_string_value(json_array_get(json_object_get(back, "allow"), 0)), h) == 0,
                   "rule not kept as given\n");
        json_decref(back);
    }
    egress_policy_free(p);
    json_decref(rules);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        host(data + 1, size - 1);
    else
        sni(data + 1, size - 1);
    return 0;
}
