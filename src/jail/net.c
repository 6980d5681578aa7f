/* net.c - the network of a sandbox: nothing but loopback.
 *
 * A new network namespace holds a single interface, `lo`, and it is down. We
 * bring it up so programs that talk to themselves over 127.0.0.1 work (Python
 * multiprocessing managers, local test servers). No other interface exists and
 * there is no route, so every other address fails at once with ENETUNREACH:
 * no DNS, no egress, nothing to time out on.
 */
#include "jail.h"

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
