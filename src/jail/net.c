/* net.c - the network of a sandbox: nothing but loopback.
 *
 * A new network namespace holds a single interface, `lo`, and it is down. We
 * bring it up so programs that talk to themselves over 127.0.0.1 work (Python
 * multiprocessing managers, local test servers). No other interface exists and
 * there is no route, so every other address fails at once with ENETUNREACH:
 * no DNS, no egress, nothing to time out on.
 */
#include "jail.h"

#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* child */
int net_loopback_up(struct jail_child_error *e)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return child_fail(e, "socket", "AF_INET", errno);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
        int saved = errno;
        close(fd);
        return child_fail(e, "SIOCGIFFLAGS", "lo", saved);
    }
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
        int saved = errno;
        close(fd);
        return child_fail(e, "SIOCSIFFLAGS", "lo", saved);
    }
    close(fd);
    return 0;
}

/* TCP buffer sizes in the sandbox's own network namespace (tcp_rmem and
 * tcp_wmem are per namespace and writable by its owner; net.core's
 * rmem/wmem are per namespace too but read-only outside the host's, so UDP
 * and unix sockets keep the host's maxima). These bound what one socket may
 * take by autotuning, not the total: what bounds the total is the cgroup
 * (v2 charges every socket buffer to memory.max, v1 only TCP, through
 * memory.kmem.tcp.limit_in_bytes: cgroup.c). Written through the host's
 * /proc, which the child still sees, as root of the namespace's owner. */
static const struct {
    const char *path, *value;
} buffer_caps[] = {
    {"/proc/sys/net/ipv4/tcp_rmem", "4096 131072 4194304"},
    {"/proc/sys/net/ipv4/tcp_wmem", "4096 16384 4194304"},
};

int net_cap_buffers(struct jail_child_error *e)
{
    for (size_t i = 0; i < sizeof(buffer_caps) / sizeof(buffer_caps[0]); i++) {
        int fd = open(buffer_caps[i].path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return child_fail(e, "open", buffer_caps[i].path, errno);
        size_t n = strlen(buffer_caps[i].value);
        ssize_t w = write(fd, buffer_caps[i].value, n);
        int saved = w < 0 ? errno : EIO;
        close(fd);
        if (w != (ssize_t)n)
            return child_fail(e, "write", buffer_caps[i].path, saved);
    }
    return 0;
}

/* ---- parent: the egress proxy's listener (docs/egress.md) */

struct listen_job {
    int pidfd;
    int type;
    uint16_t port;
    int fd; /* out */
    int err;
};

/* A thread of its own: setns changes only the calling thread's network
 * namespace, and this one ends right after, so no other daemon thread ever
 * leaves the host's. A socket stays in the namespace it was made in, so the
 * listener is the sandbox's 127.0.0.1 while the daemon serves it from here.
 * Simpler than making it in the child and passing it back (the child has no
 * channel for fds and is a zygote's or the clone's, two paths), and the
 * pidfd names the agent itself: never a recycled pid. */
static void *listen_in_netns(void *arg)
{
    struct listen_job *j = arg;
    if (setns(j->pidfd, CLONE_NEWNET) < 0) {
        j->err = -errno;
        return NULL;
    }
    int fd = socket(AF_INET, j->type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        j->err = -errno;
        return NULL;
    }
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(j->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (j->type == SOCK_STREAM && listen(fd, 128) < 0)) {
        j->err = -errno;
        close(fd);
        return NULL;
    }
    j->fd = fd;
    return NULL;
}

int net_egress_listen(struct backend_instance *inst, int type, uint16_t port, int *fd)
{
    if (inst->pidfd < 0 || inst->reaped)
        return -ESRCH;
    struct listen_job j = {.pidfd = inst->pidfd, .type = type, .port = port, .fd = -1};
    pthread_t t;
    int r = pthread_create(&t, NULL, listen_in_netns, &j);
    if (r != 0)
        return -r;
    pthread_join(t, NULL);
    if (j.err < 0)
        return j.err;
    *fd = j.fd;
    return 0;
}
