/* store_keys.c - API keys in the state database (hashes only: auth.c). */
#include "store_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "util.h"

/* ---- keys */

struct key_insert {
    const char *id, *name, *hash;
    bool admin;
    uint64_t created_ms;
};

static int key_insert_tx(struct store *s, void *arg)
{
    const struct key_insert *k = arg;
    sqlite3_stmt *st = store_stmt(s, ST_KEY_INSERT);
    store_bind_text(st, 1, k->id);
    store_bind_text(st, 2, k->name);
    store_bind_text(st, 3, k->hash);
    sqlite3_bind_int(st, 4, k->admin);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)k->created_ms);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_CONSTRAINT)
        r = -EEXIST;
    else if (rc != SQLITE_DONE)
        r = store_write_fail(s, "insert api key");
    sqlite3_reset(st);
    return r;
}

int store_key_insert(struct store *s, const char *id, const char *name, const char *hash, bool admin,
                     uint64_t created_ms, const struct audit_rec *audit)
{
    struct key_insert k = {id, name, hash, admin, created_ms};
    return store_write_audited(s, key_insert_tx, &k, audit, "insert api key", NULL);
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
    sqlite3_stmt *st = store_stmt(s, ST_KEY_FIND);
    store_bind_text(st, 1, hash);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *h = sqlite3_column_text(st, 1);
        if (h && (size_t)sqlite3_column_bytes(st, 1) == KEY_HASH_LEN && CRYPTO_memcmp(h, hash, KEY_HASH_LEN) == 0) {
            store_copy_col(st, 0, out->id, sizeof(out->id));
            out->admin = sqlite3_column_int(st, 2) != 0;
            r = 0;
        }
    } else if (rc != SQLITE_DONE) {
        r = store_db_fail(s, "look up api key");
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int store_key_count(struct store *s, unsigned *count)
{
    int r = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = store_stmt(s, ST_KEY_COUNT);
    if (sqlite3_step(st) == SQLITE_ROW)
        *count = (unsigned)sqlite3_column_int(st, 0);
    else
        r = store_db_fail(s, "count api keys");
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}


int store_key_list(struct store *s, json_t **out)
{
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    int rc;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = store_stmt(s, ST_KEY_LIST);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char ts[40];
        format_time((uint64_t)sqlite3_column_int64(st, 3), false, ts, sizeof(ts));
        json_array_append_new(arr, json_pack("{s:s,s:s,s:b,s:s,s:b}", "id", sqlite3_column_text(st, 0), "name",
                                             sqlite3_column_text(st, 1), "admin", sqlite3_column_int(st, 2),
                                             "created_at", ts, "revoked", sqlite3_column_int(st, 4)));
    }
    return store_list_finish(s, st, rc, "list api keys", "keys", arr, out);
}


int store_key_revoke(struct store *s, const char *id, const struct audit_rec *audit)
{
    return store_change_row(s, ST_KEY_REVOKE, id, "revoke api key", audit);
}
