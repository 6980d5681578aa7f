/* build.h - the build sequence of one sandbox: backend create, agent
 * connection, hello, warm-up. Below both the registry (registry.c) and the
 * warm pool (pool.c), which both call it; it calls only the backend and the
 * agent client, so registry -> pool -> build -> backend has no cycle.
 *
 * A built sandbox has no owner, no record and is in no list; it holds one
 * reference, its builder's. The registry gives it an owner and a lifetime
 * when a create takes it (registry.h). */
#ifndef AIRLOCK_BUILD_H
#define AIRLOCK_BUILD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "agent_client.h"
#include "daemon.h"
#include "operr.h"

struct egress_policy;
struct egress_proxy;

/* Processes (and threads) one sandbox may hold: its cgroup's pids.max. */
#define SANDBOX_PIDS_MAX 512

struct sandbox; /* opaque outside build.c and registry.c */

/* What a pooled sandbox is built for: everything fixed when the backend
 * starts it. The lifetime, env, metadata and owner are not part of it; they
 * are assigned when a create takes the sandbox. */
struct sandbox_shape {
    const struct template_info *tmpl;
    unsigned memory_mb;
    double cpus;
    bool egress;
    int isolation; /* enum isolation: which backend builds it */
};
bool sandbox_shape_equal(const struct sandbox_shape *a, const struct sandbox_shape *b);

/* Start and greet a sandbox of shape s. With `prime`, a host-template REPL
 * runs one empty call first (see build.c): for builds ahead of a create, not
 * for one a create waits for. 0 and *out, or -errno and err: ERR_WARMUP (a
 * template's warm-up raised), else ERR_INTERNAL naming the failed step.
 * Logs nothing on failure: the caller decides and logs. */
int sandbox_build(struct daemon *d, const struct sandbox_shape *s, bool prime, struct sandbox **out,
                  struct op_error *err);
/* Free a sandbox nobody else references: closes the agent connection (joins
 * its reader) and destroys a backend instance still held. */
void sandbox_discard(struct sandbox *sb);
/* Its agent connection died. */
bool sandbox_crashed(struct sandbox *sb);

/* Called (from the agent's reader thread) when any sandbox's agent
 * connection dies, after sandbox_crashed turned true; the registry sets it at
 * init to wake its reaper. */
void sandbox_set_crash_hook(struct daemon *d, void (*hook)(struct daemon *d));

/* Fork (registry.c's sandbox_fork): at most this many children at once. */
#define SANDBOX_FORK_MAX 32
/* The shape sb was built with (its template valid while sb is live). */
void sandbox_shape_of(const struct sandbox *sb, struct sandbox_shape *out);
/* Its backend forks full state (memory, processes, REPL). */
bool sandbox_can_fork_full(const struct sandbox *sb);
/* n greeted children of a live parent, their state the parent's (the
 * backend's fork op): each with one reference, no owner, no record, like a
 * build's. The parent is paused only for the instant of the copy. 0, or
 * -errno and err (ERR_FORK_FAILED naming the step; nothing is left). */
int sandbox_build_fork(struct sandbox *parent, unsigned n, struct sandbox **out, struct op_error *err);

/* Accessors. */
const char *sandbox_id(const struct sandbox *sb);
struct agent_conn *sandbox_agent(struct sandbox *sb);
struct proctab *sandbox_procs(struct sandbox *sb); /* its background processes (proctab.h) */
json_t *sandbox_env(struct sandbox *sb); /* borrowed, immutable once created */
/* Serve an allow-list proxy (pol, consumed) in sb's network namespace;
 * before sb is visible. The API refuses backends without one first. */
int sandbox_start_egress(struct sandbox *sb, struct egress_policy *pol, struct op_error *err);
/* PUT /v1/sandboxes/{id}/egress: pol (consumed) for new connections at once,
 * open egress's link made or removed as pol->open says; *closed: the open
 * connections it closed. A link that cannot be made changes nothing. */
/* Whether its backend can have egress at all (the vm backend cannot). */
bool sandbox_egress_capable(const struct sandbox *sb);
/* A sandbox created sealed (no proxy): its proxy made now, with pol (taken).
 * 0 made, 1 it already had one (pol untouched: sandbox_set_egress), -errno. */
int sandbox_attach_egress(struct sandbox *sb, struct egress_policy *pol, struct op_error *err);
int sandbox_set_egress(struct sandbox *sb, struct egress_policy *pol, unsigned *closed, struct op_error *err);
/* The link and resolver removed, the proxy shut down (its log stays). */
void sandbox_stop_egress(struct sandbox *sb);
/* The proxy, or NULL for a sealed sandbox. */
struct egress_proxy *sandbox_egress(struct sandbox *sb);
unsigned sandbox_memory_mb(const struct sandbox *sb);
/* OOM kills so far (0 if the backend cannot tell). */
uint64_t sandbox_oom_kills(struct sandbox *sb);
/* Its cgroup's memory usage, 0 if unknown. */
uint64_t sandbox_memory_bytes(struct sandbox *sb);

#endif
