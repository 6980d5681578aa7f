/* bgwork.h - a bounded queue of jobs run in order by one background thread:
 * work that must happen but need not delay a reply (sandbox teardown).
 *
 * Bounded on purpose: a job holds resources until it runs (a sandbox's
 * processes, cgroup, mounts), so when the queue is full the caller runs the
 * job itself, and a client that deletes faster than teardown keeps up is
 * slowed down instead of piling up half-dead sandboxes. */
#ifndef AIRLOCK_BGWORK_H
#define AIRLOCK_BGWORK_H
#include <stdbool.h>
#include <stddef.h>

struct bgwork;

/* Start the worker thread (named name, at most 15 characters). */
int bgwork_new(const char *name, size_t max, struct bgwork **out);
/* Queue fn(arg). False when the queue is full or stopping (w may be NULL):
 * then the caller must run it. */
bool bgwork_submit(struct bgwork *w, void (*fn)(void *arg), void *arg);
/* Jobs queued or running (tests, debug logs). */
size_t bgwork_pending(struct bgwork *w);
/* Refuse new jobs, run every queued one, join the thread, free. NULL is a no-op. */
void bgwork_free(struct bgwork *w);

#endif
