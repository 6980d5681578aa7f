/* egress_net.h - the host side of open egress (docs/egress.md, mode 3).
 *
 * One per daemon: an nftables table of its own (libnftables), the range its
 * sandboxes' links take their addresses from, and which of those are in use.
 * The table and the interface names carry a tag derived from the daemon's
 * state directory, so two daemons on one host never touch each other's, and
 * a daemon restarted on the same state directory finds and deletes what a
 * killed predecessor left (the table; its veths went with their sandboxes'
 * namespaces).
 *
 * The table exists while some sandbox has open egress: made with the first
 * link (net.ipv4.ip_forward set to 1 then, and left so: another daemon or a
 * container runtime may rely on it), deleted with the last. A daemon that
 * never serves one never touches the host's firewall or ip_forward.
 */
#ifndef AIRLOCK_EGRESS_NET_H
#define AIRLOCK_EGRESS_NET_H

#include "backend.h"

struct egress_net;

/* Deletes a table a previous daemon on state_dir left. */
int egress_net_new(const char *state_dir, struct egress_net **out);
/* Free (and fill) a link for one sandbox; makes the table if not yet.
 * 0, -ENOSPC when every address is taken, or the failure with a message in
 * err. */
int egress_net_acquire(struct egress_net *n, struct egress_link *l, char *err, size_t errlen);
/* The last one released deletes the table. */
void egress_net_release(struct egress_net *n, const struct egress_link *l);
/* Deletes the table (if up). */
void egress_net_free(struct egress_net *n);

#endif
