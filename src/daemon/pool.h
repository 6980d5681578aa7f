/* pool.h - the warm pool: sandboxes of the default shape, built and greeted
 * ahead of the creates that will want them.
 *
 * A pooled sandbox is fully started (namespaces, mounts, cgroup, seccomp,
 * agent up and answering HELLO) but has no owner, no store record, no
 * lifetime, and is not in the registry: nobody can see or reach it. A create
 * whose shape matches takes one (sandbox.c assigns everything that belongs to
 * the request: owner, env, metadata, lifetime, record, audit) and the pool
 * builds a replacement in its own thread. A taken sandbox never comes back:
 * it lives and dies like a freshly built one, so no process, file or memory
 * of one request can reach another.
 *
 * The pool holds between --pool-size and --pool-max sandboxes: the target
 * follows the creates of the last two seconds. Pool sandboxes do not count
 * against --max-sandboxes (that limit is about users' sandboxes); --pool-max
 * bounds them separately.
 */
#ifndef AIRLOCK_POOL_H
#define AIRLOCK_POOL_H

#include <jansson.h>

#include "daemon.h"
#include "sandbox.h"

struct pool;

/* Start the refill thread (nothing if --pool-size is 0: *out is then NULL,
 * and every function below accepts a NULL pool). Call after registry_new. */
int pool_new(struct daemon *d, struct pool **out);
/* Stop the refill thread and destroy every ready sandbox; pool_take answers
 * NULL from then on. At shutdown, before sandbox_destroy_all. Idempotent. */
void pool_stop(struct pool *p);
/* Stop (if not yet) and free. Only once no request can reach the pool any
 * more (after http_stop): a create in flight may still call pool_take. */
void pool_free(struct pool *p);
/* A ready sandbox of shape s, now the caller's (one reference), or NULL
 * (no pool, another shape, or none ready). Counts as demand either way. */
struct sandbox *pool_take(struct pool *p, const struct sandbox_shape *s);
/* {"enabled","target","ready","min","max","hits","misses","built",
 *  "build_failures","discarded_dead","memory_bytes"}: memory_bytes is the sum of the ready
 *  sandboxes' cgroup memory usage. */
json_t *pool_stats_json(struct pool *p);

#endif
