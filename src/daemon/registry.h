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
#include "build.h"
#include "daemon.h"
#include "operr.h"
#include "store.h"

struct sandbox_params {
    const struct template_info *tmpl;
    bool egress;
    const char *region;
    unsigned timeout_s;
    unsigned memory_mb;
    double cpus;
    int isolation;    /* enum isolation */
    json_t *env;      /* object string->string, borrowed */
    json_t *metadata; /* object, borrowed */
    unsigned per_key_max; /* live sandboxes the owner key may have; 0: no limit */
    /* the allow-list (egress must be true), or NULL: sealed. Consumed by
     * sandbox_create, whether it succeeds or not. */
    struct egress_policy *egress_policy;
};

int registry_new(struct daemon *d, struct registry **out);
/* Stop the reaper and free. Call after sandbox_destroy_all and after the HTTP
 * servers stopped (no references left). */
void registry_free(struct registry *reg);

/* Create a sandbox: a ready one from the warm pool if d->pool has one of
 * this shape, else build a new one (build.h). 0 and a referenced *out, or an
 * error filled in err (ERR_QUOTA: --max-sandboxes, ERR_KEY_QUOTA:
 * p->per_key_max, the build's error, ERR_SHUTTING_DOWN, ERR_AUDIT: its
 * record and create event could not be written). */
int sandbox_create(struct daemon *d, const struct sandbox_params *p, const char *key_id, struct sandbox **out,
                   struct op_error *err);
/* A referenced live sandbox the caller may use, or err: ERR_NOT_FOUND
 * unknown / not the caller's / destroyed (or being destroyed), ERR_EXPIRED
 * expired (or being torn down after its expiry). */
int sandbox_get(struct daemon *d, const struct key_info *caller, const char *id, struct sandbox **out,
                struct op_error *err);
/* The same, paused sandboxes included: for the calls that do not need its
 * agent (DELETE, timeout, egress policy, pause, resume). sandbox_get
 * answers a paused one ERR_PAUSED (409 sandbox_paused). */
int sandbox_get_any(struct daemon *d, const struct key_info *caller, const char *id, struct sandbox **out,
                    struct op_error *err);
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
 * leave the lifetime as it was; -ESRCH: no longer running. extend_only:
 * a lifetime that already ends later is left as it is (1, nothing written). */
int sandbox_set_timeout(struct sandbox *sb, unsigned timeout_s, bool extend_only, const char *key_id);

/* Pause: every process of the sandbox stops where it stands (no CPU), its
 * memory, files and REPL kept; its lifetime clock stops and --max-paused
 * bounds the pause. Resume: it runs on, its lifetime moved by the time
 * paused. Each is written (with its "pause"/"resume" audit event) before it
 * takes effect. 0 done; 1 already paused / already running (nothing
 * written); or err: ERR_BUSY a call is running (pause only), ERR_NO_PAUSE
 * the backend cannot, ERR_AUDIT, ERR_EXPIRED, ERR_INTERNAL the backend
 * failed (nothing changed), or the error for a sandbox gone meanwhile. */
int sandbox_pause(struct sandbox *sb, const char *key_id, struct op_error *err);
int sandbox_resume(struct sandbox *sb, const char *key_id, struct op_error *err);
/* Fork parent into n (1..SANDBOX_FORK_MAX) children (docs/api.md): each
 * with the parent's template, limits, egress policy, env, metadata, owner
 * and lifetime length; its own id, lifetime and audit trail ("fork" by
 * key_id); parent_id the parent, family_id the parent's family. *full:
 * the backend copied the whole state (vm: memory, processes, REPL), else
 * the children are fresh sandboxes holding a copy of the parent's files.
 * The quotas count the n children as n creates. 0 with n referenced
 * children in out, or err (nothing is left). */
int sandbox_fork(struct daemon *d, struct sandbox *parent, unsigned n, const char *key_id, unsigned per_key_max,
                 struct sandbox **out, bool *full, struct op_error *err);
/* The root of sb's fork family (its own id if it was not forked). */
const char *sandbox_family(const struct sandbox *sb);
bool sandbox_same_family(const struct sandbox *a, const struct sandbox *b);

/* The API sandbox object of any sandbox the store knows (live or not) that
 * the caller may see; ERR_NOT_FOUND otherwise. */
int sandbox_describe(struct daemon *d, const struct key_info *caller, const char *id, json_t **out,
                     struct op_error *err);
/* {"events":[...]}: the audit trail of a sandbox (live or not) the caller
 * may see; ERR_NOT_FOUND otherwise. */
int sandbox_logs_json(struct daemon *d, const struct key_info *caller, const char *id, json_t **out,
                      struct op_error *err);
/* The API object of a live sandbox, as the caller sees it (admins also get
 * "key_id"). The caller must already be allowed to see sb. */
json_t *sandbox_json(struct sandbox *sb, const struct key_info *caller);
/* {"sandboxes":[...]} of the live ones the caller may see. */
json_t *sandbox_list_json(struct daemon *d, const struct key_info *caller);
unsigned sandbox_count(struct daemon *d);
/* Live sandboxes running on template `name`. */
unsigned sandbox_count_template(struct daemon *d, const char *name);

/* The error for a request whose agent went away: ERR_EXPIRED if the
 * sandbox expired meanwhile, ERR_SHUTTING_DOWN, else ERR_AGENT_GONE. */
int sandbox_gone_error(struct sandbox *sb, struct op_error *err);

#endif
