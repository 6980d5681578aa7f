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
