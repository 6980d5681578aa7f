/* auth.h - API keys: generation, hashing, the Bearer check, bootstrap. */
#ifndef AIRLOCK_AUTH_H
#define AIRLOCK_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define API_KEY_LEN 35 /* "ak_" + 32 hex */

/* SHA-256 of key as 64 hex chars + NUL. 0 or -EIO. */
int auth_hash_key(const char *key, size_t len, char out[KEY_HASH_LEN + 1]);
/* Fresh "ak_<32 hex>" key and "key_<16 hex>" id. */
int auth_new_key(char key[API_KEY_LEN + 1]);
int auth_new_key_id(char id[KEY_ID_LEN + 1]);
/* Extract the token of an "Authorization: Bearer <token>" header value.
 * Returns a pointer into header and its length, or NULL when malformed. */
const char *auth_parse_bearer(const char *header, size_t *len);
/* Check an Authorization header value. 0 (out filled) or -EACCES. */
int auth_check(struct store *s, const char *header, struct key_info *out);
/* First start: AIRLOCK_API_KEY (env_key, may be NULL) is accepted as admin;
 * otherwise create an admin key in <dir>/admin.key if there is no key yet.
 * `where` gets a human description of the admin key's location. */
int auth_bootstrap(struct store *s, const char *dir, const char *env_key, char *where, size_t wherelen);

#endif
