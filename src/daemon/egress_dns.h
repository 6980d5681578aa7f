/* egress_dns.h - the DNS resolver the daemon serves to an open-egress
 * sandbox, on a UDP socket bound to 127.0.0.1:53 in the sandbox's own
 * namespace (egress_dns.c says how). Every query lands in the sandbox's
 * egress log (method "DNS") through its proxy's log. */
#ifndef AIRLOCK_EGRESS_DNS_H
#define AIRLOCK_EGRESS_DNS_H

#include "egress_proxy.h"

#define EGRESS_DNS_PORT 53

struct egress_dns;

/* Serve fd (consumed, even on failure); entries go to px's log. */
int egress_dns_start(int fd, struct egress_proxy *px, struct egress_dns **out);
/* Stop the thread, close the socket, free. NULL is a no-op. */
void egress_dns_stop(struct egress_dns *d);

#endif
