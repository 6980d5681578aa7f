#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bgwork.h"
#include "build.h"
#include "egress_policy.h"
#include "egress_proxy.h"
#include "famfiles.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "record.h"
#include "sandbox_impl.h"
#include "util.h"

#define REAPER_PERIOD_MS 1000

/* A create in progress, between reserving its place and joining the live
 * list: it lives on the creating thread's stack, linked here so the
 * per-key quota counts it like the global one counts `reserved`. */
struct pending_create {
    const char *key_id;
    unsigned n; /* places it holds: 1 for a create, a fork's children */
    struct pending_create *next;
};

struct registry {
    struct daemon *d;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* wakes the reaper (CLOCK_MONOTONIC) */
    struct sandbox *live, *live_tail; /* oldest first */
    struct sandbox *dying;   /* destroyed, not yet torn down or not yet recorded */
    unsigned count;    /* live */
    unsigned reserved; /* being created, count against the quota */
    struct pending_create *pending; /* the `reserved` creates, by key */
    bool accepting;    /* false once shutdown began */
    bool stop;         /* reaper: exit */
    pthread_t reaper;
};

/* ---- ownership */

/* The one ownership rule: admins see every sandbox, other keys their own.
 * A record without an owner (the API never makes one) is admin-only rather
 * than everyone's. owner is immutable once the sandbox exists, so reading it
 * needs no lock. */
static bool visible_to(const struct key_info *caller, const char *owner)
{
    return caller->admin || (owner[0] && strcmp(owner, caller->id) == 0);
}

/* Unknown ids and other keys' sandboxes get the same answer, byte for byte,
 * so a key cannot probe which ids exist. */
static int no_such_sandbox(const char *id, struct op_error *err)
{
    return op_error_set(err, -ENOENT, ERR_NOT_FOUND, "no sandbox %s", id);
}

/* ---- lifetime */

/* Past its lifetime: for a paused sandbox the clock stands still and
 * --max-paused decides instead. Caller holds the lock. */
static bool past_lifetime_locked(const struct sandbox *sb, uint64_t now)
{
    return sb->paused ? now >= sb->pause_deadline_ms : now >= sb->expires_ms;
}

/* ---- records and JSON */

json_t *sandbox_json(struct sandbox *sb, const struct key_info *caller)
{
    struct registry *reg = sb->d->reg;
    cleanup_free char *md = json_dumps(sb->metadata, JSON_COMPACT);
    struct sandbox_record rec;
    pthread_mutex_lock(&reg->lock);
    sandbox_fill_record(sb, &rec, md);
    if (sb->state == SB_RUNNING && past_lifetime_locked(sb, now_wall_ms())) {
        /* past its lifetime, the reaper not there yet: calls already answer
         * 410 (sandbox_get), so GET must not say running */
        snprintf(rec.state, sizeof(rec.state), "destroying");
        snprintf(rec.destroy_reason, sizeof(rec.destroy_reason), "expired");
    }
    pthread_mutex_unlock(&reg->lock);
    return sandbox_record_json(&rec, caller->admin);
}

/* ---- references */

void sandbox_unref(struct sandbox *sb)
{
    struct registry *reg = sb->d->reg;
    pthread_mutex_lock(&reg->lock);
    bool last = --sb->refs == 0;
    pthread_mutex_unlock(&reg->lock);
    if (last)
        sandbox_discard(sb);
}

/* ---- accessors */

int sandbox_gone_error(struct sandbox *sb, struct op_error *err)
{
    struct registry *reg = sb->d->reg;
    pthread_mutex_lock(&reg->lock);
    bool expired = sb->state != SB_RUNNING && strcmp(sb->destroy_reason, "expired") == 0;
    bool shutdown = sb->state != SB_RUNNING && strcmp(sb->destroy_reason, "shutdown") == 0;
    pthread_mutex_unlock(&reg->lock);
    if (expired)
        return op_error_set(err, -ETIME, ERR_EXPIRED, "sandbox %s expired", sb->id);
    if (shutdown)
        return op_error_set(err, -ESHUTDOWN, ERR_SHUTTING_DOWN, "the daemon is shutting down");
    return op_error_set(err, -EPIPE, ERR_AGENT_GONE, "sandbox agent is gone");
}

/* ---- lookup */

/* A sandbox in the registry: live, or destroyed and still on the dying
 * list. */
static struct sandbox *find_live_locked(struct registry *reg, const char *id)
{
    for (struct sandbox *sb = reg->live; sb; sb = sb->next)
        if (strcmp(sb->id, id) == 0)
            return sb;
    for (struct sandbox *sb = reg->dying; sb; sb = sb->next)
        if (strcmp(sb->id, id) == 0)
            return sb;
    return NULL;
}

/* The answer to a call on a sandbox on the dying list: the one it gets
 * once the sandbox is gone (not_live_error), so that the end of the
 * teardown changes nothing: 410 sandbox_expired for an expiry, 404 with the
 * reason otherwise. */
static int dying_error_locked(const struct sandbox *sb, struct op_error *err)
{
    if (strcmp(sb->destroy_reason, "expired") == 0)
        return op_error_set(err, -ETIME, ERR_EXPIRED, "sandbox %s expired", sb->id);
    return op_error_set(err, -ENOENT, ERR_NOT_FOUND, "sandbox %s was destroyed (%s)", sb->id, sb->destroy_reason);
}

/* The stored record of id if the caller may see it (live or not): 0 and rec
 * filled (store_record_clear it), or err (ERR_NOT_FOUND: unknown or not the
 * caller's). */
static int visible_record(struct daemon *d, const struct key_info *caller, const char *id,
                          struct sandbox_record *rec, struct op_error *err)
{
    int r = sandbox_id_valid(id) ? store_sandbox_get(d->store, id, rec) : -ENOENT;
    if (r == -ENOENT)
        return no_such_sandbox(id, err);
    if (r < 0)
        return op_error_set(err, r, ERR_INTERNAL, "read the record of sandbox %s", id);
    if (!visible_to(caller, rec->key_id)) {
        store_record_clear(rec);
        return no_such_sandbox(id, err);
    }
    return 0;
}

/* The error for an id that is not live, from its record. */
static int not_live_error(struct daemon *d, const struct key_info *caller, const char *id, struct op_error *err)
{
    struct sandbox_record rec;
    int r = visible_record(d, caller, id, &rec, err);
    if (r < 0)
        return r;
    if (strcmp(rec.destroy_reason, "expired") == 0)
        r = op_error_set(err, -ETIME, ERR_EXPIRED, "sandbox %s expired", id);
    else if (rec.destroy_reason[0])
        r = op_error_set(err, -ENOENT, ERR_NOT_FOUND, "sandbox %s was destroyed (%s)", id, rec.destroy_reason);
    else
        r = op_error_set(err, -ENOENT, ERR_NOT_FOUND, "sandbox %s is being destroyed", id);
    store_record_clear(&rec);
    return r;
}

static int get_live(struct daemon *d, const struct key_info *caller, const char *id, bool paused_ok,
                    struct sandbox **out, struct op_error *err)
{
    struct registry *reg = d->reg;
    pthread_mutex_lock(&reg->lock);
    struct sandbox *sb = find_live_locked(reg, id);
    if (sb && !visible_to(caller, sb->key_id)) {
        /* before the expiry check: a 410 would tell that the id exists */
        pthread_mutex_unlock(&reg->lock);
        return no_such_sandbox(id, err);
    }
    if (sb && sb->state == SB_RUNNING && past_lifetime_locked(sb, now_wall_ms())) {
        /* past its lifetime; the reaper may not have run yet */
        pthread_cond_signal(&reg->wake);
        pthread_mutex_unlock(&reg->lock);
        return op_error_set(err, -ETIME, ERR_EXPIRED, "sandbox %s expired", id);
    }
    if (sb && sb->state == SB_RUNNING && sb->paused && !paused_ok) {
        pthread_mutex_unlock(&reg->lock);
        return op_error_set(err, -EAGAIN, ERR_PAUSED, "sandbox %s is paused: resume it first (POST /v1/sandboxes/%s/resume)",
                            id, id);
    }
    if (sb && sb->state == SB_RUNNING) {
        sb->refs++;
        pthread_mutex_unlock(&reg->lock);
        *out = sb;
        return 0;
    }
    if (sb) {
        int r = dying_error_locked(sb, err);
        pthread_mutex_unlock(&reg->lock);
        return r;
    }
    pthread_mutex_unlock(&reg->lock);
    return not_live_error(d, caller, id, err);
}

int sandbox_get(struct daemon *d, const struct key_info *caller, const char *id, struct sandbox **out,
                struct op_error *err)
{
    return get_live(d, caller, id, false, out, err);
}

int sandbox_get_any(struct daemon *d, const struct key_info *caller, const char *id, struct sandbox **out,
                    struct op_error *err)
{
    return get_live(d, caller, id, true, out, err);
}

int sandbox_describe(struct daemon *d, const struct key_info *caller, const char *id, json_t **out,
                     struct op_error *err)
{
    struct sandbox *sb = NULL;
    struct registry *reg = d->reg;
    pthread_mutex_lock(&reg->lock);
    sb = find_live_locked(reg, id);
    if (sb && !visible_to(caller, sb->key_id)) {
        pthread_mutex_unlock(&reg->lock);
        return no_such_sandbox(id, err);
    }
    if (sb)
        sb->refs++;
    pthread_mutex_unlock(&reg->lock);
    if (sb) {
        *out = sandbox_json(sb, caller);
        sandbox_unref(sb);
        return *out ? 0 : op_error_set(err, -ENOMEM, ERR_INTERNAL, "out of memory");
    }
    struct sandbox_record rec;
    int r = visible_record(d, caller, id, &rec, err);
    if (r < 0)
        return r;
    *out = sandbox_record_json(&rec, caller->admin);
    store_record_clear(&rec);
    return *out ? 0 : op_error_set(err, -ENOMEM, ERR_INTERNAL, "out of memory");
}

int sandbox_logs_json(struct daemon *d, const struct key_info *caller, const char *id, json_t **out,
                      struct op_error *err)
{
    /* The record is enough: it is written before a sandbox goes live, its
     * owner never changes, and it outlives the sandbox, as the logs do. */
    struct sandbox_record rec;
    int r = visible_record(d, caller, id, &rec, err);
    if (r < 0)
        return r;
    store_record_clear(&rec);
    if ((r = store_audit_list(d->store, id, out)) < 0)
        return op_error_set(err, r, ERR_INTERNAL, "read the audit log of %s", id);
    return 0;
}

/* Reference every live sandbox (all, or only those past their lifetime or
 * crashed) into a malloc'd array. Caller holds the lock. */
static struct sandbox **collect_locked(struct registry *reg, bool all, uint64_t now, size_t *n)
{
    *n = 0;
    struct sandbox **v = calloc(reg->count + 1, sizeof(*v));
    if (!v)
        return NULL;
    for (struct sandbox *sb = reg->live; sb; sb = sb->next) {
        if (sb->state != SB_RUNNING || *n >= reg->count)
            continue;
        if (!all && !atomic_load(&sb->crashed) && !past_lifetime_locked(sb, now))
            continue;
        sb->refs++;
        v[(*n)++] = sb;
    }
    return v;
}

json_t *sandbox_list_json(struct daemon *d, const struct key_info *caller)
{
    struct registry *reg = d->reg;
    size_t n;
    /* references under the lock, JSON outside it */
    pthread_mutex_lock(&reg->lock);
    cleanup_free struct sandbox **v = collect_locked(reg, true, 0, &n);
    pthread_mutex_unlock(&reg->lock);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (visible_to(caller, v[i]->key_id))
            json_array_append_new(arr, sandbox_json(v[i], caller));
        sandbox_unref(v[i]);
    }
    return json_pack("{s:o}", "sandboxes", arr);
}

unsigned sandbox_count_template(struct daemon *d, const char *name)
{
    struct registry *reg = d->reg;
    size_t n;
    pthread_mutex_lock(&reg->lock);
    cleanup_free struct sandbox **v = collect_locked(reg, true, 0, &n);
    pthread_mutex_unlock(&reg->lock);
    unsigned count = 0;
    for (size_t i = 0; i < n; i++) {
        count += strcmp(v[i]->template_name, name) == 0;
        sandbox_unref(v[i]);
    }
    return count;
}

unsigned sandbox_count(struct daemon *d)
{
    pthread_mutex_lock(&d->reg->lock);
    unsigned n = d->reg->count;
    pthread_mutex_unlock(&d->reg->lock);
    return n;
}

/* ---- destroy */

static const char *audit_action_for(const char *reason)
{
    if (strcmp(reason, "deleted") == 0)
        return "delete";
    if (strcmp(reason, "expired") == 0)
        return "expire";
    return "destroy";
}

/* Move sb from the live list to the dying list: from here on no request
 * can use it (calls answer 410, GET "destroying"), and it no longer counts
 * against the quotas. False if it was already going. */
static bool unlink_live(struct sandbox *sb, const char *reason)
{
    struct registry *reg = sb->d->reg;
    pthread_mutex_lock(&reg->lock);
    if (sb->state != SB_RUNNING) {
        pthread_mutex_unlock(&reg->lock);
        return false;
    }
    sb->state = SB_DESTROYING;
    sb->destroyed_ms = now_wall_ms();
    snprintf(sb->destroy_reason, sizeof(sb->destroy_reason), "%s", reason);
    for (struct sandbox **pp = &reg->live, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        if (*pp == sb) {
            *pp = sb->next;
            if (reg->live_tail == sb)
                reg->live_tail = prev;
            reg->count--;
            break;
        }
    }
    sb->next = reg->dying;
    reg->dying = sb;
    pthread_mutex_unlock(&reg->lock);
    return true;
}

/* Kill and reap what is left of sb's processes, release its cgroup, mounts
 * and namespaces: the slow part. */
static void release_backend(struct sandbox *sb)
{
    sandbox_stop_egress(sb);
    pthread_mutex_lock(&sb->inst_lock);
    while (sb->forking) /* a fork copying it finishes first (build.c) */
        pthread_cond_wait(&sb->inst_cond, &sb->inst_lock);
    int r = sb->bk->destroy(sb->bk_state, sb->inst);
    sb->inst = NULL;
    pthread_mutex_unlock(&sb->inst_lock);
    if (r < 0)
        log_error("sandbox %s: backend destroy failed: %s", sb->id, strerror(-r));
}

/* Off the dying list once torn down and recorded; drops the registry's
 * reference. Caller holds the lock; true if the caller must unref. */
static bool settle_locked(struct registry *reg, struct sandbox *sb)
{
    if (!sb->torn_down || !sb->recorded)
        return false;
    for (struct sandbox **pp = &reg->dying; *pp; pp = &(*pp)->next) {
        if (*pp == sb) {
            *pp = sb->next;
            sb->next = NULL;
            return true;
        }
    }
    return false;
}

/* Write the destroyed record and its audit event (one transaction). The
 * reason and time are the ones unlink_live fixed, so a late write (after
 * the disk had room again) tells what happened when it happened. */
static int record_destroyed(struct sandbox *sb, const char *key_id)
{
    struct daemon *d = sb->d;
    struct registry *reg = d->reg;
    char reason[32];
    char key[KEY_ID_LEN + 1];
    pthread_mutex_lock(&reg->lock);
    snprintf(reason, sizeof(reason), "%s", sb->destroy_reason);
    if (key_id)
        snprintf(sb->destroy_key, sizeof(sb->destroy_key), "%s", key_id);
    snprintf(key, sizeof(key), "%s", sb->destroy_key);
    uint64_t when = sb->destroyed_ms;
    pthread_mutex_unlock(&reg->lock);
    json_t *detail = json_pack("{s:s}", "reason", reason);
    struct audit_rec a = {.key_id = key, .action = audit_action_for(reason), .sandbox_id = sb->id,
                          .detail = detail};
    int r = store_sandbox_set_destroyed(d->store, sb->id, reason, when, &a);
    json_decref(detail);
    if (r < 0) {
        log_warn("sandbox %s: destroyed (%s), its record waits for the state store: %s", sb->id, reason,
                 strerror(-r));
        return r;
    }
    pthread_mutex_lock(&reg->lock);
    sb->recorded = true;
    bool unref = settle_locked(reg, sb);
    pthread_mutex_unlock(&reg->lock);
    if (unref)
        sandbox_unref(sb);
    return 0;
}

/* Write the records the state store refused before (the reaper, every
 * period, and at shutdown). */
static void record_pending(struct registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    size_t n = 0;
    for (struct sandbox *sb = reg->dying; sb; sb = sb->next)
        n += !sb->recorded && sb->torn_down;
    struct sandbox **v = n ? calloc(n, sizeof(*v)) : NULL;
    size_t k = 0;
    for (struct sandbox *sb = reg->dying; v && sb && k < n; sb = sb->next)
        if (!sb->recorded && sb->torn_down) {
            sb->refs++;
            v[k++] = sb;
        }
    pthread_mutex_unlock(&reg->lock);
    for (size_t i = 0; i < k; i++) {
        if (record_destroyed(v[i], NULL) == 0)
            log_info("sandbox %s: destroyed record written late (%s)", v[i]->id, v[i]->destroy_reason);
        sandbox_unref(v[i]);
    }
    free(v);
}

static void mark_torn_down(struct sandbox *sb)
{
    struct registry *reg = sb->d->reg;
    pthread_mutex_lock(&reg->lock);
    sb->state = SB_DESTROYED;
    sb->torn_down = true;
    bool unref = settle_locked(reg, sb);
    pthread_mutex_unlock(&reg->lock);
    log_info("sandbox %s destroyed (%s)", sb->id, sb->destroy_reason);
    if (unref)
        sandbox_unref(sb); /* the registry's reference */
}

static void teardown_job(void *arg)
{
    release_backend(arg);
    mark_torn_down(arg);
}

/* The record first (the state change is written before anyone is told),
 * then the teardown. A record the store refuses does not stop the
 * teardown: a sandbox asked to go (or past its lifetime) must stop running
 * whatever the disk holds; its record is written when the store can be
 * written again (record_pending), and until then the registry answers for
 * it. */
int sandbox_destroy(struct sandbox *sb, const char *reason, const char *key_id)
{
    if (!unlink_live(sb, reason))
        return -ESRCH;
    int rec = record_destroyed(sb, key_id);
    /* Close our end first (the agent, seeing EOF, exits and takes every
     * process with it), then let the backend kill and reap what is left.
     * Requests waiting on the agent wake up with "agent gone". */
    agent_conn_shutdown(sb->conn);
    release_backend(sb);
    mark_torn_down(sb);
    return rec < 0 ? 1 : 0;
}

int sandbox_destroy_detached(struct sandbox *sb, const char *reason, const char *key_id)
{
    if (!unlink_live(sb, reason))
        return -ESRCH;
    int rec = record_destroyed(sb, key_id);
    agent_conn_shutdown(sb->conn);
    if (!bgwork_submit(sb->d->teardown, teardown_job, sb))
        teardown_job(sb); /* queue full, or shutting down: pay it here */
    return rec < 0 ? 1 : 0;
}

void sandbox_destroy_all(struct daemon *d, const char *reason)
{
    struct registry *reg = d->reg;
    size_t n;
    pthread_mutex_lock(&reg->lock);
    reg->accepting = false;
    cleanup_free struct sandbox **v = collect_locked(reg, true, 0, &n);
    pthread_mutex_unlock(&reg->lock);
    for (size_t i = 0; i < n; i++) {
        (void)sandbox_destroy(v[i], reason, NULL);
        sandbox_unref(v[i]);
    }
}

static void *reaper_main(void *arg)
{
    struct registry *reg = arg;
    pthread_mutex_lock(&reg->lock);
    while (!reg->stop) {
        size_t n;
        struct sandbox **v = collect_locked(reg, false, now_wall_ms(), &n);
        pthread_mutex_unlock(&reg->lock);
        for (size_t i = 0; i < n; i++) {
            const char *reason = sandbox_crashed(v[i]) ? "crashed" : "expired";
            pthread_mutex_lock(&reg->lock);
            bool paused = v[i]->paused;
            pthread_mutex_unlock(&reg->lock);
            if (paused)
                log_info("sandbox %s: paused longer than --max-paused (%u s): destroyed as expired", v[i]->id,
                         reg->d->cfg.max_paused_s);
            (void)sandbox_destroy(v[i], reason, NULL);
            sandbox_unref(v[i]);
        }
        free(v);
        record_pending(reg);
        pthread_mutex_lock(&reg->lock);
        if (reg->stop)
            break;
        uint64_t deadline = now_mono_ms() + REAPER_PERIOD_MS;
        struct timespec ts = mono_deadline(deadline);
        (void)pthread_cond_timedwait(&reg->wake, &reg->lock, &ts);
    }
    pthread_mutex_unlock(&reg->lock);
    return NULL;
}

/* An agent connection died (build.c's reader callback): let the reaper
 * destroy its sandbox now rather than at its next period. */
static void wake_reaper(struct daemon *d)
{
    struct registry *reg = d->reg;
    if (!reg)
        return;
    pthread_mutex_lock(&reg->lock);
    pthread_cond_signal(&reg->wake);
    pthread_mutex_unlock(&reg->lock);
}

/* ---- create */

/* One place of pc becomes a live sandbox (or is given back); pc leaves the
 * pending list with its last. */
static void unreserve_locked(struct registry *reg, struct pending_create *pc)
{
    reg->reserved--;
    if (--pc->n > 0)
        return;
    for (struct pending_create **pp = &reg->pending; *pp; pp = &(*pp)->next) {
        if (*pp == pc) {
            *pp = pc->next;
            break;
        }
    }
}

static void release_reservation(struct registry *reg, struct pending_create *pc)
{
    pthread_mutex_lock(&reg->lock);
    while (pc->n > 0)
        unreserve_locked(reg, pc);
    pthread_mutex_unlock(&reg->lock);
}

/* Live sandboxes of key_id plus its creates in progress. A walk of the live
 * list: it is at most --max-sandboxes long, and creates are not hot. */
static unsigned owned_locked(struct registry *reg, const char *key_id)
{
    unsigned n = 0;
    for (struct sandbox *sb = reg->live; sb; sb = sb->next)
        n += strcmp(sb->key_id, key_id) == 0;
    for (struct pending_create *pc = reg->pending; pc; pc = pc->next)
        n += strcmp(pc->key_id, key_id) == 0 ? pc->n : 0;
    return n;
}

/* Check the quotas and reserve a place for pc (before the pool is asked:
 * a pool hit is a create like any other for every limit). */
static int reserve(struct daemon *d, unsigned per_key_max, struct pending_create *pc, struct op_error *err)
{
    struct registry *reg = d->reg;
    int r = 0;
    pthread_mutex_lock(&reg->lock);
    if (!reg->accepting)
        r = op_error_set(err, -ESHUTDOWN, ERR_SHUTTING_DOWN, "the daemon is shutting down");
    else if (reg->count + reg->reserved + pc->n > d->cfg.max_sandboxes)
        r = op_error_set(err, -EDQUOT, ERR_QUOTA, "too many live sandboxes (limit %u)", d->cfg.max_sandboxes);
    else if (per_key_max && owned_locked(reg, pc->key_id) + pc->n > per_key_max)
        r = op_error_set(err, -EDQUOT, ERR_KEY_QUOTA,
                         "this key has %u live sandboxes, the most one key may have (--max-sandboxes-per-key)",
                         per_key_max);
    if (r == 0) {
        reg->reserved += pc->n;
        pc->next = reg->pending;
        reg->pending = pc;
    }
    pthread_mutex_unlock(&reg->lock);
    return r;
}

/* A ready sandbox of the shape from the warm pool (*pooled), else a new
 * build. */
static int obtain(struct daemon *d, const struct sandbox_shape *shape, struct sandbox **out, bool *pooled,
                  struct op_error *err)
{
    struct sandbox *sb = pool_take(d->pool, shape);
    if (sb && sandbox_crashed(sb)) {
        /* its agent died while it waited: throw it away, build anew */
        log_warn("sandbox %s: pooled agent died while waiting; discarded", sb->id);
        sandbox_discard(sb);
        sb = NULL;
    }
    *pooled = sb != NULL;
    if (sb) {
        *out = sb;
        return 0;
    }
    return sandbox_build(d, shape, false, out, err);
}

/* The record and the create event in one transaction, before the sandbox is
 * visible: a create the store refuses never happened. */
static int record_created(struct sandbox *sb, const char *key_id, bool pooled, struct op_error *err)
{
    struct daemon *d = sb->d;
    cleanup_free char *md = json_dumps(sb->metadata, JSON_COMPACT);
    struct sandbox_record rec;
    sandbox_fill_record(sb, &rec, md); /* not yet shared: no lock needed */
    rec.agent_pid = sb->bk->agent_pid ? (int)sb->bk->agent_pid(sb->inst) : 0;
    json_t *detail = json_pack("{s:s,s:i,s:f,s:i,s:b}", "template", sb->template_name, "memory_mb",
                               (int)sb->memory_mb, "cpus", sb->cpus, "timeout_s", (int)sb->timeout_s, "pooled", pooled);
    struct audit_rec a = {.key_id = key_id, .action = "create", .sandbox_id = sb->id, .detail = detail};
    int r = store_sandbox_insert(d->store, &rec, &a);
    json_decref(detail);
    return r < 0 ? op_error_audit(err, r, "the create") : 0;
}

/* Join the live list (the reservation becomes the count, in one critical
 * section). -ESHUTDOWN if shutdown began meanwhile: the record written a
 * moment ago is then closed as destroyed by the shutdown. */
static int publish(struct registry *reg, struct sandbox *sb, struct pending_create *pc, struct op_error *err)
{
    pthread_mutex_lock(&reg->lock);
    if (!reg->accepting) {
        pthread_mutex_unlock(&reg->lock); /* the caller releases the reservation */
        json_t *detail = json_pack("{s:s}", "reason", "shutdown");
        struct audit_rec a = {.action = "destroy", .sandbox_id = sb->id, .detail = detail};
        (void)store_sandbox_set_destroyed(reg->d->store, sb->id, "shutdown", now_wall_ms(), &a);
        json_decref(detail);
        return op_error_set(err, -ESHUTDOWN, ERR_SHUTTING_DOWN, "the daemon is shutting down");
    }
    unreserve_locked(reg, pc);
    sb->refs = 2; /* the registry's and the caller's */
    if (reg->live_tail)
        reg->live_tail->next = sb;
    else
        reg->live = sb;
    reg->live_tail = sb;
    reg->count++;
    pthread_mutex_unlock(&reg->lock);
    return 0;
}

int sandbox_create(struct daemon *d, const struct sandbox_params *p, const char *key_id, struct sandbox **out,
                   struct op_error *err)
{
    uint64_t t_start = now_mono_us();
    struct registry *reg = d->reg;
    struct pending_create pc = {.key_id = key_id ? key_id : "", .n = 1};
    struct egress_policy *pol = p->egress_policy;
    int r = reserve(d, p->per_key_max, &pc, err);
    if (r < 0) {
        egress_policy_free(pol);
        return r;
    }
    struct sandbox_shape shape = {
        .tmpl = p->tmpl, .memory_mb = p->memory_mb, .cpus = p->cpus, .egress = p->egress, .isolation = p->isolation};
    struct sandbox *sb = NULL;
    bool pooled = false;
    if ((r = obtain(d, &shape, &sb, &pooled, err)) < 0) {
        release_reservation(reg, &pc);
        egress_policy_free(pol);
        return r;
    }
    /* the proxy listens before anyone can run code in the sandbox */
    if (pol && (r = sandbox_start_egress(sb, pol, err)) < 0) {
        release_reservation(reg, &pc);
        sandbox_discard(sb);
        return r;
    }
    uint64_t t_got = now_mono_us();

    /* What belongs to the request, assigned only now: a pooled sandbox had
     * no owner, env, metadata or lifetime while it waited. */
    sb->timeout_s = p->timeout_s;
    sb->env = p->env ? json_incref(p->env) : json_object();
    sb->metadata = p->metadata ? json_incref(p->metadata) : json_object();
    snprintf(sb->key_id, sizeof(sb->key_id), "%s", key_id ? key_id : "");
    sb->created_ms = now_wall_ms();
    sb->expires_ms = sb->created_ms + (uint64_t)p->timeout_s * 1000;
    if ((r = record_created(sb, key_id, pooled, err)) < 0 || (r = publish(reg, sb, &pc, err)) < 0) {
        release_reservation(reg, &pc);
        /* closes the connection, joins its reader, destroys the backend
         * instance: nothing is left behind */
        sandbox_discard(sb);
        return r;
    }

    /* the timing split shows where a create's time goes: the pool (or the
     * build on a miss) versus the record and audit writes */
    uint64_t t_end = now_mono_us();
    log_info("sandbox %s created (memory %u MiB, cpus %.2f, lifetime %u s%s) in %.3f ms (%s %.3f ms, record %.3f ms)",
             sb->id, sb->memory_mb, sb->cpus, sb->timeout_s, pooled ? ", from the warm pool" : "",
             (double)(t_end - t_start) / 1000.0, pooled ? "pool take" : "build", (double)(t_got - t_start) / 1000.0,
             (double)(t_end - t_got) / 1000.0);
    *out = sb;
    return 0;
}

/* ---- fork */

const char *sandbox_family(const struct sandbox *sb) { return sb->family_id[0] ? sb->family_id : sb->id; }

bool sandbox_same_family(const struct sandbox *a, const struct sandbox *b)
{
    return strcmp(sandbox_family(a), sandbox_family(b)) == 0;
}

/* The parent's allow-list, a policy of the child's own (a later change of
 * one is not the other's). NULL and 0 for a sealed parent. */
static int copy_policy(struct sandbox *parent, struct egress_policy **out, struct op_error *err)
{
    *out = NULL;
    struct egress_proxy *px = sandbox_egress(parent);
    if (!px)
        return 0;
    json_t *j = egress_proxy_policy_json(px);
    char perr[256] = "";
    int r = j ? egress_policy_parse(json_object_get(j, "allow"), out, perr, sizeof(perr)) : -ENOMEM;
    json_decref(j);
    return r < 0 ? op_error_set(err, r, ERR_INTERNAL, "copy the egress policy: %s", perr[0] ? perr : strerror(-r))
                 : 0;
}

/* The children of a files-only fork: fresh sandboxes of the parent's
 * shape (from the warm pool when it has them), the parent's files copied
 * into each. */
static int build_files_fork(struct daemon *d, struct sandbox *parent, unsigned n, struct sandbox **kids,
                            struct op_error *err)
{
    struct sandbox_shape shape;
    sandbox_shape_of(parent, &shape);
    for (unsigned i = 0; i < n; i++) {
        bool pooled = false;
        int r = obtain(d, &shape, &kids[i], &pooled, err);
        unsigned files = 0;
        unsigned long long bytes = 0;
        if (r == 0 && (r = famfiles_copy(sandbox_agent(parent), sandbox_agent(kids[i]), &files, &bytes, err)) < 0) {
            char why[OP_ERR_MSG_MAX];
            snprintf(why, sizeof(why), "%s", err->msg);
            op_error_set(err, r, ERR_FORK_FAILED, "fork: copy the files: %s", why);
        }
        if (r < 0) {
            for (unsigned j = 0; j <= i; j++)
                if (kids[j])
                    sandbox_discard(kids[j]);
            memset(kids, 0, n * sizeof(*kids));
            return r;
        }
        log_debug("sandbox %s: fork child %s got %u files, %llu bytes", parent->id, kids[i]->id, files, bytes);
    }
    return 0;
}

int sandbox_fork(struct daemon *d, struct sandbox *parent, unsigned n, const char *key_id, unsigned per_key_max,
                 struct sandbox **out, bool *full, struct op_error *err)
{
    uint64_t t0 = now_mono_us();
    struct registry *reg = d->reg;
    /* children belong to the parent's owner (an admin forking another
     * key's sandbox makes that key's sandboxes) */
    struct pending_create pc = {.key_id = parent->key_id, .n = n};
    int r = reserve(d, per_key_max, &pc, err);
    if (r < 0)
        return r;
    struct sandbox *kids[SANDBOX_FORK_MAX] = {NULL};
    *full = sandbox_can_fork_full(parent);
    r = *full ? sandbox_build_fork(parent, n, kids, err) : build_files_fork(d, parent, n, kids, err);
    if (r < 0) {
        release_reservation(reg, &pc);
        return r;
    }
    uint64_t t_built = now_mono_us();
    unsigned recorded = 0;
    for (unsigned i = 0; i < n && r == 0; i++) {
        struct sandbox *sb = kids[i];
        struct egress_policy *pol = NULL;
        if ((r = copy_policy(parent, &pol, err)) < 0 || (pol && (r = sandbox_start_egress(sb, pol, err)) < 0))
            break;
        pthread_mutex_lock(&reg->lock);
        sb->timeout_s = parent->timeout_s;
        pthread_mutex_unlock(&reg->lock);
        sb->env = json_incref(parent->env);
        sb->metadata = json_incref(parent->metadata);
        snprintf(sb->key_id, sizeof(sb->key_id), "%s", parent->key_id);
        snprintf(sb->parent_id, sizeof(sb->parent_id), "%s", parent->id);
        snprintf(sb->family_id, sizeof(sb->family_id), "%s", sandbox_family(parent));
        sb->created_ms = now_wall_ms();
        sb->expires_ms = sb->created_ms + (uint64_t)sb->timeout_s * 1000;
        cleanup_free char *md = json_dumps(sb->metadata, JSON_COMPACT);
        struct sandbox_record rec;
        sandbox_fill_record(sb, &rec, md);
        rec.agent_pid = sb->bk->agent_pid ? (int)sb->bk->agent_pid(sb->inst) : 0;
        json_t *detail = json_pack("{s:s,s:s,s:s,s:i}", "parent", parent->id, "family", sb->family_id, "state",
                                   *full ? "full" : "files", "timeout_s", (int)sb->timeout_s);
        struct audit_rec a = {.key_id = key_id, .action = "fork", .sandbox_id = sb->id, .detail = detail};
        r = store_sandbox_insert(d->store, &rec, &a);
        json_decref(detail);
        if (r < 0)
            op_error_audit(err, r, "the fork");
        else
            recorded++;
    }
    for (unsigned i = 0; i < n && r == 0; i++)
        r = publish(reg, kids[i], &pc, err);
    if (r < 0) {
        /* nothing was visible yet unless publish failed (shutdown): the
         * published ones go with the shutdown, the rest here */
        for (unsigned i = 0; i < n; i++) {
            bool live = false;
            pthread_mutex_lock(&reg->lock);
            for (struct sandbox *s = reg->live; s; s = s->next)
                live |= s == kids[i];
            pthread_mutex_unlock(&reg->lock);
            if (live) {
                sandbox_unref(kids[i]); /* the caller's reference; the registry keeps its own */
                continue;
            }
            if (i < recorded) {
                json_t *detail = json_pack("{s:s}", "reason", "fork_failed");
                struct audit_rec a = {.action = "destroy", .sandbox_id = kids[i]->id, .detail = detail};
                (void)store_sandbox_set_destroyed(d->store, kids[i]->id, "fork_failed", now_wall_ms(), &a);
                json_decref(detail);
            }
            sandbox_discard(kids[i]);
        }
        release_reservation(reg, &pc);
        return r;
    }
    log_info("sandbox %s forked into %u (%s) in %.3f ms (children %.3f ms, records %.3f ms)", parent->id, n,
             *full ? "full state" : "files", (now_mono_us() - t0) / 1000.0, (t_built - t0) / 1000.0,
             (now_mono_us() - t_built) / 1000.0);
    for (unsigned i = 0; i < n; i++)
        out[i] = kids[i];
    return 0;
}

int sandbox_set_timeout(struct sandbox *sb, unsigned timeout_s, bool extend_only, const char *key_id)
{
    struct registry *reg = sb->d->reg;
    uint64_t now = now_wall_ms(), life_ms = (uint64_t)timeout_s * 1000;
    uint64_t expires = now + life_ms;
    pthread_mutex_lock(&reg->lock);
    bool running = sb->state == SB_RUNNING;
    /* paused: the new lifetime counts from the resume (the clock stands
     * still), so it replaces what is left of the old one */
    bool paused = sb->paused;
    bool later = paused ? sb->remaining_ms >= life_ms : sb->expires_ms >= expires;
    pthread_mutex_unlock(&reg->lock);
    if (!running)
        return -ESRCH;
    if (extend_only && later)
        return 1;
    /* written first: a lifetime the store refuses is not taken */
    json_t *detail = json_pack("{s:i}", "timeout_s", (int)timeout_s);
    struct audit_rec a = {.key_id = key_id, .action = "timeout", .sandbox_id = sb->id, .detail = detail};
    int r = store_sandbox_set_expiry(sb->d->store, sb->id, timeout_s, expires, &a);
    json_decref(detail);
    if (r < 0)
        return r;
    pthread_mutex_lock(&reg->lock);
    /* an extension racing another one keeps the later end; a pause or
     * resume in between is ordered by inst_lock against nothing here, so
     * look again at which clock applies */
    if (sb->state == SB_RUNNING && sb->paused) {
        if (!(extend_only && sb->remaining_ms >= life_ms)) {
            sb->timeout_s = timeout_s;
            sb->remaining_ms = life_ms;
        }
    } else if (sb->state == SB_RUNNING && !(extend_only && sb->expires_ms >= expires)) {
        sb->timeout_s = timeout_s;
        sb->expires_ms = expires;
    }
    pthread_mutex_unlock(&reg->lock);
    return 0;
}

/* ---- pause and resume
 *
 * A pause is refused while a call with a deadline runs in the sandbox
 * (agent_conn_hold): its timeouts, the daemon's and the agent's, run on
 * clocks that do not stop for a freeze and would fire at the resume,
 * interrupting the REPL for time it never had. With nothing in flight and
 * new requests refused until the resume, no timer inside or outside the
 * sandbox can see the pause. The state record and its audit event are
 * written before the backend acts (fail closed), and put back if it fails.
 */

static int pause_record(struct sandbox *sb, bool paused, uint64_t expires, const char *key_id, json_t *detail)
{
    struct audit_rec a = {.key_id = key_id, .action = paused ? "pause" : "resume", .sandbox_id = sb->id,
                          .detail = detail};
    int r = store_sandbox_set_paused(sb->d->store, sb->id, paused, expires, &a);
    json_decref(detail);
    return r;
}

/* The state under the registry lock: -ESRCH destroyed meanwhile, else
 * whether it is paused. */
static int pause_state(struct sandbox *sb, bool *paused)
{
    struct registry *reg = sb->d->reg;
    pthread_mutex_lock(&reg->lock);
    int r = sb->state == SB_RUNNING ? 0 : -ESRCH;
    *paused = sb->paused;
    pthread_mutex_unlock(&reg->lock);
    return r;
}

static int pause_locked(struct sandbox *sb, const char *key_id, struct op_error *err)
{
    struct daemon *d = sb->d;
    struct registry *reg = d->reg;
    bool paused;
    if (!sb->inst || pause_state(sb, &paused) < 0)
        return sandbox_gone_error(sb, err);
    if (paused)
        return 1;
    if (!sb->bk->pause)
        return op_error_set(err, -EOPNOTSUPP, ERR_NO_PAUSE, "the %s backend cannot pause sandboxes", sb->bk->name);
    int r = agent_conn_hold(sb->conn);
    if (r == -EBUSY)
        return op_error_set(err, r, ERR_BUSY,
                            "a call (run_code, exec or a file operation) is running in sandbox %s: pause it when the "
                            "call has finished",
                            sb->id);
    if (r < 0)
        return sandbox_gone_error(sb, err);
    uint64_t now = now_wall_ms();
    pthread_mutex_lock(&reg->lock);
    uint64_t expires = sb->expires_ms;
    pthread_mutex_unlock(&reg->lock);
    if (now >= expires) {
        agent_conn_release(sb->conn);
        return op_error_set(err, -ETIME, ERR_EXPIRED, "sandbox %s expired", sb->id);
    }
    uint64_t deadline = now + (uint64_t)d->cfg.max_paused_s * 1000;
    r = pause_record(sb, true, expires, key_id,
                     json_pack("{s:I,s:I}", "remaining_ms", (json_int_t)(expires - now), "max_paused_s",
                               (json_int_t)d->cfg.max_paused_s));
    if (r < 0) {
        agent_conn_release(sb->conn);
        return op_error_audit(err, r, "the pause");
    }
    char msg[256] = "";
    uint64_t t0 = now_mono_us();
    r = sb->bk->pause(sb->bk_state, sb->inst, msg, sizeof(msg));
    uint64_t t1 = now_mono_us();
    if (r < 0) {
        (void)pause_record(sb, false, expires, NULL, json_pack("{s:s,s:s}", "reason", "pause failed", "error", msg));
        agent_conn_release(sb->conn);
        log_error("sandbox %s: pause: %s", sb->id, msg);
        return op_error_set(err, r, ERR_INTERNAL, "pause sandbox %s: %s", sb->id, msg);
    }
    pthread_mutex_lock(&reg->lock);
    sb->paused = true;
    sb->paused_ms = now;
    sb->pause_deadline_ms = deadline;
    sb->remaining_ms = sb->expires_ms > now ? sb->expires_ms - now : 0;
    pthread_mutex_unlock(&reg->lock);
    log_info("sandbox %s paused in %.3f ms (%llu s of its lifetime left)", sb->id, (double)(t1 - t0) / 1000.0,
             (unsigned long long)((expires - now) / 1000));
    return 0;
}

/* A VM's clocks stood still with its vCPUs (QMP stop under TCG): its wall
 * clock is behind by the time paused. GUEST_SYNC, as after a snapshot
 * restore, sets it from the host's (and adds fresh entropy). A failure is
 * logged, not the resume's: the sandbox runs on either way. */
#define RESUME_SYNC_MS 5000
static void resync_guest_clock(struct sandbox *sb)
{
    char hex[129];
    struct timespec now;
    if (random_hex(hex, 64) < 0 || clock_gettime(CLOCK_REALTIME, &now) < 0)
        return;
    json_t *p = json_pack("{s:s,s:I}", "entropy", hex, "realtime_ns",
                          (json_int_t)now.tv_sec * 1000000000LL + now.tv_nsec);
    json_t *reply = NULL;
    struct op_error e = {0};
    if (p && agent_call(sb->conn, PROTO_GUEST_SYNC, p, RESUME_SYNC_MS, &reply, &e) < 0)
        log_warn("sandbox %s: resume: set the guest's clock: %s", sb->id, e.msg);
    json_decref(reply);
    json_decref(p);
}

static int resume_locked(struct sandbox *sb, const char *key_id, struct op_error *err)
{
    struct registry *reg = sb->d->reg;
    bool paused;
    if (!sb->inst || pause_state(sb, &paused) < 0)
        return sandbox_gone_error(sb, err);
    if (!paused)
        return 1;
    uint64_t now = now_wall_ms();
    pthread_mutex_lock(&reg->lock);
    uint64_t expires = now + sb->remaining_ms, old_expires = sb->expires_ms, since = sb->paused_ms;
    pthread_mutex_unlock(&reg->lock);
    int r = pause_record(sb, false, expires, key_id,
                         json_pack("{s:I}", "paused_ms", (json_int_t)(now > since ? now - since : 0)));
    if (r < 0)
        return op_error_audit(err, r, "the resume");
    char msg[256] = "";
    uint64_t t0 = now_mono_us();
    r = sb->bk->resume(sb->bk_state, sb->inst, msg, sizeof(msg));
    uint64_t t1 = now_mono_us();
    if (r < 0) {
        (void)pause_record(sb, true, old_expires, NULL, json_pack("{s:s,s:s}", "reason", "resume failed", "error", msg));
        log_error("sandbox %s: resume: %s", sb->id, msg);
        return op_error_set(err, r, ERR_INTERNAL, "resume sandbox %s: %s", sb->id, msg);
    }
    pthread_mutex_lock(&reg->lock);
    sb->paused = false;
    /* remaining_ms again: a set_timeout may have replaced it meanwhile */
    sb->expires_ms = now + sb->remaining_ms;
    pthread_mutex_unlock(&reg->lock);
    agent_conn_release(sb->conn);
    if (sb->isolation == ISO_VM)
        resync_guest_clock(sb);
    log_info("sandbox %s resumed in %.3f ms after %.3f s paused", sb->id, (double)(t1 - t0) / 1000.0,
             (double)(now - since) / 1000.0);
    return 0;
}

int sandbox_pause(struct sandbox *sb, const char *key_id, struct op_error *err)
{
    pthread_mutex_lock(&sb->inst_lock);
    while (sb->forking) /* one QEMU, one driver: a fork copying it finishes first (build.c) */
        pthread_cond_wait(&sb->inst_cond, &sb->inst_lock);
    int r = pause_locked(sb, key_id, err);
    pthread_mutex_unlock(&sb->inst_lock);
    return r;
}

int sandbox_resume(struct sandbox *sb, const char *key_id, struct op_error *err)
{
    pthread_mutex_lock(&sb->inst_lock);
    while (sb->forking) /* one QEMU, one driver: a fork copying it finishes first (build.c) */
        pthread_cond_wait(&sb->inst_cond, &sb->inst_lock);
    int r = resume_locked(sb, key_id, err);
    pthread_mutex_unlock(&sb->inst_lock);
    return r;
}

/* ---- registry */

int registry_new(struct daemon *d, struct registry **out)
{
    struct registry *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return -ENOMEM;
    reg->d = d;
    reg->accepting = true;
    pthread_mutex_init(&reg->lock, NULL);
    cond_init_monotonic(&reg->wake);
    d->reg = reg; /* the reaper reads d->reg through sandboxes */
    sandbox_set_crash_hook(d, wake_reaper);
    int r = pthread_create(&reg->reaper, NULL, reaper_main, reg);
    if (r != 0) {
        sandbox_set_crash_hook(d, NULL);
        d->reg = NULL;
        pthread_cond_destroy(&reg->wake);
        pthread_mutex_destroy(&reg->lock);
        free(reg);
        return -r;
    }
    *out = reg;
    return 0;
}

void registry_free(struct registry *reg)
{
    if (!reg)
        return;
    pthread_mutex_lock(&reg->lock);
    reg->stop = true;
    pthread_cond_signal(&reg->wake);
    pthread_mutex_unlock(&reg->lock);
    pthread_join(reg->reaper, NULL);
    sandbox_destroy_all(reg->d, "shutdown");
    /* the teardown worker is stopped (main.c): every sandbox is torn down;
     * what the store still refuses is lost here, and the next start marks
     * those records destroyed (daemon_restart) */
    record_pending(reg);
    pthread_mutex_lock(&reg->lock);
    while (reg->dying) {
        struct sandbox *sb = reg->dying;
        reg->dying = sb->next;
        pthread_mutex_unlock(&reg->lock);
        log_error("sandbox %s: destroyed (%s) but its record could not be written", sb->id, sb->destroy_reason);
        sandbox_unref(sb);
        pthread_mutex_lock(&reg->lock);
    }
    pthread_mutex_unlock(&reg->lock);
    pthread_cond_destroy(&reg->wake);
    pthread_mutex_destroy(&reg->lock);
    sandbox_set_crash_hook(reg->d, NULL);
    reg->d->reg = NULL;
    free(reg);
}
