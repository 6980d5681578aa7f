/* store_impl.h - what the store's files share (store.c: the connection,
 * statements, write transactions, the audit log, retention, health;
 * store_keys.c: API keys; store_records.c: sandbox and template records).
 * Not for any other file: they use store.h. */
#ifndef AIRLOCK_STORE_IMPL_H
#define AIRLOCK_STORE_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "store.h"

#define HASH_HEX 64

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_KEY_INSERT,
    ST_KEY_FIND,
    ST_KEY_COUNT,
    ST_KEY_LIST,
    ST_KEY_REVOKE,
    ST_SB_INSERT,
    ST_SB_GET,
    ST_SB_SET_EXPIRY,
    ST_SB_SET_DESTROYED,
    ST_SB_SET_PAUSED,
    ST_SB_RUNNING_IDS,
    ST_SB_PRUNE,
    ST_AUDIT_INSERT,
    ST_AUDIT_LIST,
    ST_AUDIT_OUTCOME,
    ST_AUDIT_BOUNDS,
    ST_AUDIT_ROW,
    ST_AUDIT_OLD,
    ST_AUDIT_DELETE,
    ST_AUDIT_LAST,
    ST_AUDIT_LAST_CKPT,
    ST_AUDIT_ALL,
    ST_PROBE,
    ST_TMPL_PUT,
    ST_TMPL_LIST,
    ST_TMPL_DELETE,
    ST__COUNT,
};

struct store {
    sqlite3 *db;
    char *path;
    pthread_mutex_t lock; /* one connection, used by one thread at a time */
    sqlite3_stmt *st[ST__COUNT];
    struct walckpt *ckpt; /* checkpoints on their own thread (walckpt.c) */
    struct store_opts opts;

    /* under lock */
    bool unwritable;          /* the last write failed */
    bool damaged;             /* SQLite found the file corrupt since it was opened (sticky) */
    char damage[256];
    char write_error[256];    /* ... with this */
    char chain[HASH_HEX + 1]; /* hash of the newest audit row ("" before the first) */
    uint64_t dropped_total;   /* audit rows retention dropped, ever */
    unsigned since_prune;
};

/* Every function below is called with s->lock held unless it says so. */

/* Log a SQLite failure with the operation: -ENOSPC for a full disk, -EIO
 * otherwise; a corrupt file is remembered for healthz. */
int store_db_fail(struct store *s, const char *what);
/* The same for a write: the store is unwritable until a write succeeds. */
int store_write_fail(struct store *s, const char *what);
/* A prepared statement, reset and cleared. */
sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id);
void store_bind_text(sqlite3_stmt *st, int i, const char *v);
void store_copy_col(sqlite3_stmt *st, int col, char *dst, size_t cap);
/* Run a statement without result rows (BEGIN, COMMIT, ...): 0 or -1. */
int store_step_done(struct store *s, enum stmt_id id);
/* Takes the lock: one write transaction running change(s, arg), then the
 * audit row (when audit is given), then commit; the audit chain moves only
 * when the commit succeeded. *row gets the audit row's id (may be NULL). */
int store_write_audited(struct store *s, int (*change)(struct store *, void *), void *arg,
                        const struct audit_rec *audit, const char *what, int64_t *row);
/* The end every list query shares: reset the statement, UNLOCK, and hand
 * out {key: arr}, or the error and no array. */
int store_list_finish(struct store *s, sqlite3_stmt *st, int rc, const char *what, const char *key, json_t *arr,
                      json_t **out);
/* Takes the lock: statement id on the row named key, with its audit
 * record: 0, -ENOENT when it changed no row (nothing written), -errno. */
int store_change_row(struct store *s, enum stmt_id id, const char *key, const char *what,
                     const struct audit_rec *audit);

#endif
