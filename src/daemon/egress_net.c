/* egress_net.c - the host side of open egress: the nftables table, the
 * address range, ip_forward (egress_net.h; why a veth and nftables rather
 * than a user-mode stack: docs/egress.md).
 *
 * The table filters at three hooks, for every interface whose name starts
 * with this daemon's prefix (alk<tag>), so per-sandbox links need no rule of
 * their own and a link that is gone matches nothing:
 *   input    anything from a sandbox to the host itself (any of its
 *            addresses, the link's own end included) is refused
 *   forward  from a sandbox: IPv6, another sandbox, loopback, link-local,
 *            RFC 1918, CGNAT, multicast and other special ranges, DNS (53,
 *            853) to anyone but the daemon's resolver (which the sandbox
 *            reaches on its own 127.0.0.1), and every protocol but TCP and
 *            UDP are refused; to a sandbox: only replies
 *   postrouting  what leaves is masqueraded behind the host's address
 * Refusals are resets and ICMP errors, not silent drops: a refused connect
 * fails at once instead of timing out.
 */
#include "egress_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#include "log.h"

#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"
#define LINKS 16384 /* /30s in the daemon's /16 */

struct egress_net {
    pthread_mutex_t lock;
    char table[32];     /* airlock_<tag> */
    char prefix[8];     /* alk<tag> */
    uint32_t base;      /* host order: 100.<64 + tag % 64>.0.0/16 */
    bool table_up;
    unsigned char used[LINKS / 8];
    unsigned in_use;
};

/* One nft script; its error text in err. */
static int nft_run(const char *script, char *err, size_t errlen)
{
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx) {
        snprintf(err, errlen, "nft_ctx_new failed");
        return -ENOMEM;
    }
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    int r = nft_run_cmd_from_buffer(ctx, script);
    if (r != 0) {
        const char *e = nft_ctx_get_error_buffer(ctx);
        snprintf(err, errlen, "%s", e && *e ? e : "nftables refused the rules");
        size_t n = strlen(err);
        while (n && err[n - 1] == '\n')
            err[--n] = '\0';
    }
    nft_ctx_free(ctx);
    return r != 0 ? -EINVAL : 0;
}

static bool table_exists(struct egress_net *n)
{
    char script[96], err[256];
    snprintf(script, sizeof(script), "list table inet %s", n->table);
    return nft_run(script, err, sizeof(err)) == 0;
}

static int delete_table(struct egress_net *n)
{
    char script[96], err[256];
    snprintf(script, sizeof(script), "delete table inet %s", n->table);
    int r = nft_run(script, err, sizeof(err));
    if (r < 0)
        log_warn("egress: cannot delete nftables table %s: %s", n->table, err);
    return r;
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int egress_net_new(const char *state_dir, struct egress_net **out)
{
    struct egress_net *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    char real[4096];
    uint32_t tag = fnv1a(realpath(state_dir, real) ? real : state_dir) & 0xffff;
    snprintf(n->table, sizeof(n->table), "airlock_%04x", tag);
    snprintf(n->prefix, sizeof(n->prefix), "alk%04x", tag);
    n->base = (100u << 24) | ((64u + tag % 64u) << 16);
    pthread_mutex_init(&n->lock, NULL);
    /* a killed predecessor's rules: they match no interface now, but nothing
     * of ours stays on the host */
    if (table_exists(n)) {
        log_info("egress: deleting nftables table %s left by a previous run", n->table);
        delete_table(n);
    }
    *out = n;
    return 0;
}

static int set_forward(char *err, size_t errlen)
{
    int fd = open(IP_FORWARD, O_RDWR | O_CLOEXEC);
    char was = 0;
    if (fd < 0 || read(fd, &was, 1) != 1) {
        snprintf(err, errlen, "read %s: %s", IP_FORWARD, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    if (was != '1' && (lseek(fd, 0, SEEK_SET) < 0 || write(fd, "1", 1) != 1)) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "write %s: %s", IP_FORWARD, strerror(e));
        return -e;
    }
    close(fd);
    if (was != '1')
        log_info("egress: %s set to 1 for open egress (left so: others may need it too)", IP_FORWARD);
    return 0;
}

static int make_table(struct egress_net *n, char *err, size_t errlen)
{
    char script[4096];
    const char *t = n->table, *p = n->prefix;
    unsigned o2 = (n->base >> 16) & 0xff;
    snprintf(script, sizeof(script),
             "table inet %s {\n"
             " set internal4 {\n"
             "  type ipv4_addr; flags interval;\n"
             "  elements = { 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12,"
             " 192.0.0.0/24, 192.168.0.0/16, 198.18.0.0/15, 224.0.0.0/3 }\n"
             " }\n"
             " chain input {\n"
             "  type filter hook input priority filter - 10; policy accept;\n"
             "  iifname \"%s*\" meta l4proto tcp reject with tcp reset\n"
             "  iifname \"%s*\" reject with icmpx admin-prohibited\n"
             " }\n"
             " chain forward {\n"
             "  type filter hook forward priority filter - 10; policy accept;\n"
             "  iifname \"%s*\" jump from_sandbox\n"
             "  oifname \"%s*\" ct state established,related accept\n"
             "  oifname \"%s*\" drop\n"
             " }\n"
             " chain from_sandbox {\n"
             "  meta nfproto ipv6 reject with icmpx admin-prohibited\n"
             "  oifname \"%s*\" reject with icmpx admin-prohibited\n"
             "  ip daddr @internal4 meta l4proto tcp reject with tcp reset\n"
             "  ip daddr @internal4 reject with icmpx admin-prohibited\n"
             "  udp dport { 53, 853 } reject with icmpx admin-prohibited\n"
             "  tcp dport { 53, 853 } reject with tcp reset\n"
             "  meta l4proto { tcp, udp } accept\n"
             "  reject with icmpx admin-prohibited\n"
             " }\n"
             " chain postrouting {\n"
             "  type nat hook postrouting priority srcnat; policy accept;\n"
             "  ip saddr 100.%u.0.0/16 oifname != \"%s*\" masquerade\n"
             " }\n"
             "}\n",
             t, p, p, p, p, p, p, o2, p);
    int r = nft_run(script, err, errlen);
    if (r < 0)
        return r;
    if ((r = set_forward(err, errlen)) < 0) {
        delete_table(n);
        return r;
    }
    n->table_up = true;
    log_info("egress: nftables table %s made for open egress (links %s*, 100.%u.0.0/16)", t, p, o2);
    return 0;
}

int egress_net_acquire(struct egress_net *n, struct egress_link *l, char *err, size_t errlen)
{
    pthread_mutex_lock(&n->lock);
    int r = n->table_up ? 0 : make_table(n, err, errlen);
    if (r < 0) {
        pthread_mutex_unlock(&n->lock);
        return r;
    }
    unsigned i = 0;
    while (i < LINKS && (n->used[i / 8] & (1u << (i % 8))))
        i++;
    if (i == LINKS) {
        pthread_mutex_unlock(&n->lock);
        snprintf(err, errlen, "every open-egress link address of this daemon is in use");
        return -ENOSPC;
    }
    n->used[i / 8] |= (unsigned char)(1u << (i % 8));
    n->in_use++;
    pthread_mutex_unlock(&n->lock);
    memset(l, 0, sizeof(*l));
    snprintf(l->host_if, sizeof(l->host_if), "%s%x", n->prefix, i);
    l->host_addr = htonl(n->base + i * 4 + 1);
    l->sandbox_addr = htonl(n->base + i * 4 + 2);
    l->prefix = 30;
    return 0;
}

/* After the last link goes, no rule of open egress is left on the host.
 * Under the lock. */
static void table_down_locked(struct egress_net *n)
{
    if (!n->table_up)
        return;
    delete_table(n);
    n->table_up = false;
    /* ip_forward stays as it is: another daemon, or a container runtime,
     * may have links that need it now (docs/egress.md) */
}

void egress_net_release(struct egress_net *n, const struct egress_link *l)
{
    unsigned i = (ntohl(l->host_addr) - n->base - 1) / 4;
    if (i >= LINKS)
        return;
    pthread_mutex_lock(&n->lock);
    if (n->used[i / 8] & (1u << (i % 8))) {
        n->used[i / 8] &= (unsigned char)~(1u << (i % 8));
        if (--n->in_use == 0)
            table_down_locked(n);
    }
    pthread_mutex_unlock(&n->lock);
}

void egress_net_free(struct egress_net *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->lock);
    table_down_locked(n);
    pthread_mutex_unlock(&n->lock);
    pthread_mutex_destroy(&n->lock);
    free(n);
}
