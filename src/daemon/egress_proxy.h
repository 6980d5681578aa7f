/* egress_proxy.h - the allow-list proxy of one sandbox (docs/egress.md).
 *
 * The daemon serves it on a listening socket that lives in the sandbox's
 * own network namespace (127.0.0.1:EGRESS_PROXY_PORT there, made by the
 * backend: jail_egress_listen), while every connection out is made from the
 * daemon's namespace. The sandbox has no route and no resolver: this socket
 * is its only way out, and only to what the policy allows.
 *
 * Threads: one accepts; one per connection reads the request head (HTTP
 * CONNECT or plain HTTP in absolute form, parsed by libhttp-parser), decides
 * (egress_policy.h) before resolving anything, resolves and connects, checks
 * a TLS ClientHello's server name against the CONNECT host, then relays.
 * Every connection ends as one log entry (egress_log.h) and one audit row.
 */
#ifndef AIRLOCK_EGRESS_PROXY_H
#define AIRLOCK_EGRESS_PROXY_H

#include <jansson.h>

#include "egress_log.h"
#include "egress_policy.h"
#include "backend.h"
#include "store.h"

#define EGRESS_PROXY_PORT 3128
#define EGRESS_PROXY_URL "http://127.0.0.1:3128"
#define EGRESS_PROXY_MAX_CONNS 64 /* open at once, per sandbox */

struct egress_proxy;

/* Serve listen_fd (consumed, even on failure) under pol (consumed). */
int egress_proxy_start(int listen_fd, const char *sandbox_id, struct store *store, struct egress_policy *pol,
                       struct egress_proxy **out);
/* Replace the policy (consumed) for new connections at once; open ones it
 * no longer allows are closed (logged "revoked"). Returns how many. */
unsigned egress_proxy_set_policy(struct egress_proxy *px, struct egress_policy *pol);
json_t *egress_proxy_policy_json(struct egress_proxy *px);
/* Whether the policy now is the open one (mode 3). */
bool egress_proxy_is_open(struct egress_proxy *px);
/* One entry in the sandbox's egress log and the audit log: the DNS
 * resolver's queries and open egress's closures use it too. */
void egress_proxy_record(struct egress_proxy *px, const struct egress_log_entry *e);
json_t *egress_proxy_log_json(struct egress_proxy *px);
/* Close the listener and every connection, wait for their threads; the
 * policy and the log stay readable. Idempotent. */
void egress_proxy_shutdown(struct egress_proxy *px);
/* Shut down (if not yet) and free. */
void egress_proxy_free(struct egress_proxy *px);

#endif
