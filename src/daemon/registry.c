#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bgwork.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "util.h"

#define HELLO_TIMEOUT_MS 15000
#define REAPER_PERIOD_MS 1000
/* A template's warm-up may import a large stack (pandas, torch) on a loaded
 * machine; past this the build fails rather than hold a create forever. */
#define WARMUP_TIMEOUT_MS 120000
#define WARMUP_GRACE_MS 10000 /* the agent enforces the timeout; this is our backstop */

enum sb_state { SB_RUNNING, SB_DESTROYING, SB_DESTROYED };

struct sandbox {
    struct daemon *d;
    char id[SANDBOX_ID_LEN + 1];

    /* set at creation, immutable afterwards */
    char template_name[64];
    bool egress;
    char region[64];
    unsigned memory_mb;
    double cpus;
    uint64_t created_ms;
    json_t *env;
    json_t *metadata;
    char key_id[KEY_ID_LEN + 1];
    struct agent_conn *conn;

    /* the backend instance; destroy frees it while requests may still ask
     * for oom_kills, so it is guarded by its own lock */
    pthread_mutex_t inst_lock;
    struct backend_instance *inst;

    /* guarded by the registry lock */
    unsigned refs;
    enum sb_state state;
    bool crashed;
    unsigned timeout_s;
    uint64_t expires_ms; /* wall clock, like the API's expires_at */
    char destroy_reason[32];
    uint64_t destroyed_ms;
    char destroy_key[KEY_ID_LEN + 1]; /* who asked ("" the daemon), for a late record */
    /* a destroyed sandbox stays on the dying list (with the registry's
     * reference) until both are true: GET and the other calls find it there
     * and answer "destroying" / 410 while it is torn down, and "destroyed"
     * from memory while its record waits for the state store */
    bool torn_down;
    bool recorded;
    struct sandbox *next;      /* live list, or dying list */
};

/* A create in progress, between reserving its place and joining the live
 * list: it lives on the creating thread's stack, linked here so the
 * per-key quota counts it like the global one counts `reserved`. */
struct pending_create {
    const char *key_id;
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
static int no_such_sandbox(const char *id, struct api_error *err)
{
    return api_error_set(err, -ENOENT, 404, "not_found", "no sandbox %s", id);
}

/* ---- records and JSON */

/* show_owner: only admins learn which key owns a sandbox. */
static json_t *record_json(const struct sandbox_record *rec, bool show_owner)
{
    char created[40], expires[40], destroyed[40];
    format_time(rec->created_ms, false, created, sizeof(created));
    format_time(rec->expires_ms, false, expires, sizeof(expires));
    format_time(rec->destroyed_ms, false, destroyed, sizeof(destroyed));
    json_t *md = json_loads(rec->metadata ? rec->metadata : "{}", 0, NULL);
    bool gone = strcmp(rec->state, "running") != 0;
    json_t *j = json_pack("{s:s,s:s,s:s,s:b,s:s,s:i,s:f,s:i,s:s,s:s,s:s?,s:s?,s:o}", "id", rec->id, "state",
                          rec->state, "template", rec->template_name, "egress", rec->egress, "region", rec->region,
                          "memory_mb", (int)rec->memory_mb, "cpus", rec->cpus, "timeout_s", (int)rec->timeout_s,
                          "created_at", created, "expires_at", expires, "destroyed_at",
                          gone && rec->destroyed_ms ? destroyed : NULL, "destroy_reason",
                          gone && rec->destroy_reason[0] ? rec->destroy_reason : NULL, "metadata",
                          md ? md : json_object());
    if (j && show_owner &&
        json_object_set_new(j, "key_id", rec->key_id[0] ? json_string(rec->key_id) : json_null()) < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Caller holds the registry lock (for timeout/expiry). metadata borrowed. */
static void fill_record_locked(const struct sandbox *sb, struct sandbox_record *rec, char *metadata)
{
    *rec = (struct sandbox_record){0};
    snprintf(rec->id, sizeof(rec->id), "%s", sb->id);
    /* "destroying" while a teardown runs, except after a DELETE: its answer
     * already said "destroyed" (and nothing of the sandbox is reachable) */
    bool tearing = sb->state == SB_DESTROYING && strcmp(sb->destroy_reason, "deleted") != 0;
    snprintf(rec->state, sizeof(rec->state), "%s",
             sb->state == SB_RUNNING ? "running" : tearing ? "destroying" : "destroyed");
    snprintf(rec->template_name, sizeof(rec->template_name), "%s", sb->template_name);
    rec->egress = sb->egress;
    snprintf(rec->region, sizeof(rec->region), "%s", sb->region);
    rec->memory_mb = sb->memory_mb;
    rec->cpus = sb->cpus;
    rec->timeout_s = sb->timeout_s;
    rec->created_ms = sb->created_ms;
    rec->expires_ms = sb->expires_ms;
    rec->destroyed_ms = sb->destroyed_ms;
    snprintf(rec->destroy_reason, sizeof(rec->destroy_reason), "%s", sb->destroy_reason);
    rec->metadata = metadata;
    snprintf(rec->key_id, sizeof(rec->key_id), "%s", sb->key_id);
}

json_t *sandbox_json(struct sandbox *sb, const struct key_info *caller)
{
    struct registry *reg = sb->d->reg;
    cleanup_free char *md = json_dumps(sb->metadata, JSON_COMPACT);
    struct sandbox_record rec;
    pthread_mutex_lock(&reg->lock);
    fill_record_locked(sb, &rec, md);
    if (sb->state == SB_RUNNING && now_wall_ms() >= sb->expires_ms) {
        /* past its lifetime, the reaper not there yet: calls already answer
         * 410 (sandbox_get), so GET must not say running */
        snprintf(rec.state, sizeof(rec.state), "destroying");
        snprintf(rec.destroy_reason, sizeof(rec.destroy_reason), "expired");
    }
    pthread_mutex_unlock(&reg->lock);
    return record_json(&rec, caller->admin);
}

/* ---- references */

static void sandbox_free(struct sandbox *sb)
{
    agent_conn_free(sb->conn); /* joins the reader thread */
    pthread_mutex_lock(&sb->inst_lock);
    if (sb->inst) /* only on a failed create */
        sb->d->backend->destroy(sb->d->backend_state, sb->inst);
    pthread_mutex_unlock(&sb->inst_lock);
    pthread_mutex_destroy(&sb->inst_lock);
    json_decref(sb->env);
    json_decref(sb->metadata);
    free(sb);
}

void sandbox_unref(struct sandbox *sb)
{
    struct registry *reg = sb->d->reg;
    pthread_mutex_lock(&reg->lock);
    bool last = --sb->refs == 0;
    pthread_mutex_unlock(&reg->lock);
    if (last)
        sandbox_free(sb);
}

/* ---- accessors */

const char *sandbox_id(const struct sandbox *sb) { return sb->id; }
struct agent_conn *sandbox_agent(struct sandbox *sb) { return sb->conn; }
json_t *sandbox_env(struct sandbox *sb) { return sb->env; }
unsigned sandbox_memory_mb(const struct sandbox *sb) { return sb->memory_mb; }

/* One of the backend's optional counters of sb (op may be NULL); 0 when
 * unknown or the instance is gone. */
static uint64_t backend_counter(struct sandbox *sb, int (*op)(struct backend_instance *, uint64_t *))
{
    uint64_t n = 0;
    pthread_mutex_lock(&sb->inst_lock);
    if (sb->inst && op && op(sb->inst, &n) < 0)
        n = 0;
    pthread_mutex_unlock(&sb->inst_lock);
    return n;
}

uint64_t sandbox_oom_kills(struct sandbox *sb) { return backend_counter(sb, sb->d->backend->oom_kills); }

int sandbox_gone_error(struct sandbox *sb, struct api_error *err)
{
    struct registry *reg = sb->d->reg;
    pthread_mutex_lock(&reg->lock);
    bool expired = sb->state != SB_RUNNING && strcmp(sb->destroy_reason, "expired") == 0;
    bool shutdown = sb->state != SB_RUNNING && strcmp(sb->destroy_reason, "shutdown") == 0;
    pthread_mutex_unlock(&reg->lock);
    if (expired)
        return api_error_set(err, -ETIME, 410, "sandbox_expired", "sandbox %s expired", sb->id);
    if (shutdown)
        return api_error_set(err, -ESHUTDOWN, 503, "unavailable", "the daemon is shutting down");
    return api_error_set(err, -EPIPE, 503, "unavailable", "sandbox agent is gone");
}

/* ---- lookup */

static bool valid_sandbox_id(const char *id)
{
    if (strlen(id) != SANDBOX_ID_LEN || strncmp(id, "sb_", 3) != 0)
        return false;
    for (const char *p = id + 3; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

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
static int dying_error_locked(const struct sandbox *sb, struct api_error *err)
{
    if (strcmp(sb->destroy_reason, "expired") == 0)
        return api_error_set(err, -ETIME, 410, "sandbox_expired", "sandbox %s expired", sb->id);
    return api_error_set(err, -ENOENT, 404, "not_found", "sandbox %s was destroyed (%s)", sb->id, sb->destroy_reason);
}

/* The stored record of id if the caller may see it (live or not): 0 and rec
 * filled (store_record_clear it), or err (404 unknown or not the caller's). */
static int visible_record(struct daemon *d, const struct key_info *caller, const char *id,
                          struct sandbox_record *rec, struct api_error *err)
{
    int r = valid_sandbox_id(id) ? store_sandbox_get(d->store, id, rec) : -ENOENT;
    if (r == -ENOENT)
        return no_such_sandbox(id, err);
    if (r < 0)
        return api_error_set(err, r, 500, "internal", "read the record of sandbox %s", id);
    if (!visible_to(caller, rec->key_id)) {
        store_record_clear(rec);
        return no_such_sandbox(id, err);
    }
    return 0;
}

/* The error for an id that is not live, from its record. */
static int not_live_error(struct daemon *d, const struct key_info *caller, const char *id, struct api_error *err)
{
    struct sandbox_record rec;
    int r = visible_record(d, caller, id, &rec, err);
    if (r < 0)
        return r;
    if (strcmp(rec.destroy_reason, "expired") == 0)
        r = api_error_set(err, -ETIME, 410, "sandbox_expired", "sandbox %s expired", id);
    else if (rec.destroy_reason[0])
        r = api_error_set(err, -ENOENT, 404, "not_found", "sandbox %s was destroyed (%s)", id, rec.destroy_reason);
    else
        r = api_error_set(err, -ENOENT, 404, "not_found", "sandbox %s is being destroyed", id);
    store_record_clear(&rec);
    return r;
}

int sandbox_get(struct daemon *d, const struct key_info *caller, const char *id, struct sandbox **out,
                struct api_error *err)
{
    struct registry *reg = d->reg;
    pthread_mutex_lock(&reg->lock);
    struct sandbox *sb = find_live_locked(reg, id);
    if (sb && !visible_to(caller, sb->key_id)) {
        /* before the expiry check: a 410 would tell that the id exists */
        pthread_mutex_unlock(&reg->lock);
        return no_such_sandbox(id, err);
    }
    if (sb && sb->state == SB_RUNNING && now_wall_ms() >= sb->expires_ms) {
        /* past its lifetime; the reaper may not have run yet */
        pthread_cond_signal(&reg->wake);
        pthread_mutex_unlock(&reg->lock);
        return api_error_set(err, -ETIME, 410, "sandbox_expired", "sandbox %s expired", id);
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

int sandbox_describe(struct daemon *d, const struct key_info *caller, const char *id, json_t **out,
                     struct api_error *err)
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
        return *out ? 0 : api_error_set(err, -ENOMEM, 500, "internal", "out of memory");
    }
    struct sandbox_record rec;
    int r = visible_record(d, caller, id, &rec, err);
    if (r < 0)
        return r;
    *out = record_json(&rec, caller->admin);
    store_record_clear(&rec);
    return *out ? 0 : api_error_set(err, -ENOMEM, 500, "internal", "out of memory");
}

int sandbox_logs_json(struct daemon *d, const struct key_info *caller, const char *id, json_t **out,
                      struct api_error *err)
{
    /* The record is enough: it is written before a sandbox goes live, its
     * owner never changes, and it outlives the sandbox, as the logs do. */
    struct sandbox_record rec;
    int r = visible_record(d, caller, id, &rec, err);
    if (r < 0)
        return r;
    store_record_clear(&rec);
    if ((r = store_audit_list(d->store, id, out)) < 0)
        return api_error_set(err, r, 500, "internal", "read the audit log of %s", id);
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
        if (!all && !sb->crashed && now < sb->expires_ms)
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
    struct daemon *d = sb->d;
    pthread_mutex_lock(&sb->inst_lock);
    int r = d->backend->destroy(d->backend_state, sb->inst);
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
            pthread_mutex_lock(&reg->lock);
            const char *reason = v[i]->crashed ? "crashed" : "expired";
            pthread_mutex_unlock(&reg->lock);
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

/* The agent connection died (reader thread): let the reaper destroy it. */
static void on_agent_dead(void *userdata)
{
    struct sandbox *sb = userdata;
    struct registry *reg = sb->d->reg;
    pthread_mutex_lock(&reg->lock);
    sb->crashed = true;
    pthread_cond_signal(&reg->wake);
    pthread_mutex_unlock(&reg->lock);
}

/* ---- create */

static void unreserve_locked(struct registry *reg, struct pending_create *pc)
{
    reg->reserved--;
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
        n += strcmp(pc->key_id, key_id) == 0;
    return n;
}

/* A sandbox's files live in tmpfs, charged to its memory limit. Capping them
 * below the limit keeps room for the agent and a REPL, so filling the disk is
 * ENOSPC (507 no_space) rather than an OOM kill of the agent: half the memory
 * for small sandboxes, all but 96 MiB for large ones. */
static uint64_t storage_bytes(unsigned memory_mb)
{
    uint64_t mem = (uint64_t)memory_mb << 20, headroom = mem / 2;
    if (headroom > (96ull << 20))
        headroom = 96ull << 20;
    return mem - headroom;
}

bool sandbox_shape_equal(const struct sandbox_shape *a, const struct sandbox_shape *b)
{
    return strcmp(a->tmpl->name, b->tmpl->name) == 0 && a->memory_mb == b->memory_mb && a->cpus == b->cpus &&
           a->egress == b->egress;
}

bool sandbox_crashed(struct sandbox *sb)
{
    struct registry *reg = sb->d->reg;
    pthread_mutex_lock(&reg->lock);
    bool crashed = sb->crashed;
    pthread_mutex_unlock(&reg->lock);
    return crashed;
}

uint64_t sandbox_memory_bytes(struct sandbox *sb) { return backend_counter(sb, sb->d->backend->memory_usage); }

void sandbox_discard(struct sandbox *sb)
{
    /* never shared: sandbox_free closes the connection, joins its reader and
     * destroys the backend instance */
    sandbox_free(sb);
}

/* Run the template's warm-up code in the sandbox's Python REPL, the one the
 * user's code will use (RUN_CODE, as the sandbox user, like any user call),
 * before the sandbox is visible to anyone. Its output is discarded: the
 * agent still reads it, but only 4 KiB per stream are asked for and the
 * frames are dropped here. A warm-up that raises is a defect of the
 * template (422 warmup_failed, naming it and the exception); one that does
 * not finish in WARMUP_TIMEOUT_MS, or an agent that dies, is a 500. */
static int run_warmup(struct sandbox *sb, const struct template_info *t, const char *code, struct api_error *err)
{
    uint64_t t0 = now_mono_ms();
    json_t *payload = json_pack("{s:s,s:s,s:I,s:{},s:i}", "code", code, "language", "python", "timeout_ms",
                                (json_int_t)WARMUP_TIMEOUT_MS, "env", "max_output", 4096);
    if (!payload)
        return api_error_set(err, -ENOMEM, 500, "internal", "out of memory");
    cleanup_agent_req struct agent_req *req = NULL;
    int r = agent_req_start(sb->conn, PROTO_RUN_CODE, payload, &req);
    json_decref(payload);
    if (r < 0)
        return api_error_set(err, r, 500, "internal", "template %s: warm-up: send to the agent: %s", t->name,
                             strerror(-r));
    uint64_t deadline = t0 + WARMUP_TIMEOUT_MS + WARMUP_GRACE_MS;
    for (;;) {
        cleanup_frame struct agent_frame *f = NULL;
        if ((r = agent_req_next(req, deadline, &f)) < 0) {
            if (r == -ETIMEDOUT)
                return api_error_set(err, r, 500, "internal", "template %s: warm-up did not finish in %d s",
                                     t->name, WARMUP_TIMEOUT_MS / 1000);
            return api_error_set(err, r, 500, "internal", "template %s: warm-up: agent: %s", t->name,
                                 r == -EPIPE ? "connection lost" : strerror(-r));
        }
        if (f->type == PROTO_STDOUT || f->type == PROTO_STDERR)
            continue; /* discarded */
        if (f->type == PROTO_ERROR) {
            struct api_error aerr = {0};
            api_error_from_agent(&aerr, (const char *)f->data, f->len);
            return api_error_set(err, -EREMOTEIO, 500, "internal", "template %s: warm-up failed: %s", t->name,
                                 aerr.message);
        }
        if (f->type != PROTO_RESULT)
            return api_error_set(err, -EPROTO, 500, "internal", "template %s: warm-up: agent sent %s", t->name,
                                 proto_type_name(f->type));
        json_t *res = json_loadb((const char *)f->data, f->len, 0, NULL);
        json_t *e = json_object_get(res, "error");
        bool timed_out = json_is_true(json_object_get(res, "timed_out"));
        if (json_is_object(e) || timed_out) {
            const char *name = json_string_value(json_object_get(e, "name"));
            const char *value = json_string_value(json_object_get(e, "value"));
            int ret = timed_out ? -ETIMEDOUT : -EREMOTEIO;
            if (timed_out)
                api_error_set(err, -ETIMEDOUT, 500, "internal", "template %s: warm-up did not finish in %d s",
                              t->name, WARMUP_TIMEOUT_MS / 1000);
            else
                api_error_set(err, -EREMOTEIO, 422, "warmup_failed", "template %s: warm-up failed: %s%s%s", t->name,
                              name ? name : "error", value && *value ? ": " : "", value ? value : "");
            json_decref(res);
            return ret;
        }
        json_decref(res);
        log_debug("sandbox %s: template %s warm-up ran in %llu ms", sb->id, t->name,
                  (unsigned long long)(now_mono_ms() - t0));
        return 0;
    }
}

int sandbox_build(struct daemon *d, const struct sandbox_shape *s, bool prime, struct sandbox **out,
                  struct api_error *err)
{
    int r;
    struct sandbox *sb = calloc(1, sizeof(*sb));
    if (!sb)
        return api_error_set(err, -ENOMEM, 500, "internal", "out of memory");
    sb->d = d;
    pthread_mutex_init(&sb->inst_lock, NULL);
    sb->refs = 1;
    memcpy(sb->id, "sb_", 3);
    if ((r = random_hex(sb->id + 3, 16)) < 0) {
        api_error_set(err, r, 500, "internal", "getrandom: %s", strerror(-r));
        goto fail;
    }
    snprintf(sb->template_name, sizeof(sb->template_name), "%s", s->tmpl->name);
    sb->egress = s->egress;
    snprintf(sb->region, sizeof(sb->region), "%s", d->cfg.region);
    sb->memory_mb = s->memory_mb;
    sb->cpus = s->cpus;

    struct sandbox_spec spec = {
        .tmpl = s->tmpl,
        .memory_bytes = (uint64_t)s->memory_mb << 20,
        .cpu_millis = (uint32_t)(s->cpus * 1000.0 + 0.5),
        .pids_max = SANDBOX_PIDS_MAX,
        .tmpfs_bytes = storage_bytes(s->memory_mb),
        .agent_path = d->cfg.agent_path,
        .runner_path = d->cfg.runner_path,
        .hostname = "sandbox",
    };
    memcpy(spec.id, sb->id, sizeof(spec.id));

    char berr[512] = "";
    int fd = -1;
    uint64_t t0 = now_mono_us();
    r = d->backend->create(d->backend_state, &spec, &sb->inst, &fd, berr, sizeof(berr));
    if (r < 0) {
        sb->inst = NULL;
        log_error("sandbox %s: create failed: %s", sb->id, berr[0] ? berr : strerror(-r));
        api_error_set(err, r, 500, "internal", "%s", berr[0] ? berr : strerror(-r));
        goto fail;
    }
    if ((r = agent_conn_new(fd, sb->id, on_agent_dead, sb, &sb->conn)) < 0) {
        log_error("sandbox %s: start agent reader: %s", sb->id, strerror(-r));
        api_error_set(err, r, 500, "internal", "start agent reader: %s", strerror(-r));
        goto fail;
    }

    uint64_t t1 = now_mono_us();
    json_t *hello = json_pack("{s:i}", "version", PROTO_VERSION);
    json_t *reply = NULL;
    struct api_error herr = {0};
    r = agent_call(sb->conn, PROTO_HELLO, hello, HELLO_TIMEOUT_MS, &reply, &herr);
    json_decref(hello);
    if (r < 0) {
        log_error("sandbox %s: agent handshake failed: %s", sb->id, herr.message);
        api_error_set(err, r, 500, "internal", "agent handshake: %s", herr.message);
        goto fail;
    }
    json_int_t ver = json_integer_value(json_object_get(reply, "version"));
    json_decref(reply);
    if (ver != PROTO_VERSION) {
        log_error("sandbox %s: agent speaks protocol version %lld", sb->id, (long long)ver);
        api_error_set(err, -EPROTO, 500, "internal", "agent handshake: protocol version %lld, expected %d",
                      (long long)ver, PROTO_VERSION);
        r = -EPROTO;
        goto fail;
    }
    uint64_t t2 = now_mono_us();
    /* Only built templates carry warm-up code: the host template's REPLs
     * are zygote forks, warmed once by the zygote's --warmup. */
    if (s->tmpl->rootfs && s->tmpl->warmup && s->tmpl->warmup[0]) {
        if ((r = run_warmup(sb, s->tmpl, s->tmpl->warmup, err)) < 0) {
            log_error("sandbox %s: %s", sb->id, err->message);
            goto fail;
        }
    } else if (!s->tmpl->rootfs && prime) {
        /* The host template's REPL is a zygote fork: its first call pays
         * ~1,000 copy-on-write faults (the runner's call path, compile,
         * output), ~2 ms here. One empty call pays them now, at build time
         * (off the request path for a pool hit). Not for a pool miss: its
         * create is waiting, and the user's first call pays them anyway,
         * without a round trip of its own. Only a speed-up: a REPL that
         * cannot run it is left for the user's first call to report. */
        struct api_error perr = {0};
        if (run_warmup(sb, s->tmpl, "print()", &perr) < 0)
            log_debug("sandbox %s: priming call: %s", sb->id, perr.message);
    }
    uint64_t t3 = now_mono_us();
    /* where a build's time goes (the create line has only the total) */
    log_debug("sandbox %s: built in %.3f ms (backend %.3f, hello %.3f, warm-up %.3f)", sb->id,
              (double)(t3 - t0) / 1000.0, (double)(t1 - t0) / 1000.0, (double)(t2 - t1) / 1000.0,
              (double)(t3 - t2) / 1000.0);
    *out = sb;
    return 0;

fail:
    sandbox_free(sb);
    return r < 0 ? r : -EIO;
}

int sandbox_create(struct daemon *d, const struct sandbox_params *p, const char *key_id, struct sandbox **out,
                   struct api_error *err)
{
    uint64_t t_start = now_mono_us();
    struct registry *reg = d->reg;
    struct pending_create pc = {.key_id = key_id ? key_id : ""};
    int r;

    /* The quotas are checked and the place reserved before the pool is
     * asked: a pool hit is a create like any other for every limit. */
    pthread_mutex_lock(&reg->lock);
    if (!reg->accepting) {
        pthread_mutex_unlock(&reg->lock);
        return api_error_set(err, -ESHUTDOWN, 503, "unavailable", "the daemon is shutting down");
    }
    if (reg->count + reg->reserved >= d->cfg.max_sandboxes) {
        pthread_mutex_unlock(&reg->lock);
        return api_error_set(err, -EDQUOT, 429, "quota_exceeded", "too many live sandboxes (limit %u)",
                             d->cfg.max_sandboxes);
    }
    if (p->per_key_max && owned_locked(reg, pc.key_id) >= p->per_key_max) {
        pthread_mutex_unlock(&reg->lock);
        return api_error_set(err, -EDQUOT, 429, "sandbox_quota",
                             "this key has %u live sandboxes, the most one key may have (--max-sandboxes-per-key)",
                             p->per_key_max);
    }
    reg->reserved++;
    pc.next = reg->pending;
    reg->pending = &pc;
    pthread_mutex_unlock(&reg->lock);

    struct sandbox_shape shape = {.tmpl = p->tmpl, .memory_mb = p->memory_mb, .cpus = p->cpus, .egress = p->egress};
    struct sandbox *sb = pool_take(d->pool, &shape);
    bool pooled = sb != NULL;
    if (sb && sandbox_crashed(sb)) {
        /* its agent died while it waited: throw it away, build anew */
        log_warn("sandbox %s: pooled agent died while waiting; discarded", sb->id);
        sandbox_discard(sb);
        sb = NULL;
        pooled = false;
    }
    if (!sb && (r = sandbox_build(d, &shape, false, &sb, err)) < 0) {
        release_reservation(reg, &pc);
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
    {
        /* the record and the create event in one transaction, before the
         * sandbox is visible: a create the store refuses never happened */
        cleanup_free char *md = json_dumps(sb->metadata, JSON_COMPACT);
        struct sandbox_record rec;
        fill_record_locked(sb, &rec, md); /* not yet shared: no lock needed */
        rec.agent_pid = d->backend->agent_pid ? (int)d->backend->agent_pid(sb->inst) : 0;
        json_t *detail = json_pack("{s:s,s:i,s:f,s:i,s:b}", "template", sb->template_name, "memory_mb",
                                   (int)sb->memory_mb, "cpus", sb->cpus, "timeout_s", (int)sb->timeout_s, "pooled",
                                   pooled);
        struct audit_rec a = {.key_id = key_id, .action = "create", .sandbox_id = sb->id, .detail = detail};
        r = store_sandbox_insert(d->store, &rec, &a);
        json_decref(detail);
        if (r < 0) {
            api_error_audit(err, r, "the create");
            goto fail;
        }
    }

    pthread_mutex_lock(&reg->lock);
    if (!reg->accepting) {
        pthread_mutex_unlock(&reg->lock); /* the reservation is released by fail: */
        json_t *detail = json_pack("{s:s}", "reason", "shutdown");
        struct audit_rec a = {.action = "destroy", .sandbox_id = sb->id, .detail = detail};
        (void)store_sandbox_set_destroyed(d->store, sb->id, "shutdown", now_wall_ms(), &a);
        json_decref(detail);
        api_error_set(err, -ESHUTDOWN, 503, "unavailable", "the daemon is shutting down");
        r = -ESHUTDOWN;
        goto fail;
    }
    unreserve_locked(reg, &pc); /* in the same critical section as count++ */
    sb->refs = 2; /* the registry's and the caller's */
    if (reg->live_tail)
        reg->live_tail->next = sb;
    else
        reg->live = sb;
    reg->live_tail = sb;
    reg->count++;
    pthread_mutex_unlock(&reg->lock);

    /* the timing split shows where a create's time goes: the pool (or the
     * build on a miss) versus the record and audit writes */
    uint64_t t_end = now_mono_us();
    log_info("sandbox %s created (memory %u MiB, cpus %.2f, lifetime %u s%s) in %.3f ms (%s %.3f ms, record %.3f ms)",
             sb->id, sb->memory_mb, sb->cpus, sb->timeout_s, pooled ? ", from the warm pool" : "",
             (double)(t_end - t_start) / 1000.0, pooled ? "pool take" : "build", (double)(t_got - t_start) / 1000.0,
             (double)(t_end - t_got) / 1000.0);
    *out = sb;
    return 0;

fail:
    release_reservation(reg, &pc);
    /* sandbox_free closes the connection, joins its reader, destroys the
     * backend instance: nothing is left behind */
    sandbox_free(sb);
    return r < 0 ? r : -EIO;
}

int sandbox_set_timeout(struct sandbox *sb, unsigned timeout_s, const char *key_id)
{
    struct registry *reg = sb->d->reg;
    pthread_mutex_lock(&reg->lock);
    bool running = sb->state == SB_RUNNING;
    pthread_mutex_unlock(&reg->lock);
    if (!running)
        return -ESRCH;
    /* written first: a lifetime the store refuses is not taken */
    uint64_t expires = now_wall_ms() + (uint64_t)timeout_s * 1000;
    json_t *detail = json_pack("{s:i}", "timeout_s", (int)timeout_s);
    struct audit_rec a = {.key_id = key_id, .action = "timeout", .sandbox_id = sb->id, .detail = detail};
    int r = store_sandbox_set_expiry(sb->d->store, sb->id, timeout_s, expires, &a);
    json_decref(detail);
    if (r < 0)
        return r;
    pthread_mutex_lock(&reg->lock);
    if (sb->state == SB_RUNNING) {
        sb->timeout_s = timeout_s;
        sb->expires_ms = expires;
    }
    pthread_mutex_unlock(&reg->lock);
    return 0;
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
    int r = pthread_create(&reg->reaper, NULL, reaper_main, reg);
    if (r != 0) {
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
    reg->d->reg = NULL;
    free(reg);
}
