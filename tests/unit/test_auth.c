#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "unit.h"

static char dir[] = "/tmp/airlock-test-auth-XXXXXX";

static void test_hash(void)
{
    char h[KEY_HASH_LEN + 1];
    CHECK(auth_hash_key("abc", 3, h) == 0);
    CHECK_STREQ(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_generate(void)
{
    char k1[API_KEY_LEN + 1], k2[API_KEY_LEN + 1], id[KEY_ID_LEN + 1];
    CHECK(auth_new_key(k1) == 0 && auth_new_key(k2) == 0);
    CHECK(strlen(k1) == 35 && strncmp(k1, "ak_", 3) == 0);
    CHECK(strcmp(k1, k2) != 0);
    CHECK(auth_new_key_id(id) == 0);
    CHECK(strlen(id) == 20 && strncmp(id, "key_", 4) == 0);
}

static void test_bearer(void)
{
    size_t n = 0;
    const char *t = auth_parse_bearer("Bearer ak_123", &n);
    CHECK(t && n == 6 && strncmp(t, "ak_123", n) == 0);
    t = auth_parse_bearer("bearer   ak_123  ", &n);
    CHECK(t && n == 6);
    CHECK(auth_parse_bearer(NULL, &n) == NULL);
    CHECK(auth_parse_bearer("Basic abc", &n) == NULL);
    CHECK(auth_parse_bearer("Bearer ", &n) == NULL);
    CHECK(auth_parse_bearer("Bearer a b", &n) == NULL);
    CHECK(auth_parse_bearer("ak_123", &n) == NULL);
}

static void test_bootstrap(void)
{
    struct store *s = NULL;
    CHECK(store_open(dir, NULL, &s) == 0);
    if (!s)
        return;
    char where[256], path[256], key[64] = "";
    snprintf(path, sizeof(path), "%s/admin.key", dir);

    /* first start without AIRLOCK_API_KEY: a key file, 0600 */
    CHECK(auth_bootstrap(s, dir, NULL, where, sizeof(where)) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(read(fd, key, sizeof(key) - 1) == 36);
        close(fd);
    }
    key[35] = '\0';
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "Bearer %s", key);
    struct key_info ki;
    CHECK(auth_check(s, hdr, &ki) == 0 && ki.admin);
    CHECK(auth_check(s, "Bearer ak_wrong", &ki) == -EACCES);
    CHECK(auth_check(s, NULL, &ki) == -EACCES);

    /* second start: the file is kept, no new key */
    CHECK(auth_bootstrap(s, dir, NULL, where, sizeof(where)) == 0);
    unsigned n = 0;
    CHECK(store_key_count(s, &n) == 0 && n == 1);

    /* AIRLOCK_API_KEY: accepted as admin, recorded once */
    CHECK(auth_bootstrap(s, dir, "test", where, sizeof(where)) == 0);
    CHECK(auth_bootstrap(s, dir, "test", where, sizeof(where)) == 0);
    CHECK(store_key_count(s, &n) == 0 && n == 2);
    CHECK(auth_check(s, "Bearer test", &ki) == 0 && ki.admin);
    /* revoked stays revoked across restarts */
    CHECK(store_key_revoke(s, ki.id, NULL) == 0);
    CHECK(auth_bootstrap(s, dir, "test", where, sizeof(where)) == 0);
    CHECK(auth_check(s, "Bearer test", &ki) == -EACCES);
    store_close(s);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_hash();
    test_generate();
    test_bearer();
    test_bootstrap();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    (void)!system(cmd);
    UNIT_DONE();
}
