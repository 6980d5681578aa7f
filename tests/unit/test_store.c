#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
    CHECK(store_key_insert(s, "key_0000000000000001", "admin", h1, true, 1000) == 0);
    CHECK(store_key_insert(s, "key_0000000000000002", "ci", h2, false, 2000) == 0);
    CHECK(store_key_insert(s, "key_0000000000000003", "dup", h2, false, 3000) == -EEXIST);
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
    CHECK(store_key_insert(s, "key_0000000000000009", "hex", "abababababababababababababababababababababababababababababababab", false, 9000) == 0);
    CHECK(store_key_find(s, "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB", &ki) == -ENOENT);
    CHECK(store_key_find(s, "abababababababababababababababababababababababababababababababab", &ki) == 0);
    CHECK_STREQ(ki.id, "key_0000000000000009");
    CHECK(store_key_revoke(s, "key_0000000000000009") == 0);

    CHECK(store_key_revoke(s, "key_0000000000000002") == 0);
    CHECK(store_key_revoke(s, "key_0000000000000002") == -ENOENT);
    CHECK(store_key_revoke(s, "key_nope") == -ENOENT);
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
    CHECK(store_sandbox_insert(s, &r) == 0);

    struct sandbox_record got;
    CHECK(store_sandbox_get(s, r.id, &got) == 0);
    CHECK_STREQ(got.state, "running");
    CHECK(got.memory_mb == 512 && got.cpus == 0.5 && got.timeout_s == 300);
    CHECK(got.expires_ms == r.expires_ms);
    CHECK_STREQ(got.metadata, "{\"owner\":\"me\"}");
    CHECK_STREQ(got.destroy_reason, "");
    store_record_clear(&got);

    CHECK(store_sandbox_set_expiry(s, r.id, 60, 42) == 0);
    CHECK(store_sandbox_get(s, r.id, &got) == 0 && got.expires_ms == 42 && got.timeout_s == 60);
    store_record_clear(&got);

    CHECK(store_sandbox_get(s, "sb_nope", &got) == -ENOENT);

    /* a second running record, then "restart": both get daemon_restart */
    snprintf(r.id, sizeof(r.id), "sb_ffffffffffffffffffffffffffffffff");
    CHECK(store_sandbox_insert(s, &r) == 0);
    CHECK(store_sandbox_set_destroyed(s, r.id, "deleted", 5000) == 0);
    unsigned n = 0;
    CHECK(store_sandbox_destroy_all_running(s, "daemon_restart", 6000, &n) == 0);
    CHECK(n == 1);
    CHECK(store_sandbox_get(s, "sb_0123456789abcdef0123456789abcdef", &got) == 0);
    CHECK_STREQ(got.state, "destroyed");
    CHECK_STREQ(got.destroy_reason, "daemon_restart");
    CHECK(got.destroyed_ms == 6000);
    store_record_clear(&got);
    /* a destroyed record keeps its first reason */
    CHECK(store_sandbox_set_destroyed(s, r.id, "expired", 7000) == 0);
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
    /* ~1,500 pages of 4 KiB: past SQLite's 1,000-page automatic threshold */
    for (int i = 0; i < 3000; i++)
        CHECK(store_audit(s, "key_x", "pad", "sb_x", detail) == 0);
    json_decref(detail);
    uint32_t mx = 0, done = 0;
    CHECK(wal_state(&mx, &done) == 0);
    CHECK(mx >= 1000);
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

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    struct store *s = NULL;
    CHECK(store_open(dir, &s) == 0);
    if (s) {
        test_keys(s);
        test_sandboxes(s);
        test_audit(s);
        test_background_checkpoint(s);
        store_close(s);
        /* reopen: the schema is idempotent and the data persisted */
        CHECK(store_open(dir, &s) == 0);
        unsigned n = 0;
        CHECK(store_key_count(s, &n) == 0 && n == 3);
        store_close(s);
    }
    test_format_time();
    rmrf();
    UNIT_DONE();
}
