/* store_records.c - sandbox and template records in the state database. */
#include "store_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* ---- sandboxes */

void store_record_clear(struct sandbox_record *r)
{
    free(r->metadata);
    r->metadata = NULL;
}

static int sandbox_insert_tx(struct store *s, void *arg)
{
    const struct sandbox_record *rec = arg;
    int r = 0;
    sqlite3_stmt *st = store_stmt(s, ST_SB_INSERT);
    store_bind_text(st, 1, rec->id);
    store_bind_text(st, 2, rec->state);
    store_bind_text(st, 3, rec->template_name);
    sqlite3_bind_int(st, 4, rec->egress);
    store_bind_text(st, 5, rec->region);
    sqlite3_bind_int(st, 6, (int)rec->memory_mb);
    sqlite3_bind_double(st, 7, rec->cpus);
    sqlite3_bind_int64(st, 8, rec->timeout_s);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)rec->created_ms);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)rec->expires_ms);
    store_bind_text(st, 11, rec->metadata ? rec->metadata : "{}");
    sqlite3_bind_int(st, 12, rec->agent_pid);
    store_bind_text(st, 13, rec->key_id[0] ? rec->key_id : NULL);
    store_bind_text(st, 14, rec->isolation[0] ? rec->isolation : "jail");
    store_bind_text(st, 15, rec->parent_id[0] ? rec->parent_id : NULL);
    store_bind_text(st, 16, rec->family_id[0] ? rec->family_id : NULL);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = store_write_fail(s, "insert sandbox record");
    sqlite3_reset(st);
    return r;
}

int store_sandbox_insert(struct store *s, const struct sandbox_record *rec, const struct audit_rec *audit)
{
    return store_write_audited(s, sandbox_insert_tx, (void *)rec, audit, "insert sandbox record", NULL);
}

int store_sandbox_get(struct store *s, const char *id, struct sandbox_record *out)
{
    int r = 0;
    *out = (struct sandbox_record){0};
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = store_stmt(s, ST_SB_GET);
    store_bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        store_copy_col(st, 0, out->id, sizeof(out->id));
        store_copy_col(st, 1, out->state, sizeof(out->state));
        store_copy_col(st, 2, out->template_name, sizeof(out->template_name));
        out->egress = sqlite3_column_int(st, 3) != 0;
        store_copy_col(st, 4, out->region, sizeof(out->region));
        out->memory_mb = (unsigned)sqlite3_column_int(st, 5);
        out->cpus = sqlite3_column_double(st, 6);
        out->timeout_s = (unsigned)sqlite3_column_int64(st, 7);
        out->created_ms = (uint64_t)sqlite3_column_int64(st, 8);
        out->expires_ms = (uint64_t)sqlite3_column_int64(st, 9);
        out->destroyed_ms = (uint64_t)sqlite3_column_int64(st, 10);
        store_copy_col(st, 11, out->destroy_reason, sizeof(out->destroy_reason));
        const unsigned char *md = sqlite3_column_text(st, 12);
        out->metadata = strdup(md ? (const char *)md : "{}");
        out->agent_pid = sqlite3_column_int(st, 13);
        store_copy_col(st, 14, out->key_id, sizeof(out->key_id));
        store_copy_col(st, 15, out->isolation, sizeof(out->isolation));
        store_copy_col(st, 16, out->parent_id, sizeof(out->parent_id));
        store_copy_col(st, 17, out->family_id, sizeof(out->family_id));
        if (!out->metadata)
            r = -ENOMEM;
    } else if (rc == SQLITE_DONE) {
        r = -ENOENT;
    } else {
        r = store_db_fail(s, "read sandbox record");
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}

struct sb_update {
    const char *id, *reason;
    unsigned timeout_s;
    uint64_t ms;
};

static int set_expiry_tx(struct store *s, void *arg)
{
    const struct sb_update *u = arg;
    int r = 0;
    sqlite3_stmt *st = store_stmt(s, ST_SB_SET_EXPIRY);
    sqlite3_bind_int64(st, 1, u->timeout_s);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)u->ms);
    store_bind_text(st, 3, u->id);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = store_write_fail(s, "update sandbox expiry");
    sqlite3_reset(st);
    return r;
}

int store_sandbox_set_expiry(struct store *s, const char *id, unsigned timeout_s, uint64_t expires_ms,
                             const struct audit_rec *audit)
{
    struct sb_update u = {.id = id, .timeout_s = timeout_s, .ms = expires_ms};
    return store_write_audited(s, set_expiry_tx, &u, audit, "update sandbox expiry", NULL);
}

static int set_paused_tx(struct store *s, void *arg)
{
    const struct sb_update *u = arg;
    int r = 0;
    sqlite3_stmt *st = store_stmt(s, ST_SB_SET_PAUSED);
    store_bind_text(st, 1, u->reason);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)u->ms);
    store_bind_text(st, 3, u->id);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = store_write_fail(s, "update sandbox pause state");
    sqlite3_reset(st);
    return r;
}

int store_sandbox_set_paused(struct store *s, const char *id, bool paused, uint64_t expires_ms,
                             const struct audit_rec *audit)
{
    struct sb_update u = {.id = id, .reason = paused ? "paused" : "running", .ms = expires_ms};
    return store_write_audited(s, set_paused_tx, &u, audit, "update sandbox pause state", NULL);
}

static int set_destroyed_tx(struct store *s, void *arg)
{
    const struct sb_update *u = arg;
    int r = 0;
    sqlite3_stmt *st = store_stmt(s, ST_SB_SET_DESTROYED);
    store_bind_text(st, 1, u->reason);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)u->ms);
    store_bind_text(st, 3, u->id);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = store_write_fail(s, "mark sandbox destroyed");
    sqlite3_reset(st);
    return r;
}

int store_sandbox_set_destroyed(struct store *s, const char *id, const char *reason, uint64_t when_ms,
                                const struct audit_rec *audit)
{
    struct sb_update u = {.id = id, .reason = reason, .ms = when_ms};
    return store_write_audited(s, set_destroyed_tx, &u, audit, "mark sandbox destroyed", NULL);
}

int store_sandbox_destroy_all_running(struct store *s, const char *reason, uint64_t when_ms, unsigned *count)
{
    /* Collect the ids first: updating rows while stepping a SELECT on the
     * same table is legal in SQLite but easy to get wrong. */
    json_t *ids = json_array();
    if (!ids)
        return -ENOMEM;
    int r = 0, rc;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = store_stmt(s, ST_SB_RUNNING_IDS);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(ids, json_string((const char *)sqlite3_column_text(st, 0)));
    if (rc != SQLITE_DONE)
        r = store_db_fail(s, "list running sandboxes");
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);

    size_t i;
    json_t *v;
    *count = 0;
    json_array_foreach(ids, i, v)
    {
        if (r < 0)
            break;
        const char *id = json_string_value(v);
        if (!id)
            continue;
        json_t *detail = json_pack("{s:s}", "reason", reason);
        struct audit_rec a = {.action = "destroy", .sandbox_id = id, .detail = detail};
        r = store_sandbox_set_destroyed(s, id, reason, when_ms, &a);
        json_decref(detail);
        if (r < 0)
            break;
        (*count)++;
    }
    json_decref(ids);
    return r;
}

/* ---- templates */

struct tmpl_put {
    const char *name, *spec_hash, *tree_hash;
    uint64_t built_at_ms;
    const char *manifest;
};

static int tmpl_put_tx(struct store *s, void *arg)
{
    const struct tmpl_put *t = arg;
    const char *name = t->name, *spec_hash = t->spec_hash, *tree_hash = t->tree_hash, *manifest = t->manifest;
    uint64_t built_at_ms = t->built_at_ms;
    int r = 0;
    sqlite3_stmt *st = store_stmt(s, ST_TMPL_PUT);
    store_bind_text(st, 1, name);
    store_bind_text(st, 2, spec_hash);
    store_bind_text(st, 3, tree_hash);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)built_at_ms);
    store_bind_text(st, 5, manifest);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = store_write_fail(s, "record template");
    sqlite3_reset(st);
    return r;
}

int store_template_put(struct store *s, const char *name, const char *spec_hash, const char *tree_hash,
                       uint64_t built_at_ms, const char *manifest)
{
    struct tmpl_put t = {name, spec_hash, tree_hash, built_at_ms, manifest};
    return store_write_audited(s, tmpl_put_tx, &t, NULL, "record template", NULL);
}

int store_template_list(struct store *s, json_t **out)
{
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    int rc;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = store_stmt(s, ST_TMPL_LIST);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 1);
        json_error_t jerr;
        json_t *m = text ? json_loads(text, 0, &jerr) : NULL;
        if (!json_is_object(m)) {
            /* one damaged row must not hide the others */
            log_error("store: template %s: unreadable manifest", sqlite3_column_text(st, 0));
            json_decref(m);
            continue;
        }
        json_array_append_new(arr, m);
    }
    return store_list_finish(s, st, rc, "list templates", "templates", arr, out);
}

int store_template_delete(struct store *s, const char *name)
{
    return store_change_row(s, ST_TMPL_DELETE, name, "delete template", NULL);
}
