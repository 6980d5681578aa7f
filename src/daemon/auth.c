#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "log.h"
#include "util.h"

int auth_hash_key(const char *key, size_t len, char out[KEY_HASH_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -EIO;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[KEY_HASH_LEN] = '\0';
    return 0;
}

int auth_new_key(char key[API_KEY_LEN + 1])
{
    memcpy(key, "ak_", 3);
    return random_hex(key + 3, 16);
}

int auth_new_key_id(char id[KEY_ID_LEN + 1])
{
    memcpy(id, "key_", 4);
    return random_hex(id + 4, 8);
}

const char *auth_parse_bearer(const char *header, size_t *len)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    const char *tok = header + 7;
    while (*tok == ' ')
        tok++;
    size_t n = strlen(tok);
    while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
        n--;
    if (n == 0 || n > 512)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (tok[i] <= ' ' || tok[i] == 0x7f)
            return NULL;
    *len = n;
    return tok;
}

int auth_check(struct store *s, const char *header, struct key_info *out)
{
    size_t len;
    const char *tok = auth_parse_bearer(header, &len);
    if (!tok)
        return -EACCES;
    char hash[KEY_HASH_LEN + 1];
    if (auth_hash_key(tok, len, hash) < 0)
        return -EACCES;
    int r = store_key_find(s, hash, out);
    return r < 0 ? -EACCES : 0;
}

/* Record key under name; an already known hash is fine (restart). */
static int ensure_key(struct store *s, const char *key, const char *name, bool admin)
{
    char hash[KEY_HASH_LEN + 1], id[KEY_ID_LEN + 1];
    struct key_info ki;
    int r = auth_hash_key(key, strlen(key), hash);
    if (r < 0)
        return r;
    if (store_key_find(s, hash, &ki) == 0)
        return 0;
    if ((r = auth_new_key_id(id)) < 0)
        return r;
    r = store_key_insert(s, id, name, hash, admin, now_wall_ms(), NULL);
    /* -EEXIST: the hash is stored but revoked. Revoking the env key and
     * restarting with it still set keeps it revoked: the revocation wins. */
    return r == -EEXIST ? 0 : r;
}

int auth_bootstrap(struct store *s, const char *dir, const char *env_key, char *where, size_t wherelen)
{
    int r;
    if (env_key && *env_key) {
        if ((r = ensure_key(s, env_key, "env", true)) < 0)
            return r;
        snprintf(where, wherelen, "admin key from AIRLOCK_API_KEY");
        return 0;
    }
    cleanup_free char *path = NULL;
    if (asprintf(&path, "%s/admin.key", dir) < 0)
        return -ENOMEM;
    unsigned count = 0;
    if ((r = store_key_count(s, &count)) < 0)
        return r;
    if (count > 0) {
        snprintf(where, wherelen, "admin key in %s (written at first start)", path);
        return 0;
    }
    char key[API_KEY_LEN + 1];
    if ((r = auth_new_key(key)) < 0)
        return r;
    /* A stale file from a wiped database would make O_EXCL fail: the key in
     * it is not in the database, so it is worthless; replace it. */
    if (unlink(path) < 0 && errno != ENOENT) {
        r = -errno;
        log_error("remove stale %s: %s", path, strerror(-r));
        return r;
    }
    cleanup_fd int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        r = -errno;
        log_error("create %s: %s", path, strerror(-r));
        return r;
    }
    char line[API_KEY_LEN + 2];
    snprintf(line, sizeof(line), "%s\n", key);
    if ((r = write_all(fd, line, strlen(line))) < 0 || (fsync(fd) < 0 && (r = -errno))) {
        log_error("write %s: %s", path, strerror(-r));
        (void)unlink(path);
        return r;
    }
    if ((r = ensure_key(s, key, "admin", true)) < 0) {
        (void)unlink(path);
        return r;
    }
    explicit_bzero(key, sizeof(key));
    explicit_bzero(line, sizeof(line));
    snprintf(where, wherelen, "admin key written to %s", path);
    return 0;
}
