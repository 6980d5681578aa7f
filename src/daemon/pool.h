/* pool.h - the warm pool: sandboxes built and greeted ahead of the creates
 * that will want them, one stack per shape.
 *
 * A pooled sandbox is fully started (namespaces, mounts, cgroup, seccomp,
 * agent up and answering HELLO) but has no owner, no store record, no
 * lifetime, and is not in the registry: nobody can see or reach it. A create
 * whose shape matches takes one (registry.c assigns everything that belongs to
 * the request: owner, env, metadata, lifetime, record, audit) and the pool
 * builds a replacement in its own thread. A taken sandbox never comes back:
 * it lives and dies like a freshly built one, so no process, file or memory
 * of one request can reach another.
 *
 * Shapes: a shape (struct sandbox_shape: template, memory, cpus, egress) is
 * everything fixed when the backend starts a sandbox. The default create's
 * shape always has a pool of at least --pool-size. Any other shape gets a
 * pool the first time a create asks for it; its target follows its own
 * creates of the last one to two seconds (at least one while the shape was
 * asked for in the last POOL_SHAPE_IDLE_MS), and a shape nobody asked for in
 * that long drains to 0 and is forgotten. --pool-max bounds the ready
 * sandboxes of all shapes together; when the targets add up to more, the
 * budget is shared max-min fairly (the default shape's --pool-size first).
 * Pool sandboxes do not count against --max-sandboxes (that limit is about
 * users' sandboxes); --pool-max bounds them separately.
 */
#ifndef AIRLOCK_POOL_H
#define AIRLOCK_POOL_H

#include <jansson.h>

#include "daemon.h"
#include "build.h"

/* How many shapes are tracked at once; a create of a further shape is a
 * plain build until an idle shape is forgotten. */
#define POOL_MAX_SHAPES 16
/* A non-default shape keeps one ready sandbox this long after its last
 * create, then drains to 0. */
#define POOL_SHAPE_IDLE_MS 30000

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
 * (no pool, none ready yet). Counts as demand for s either way, and a shape
 * not seen before gets a pool from now on. */
struct sandbox *pool_take(struct pool *p, const struct sandbox_shape *s);
/* Forget every shape of template `name` and destroy its ready sandboxes:
 * for a template that goes away (they have its tree mounted). The pool
 * keeps template names, not pointers, and acquires a built template for
 * each build (templates_acquire verifies it and holds it meanwhile). */
void pool_drop_template(struct pool *p, const char *name);
/* {"enabled","target","ready","min","max","hits","misses","built",
 *  "build_failures","discarded_dead","memory_bytes","shapes":[...]}: the
 *  totals over all shapes, and per shape {"template","memory_mb","cpus",
 *  "egress","default","target","ready","hits","misses","built",
 *  "build_failures","discarded_dead","memory_bytes"}. memory_bytes is the
 *  ready sandboxes' cgroup memory usage. */
json_t *pool_stats_json(struct pool *p);

#endif
