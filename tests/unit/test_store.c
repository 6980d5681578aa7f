#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "unit.h"

static char dir[] = "/tmp/airlock-test-store-XXXXXX";

static void rmrf(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    (void)!system(cmd);
}

static void test_keys(struct store *s)
{
    const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
    const char *h2 = "2222222222222222222222222222222222222222222222222222222222222222";
    unsigned n = 99;
    CHECK(store_key_count(s, &n) == 0 && n == 0);
    CHECK(store_key_insert(s, "key_0000000000000001", "admin", h1, true, 1000, NULL) == 0);
    CHECK(store_key_insert(s, "key_0000000000000002", "ci", h2, false, 2000, NULL) == 0);
    CHECK(store_key_insert(s, "key_0000000000000003", "dup", h2, false, 3000, NULL) == -EEXIST);
    CHECK(store_key_count(s, &n) == 0 && n == 2);

    struct key_info ki;
    CHECK(store_key_find(s, h1, &ki) == 0);
    CHECK_STREQ(ki.id, "key_0000000000000001");
    CHECK(ki.admin);
    CHECK(store_key_find(s, h2, &ki) == 0 && !ki.admin);
    CHECK(store_key_find(s, "3333333333333333333333333333333333333333333333333333333333333333", &ki) == -ENOENT);
    CHECK(store_key_find(s, "short", &ki) == -ENOENT);
    /* only the exact 64 hex digits: not a prefix, not one digit off, not
     * the same digits in upper case, nothing longer */
    CHECK(store_key_find(s, "1111111111111111111111111111111111111111111111111111111111111112", &ki) == -ENOENT);
    CHECK(store_key_find(s, "2111111111111111111111111111111111111111111111111111111111111111", &ki) == -ENOENT);
    CHECK(store_key_find(s, "111111111111111111111111111111111111111111111111111111111111111", &ki) == -ENOENT);
    CHECK(store_key_find(s, "11111111111111111111111111111111111111111111111111111111111111111", &ki) == -ENOENT);
    CHECK(store_key_insert(s, "key_0000000000000009", "hex", "abababababababababababababababababababababababababababababababab", false, 9000, NULL) == 0);
    CHECK(store_key_find(s, "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB", &ki) == -ENOENT);
    CHECK(store_key_find(s, "abababababababababababababababababababababababababababababababab", &ki) == 0);
    CHECK_STREQ(ki.id, "key_0000000000000009");
    CHECK(store_key_revoke(s, "key_0000000000000009", NULL) == 0);

    CHECK(store_key_revoke(s, "key_0000000000000002", NULL) == 0);
    CHECK(store_key_revoke(s, "key_0000000000000002", NULL) == -ENOENT);
    CHECK(store_key_revoke(s, "key_nope", NULL) == -ENOENT);
    CHECK(store_key_find(s, h2, &ki) == -ENOENT);

    json_t *list = NULL;
    CHECK(store_key_list(s, &list) == 0);
    json_t *keys = json_object_get(list, "keys");
    CHECK(json_array_size(keys) == 3);
    CHECK_STREQ(json_string_value(json_object_get(json_array_get(keys, 1), "name")), "ci");
    CHECK(json_is_true(json_object_get(json_array_get(keys, 1), "revoked")));
    CHECK(json_object_get(json_array_get(keys, 0), "hash") == NULL); /* never exposed */
    json_decref(list);
}

static void test_sandboxes(struct store *s)
{
    struct sandbox_record r = {0};
    snprintf(r.id, sizeof(r.id), "sb_0123456789abcdef0123456789abcdef");
    snprintf(r.state, sizeof(r.state), "running");
    snprintf(r.template_name, sizeof(r.template_name), "host");
    snprintf(r.region, sizeof(r.region), "local");
    r.memory_mb = 512;
    r.cpus = 0.5;
    r.timeout_s = 300;
    r.created_ms = 1764195838000ull;
    r.expires_ms = r.created_ms + 300000;
    r.metadata = "{\"owner\":\"me\"}";
    CHECK(store_sandbox_insert(s, &r, NULL) == 0);

    struct sandbox_record got;
    CHECK(store_sandbox_get(s, r.id, &got) == 0);
    CHECK_STREQ(got.state, "running");
    CHECK(got.memory_mb == 512 && got.cpus == 0.5 && got.timeout_s == 300);
    CHECK(got.expires_ms == r.expires_ms);
    CHECK_STREQ(got.metadata, "{\"owner\":\"me\"}");
    CHECK_STREQ(got.destroy_reason, "");
    store_record_clear(&got);

    CHECK(store_sandbox_set_expiry(s, r.id, 60, 42, NULL) == 0);
    CHECK(store_sandbox_get(s, r.id, &got) == 0 && got.expires_ms == 42 && got.timeout_s == 60);
    store_record_clear(&got);

    CHECK(store_sandbox_get(s, "sb_nope", &got) == -ENOENT);

    /* a second running record, then "restart": both get daemon_restart */
    snprintf(r.id, sizeof(r.id), "sb_ffffffffffffffffffffffffffffffff");
    CHECK(store_sandbox_insert(s, &r, NULL) == 0);
    CHECK(store_sandbox_set_destroyed(s, r.id, "deleted", 5000, NULL) == 0);
    unsigned n = 0;
    CHECK(store_sandbox_destroy_all_running(s, "daemon_restart", 6000, &n) == 0);
    CHECK(n == 1);
    CHECK(store_sandbox_get(s, "sb_0123456789abcdef0123456789abcdef", &got) == 0);
    CHECK_STREQ(got.state, "destroyed");
    CHECK_STREQ(got.destroy_reason, "daemon_restart");
    CHECK(got.destroyed_ms == 6000);
    store_record_clear(&got);
    /* a destroyed record keeps its first reason */
    CHECK(store_sandbox_set_destroyed(s, r.id, "expired", 7000, NULL) == 0);
    CHECK(store_sandbox_get(s, r.id, &got) == 0);
    CHECK_STREQ(got.destroy_reason, "deleted");
    store_record_clear(&got);
}

static void test_audit(struct store *s)
{
    const char *id = "sb_0123456789abcdef0123456789abcdef";
    json_t *d = json_pack("{s:s,s:i}", "language", "python", "code_bytes", 12);
    CHECK(store_audit(s, "key_0000000000000001", "code", id, d) == 0);
    json_decref(d);
    CHECK(store_audit(s, NULL, "expire", id, NULL) == 0);
    CHECK(store_audit(s, NULL, "create", "sb_other", NULL) == 0);
    json_t *ev = NULL;
    CHECK(store_audit_list(s, id, &ev) == 0);
    json_t *arr = json_object_get(ev, "events");
    /* the daemon_restart event of test_sandboxes, then these two */
    CHECK(json_array_size(arr) == 3);
    json_t *code = json_array_get(arr, 1);
    CHECK_STREQ(json_string_value(json_object_get(code, "action")), "code");
    CHECK_STREQ(json_string_value(json_object_get(code, "key_id")), "key_0000000000000001");
    CHECK(json_integer_value(json_object_get(json_object_get(code, "detail"), "code_bytes")) == 12);
    CHECK(json_is_null(json_object_get(json_array_get(arr, 2), "key_id")));
    json_decref(ev);
}

static void test_format_time(void)
{
    char buf[40];
    format_time(1764195838123ull, false, buf, sizeof(buf));
    CHECK_STREQ(buf, "2025-11-26T22:23:58Z");
    format_time(1764195838123ull, true, buf, sizeof(buf));
    CHECK_STREQ(buf, "2025-11-26T22:23:58.123Z");
}

/* The wal-index (the -shm file, SQLite's documented WAL format): mxFrame,
 * the last valid frame, at byte 16 of the header; nBackfill, the frames
 * already copied into the database, at byte 96 (both native-endian). */
static int wal_state(uint32_t *mx, uint32_t *backfilled)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/airlock.db-shm", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unsigned char hdr[136];
    ssize_t n = pread(fd, hdr, sizeof(hdr), 0);
    close(fd);
    if (n != (ssize_t)sizeof(hdr))
        return -EIO;
    memcpy(mx, hdr + 16, 4);
    memcpy(backfilled, hdr + 96, 4);
    return 0;
}

/* Commits do not checkpoint (walckpt.c's hook replaces SQLite's automatic
 * checkpoint), yet the WAL is copied back into the database: by the
 * checkpoint thread, within its period, without another commit. */
static void test_background_checkpoint(struct store *s)
{
    char big[2048];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    json_t *detail = json_pack("{s:s}", "pad", big);
    /* ~1,500 pages of 4 KiB: past SQLite's 1,000-page automatic threshold.
     * The WAL's size is sampled after every commit: the thread may
     * checkpoint (and the next commit restart the WAL) while the loop still
     * runs, so the size at the end proves nothing, but right after the
     * commit that crossed 1,000 frames no checkpoint can have reset it yet
     * (only a later commit restarts the WAL, and this loop is the only
     * writer). A commit that checkpointed itself would never let it get
     * there. */
    uint32_t mx = 0, done = 0, most = 0;
    for (int i = 0; i < 3000; i++) {
        CHECK(store_audit(s, "key_x", "pad", "sb_x", detail) == 0);
        if (wal_state(&mx, &done) == 0 && mx > most)
            most = mx;
    }
    json_decref(detail);
    CHECK(most >= 1000);
    bool caught_up = false;
    for (int i = 0; i < 100 && !caught_up; i++) {
        CHECK(wal_state(&mx, &done) == 0);
        caught_up = mx > 0 && done == mx;
        if (!caught_up)
            nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000}, NULL);
    }
    if (!caught_up)
        fprintf(stderr, "wal: %u frames, %u backfilled\n", mx, done);
    CHECK(caught_up);
}

/* A run's outcome is written into the row its start wrote, and shown
 * merged into that row's detail; the chain does not cover it. */
static void test_audit_outcome(struct store *s)
{
    json_t *d = json_pack("{s:s}", "language", "python");
    struct audit_rec a = {.key_id = "key_0000000000000001", .action = "code", .sandbox_id = "sb_outcome", .detail = d};
    int64_t row = 0;
    CHECK(store_audit_begin(s, &a, &row) == 0 && row > 0);
    json_decref(d);
    json_t *o = json_pack("{s:i,s:b}", "exit_code", 3, "completed", 1);
    CHECK(store_audit_outcome(s, row, o) == 0);
    json_decref(o);
    json_t *ev = NULL;
    CHECK(store_audit_list(s, "sb_outcome", &ev) == 0);
    json_t *detail = json_object_get(json_array_get(json_object_get(ev, "events"), 0), "detail");
    CHECK(json_integer_value(json_object_get(detail, "exit_code")) == 3);
    CHECK_STREQ(json_string_value(json_object_get(detail, "language")), "python");
    json_decref(ev);
    uint64_t rows = 0;
    char why[256] = "";
    CHECK(store_audit_verify(s, &rows, why, sizeof(why)) == 0);
}

/* Run one SQL statement on the database behind the store's back. */
static int sql_in(const char *d, const char *sql)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/airlock.db", d);
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

static uint64_t file_size(const char *d, const char *name)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", d, name);
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Retention keeps the audit log at --audit-max-rows (give or take one
 * pruning period) and the file bounded; what remains verifies from the
 * newest checkpoint, and a changed or removed row does not. Fails without
 * retention (the rows only grow) and without the chain (nothing to
 * verify). */
static void test_audit_retention(void)
{
    char d[] = "/tmp/airlock-test-retention-XXXXXX";
    CHECK(mkdtemp(d) != NULL);
    struct store_opts o = {.audit_max_rows = 500};
    struct store *s = NULL;
    CHECK(store_open(d, &o, &s) == 0);
    if (!s)
        return;
    json_t *detail = json_pack("{s:s,s:i}", "language", "python", "code_bytes", 120);
    /* the file's size after 10,000 events and after 30,000 more (closed:
     * the WAL is checkpointed into it) */
    uint64_t size_at_10k = 0;
    for (int i = 0; i < 40000 && s; i++) {
        CHECK(store_audit(s, "key_0000000000000001", "code", "sb_retention", detail) == 0);
        if (i == 10000) {
            store_close(s);
            size_at_10k = file_size(d, "airlock.db");
            s = NULL;
            CHECK(store_open(d, &o, &s) == 0);
        }
    }
    json_decref(detail);
    if (!s)
        return;
    json_t *h = store_health(s);
    json_int_t rows = json_integer_value(json_object_get(h, "audit_rows"));
    json_int_t dropped = json_integer_value(json_object_get(h, "audit_dropped"));
    json_decref(h);
    CHECK(rows >= 500 && rows <= 500 + 64 + 2);
    CHECK(dropped + rows >= 40000);
    store_close(s);
    /* bounded: freed pages are reused, so the file stops growing */
    uint64_t size_end = file_size(d, "airlock.db");
    if (size_end > size_at_10k + 64 * 1024)
        fprintf(stderr, "state grew from %llu to %llu bytes\n", (unsigned long long)size_at_10k,
                (unsigned long long)size_end);
    CHECK(size_end <= size_at_10k + 64 * 1024);
    CHECK(store_open(d, &o, &s) == 0);
    if (!s)
        return;
    uint64_t n = 0;
    char why[256] = "";
    CHECK(store_audit_verify(s, &n, why, sizeof(why)) == 0);
    CHECK(n == (uint64_t)rows);
    store_close(s);

    /* a reopened store continues the chain */
    CHECK(store_open(d, &o, &s) == 0);
    if (s) {
        CHECK(store_audit(s, NULL, "create", "sb_after", NULL) == 0);
        CHECK(store_audit_verify(s, &n, why, sizeof(why)) == 0);
        store_close(s);
    }
    /* a changed detail breaks the chain at that row */
    CHECK(sql_in(d, "UPDATE audit SET detail = '{\"language\":\"bash\"}' WHERE rowid = (SELECT max(rowid) - 5 FROM audit)") == 0);
    CHECK(store_open(d, NULL, &s) == 0);
    if (s) {
        CHECK(store_audit_verify(s, &n, why, sizeof(why)) == -EBADMSG);
        CHECK(strstr(why, "does not match") != NULL);
        store_close(s);
    }
    /* ... and the full check at start refuses it */
    struct store_opts full = {.full_check = true};
    CHECK(store_open(d, &full, &s) == -EUCLEAN);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
    (void)!system(cmd);
}

/* An existing database that is empty or damaged is refused, never
 * replaced; --init-state keeps it aside and starts anew. An absent one is
 * a first start. Fails on the old store_open (a 0-byte file became a new,
 * empty database). */
static void test_damaged_db(void)
{
    char d[] = "/tmp/airlock-test-damaged-XXXXXX";
    CHECK(mkdtemp(d) != NULL);
    char path[256];
    snprintf(path, sizeof(path), "%s/airlock.db", d);
    struct store *s = NULL;

    /* 0 bytes */
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    CHECK(fd >= 0);
    close(fd);
    CHECK(store_open(d, NULL, &s) == -EUCLEAN);
    CHECK(file_size(d, "airlock.db") == 0); /* untouched */

    /* garbage */
    fd = open(path, O_WRONLY | O_TRUNC);
    char junk[8192];
    memset(junk, 0x5a, sizeof(junk));
    CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
    close(fd);
    CHECK(store_open(d, NULL, &s) == -EUCLEAN);

    /* a real database with its table pages overwritten */
    unlink(path);
    CHECK(store_open(d, NULL, &s) == 0);
    if (s) {
        for (int i = 0; i < 2000; i++)
            CHECK(store_audit(s, NULL, "pad", "sb_pad", NULL) == 0);
        store_close(s);
    }
    CHECK(sql_in(d, "PRAGMA wal_checkpoint(TRUNCATE)") == 0);
    fd = open(path, O_WRONLY);
    for (off_t off = 8192; off < 64 * 1024; off += (off_t)sizeof(junk))
        CHECK(pwrite(fd, junk, sizeof(junk), off) == (ssize_t)sizeof(junk));
    close(fd);
    CHECK(store_open(d, NULL, &s) == -EUCLEAN);

    /* --init-state: set aside, new database */
    struct store_opts init = {.init_state = true};
    CHECK(store_open(d, &init, &s) == 0);
    if (s) {
        unsigned n = 99;
        CHECK(store_key_count(s, &n) == 0 && n == 0);
        store_close(s);
    }
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -q '^airlock.db.bad-'", d);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
    (void)!system(cmd);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    struct store *s = NULL;
    CHECK(store_open(dir, NULL, &s) == 0);
    if (s) {
        test_keys(s);
        test_sandboxes(s);
        test_audit(s);
        test_audit_outcome(s);
        test_background_checkpoint(s);
        store_close(s);
        /* reopen: the schema is idempotent and the data persisted */
        CHECK(store_open(dir, NULL, &s) == 0);
        unsigned n = 0;
        CHECK(store_key_count(s, &n) == 0 && n == 3);
        store_close(s);
    }
    test_format_time();
    test_audit_retention();
    test_damaged_db();
    rmrf();
    UNIT_DONE();
}
