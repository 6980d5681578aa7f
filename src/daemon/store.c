#include "store_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "log.h"
#include "statedb.h"
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
    "  manifest TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);";

/* Columns added after the first release: a database from before gets them
 * at open (audit rows written before have no hash: the chain starts after
 * them; sandboxes recorded before ran on the jail, the only backend then). */
static const struct {
    const char *table, *column, *decl;
} ADDED_COLUMNS[] = {
    {"audit", "hash", "TEXT"},
    {"audit", "outcome", "TEXT"},
    {"sandboxes", "isolation", "TEXT NOT NULL DEFAULT 'jail'"},
    /* fork (docs/api.md): the sandbox it was forked from, and the family's
     * root (its own id for a sandbox never forked from another) */
    {"sandboxes", "parent_id", "TEXT"},
    {"sandboxes", "family_id", "TEXT"},
};

/* Retention runs after this many audit rows, and drops at most
 * PRUNE_BATCH rows per run, so that no single request pays for a large
 * delete. */
#define PRUNE_EVERY 64
#define PRUNE_BATCH 4096


static const char *const STMT_SQL[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_KEY_INSERT] = "INSERT INTO api_keys(id,name,hash,admin,created_at,revoked) VALUES(?,?,?,?,?,0)",
    [ST_KEY_FIND] = "SELECT id, hash, admin FROM api_keys WHERE hash = ? AND revoked = 0",
    [ST_KEY_COUNT] = "SELECT count(*) FROM api_keys",
    [ST_KEY_LIST] = "SELECT id, name, admin, created_at, revoked FROM api_keys ORDER BY created_at, id",
    [ST_KEY_REVOKE] = "UPDATE api_keys SET revoked = 1 WHERE id = ? AND revoked = 0",
    [ST_SB_INSERT] = "INSERT INTO sandboxes(id,state,template,egress,region,memory_mb,cpus,timeout_s,"
                     "created_at,expires_at,destroyed_at,destroy_reason,metadata,agent_pid,key_id,isolation,parent_id,family_id)"
                     " VALUES(?,?,?,?,?,?,?,?,?,?,NULL,NULL,?,?,?,?,?,?)",
    [ST_SB_GET] = "SELECT id,state,template,egress,region,memory_mb,cpus,timeout_s,created_at,expires_at,"
                  "destroyed_at,destroy_reason,metadata,agent_pid,key_id,isolation,parent_id,family_id FROM sandboxes WHERE id = ?",
    [ST_SB_SET_EXPIRY] = "UPDATE sandboxes SET timeout_s = ?, expires_at = ? WHERE id = ?",
    [ST_SB_SET_DESTROYED] = "UPDATE sandboxes SET state = 'destroyed', destroy_reason = ?, destroyed_at = ?"
                            " WHERE id = ? AND state IN ('running', 'paused')",
    [ST_SB_SET_PAUSED] = "UPDATE sandboxes SET state = ?, expires_at = ? WHERE id = ? AND state IN ('running', 'paused')",
    /* a paused sandbox is live too: a restart destroys it like a running one */
    [ST_SB_RUNNING_IDS] = "SELECT id FROM sandboxes WHERE state IN ('running', 'paused')",
    /* the records of sandboxes whose whole audit trail retention dropped */
    [ST_SB_PRUNE] = "DELETE FROM sandboxes WHERE state = 'destroyed' AND destroyed_at <= ?",
    [ST_AUDIT_INSERT] = "INSERT INTO audit(ts,key_id,action,sandbox_id,detail,hash) VALUES(?,?,?,?,?,?)",
    [ST_AUDIT_LIST] = "SELECT ts, action, key_id, detail, outcome FROM audit WHERE sandbox_id = ? ORDER BY ts, rowid",
    [ST_AUDIT_OUTCOME] = "UPDATE audit SET outcome = ? WHERE rowid = ?",
    [ST_AUDIT_BOUNDS] = "SELECT min(rowid), max(rowid) FROM audit",
    [ST_AUDIT_ROW] = "SELECT ts, hash FROM audit WHERE rowid = ?",
    [ST_AUDIT_OLD] = "SELECT rowid FROM audit WHERE rowid <= ? AND ts < ? ORDER BY rowid DESC LIMIT 1",
    [ST_AUDIT_DELETE] = "DELETE FROM audit WHERE rowid <= ?",
    [ST_AUDIT_LAST] = "SELECT hash FROM audit ORDER BY rowid DESC LIMIT 1",
    [ST_AUDIT_LAST_CKPT] = "SELECT detail FROM audit WHERE action = 'audit_checkpoint' ORDER BY rowid DESC LIMIT 1",
    [ST_AUDIT_ALL] = "SELECT rowid, ts, key_id, action, sandbox_id, detail, hash FROM audit ORDER BY rowid",
    [ST_PROBE] = "INSERT OR REPLACE INTO meta(k, v) VALUES('write_probe', ?)",
    [ST_TMPL_PUT] = "INSERT OR REPLACE INTO templates(name,spec_hash,tree_hash,built_at,manifest) VALUES(?,?,?,?,?)",
    [ST_TMPL_LIST] = "SELECT name, manifest FROM templates ORDER BY name",
    [ST_TMPL_DELETE] = "DELETE FROM templates WHERE name = ?",
};



/* Log a SQLite failure with the operation: -ENOSPC for a full disk, -EIO
 * otherwise. */
int store_db_fail(struct store *s, const char *what)
{
    int code = sqlite3_errcode(s->db);
    log_error("store: %s: %s", what, sqlite3_errmsg(s->db));
    if ((code == SQLITE_CORRUPT || code == SQLITE_NOTADB) && !s->damaged) {
        /* damaged under a running daemon: healthz says so until a restart
         * (whose check then refuses the file) */
        s->damaged = true;
        snprintf(s->damage, sizeof(s->damage), "%s: %s", what, sqlite3_errmsg(s->db));
    }
    return code == SQLITE_FULL ? -ENOSPC : -EIO;
}

/* The same for a write: the store is unwritable until a write succeeds. */
int store_write_fail(struct store *s, const char *what)
{
    int r = store_db_fail(s, what);
    s->unwritable = true;
    snprintf(s->write_error, sizeof(s->write_error), "%s: %s", what, sqlite3_errmsg(s->db));
    return r;
}

/* Fetch a prepared statement, reset and cleared. Caller holds the lock. */
sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id)
{
    sqlite3_stmt *st = s->st[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

void store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

void store_copy_col(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", v ? (const char *)v : "");
}

/* Run a statement without result rows (BEGIN, COMMIT, ...). */
int store_step_done(struct store *s, enum stmt_id id)
{
    sqlite3_stmt *st = store_stmt(s, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- write transactions: begin, the statements, the audit row, commit.
 * The chain head moves only when the commit succeeded. */

static int tx_begin(struct store *s)
{
    if (store_step_done(s, ST_BEGIN) < 0)
        return store_write_fail(s, "begin a write");
    return 0;
}

static int tx_end(struct store *s, int r, const char *what)
{
    if (r == 0 && store_step_done(s, ST_COMMIT) < 0)
        r = store_write_fail(s, what);
    if (r < 0) {
        /* after SQLITE_FULL the transaction may already be rolled back:
         * then this fails harmlessly */
        (void)store_step_done(s, ST_ROLLBACK);
        return r;
    }
    s->unwritable = false;
    return 0;
}

/* SHA-256 hex of [prev, ts, key_id, action, sandbox_id, detail] as compact
 * JSON: one canonical text per row, so that fields cannot run into each
 * other. */
static int audit_hash(const char *prev, int64_t ts, const char *key_id, const char *action, const char *sandbox_id,
                      const char *detail, char out[HASH_HEX + 1])
{
    json_t *a = json_pack("[s,I,s?,s,s?,s]", prev, (json_int_t)ts, key_id, action, sandbox_id, detail);
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!text)
        return -ENOMEM;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int ok = EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL);
    free(text);
    if (!ok || mdlen != 32)
        return -EIO;
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Insert one audit row (in the caller's transaction): its hash goes to
 * new_chain, its rowid to *row (may be NULL). */
static int audit_insert_locked(struct store *s, const struct audit_rec *a, const char *prev, char *new_chain,
                               int64_t *row)
{
    cleanup_free char *text = a->detail ? json_dumps(a->detail, JSON_COMPACT) : NULL;
    const char *detail = text ? text : "{}";
    const char *key_id = a->key_id && *a->key_id ? a->key_id : NULL;
    int64_t ts = (int64_t)now_wall_ms();
    int r = audit_hash(prev, ts, key_id, a->action, a->sandbox_id, detail, new_chain);
    if (r < 0)
        return r;
    sqlite3_stmt *st = store_stmt(s, ST_AUDIT_INSERT);
    sqlite3_bind_int64(st, 1, ts);
    store_bind_text(st, 2, key_id);
    store_bind_text(st, 3, a->action);
    store_bind_text(st, 4, a->sandbox_id);
    store_bind_text(st, 5, detail);
    store_bind_text(st, 6, new_chain);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = store_write_fail(s, "write audit event");
    else if (row)
        *row = sqlite3_last_insert_rowid(s->db);
    sqlite3_reset(st);
    return r;
}

static void prune_locked(struct store *s);

/* One state change and its audit record, atomically. change(s, arg) runs
 * the statement(s) in the transaction (0, -ENOENT, or -errno). */
int store_write_audited(struct store *s, int (*change)(struct store *, void *), void *arg,
                        const struct audit_rec *a, const char *what, int64_t *row)
{
    char chain[HASH_HEX + 1];
    pthread_mutex_lock(&s->lock);
    int r;
    if (!change && a) {
        /* one statement: its own transaction (SQLite's autocommit), which
         * saves the BEGIN and COMMIT round of a code run's start */
        r = audit_insert_locked(s, a, s->chain, chain, row);
        if (r == 0)
            s->unwritable = false;
    } else {
        r = tx_begin(s);
        if (r == 0 && change)
            r = change(s, arg);
        if (r == 0 && a)
            r = audit_insert_locked(s, a, s->chain, chain, row);
        r = tx_end(s, r, what);
    }
    if (r == 0 && a) {
        memcpy(s->chain, chain, sizeof(chain));
        if (++s->since_prune >= PRUNE_EVERY) {
            s->since_prune = 0;
            prune_locked(s);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* ---- retention */

/* Drop the oldest audit rows past opts' count or age (at most PRUNE_BATCH)
 * and append the checkpoint that starts the chain of what remains. Failure
 * is logged: the rows stay until the next run. */
static void prune_locked(struct store *s)
{
    if (!s->opts.audit_max_rows && !s->opts.audit_max_age_ms)
        return;
    sqlite3_stmt *st = store_stmt(s, ST_AUDIT_BOUNDS);
    int64_t lo = 0, hi = 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        lo = sqlite3_column_int64(st, 0);
        hi = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (!lo)
        return;
    /* rows are only ever deleted from the oldest end, so [lo, hi] has no
     * gaps: hi - lo + 1 is the count */
    int64_t cut = 0; /* drop rowid <= cut */
    if (s->opts.audit_max_rows && (uint64_t)(hi - lo + 1) > s->opts.audit_max_rows)
        cut = hi - (int64_t)s->opts.audit_max_rows;
    if (cut > lo + PRUNE_BATCH - 1)
        cut = lo + PRUNE_BATCH - 1;
    if (s->opts.audit_max_age_ms && cut < lo + PRUNE_BATCH - 1) {
        st = store_stmt(s, ST_AUDIT_OLD);
        sqlite3_bind_int64(st, 1, lo + PRUNE_BATCH - 1);
        sqlite3_bind_int64(st, 2, (int64_t)(now_wall_ms() - s->opts.audit_max_age_ms));
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > cut)
            cut = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    if (cut < lo || cut >= hi) /* nothing to drop; the newest row always stays */
        return;
    int64_t first_ts = 0, last_ts = 0;
    char through[HASH_HEX + 1] = "";
    st = store_stmt(s, ST_AUDIT_ROW);
    sqlite3_bind_int64(st, 1, lo);
    if (sqlite3_step(st) == SQLITE_ROW)
        first_ts = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    st = store_stmt(s, ST_AUDIT_ROW);
    sqlite3_bind_int64(st, 1, cut);
    if (sqlite3_step(st) == SQLITE_ROW) {
        last_ts = sqlite3_column_int64(st, 0);
        store_copy_col(st, 1, through, sizeof(through));
    }
    sqlite3_reset(st);

    uint64_t n = (uint64_t)(cut - lo + 1);
    char chain[HASH_HEX + 1];
    char first[40], last[40];
    format_time((uint64_t)first_ts, true, first, sizeof(first));
    format_time((uint64_t)last_ts, true, last, sizeof(last));
    json_t *detail = json_pack("{s:I,s:I,s:s,s:s,s:s}", "dropped", (json_int_t)n, "dropped_total",
                               (json_int_t)(s->dropped_total + n), "first_ts", first, "last_ts", last,
                               "through_hash", through);
    struct audit_rec a = {.action = "audit_checkpoint", .detail = detail};
    int r = detail ? tx_begin(s) : -ENOMEM;
    if (r == 0) {
        st = store_stmt(s, ST_AUDIT_DELETE);
        sqlite3_bind_int64(st, 1, cut);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = store_write_fail(s, "drop old audit events");
        sqlite3_reset(st);
    }
    if (r == 0) {
        st = store_stmt(s, ST_SB_PRUNE);
        sqlite3_bind_int64(st, 1, last_ts);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = store_write_fail(s, "drop old sandbox records");
        sqlite3_reset(st);
    }
    if (r == 0)
        r = audit_insert_locked(s, &a, s->chain, chain, NULL);
    r = tx_end(s, r, "audit retention");
    json_decref(detail);
    if (r == 0) {
        memcpy(s->chain, chain, sizeof(chain));
        s->dropped_total += n;
        log_debug("store: audit retention dropped %llu events (%llu in all)", (unsigned long long)n,
                  (unsigned long long)s->dropped_total);
    }
}

/* Add the columns a database from an older version lacks. */
static int migrate(struct store *s)
{
    for (size_t i = 0; i < sizeof(ADDED_COLUMNS) / sizeof(ADDED_COLUMNS[0]); i++) {
        sqlite3_stmt *st = NULL;
        int have = 0;
        if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM pragma_table_info(?) WHERE name = ?", -1, &st, NULL) !=
            SQLITE_OK)
            return store_db_fail(s, "read a table's columns");
        sqlite3_bind_text(st, 1, ADDED_COLUMNS[i].table, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ADDED_COLUMNS[i].column, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            have = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (have)
            continue;
        char sql[160];
        snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s", ADDED_COLUMNS[i].table,
                 ADDED_COLUMNS[i].column, ADDED_COLUMNS[i].decl);
        if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
            return store_db_fail(s, sql);
    }
    return 0;
}

/* The chain head and the dropped count, from the newest row and the newest
 * checkpoint. Caller holds the lock (or is alone). */
static void load_chain(struct store *s)
{
    sqlite3_stmt *st = store_stmt(s, ST_AUDIT_LAST);
    if (sqlite3_step(st) == SQLITE_ROW)
        store_copy_col(st, 0, s->chain, sizeof(s->chain));
    sqlite3_reset(st);
    st = store_stmt(s, ST_AUDIT_LAST_CKPT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *d = sqlite3_column_text(st, 0);
        json_t *j = d ? json_loads((const char *)d, 0, NULL) : NULL;
        s->dropped_total = (uint64_t)json_integer_value(json_object_get(j, "dropped_total"));
        json_decref(j);
    }
    sqlite3_reset(st);
}

int store_open(const char *dir, const struct store_opts *opts, struct store **out)
{
    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    if (opts)
        s->opts = *opts;
    if (asprintf(&s->path, "%s/airlock.db", dir) < 0) {
        s->path = NULL;
        store_close(s);
        return -ENOMEM;
    }
    int r = statedb_open(s->path, s->opts.init_state, s->opts.full_check, &s->db);
    if (r < 0) {
        store_close(s);
        return r;
    }
    char *msg = NULL;
    /* journal_size_limit: a WAL that grew under a burst (the checkpoint
     * thread cannot reset it while commits keep coming) is cut back to
     * 64 MiB once it restarts, so the state dir stays bounded */
    if (sqlite3_exec(s->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                     " PRAGMA journal_size_limit=67108864;",
                     NULL,
                     NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(s->db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("store: initialise %s: %s", s->path, msg ? msg : "?");
        sqlite3_free(msg);
        store_close(s);
        return -EIO;
    }
    if ((r = migrate(s)) < 0) {
        store_close(s);
        return r;
    }
    for (int i = 0; i < ST__COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
            r = store_db_fail(s, STMT_SQL[i]);
            store_close(s);
            return r;
        }
    }
    load_chain(s);
    if (s->opts.full_check) {
        uint64_t rows = 0;
        char why[512] = "";
        if (store_audit_verify(s, &rows, why, sizeof(why)) < 0) {
            log_error("store: the audit log of %s does not verify: %s", s->path, why);
            store_close(s);
            return -EUCLEAN;
        }
        log_info("store: audit chain verified (%llu events)", (unsigned long long)rows);
    }
    if (walckpt_start(s->path, s->db, &s->ckpt) < 0)
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
    free(s->path);
    free(s);
}

/* ---- health */

bool store_writable(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    bool w = !s->unwritable;
    pthread_mutex_unlock(&s->lock);
    return w;
}

json_t *store_health(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->unwritable) {
        /* space may have come back: one small write tells */
        char v[32];
        snprintf(v, sizeof(v), "%llu", (unsigned long long)now_wall_ms());
        int r = tx_begin(s);
        if (r == 0) {
            sqlite3_stmt *st = store_stmt(s, ST_PROBE);
            store_bind_text(st, 1, v);
            if (sqlite3_step(st) != SQLITE_DONE)
                r = store_write_fail(s, "write probe");
            sqlite3_reset(st);
        }
        (void)tx_end(s, r, "write probe");
    }
    int64_t lo = 0, hi = 0;
    sqlite3_stmt *st = store_stmt(s, ST_AUDIT_BOUNDS);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        lo = sqlite3_column_int64(st, 0);
        hi = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    json_t *j = json_pack("{s:b,s:b,s:I,s:I}", "writable", !s->unwritable, "damaged", s->damaged, "audit_rows",
                          (json_int_t)(lo ? hi - lo + 1 : 0), "audit_dropped", (json_int_t)s->dropped_total);
    if (j && s->unwritable)
        json_object_set_new(j, "error", json_string(s->write_error));
    if (j && s->damaged)
        json_object_set_new(j, "damage", json_string(s->damage));
    pthread_mutex_unlock(&s->lock);
    struct stat sb;
    if (j && stat(s->path, &sb) == 0)
        json_object_set_new(j, "db_bytes", json_integer((json_int_t)sb.st_size));
    return j;
}

/* ---- audit chain verification */

int store_audit_verify(struct store *s, uint64_t *rows, char *why, size_t whylen)
{
    int r = 0;
    *rows = 0;
    pthread_mutex_lock(&s->lock);
    /* the chain of what remains starts where the newest checkpoint says the
     * dropped rows ended ("" when nothing was ever dropped) */
    char prev[HASH_HEX + 1] = "";
    sqlite3_stmt *st = store_stmt(s, ST_AUDIT_LAST_CKPT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *d = sqlite3_column_text(st, 0);
        json_t *j = d ? json_loads((const char *)d, 0, NULL) : NULL;
        const char *t = json_string_value(json_object_get(j, "through_hash"));
        snprintf(prev, sizeof(prev), "%s", t ? t : "");
        json_decref(j);
    }
    sqlite3_reset(st);
    st = store_stmt(s, ST_AUDIT_ALL);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *stored = (const char *)sqlite3_column_text(st, 6);
        if (!stored) { /* written before the chain existed */
            prev[0] = '\0';
            continue;
        }
        char h[HASH_HEX + 1];
        const char *detail = (const char *)sqlite3_column_text(st, 5);
        if (audit_hash(prev, sqlite3_column_int64(st, 1), (const char *)sqlite3_column_text(st, 2),
                       (const char *)sqlite3_column_text(st, 3), (const char *)sqlite3_column_text(st, 4),
                       detail ? detail : "{}", h) < 0) {
            r = -ENOMEM;
            break;
        }
        if (strcmp(h, stored) != 0) {
            snprintf(why, whylen, "audit row %lld (%s) does not match its hash: changed, or a row before it "
                     "was removed", (long long)sqlite3_column_int64(st, 0), sqlite3_column_text(st, 3));
            r = -EBADMSG;
            break;
        }
        memcpy(prev, h, sizeof(h));
        (*rows)++;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = store_db_fail(s, "read the audit log");
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
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

/* ---- audit */

int store_audit_begin(struct store *s, const struct audit_rec *a, int64_t *row)
{
    return store_write_audited(s, NULL, NULL, a, "write audit event", row);
}

int store_audit(struct store *s, const char *key_id, const char *action, const char *sandbox_id, json_t *detail)
{
    struct audit_rec a = {.key_id = key_id, .action = action, .sandbox_id = sandbox_id, .detail = detail};
    return store_audit_begin(s, &a, NULL);
}

int store_audit_outcome(struct store *s, int64_t row, json_t *outcome)
{
    cleanup_free char *text = json_dumps(outcome, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    int r = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = store_stmt(s, ST_AUDIT_OUTCOME);
    store_bind_text(st, 1, text);
    sqlite3_bind_int64(st, 2, row);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = store_write_fail(s, "record a run's outcome");
    else
        s->unwritable = false;
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int store_audit_list(struct store *s, const char *sandbox_id, json_t **out)
{
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    int rc;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = store_stmt(s, ST_AUDIT_LIST);
    store_bind_text(st, 1, sandbox_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char ts[40];
        format_time((uint64_t)sqlite3_column_int64(st, 0), true, ts, sizeof(ts));
        const unsigned char *d = sqlite3_column_text(st, 3);
        json_t *detail = d ? json_loads((const char *)d, 0, NULL) : NULL;
        const unsigned char *o = sqlite3_column_text(st, 4);
        json_t *outcome = o ? json_loads((const char *)o, 0, NULL) : NULL;
        if (json_is_object(detail) && json_is_object(outcome))
            json_object_update(detail, outcome);
        json_decref(outcome);
        const unsigned char *kid = sqlite3_column_text(st, 2);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s?,s:o}", "ts", ts, "action", sqlite3_column_text(st, 1),
                                             "key_id", kid, "detail", detail ? detail : json_object()));
    }
    return store_list_finish(s, st, rc, "read audit events", "events", arr, out);
}

/* The end every list query shares (called with the lock held): reset the
 * statement, unlock, and hand out {key: arr}, or the error and no array. */
int store_list_finish(struct store *s, sqlite3_stmt *st, int rc, const char *what, const char *key, json_t *arr,
                       json_t **out)
{
    int r = rc == SQLITE_DONE ? 0 : store_db_fail(s, what);
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    if (r < 0) {
        json_decref(arr);
        return r;
    }
    *out = json_pack("{s:o}", key, arr);
    return *out ? 0 : -ENOMEM;
}

struct row_change {
    enum stmt_id id;
    const char *key, *what;
};

static int change_row_tx(struct store *s, void *arg)
{
    const struct row_change *c = arg;
    int r = 0;
    sqlite3_stmt *st = store_stmt(s, c->id);
    store_bind_text(st, 1, c->key);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = store_write_fail(s, c->what);
    else if (sqlite3_changes(s->db) == 0)
        r = -ENOENT;
    sqlite3_reset(st);
    return r;
}

/* Run statement id on the row named key, with its audit record: 0, -ENOENT
 * when it changed no row (nothing written), -errno (logged as `what`). */
int store_change_row(struct store *s, enum stmt_id id, const char *key, const char *what,
                      const struct audit_rec *audit)
{
    struct row_change c = {id, key, what};
    return store_write_audited(s, change_row_tx, &c, audit, what, NULL);
}
