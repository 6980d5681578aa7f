/* admission.h - the daemon's front door: what a request must pass, from its
 * headers alone, before any handler runs.
 *
 *   1. size: URL, query and headers within bounds     414 / 400 / 431
 *   2. the client address has not failed auth too often   429 too_many_auth_failures
 *   3. the Bearer key is valid                         401
 *   4. the key's token bucket has a token              429 rate_limited
 *   5. the key has a free in-flight slot               429 too_many_requests
 *   6. admin-only routes: an admin key                 403
 *
 * Every refusal is the usual {"error":{"code","message"}}; the 429s carry a
 * Retry-After header. Nothing before step 3 consults the key, and step 2
 * refuses without looking at it, so guessing keys is throttled per client
 * address. /v1/healthz skips steps 2-6.
 *
 * The limits (config.h) are per key id: every key, admin ones included,
 * unless --admin-unlimited. The per-key sandbox quota is registry.c's. */
#ifndef AIRLOCK_ADMISSION_H
#define AIRLOCK_ADMISSION_H

#include <stdbool.h>

#include "config.h"

#define ADM_MAX_URL_BYTES (16u * 1024u)    /* path + query: a 4 KiB path, %-encoded */
#define ADM_MAX_HEADER_BYTES (32u * 1024u) /* names + values of all headers */
#define ADM_MAX_HEADERS 64u
#define ADM_MAX_QUERY_ARGS 8u

struct admission;
struct http_req;

int admission_new(const struct config *cfg, struct admission **out);
void admission_free(struct admission *a);

/* Step 1. false after replying (req->response set). */
bool admission_size_ok(struct http_req *req, const char *url);
/* Steps 2-6. true: req->key is the caller, and a slot may be held until
 * admission_end. false after replying. */
bool admission_auth(struct http_req *req, bool admin_only);
/* The request is over (always called; a no-op without a slot). */
void admission_end(struct http_req *req);

#endif
