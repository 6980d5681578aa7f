#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "log.h"
#include "util.h"
#include "walckpt.h"

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS api_keys ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,"
    "  admin INTEGER NOT NULL, created_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS sandboxes ("
    "  id TEXT PRIMARY KEY, state TEXT NOT NULL, template TEXT NOT NULL, egress INTEGER NOT NULL,"
    "  region TEXT NOT NULL, memory_mb INTEGER NOT NULL, cpus REAL NOT NULL, timeout_s INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, destroyed_at INTEGER,"
    "  destroy_reason TEXT, metadata TEXT NOT NULL, agent_pid INTEGER, key_id TEXT);"
    "CREATE INDEX IF NOT EXISTS sandboxes_state ON sandboxes(state);"
    "CREATE TABLE IF NOT EXISTS audit ("
    "  ts INTEGER NOT NULL, key_id TEXT, action TEXT NOT NULL, sandbox_id TEXT, detail TEXT);"
    "CREATE INDEX IF NOT EXISTS audit_sandbox ON audit(sandbox_id, ts);"
    "CREATE TABLE IF NOT EXISTS templates ("
    "  name TEXT PRIMARY KEY, spec_hash TEXT NOT NULL, tree_hash TEXT NOT NULL, built_at INTEGER NOT NULL,"
    "  manifest TEXT NOT NULL);";

enum stmt_id {
    ST_KEY_INSERT,
    ST_KEY_FIND,
    ST_KEY_COUNT,
    ST_KEY_LIST,
    ST_KEY_REVOKE,
    ST_SB_INSERT,
    ST_SB_GET,
    ST_SB_SET_EXPIRY,
    ST_SB_SET_DESTROYED,
    ST_SB_RUNNING_IDS,
    ST_AUDIT_INSERT,
    ST_AUDIT_LIST,
    ST_TMPL_PUT,
    ST_TMPL_LIST,
    ST_TMPL_DELETE,
    ST__COUNT,
};

static const char *const STMT_SQL[ST__COUNT] = {
    [ST_KEY_INSERT] = "INSERT INTO api_keys(id,name,hash,admin,created_at,revoked) VALUES(?,?,?,?,?,0)",
    [ST_KEY_FIND] = "SELECT id, hash, admin FROM api_keys WHERE hash = ? AND revoked = 0",
    [ST_KEY_COUNT] = "SELECT count(*) FROM api_keys",
    [ST_KEY_LIST] = "SELECT id, name, admin, created_at, revoked FROM api_keys ORDER BY created_at, id",
    [ST_KEY_REVOKE] = "UPDATE api_keys SET revoked = 1 WHERE id = ? AND revoked = 0",
    [ST_SB_INSERT] = "INSERT INTO sandboxes(id,state,template,egress,region,memory_mb,cpus,timeout_s,"
                     "created_at,expires_at,destroyed_at,destroy_reason,metadata,agent_pid,key_id)"
                     " VALUES(?,?,?,?,?,?,?,?,?,?,NULL,NULL,?,?,?)",
    [ST_SB_GET] = "SELECT id,state,template,egress,region,memory_mb,cpus,timeout_s,created_at,expires_at,"
                  "destroyed_at,destroy_reason,metadata,agent_pid,key_id FROM sandboxes WHERE id = ?",
    [ST_SB_SET_EXPIRY] = "UPDATE sandboxes SET timeout_s = ?, expires_at = ? WHERE id = ?",
    [ST_SB_SET_DESTROYED] = "UPDATE sandboxes SET state = 'destroyed', destroy_reason = ?, destroyed_at = ?"
                            " WHERE id = ? AND state = 'running'",
    [ST_SB_RUNNING_IDS] = "SELECT id FROM sandboxes WHERE state = 'running'",
    [ST_AUDIT_INSERT] = "INSERT INTO audit(ts,key_id,action,sandbox_id,detail) VALUES(?,?,?,?,?)",
    [ST_AUDIT_LIST] = "SELECT ts, action, key_id, detail FROM audit WHERE sandbox_id = ? ORDER BY ts, rowid",
    [ST_TMPL_PUT] = "INSERT OR REPLACE INTO templates(name,spec_hash,tree_hash,built_at,manifest) VALUES(?,?,?,?,?)",
    [ST_TMPL_LIST] = "SELECT name, manifest FROM templates ORDER BY name",
    [ST_TMPL_DELETE] = "DELETE FROM templates WHERE name = ?",
};

struct store {
    sqlite3 *db;
    pthread_mutex_t lock; /* one connection, used by one thread at a time */
    sqlite3_stmt *st[ST__COUNT];
    struct walckpt *ckpt; /* checkpoints on their own thread (walckpt.c) */
};

/* Log a SQLite failure with the operation; callers return -EIO. */
static int db_fail(struct store *s, const char *what)
{
    log_error("store: %s: %s", what, sqlite3_errmsg(s->db));
    return -EIO;
}

/* Fetch a prepared statement, reset and cleared. Caller holds the lock. */
static sqlite3_stmt *stmt(struct store *s, enum stmt_id id)
{
    sqlite3_stmt *st = s->st[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", v ? (const char *)v : "");
}

int store_open(const char *dir, struct store **out)
{
    cleanup_free char *path = NULL;
    if (asprintf(&path, "%s/airlock.db", dir) < 0)
        return -ENOMEM;
    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        log_error("store: open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        store_close(s);
        return -EIO;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", NULL,
                     NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(s->db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("store: initialise %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        store_close(s);
        return -EIO;
    }
    for (int i = 0; i < ST__COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
            int r = db_fail(s, STMT_SQL[i]);
            store_close(s);
            return r;
        }
    }
    if (walckpt_start(path, s->db, &s->ckpt) < 0)
        log_warn("store: checkpoints stay in the committing request");
    *out = s;
    return 0;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    walckpt_stop(s->ckpt);
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db)
        sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void format_time(uint64_t ms, bool with_ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (with_ms)
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
    else
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- keys */

int store_key_insert(struct store *s, const char *id, const char *name, const char *hash, bool admin,
                     uint64_t created_ms)
{
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, ST_KEY_INSERT);
    bind_text(st, 1, id);
    bind_text(st, 2, name);
    bind_text(st, 3, hash);
    sqlite3_bind_int(st, 4, admin);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)created_ms);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_CONSTRAINT)
        r = -EEXIST;
    else if (rc != SQLITE_DONE)
        r = db_fail(s, "insert api key");
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* Why an indexed lookup by hash does not leak the key through timing.
 *
 * The B-tree search behind "WHERE hash = ?" compares the presented key's
 * SHA-256 with stored hashes byte by byte and stops at the first difference,
 * so its timing can tell an attacker how many leading bytes of SHA-256(their
 * guess) match some stored hash. That is information about the stored hash,
 * not about the key: passing the check needs the key itself, i.e. a preimage
 * of a known hash (infeasible for SHA-256), and keys are 128 random bits, so
 * there is nothing to guess byte by byte either. The attacker controls the
 * guess but not its hash, so they cannot steer the search one byte at a time
 * as with a plain memcmp of secrets. The hashes are exactly what the
 * database holds at rest, which is why the database is not secret-bearing.
 *
 * The final comparison is constant-time anyway (CRYPTO_memcmp): whether the
 * row found is really this hash must not be decided by an early-exit memcmp,
 * whatever the index did. A full scan comparing every key in constant time
 * would hide even the hash prefix, at O(keys) per request under the store
 * lock; the index is O(log keys) and hides what matters. */
int store_key_find(struct store *s, const char *hash, struct key_info *out)
{
    if (strlen(hash) != KEY_HASH_LEN)
        return -ENOENT;
    int r = -ENOENT;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, ST_KEY_FIND);
    bind_text(st, 1, hash);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *h = sqlite3_column_text(st, 1);
        if (h && (size_t)sqlite3_column_bytes(st, 1) == KEY_HASH_LEN && CRYPTO_memcmp(h, hash, KEY_HASH_LEN) == 0) {
            copy_col(st, 0, out->id, sizeof(out->id));
            out->admin = sqlite3_column_int(st, 2) != 0;
            r = 0;
        }
    } else if (rc != SQLITE_DONE) {
        r = db_fail(s, "look up api key");
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int store_key_count(struct store *s, unsigned *count)
{
    int r = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, ST_KEY_COUNT);
    if (sqlite3_step(st) == SQLITE_ROW)
        *count = (unsigned)sqlite3_column_int(st, 0);
    else
        r = db_fail(s, "count api keys");
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* The end every list query shares (called with the lock held): reset the
 * statement, unlock, and hand out {key: arr}, or the error and no array. */
static int list_finish(struct store *s, sqlite3_stmt *st, int rc, const char *what, const char *key, json_t *arr,
                       json_t **out)
{
    int r = rc == SQLITE_DONE ? 0 : db_fail(s, what);
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    if (r < 0) {
        json_decref(arr);
        return r;
    }
    *out = json_pack("{s:o}", key, arr);
    return *out ? 0 : -ENOMEM;
}

int store_key_list(struct store *s, json_t **out)
{
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    int rc;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, ST_KEY_LIST);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char ts[40];
        format_time((uint64_t)sqlite3_column_int64(st, 3), false, ts, sizeof(ts));
        json_array_append_new(arr, json_pack("{s:s,s:s,s:b,s:s,s:b}", "id", sqlite3_column_text(st, 0), "name",
                                             sqlite3_column_text(st, 1), "admin", sqlite3_column_int(st, 2),
                                             "created_at", ts, "revoked", sqlite3_column_int(st, 4)));
    }
    return list_finish(s, st, rc, "list api keys", "keys", arr, out);
}

/* Run statement id on the row named key: 0, -ENOENT when it changed no
 * row, -EIO (logged as `what`). */
static int change_row(struct store *s, enum stmt_id id, const char *key, const char *what)
{
    int r = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, id);
    bind_text(st, 1, key);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = db_fail(s, what);
    else if (sqlite3_changes(s->db) == 0)
        r = -ENOENT;
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int store_key_revoke(struct store *s, const char *id)
{
    return change_row(s, ST_KEY_REVOKE, id, "revoke api key");
}

/* ---- sandboxes */

void store_record_clear(struct sandbox_record *r)
{
    free(r->metadata);
    r->metadata = NULL;
}

int store_sandbox_insert(struct store *s, const struct sandbox_record *rec)
{
    int r = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, ST_SB_INSERT);
    bind_text(st, 1, rec->id);
    bind_text(st, 2, rec->state);
    bind_text(st, 3, rec->template_name);
    sqlite3_bind_int(st, 4, rec->egress);
    bind_text(st, 5, rec->region);
    sqlite3_bind_int(st, 6, (int)rec->memory_mb);
    sqlite3_bind_double(st, 7, rec->cpus);
    sqlite3_bind_int64(st, 8, rec->timeout_s);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)rec->created_ms);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)rec->expires_ms);
    bind_text(st, 11, rec->metadata ? rec->metadata : "{}");
    sqlite3_bind_int(st, 12, rec->agent_pid);
    bind_text(st, 13, rec->key_id[0] ? rec->key_id : NULL);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = db_fail(s, "insert sandbox record");
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int store_sandbox_get(struct store *s, const char *id, struct sandbox_record *out)
{
    int r = 0;
    *out = (struct sandbox_record){0};
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, ST_SB_GET);
    bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_col(st, 0, out->id, sizeof(out->id));
        copy_col(st, 1, out->state, sizeof(out->state));
        copy_col(st, 2, out->template_name, sizeof(out->template_name));
        out->egress = sqlite3_column_int(st, 3) != 0;
        copy_col(st, 4, out->region, sizeof(out->region));
        out->memory_mb = (unsigned)sqlite3_column_int(st, 5);
        out->cpus = sqlite3_column_double(st, 6);
        out->timeout_s = (unsigned)sqlite3_column_int64(st, 7);
        out->created_ms = (uint64_t)sqlite3_column_int64(st, 8);
        out->expires_ms = (uint64_t)sqlite3_column_int64(st, 9);
        out->destroyed_ms = (uint64_t)sqlite3_column_int64(st, 10);
        copy_col(st, 11, out->destroy_reason, sizeof(out->destroy_reason));
        const unsigned char *md = sqlite3_column_text(st, 12);
        out->metadata = strdup(md ? (const char *)md : "{}");
        out->agent_pid = sqlite3_column_int(st, 13);
        copy_col(st, 14, out->key_id, sizeof(out->key_id));
        if (!out->metadata)
            r = -ENOMEM;
    } else if (rc == SQLITE_DONE) {
        r = -ENOENT;
    } else {
        r = db_fail(s, "read sandbox record");
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int store_sandbox_set_expiry(struct store *s, const char *id, unsigned timeout_s, uint64_t expires_ms)
{
    int r = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, ST_SB_SET_EXPIRY);
    sqlite3_bind_int64(st, 1, timeout_s);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)expires_ms);
    bind_text(st, 3, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = db_fail(s, "update sandbox expiry");
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int set_destroyed_locked(struct store *s, const char *id, const char *reason, uint64_t when_ms)
{
    int r = 0;
    sqlite3_stmt *st = stmt(s, ST_SB_SET_DESTROYED);
    bind_text(st, 1, reason);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)when_ms);
    bind_text(st, 3, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = db_fail(s, "mark sandbox destroyed");
    sqlite3_reset(st);
    return r;
}

int store_sandbox_set_destroyed(struct store *s, const char *id, const char *reason, uint64_t when_ms)
{
    pthread_mutex_lock(&s->lock);
    int r = set_destroyed_locked(s, id, reason, when_ms);
    pthread_mutex_unlock(&s->lock);
    return r;
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
    sqlite3_stmt *st = stmt(s, ST_SB_RUNNING_IDS);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(ids, json_string((const char *)sqlite3_column_text(st, 0)));
    if (rc != SQLITE_DONE)
        r = db_fail(s, "list running sandboxes");
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
        if ((r = store_sandbox_set_destroyed(s, id, reason, when_ms)) < 0)
            break;
        json_t *detail = json_pack("{s:s}", "reason", reason);
        (void)store_audit(s, NULL, "destroy", id, detail);
        json_decref(detail);
        (*count)++;
    }
    json_decref(ids);
    return r;
}

/* ---- audit */

int store_audit(struct store *s, const char *key_id, const char *action, const char *sandbox_id, json_t *detail)
{
    char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    int r = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, ST_AUDIT_INSERT);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)now_wall_ms());
    bind_text(st, 2, key_id && *key_id ? key_id : NULL);
    bind_text(st, 3, action);
    bind_text(st, 4, sandbox_id);
    bind_text(st, 5, text ? text : "{}");
    if (sqlite3_step(st) != SQLITE_DONE)
        r = db_fail(s, "write audit event");
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    free(text);
    return r;
}

int store_audit_list(struct store *s, const char *sandbox_id, json_t **out)
{
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    int rc;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, ST_AUDIT_LIST);
    bind_text(st, 1, sandbox_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char ts[40];
        format_time((uint64_t)sqlite3_column_int64(st, 0), true, ts, sizeof(ts));
        const unsigned char *d = sqlite3_column_text(st, 3);
        json_t *detail = d ? json_loads((const char *)d, 0, NULL) : NULL;
        const unsigned char *kid = sqlite3_column_text(st, 2);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s?,s:o}", "ts", ts, "action", sqlite3_column_text(st, 1),
                                             "key_id", kid, "detail", detail ? detail : json_object()));
    }
    return list_finish(s, st, rc, "read audit events", "events", arr, out);
}

/* ---- templates */

int store_template_put(struct store *s, const char *name, const char *spec_hash, const char *tree_hash,
                       uint64_t built_at_ms, const char *manifest)
{
    int r = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, ST_TMPL_PUT);
    bind_text(st, 1, name);
    bind_text(st, 2, spec_hash);
    bind_text(st, 3, tree_hash);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)built_at_ms);
    bind_text(st, 5, manifest);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = db_fail(s, "record template");
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int store_template_list(struct store *s, json_t **out)
{
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    int rc;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, ST_TMPL_LIST);
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
    return list_finish(s, st, rc, "list templates", "templates", arr, out);
}

int store_template_delete(struct store *s, const char *name)
{
    return change_row(s, ST_TMPL_DELETE, name, "delete template");
}
