/* fuzz_http.h - the fixed identities fuzz_http's daemon starts with. They
 * are constants so that seeds and the dictionary (fuzz/http.dict) can use
 * them: the fuzzer reaches the authenticated handlers from the first input. */
#ifndef AIRLOCK_FUZZ_HTTP_H
#define AIRLOCK_FUZZ_HTTP_H

#include <stdatomic.h>

#include "backend.h"

#define FUZZ_ADMIN_KEY "ak_00000000000000000000000000000a0a"
#define FUZZ_USER_KEY "ak_00000000000000000000000000000b0b"
#define FUZZ_USER_KEY_ID "key_00000000000000b0"
/* records in the store, no live sandbox: destroyed, expired, and another key's */
#define FUZZ_SB_DELETED "sb_00000000000000000000000000000001"
#define FUZZ_SB_EXPIRED "sb_00000000000000000000000000000002"
#define FUZZ_SB_ADMINS "sb_00000000000000000000000000000003"

#define FUZZ_NONE_CREATE_ERROR "the fuzz backend creates no sandboxes"

/* backend_none.c's state: create() refuses unless allow_create is set (the
 * harness making its live sandbox); then attach takes the agent's end of the
 * new socketpair. */
struct fuzz_backend {
    atomic_bool allow_create;
    int (*attach)(void *ctx, int fd); /* 0 or -errno; owns fd either way */
    void *ctx;
};

extern const struct backend_ops fuzz_none_backend_ops;

#endif
