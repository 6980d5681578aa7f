/* net_link.c - open egress's link (docs/egress.md, mode 3), from outside.
 *
 * A veth pair: the host end in the daemon's network namespace, the peer
 * created directly inside the sandbox's as "eth0" (IFLA_NET_NS_FD in the
 * create message, so it never exists on the host under a guessable name).
 * Addresses, links and the default route are set over rtnetlink by daemon
 * threads, the sandbox's side by a thread that setns'd into its namespace
 * for that one job: user code never holds a capability, and the namespace's
 * configuration is done before the create answers.
 *
 * IPv6 is disabled on both ends: no link-local address, no router
 * solicitation, nothing the filter (egress_nft.c) would have to reason about.
 *
 * Teardown: the sandbox's TCP and UDP sockets to non-loopback peers are
 * aborted first (sock_diag SOCK_DESTROY: the peer gets a reset, the sandbox's
 * call fails with ECONNABORTED), then the host end is deleted, which deletes
 * the peer too. A daemon killed with -9 leaves the pair to the kernel: the
 * sandbox's agent sees EOF and exits, its namespace goes, and the veth with
 * it.
 */
#include "jail.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/inet_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/veth.h>

#define PEER_IF "eth0"
#define MAX_ABORTS 4096 /* sockets aborted per teardown; the rest lose their route */

/* ---- a fresh thread in the sandbox's network namespace */

struct ns_job {
    int pidfd;
    int (*fn)(void *arg);
    void *arg;
    int r;
};

/* setns changes only this thread's namespace, and the thread ends after fn:
 * no other daemon thread ever leaves the host's (net.c says the same). */
static void *ns_thread(void *p)
{
    struct ns_job *j = p;
    j->r = setns(j->pidfd, CLONE_NEWNET) < 0 ? -errno : j->fn(j->arg);
    return NULL;
}

static int in_netns(struct backend_instance *inst, int (*fn)(void *), void *arg)
{
    if (inst->pidfd < 0 || inst->reaped)
        return -ESRCH;
    struct ns_job j = {.pidfd = inst->pidfd, .fn = fn, .arg = arg};
    pthread_t t;
    int r = pthread_create(&t, NULL, ns_thread, &j);
    if (r != 0)
        return -r;
    pthread_join(t, NULL);
    return j.r;
}

/* ---- rtnetlink */

struct nl {
    struct mnl_socket *s;
    unsigned seq;
    unsigned portid;
};

static int nl_open(struct nl *n, int bus)
{
    n->s = mnl_socket_open2(bus, SOCK_CLOEXEC);
    if (!n->s)
        return -errno;
    if (mnl_socket_bind(n->s, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = -errno;
        mnl_socket_close(n->s);
        return e;
    }
    n->portid = mnl_socket_get_portid(n->s);
    n->seq = 1;
    return 0;
}

static void nl_close(struct nl *n) { mnl_socket_close(n->s); }

/* One request and its acknowledgement: 0 or the kernel's -errno. */
static int nl_talk(struct nl *n, struct nlmsghdr *h)
{
    h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    h->nlmsg_seq = ++n->seq;
    if (mnl_socket_sendto(n->s, h, h->nlmsg_len) < 0)
        return -errno;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    for (;;) {
        ssize_t len = mnl_socket_recvfrom(n->s, buf, sizeof(buf));
        if (len < 0)
            return -errno;
        int r = mnl_cb_run(buf, (size_t)len, h->nlmsg_seq, n->portid, NULL, NULL);
        if (r == MNL_CB_ERROR)
            return -errno;
        if (r == MNL_CB_STOP)
            return 0;
    }
}

static int link_set_up(struct nl *n, unsigned index)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_type = RTM_NEWLINK;
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(h, sizeof(*ifm));
    ifm->ifi_family = AF_UNSPEC;
    ifm->ifi_index = (int)index;
    ifm->ifi_flags = IFF_UP;
    ifm->ifi_change = IFF_UP;
    return nl_talk(n, h);
}

static int addr_add(struct nl *n, unsigned index, uint32_t addr, unsigned prefix)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_type = RTM_NEWADDR;
    h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(h, sizeof(*ifa));
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = index;
    mnl_attr_put_u32(h, IFA_LOCAL, addr);
    mnl_attr_put_u32(h, IFA_ADDRESS, addr);
    return nl_talk(n, h);
}

static int default_route(struct nl *n, unsigned index, uint32_t gw)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_type = RTM_NEWROUTE;
    h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct rtmsg *rt = mnl_nlmsg_put_extra_header(h, sizeof(*rt));
    rt->rtm_family = AF_INET;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_STATIC;
    rt->rtm_scope = RT_SCOPE_UNIVERSE;
    rt->rtm_type = RTN_UNICAST;
    mnl_attr_put_u32(h, RTA_GATEWAY, gw);
    mnl_attr_put_u32(h, RTA_OIF, index);
    return nl_talk(n, h);
}

/* The pair, the peer born in the namespace nsfd names. */
static int veth_create(struct nl *n, const char *host_if, int nsfd)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_type = RTM_NEWLINK;
    h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(h, sizeof(*ifm));
    ifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(h, IFLA_IFNAME, host_if);
    struct nlattr *li = mnl_attr_nest_start(h, IFLA_LINKINFO);
    mnl_attr_put_strz(h, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(h, IFLA_INFO_DATA);
    struct nlattr *peer = mnl_attr_nest_start(h, VETH_INFO_PEER);
    struct ifinfomsg *pifm = mnl_nlmsg_put_extra_header(h, sizeof(*pifm));
    pifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(h, IFLA_IFNAME, PEER_IF);
    mnl_attr_put_u32(h, IFLA_NET_NS_FD, (uint32_t)nsfd);
    mnl_attr_nest_end(h, peer);
    mnl_attr_nest_end(h, data);
    mnl_attr_nest_end(h, li);
    return nl_talk(n, h);
}

static int link_delete(struct nl *n, const char *ifname)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_type = RTM_DELLINK;
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(h, sizeof(*ifm));
    ifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(h, IFLA_IFNAME, ifname);
    return nl_talk(n, h);
}

/* /proc/sys/net is the calling thread's namespace's */
static int no_ipv6(const char *ifname)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno; /* a kernel without IPv6 */
    ssize_t w = write(fd, "1", 1);
    int e = w == 1 ? 0 : (w < 0 ? -errno : -EIO);
    close(fd);
    return e;
}

/* ---- inside the sandbox's namespace */

static int get_nsfd(void *arg)
{
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    *(int *)arg = fd;
    return 0;
}

static int configure_peer(void *arg)
{
    const struct egress_link *l = arg;
    unsigned index = if_nametoindex(PEER_IF);
    if (index == 0)
        return -errno;
    struct nl n;
    int r = no_ipv6(PEER_IF);
    if (r < 0 || (r = nl_open(&n, NETLINK_ROUTE)) < 0)
        return r;
    if ((r = addr_add(&n, index, l->sandbox_addr, l->prefix)) == 0 && (r = link_set_up(&n, index)) == 0)
        r = default_route(&n, index, l->host_addr);
    nl_close(&n);
    return r;
}

int net_link_up(struct backend_instance *inst, const struct egress_link *l)
{
    int nsfd = -1;
    int r = in_netns(inst, get_nsfd, &nsfd);
    if (r < 0)
        return r;
    struct nl n;
    if ((r = nl_open(&n, NETLINK_ROUTE)) < 0) {
        close(nsfd);
        return r;
    }
    r = veth_create(&n, l->host_if, nsfd);
    close(nsfd);
    if (r < 0) {
        nl_close(&n);
        return r;
    }
    unsigned index = if_nametoindex(l->host_if);
    if (index == 0)
        r = -errno;
    if (r == 0)
        r = no_ipv6(l->host_if);
    if (r == 0)
        r = addr_add(&n, index, l->host_addr, l->prefix);
    if (r == 0)
        r = link_set_up(&n, index);
    if (r == 0)
        r = in_netns(inst, configure_peer, (void *)l);
    if (r < 0)
        (void)link_delete(&n, l->host_if); /* the peer goes with it */
    nl_close(&n);
    return r;
}

/* ---- teardown */

struct victims {
    struct inet_diag_sockid ids[MAX_ABORTS];
    unsigned n;
};

static bool loopback_or_none(const struct inet_diag_sockid *id)
{
    uint32_t dst = ntohl(id->idiag_dst[0]);
    return dst == 0 || (dst >> 24) == 127;
}

static int collect(const struct nlmsghdr *h, void *arg)
{
    struct victims *v = arg;
    const struct inet_diag_msg *m = mnl_nlmsg_get_payload(h);
    if (v->n < MAX_ABORTS && !loopback_or_none(&m->id))
        v->ids[v->n++] = m->id;
    return MNL_CB_OK;
}

static void diag_req(struct nlmsghdr *h, uint8_t protocol)
{
    struct inet_diag_req_v2 *req = mnl_nlmsg_put_extra_header(h, sizeof(*req));
    req->sdiag_family = AF_INET;
    req->sdiag_protocol = protocol;
    req->idiag_states = ~(1u << 10); /* all but TCP_LISTEN */
}

static int abort_proto(struct nl *n, uint8_t protocol, struct victims *v, unsigned *closed)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    h->nlmsg_seq = ++n->seq;
    diag_req(h, protocol);
    if (mnl_socket_sendto(n->s, h, h->nlmsg_len) < 0)
        return -errno;
    unsigned seq = h->nlmsg_seq;
    v->n = 0;
    for (;;) {
        ssize_t len = mnl_socket_recvfrom(n->s, buf, sizeof(buf));
        if (len < 0)
            return -errno;
        int r = mnl_cb_run(buf, (size_t)len, seq, n->portid, collect, v);
        if (r == MNL_CB_ERROR)
            return -errno;
        if (r == MNL_CB_STOP)
            break;
    }
    for (unsigned i = 0; i < v->n; i++) {
        h = mnl_nlmsg_put_header(buf);
        h->nlmsg_type = SOCK_DESTROY;
        diag_req(h, protocol);
        struct inet_diag_req_v2 *req = mnl_nlmsg_get_payload(h);
        req->idiag_states = ~0u;
        req->id = v->ids[i];
        /* gone meanwhile (ENOENT) is fine: it is closed either way */
        int r = nl_talk(n, h);
        if (r == 0)
            (*closed)++;
        else if (r != -ENOENT)
            return r;
    }
    return 0;
}

static int abort_sockets(void *arg)
{
    unsigned *closed = arg;
    struct nl n;
    int r = nl_open(&n, NETLINK_SOCK_DIAG);
    if (r < 0)
        return r;
    struct victims *v = malloc(sizeof(*v));
    if (!v) {
        nl_close(&n);
        return -ENOMEM;
    }
    r = abort_proto(&n, IPPROTO_TCP, v, closed);
    if (r == 0)
        r = abort_proto(&n, IPPROTO_UDP, v, closed);
    free(v);
    nl_close(&n);
    return r;
}

int net_link_down(struct backend_instance *inst, const struct egress_link *l, unsigned *closed)
{
    *closed = 0;
    /* a sandbox already gone has no sockets left: only the link matters */
    int ra = inst ? in_netns(inst, abort_sockets, closed) : 0;
    if (ra == -ESRCH)
        ra = 0;
    struct nl n;
    int r = nl_open(&n, NETLINK_ROUTE);
    if (r < 0)
        return r;
    r = link_delete(&n, l->host_if);
    nl_close(&n);
    if (r == -ENODEV) /* its namespace went first, and took it */
        r = 0;
    return r < 0 ? r : ra;
}
