/* registry.h - the registry of live sandboxes, their lifetimes, the reaper.
 *
 * A live sandbox is a backend instance (the jail) plus the agent connection.
 * Request handlers take a reference with sandbox_get() and drop it with
 * sandbox_unref(); destroying a sandbox (DELETE, expiry, crash, shutdown)
 * moves it from the live list to the dying list (where lookups find it and
 * answer as for a destroyed sandbox: GET "destroying", calls 410/404) and
 * kills its processes at once, which makes
 * every request still running in it fail with "agent gone"; the memory of
 * the struct goes with the last reference. So a DELETE during a request is
 * safe, and no request can outlive the agent connection it uses.
 *
 * The reaper thread wakes every second (or when signalled) and destroys
 * sandboxes past expires_at (reason "expired") and those whose agent
 * connection died (reason "crashed"). Every state change goes to the store.
 *
 * Ownership: a sandbox belongs to the key that created it. Every lookup on
 * behalf of a request (sandbox_get, sandbox_describe, sandbox_logs_json,
 * sandbox_list_json) takes the caller and is the only place that decides
 * visibility: an admin key sees every sandbox, any other key only its own,
 * and someone else's sandbox is answered exactly like an unknown id (404
 * "no sandbox <id>"), so its existence does not leak.
 */
#ifndef AIRLOCK_REGISTRY_H
#define AIRLOCK_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "agent_client.h"
#include "daemon.h"
#include "errors.h"
#include "store.h"

struct sandbox_params {
    const struct template_info *tmpl;
    bool egress;
    const char *region;
    unsigned timeout_s;
    unsigned memory_mb;
    double cpus;
    json_t *env;      /* object string->string, borrowed */
    json_t *metadata; /* object, borrowed */
    unsigned per_key_max; /* live sandboxes the owner key may have; 0: no limit */
};

/* Processes (and threads) one sandbox may hold: its cgroup's pids.max. */
#define SANDBOX_PIDS_MAX 512

struct sandbox; /* opaque outside sandbox.c */

/* What a pooled sandbox is built for: everything fixed when the backend
 * starts it. The lifetime, env, metadata and owner are not part of it; they
 * are assigned when a create takes the sandbox. */
struct sandbox_shape {
    const struct template_info *tmpl;
    unsigned memory_mb;
    double cpus;
    bool egress;
};
bool sandbox_shape_equal(const struct sandbox_shape *a, const struct sandbox_shape *b);

/* For pool.c. sandbox_build: start and greet a sandbox of shape s that has
 * no owner, no record and is in no list; one reference, the caller's. With
 * `prime`, a host-template REPL runs one empty call first (see
 * sandbox.c): for builds ahead of a create, not for one a create waits for.
 * sandbox_discard: destroy such a sandbox (never gone live). sandbox_crashed:
 * its agent connection died. sandbox_memory_bytes: its cgroup usage, 0 if
 * unknown. */
int sandbox_build(struct daemon *d, const struct sandbox_shape *s, bool prime, struct sandbox **out,
                  struct api_error *err);
void sandbox_discard(struct sandbox *sb);
bool sandbox_crashed(struct sandbox *sb);
uint64_t sandbox_memory_bytes(struct sandbox *sb);

int registry_new(struct daemon *d, struct registry **out);
/* Stop the reaper and free. Call after sandbox_destroy_all and after the HTTP
 * servers stopped (no references left). */
void registry_free(struct registry *reg);

/* Create a sandbox: a ready one from the warm pool if d->pool has one of
 * this shape, else start and greet a new one. 0 and a referenced *out, or an error
 * filled in err (429 quota_exceeded: --max-sandboxes, 429 sandbox_quota:
 * p->per_key_max, 500 backend failure, 503 shutting down, 503
 * audit_unavailable: its record and create event could not be written). */
int sandbox_create(struct daemon *d, const struct sandbox_params *p, const char *key_id, struct sandbox **out,
                   struct api_error *err);
/* A referenced live sandbox the caller may use, or err: 404 unknown / not
 * the caller's / destroyed (or being destroyed), 410 expired (or being torn
 * down after its expiry). */
int sandbox_get(struct daemon *d, const struct key_info *caller, const char *id, struct sandbox **out,
                struct api_error *err);
void sandbox_unref(struct sandbox *sb);
static inline void sandbox_unrefp(struct sandbox **sb)
{
    if (*sb)
        sandbox_unref(*sb);
}
#define cleanup_sandbox __attribute__((cleanup(sandbox_unrefp)))

/* Destroy now: recorded (with its audit event) first, then torn down. 0;
 * 1 when destroyed but the state store refused the record (written later
 * by the reaper; until then the registry answers for it); -ESRCH if it was
 * already being destroyed. key_id may be NULL (daemon-initiated). */
int sandbox_destroy(struct sandbox *sb, const char *reason, const char *key_id);
/* The same for a request that should not wait for the teardown: sb is
 * unreachable and recorded destroyed on return (unless 1), its agent told to
 * exit, and its processes, cgroup and mounts are released by the
 * d->teardown worker, or here when that queue is full. */
int sandbox_destroy_detached(struct sandbox *sb, const char *reason, const char *key_id);
/* Destroy every live sandbox (shutdown) and refuse new ones. */
void sandbox_destroy_all(struct daemon *d, const char *reason);
/* Written (with its audit event) before it takes effect: -ENOSPC/-EIO
 * leave the lifetime as it was; -ESRCH: no longer running. */
int sandbox_set_timeout(struct sandbox *sb, unsigned timeout_s, const char *key_id);

/* The API sandbox object of any sandbox the store knows (live or not) that
 * the caller may see; 404 otherwise. */
int sandbox_describe(struct daemon *d, const struct key_info *caller, const char *id, json_t **out,
                     struct api_error *err);
/* {"events":[...]}: the audit trail of a sandbox (live or not) the caller
 * may see; 404 otherwise. */
int sandbox_logs_json(struct daemon *d, const struct key_info *caller, const char *id, json_t **out,
                      struct api_error *err);
/* The API object of a live sandbox, as the caller sees it (admins also get
 * "key_id"). The caller must already be allowed to see sb. */
json_t *sandbox_json(struct sandbox *sb, const struct key_info *caller);
/* {"sandboxes":[...]} of the live ones the caller may see. */
json_t *sandbox_list_json(struct daemon *d, const struct key_info *caller);
unsigned sandbox_count(struct daemon *d);
/* Live sandboxes running on template `name`. */
unsigned sandbox_count_template(struct daemon *d, const char *name);

/* Accessors for request handlers. */
const char *sandbox_id(const struct sandbox *sb);
struct agent_conn *sandbox_agent(struct sandbox *sb);
json_t *sandbox_env(struct sandbox *sb); /* borrowed, immutable */
unsigned sandbox_memory_mb(const struct sandbox *sb);
/* OOM kills so far (0 if the backend cannot tell). */
uint64_t sandbox_oom_kills(struct sandbox *sb);
/* The error for a request whose agent went away: 410 if the sandbox
 * expired meanwhile, else 503 "sandbox agent is gone". */
int sandbox_gone_error(struct sandbox *sb, struct api_error *err);

#endif
