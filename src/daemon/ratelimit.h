/* ratelimit.h - a bounded table of token buckets, one per name (a key id, a
 * client address), each with an optional count of requests in flight.
 *
 * A bucket holds up to `burst` tokens and refills at `rate` tokens per
 * second; a request takes one token. `max_inflight` caps how many requests
 * holding a slot may run at once. The table never holds more than
 * `max_entries` names: a name whose bucket is full again and has nothing in
 * flight is idle (forgetting it changes nothing) and is dropped when room is
 * needed; if none is idle, the least recently used name without requests in
 * flight goes (it then starts again with a full bucket, the price of a
 * bound). Thread-safe: one mutex, held for a few hundred instructions.
 *
 * Time is passed in (CLOCK_MONOTONIC milliseconds), so the unit tests need
 * no clock. */
#ifndef AIRLOCK_RATELIMIT_H
#define AIRLOCK_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RL_NAME_MAX 63

struct rl_config {
    double rate;           /* tokens per second; 0: no rate limit */
    double burst;          /* bucket size (>= 1 when rate > 0) */
    unsigned max_inflight; /* 0: no concurrency limit */
    size_t max_entries;    /* names remembered at most (>= 1) */
};

enum rl_verdict {
    RL_OK = 0,
    RL_RATE,     /* no token left: retry after *retry_after_s */
    RL_INFLIGHT, /* max_inflight requests of this name are running */
    RL_FULL,     /* no room for a new name: every entry has requests in flight */
};

struct rl_table;

int rl_table_new(const struct rl_config *cfg, struct rl_table **out);
void rl_table_free(struct rl_table *t);

/* Take a token for name at now_ms and, if `slot`, an in-flight slot (give it
 * back with rl_release). Nothing is taken unless the answer is RL_OK. For
 * RL_RATE, *retry_after_s is the whole seconds until a token is back (>= 1);
 * for the others it is 1. A name longer than RL_NAME_MAX is cut. */
enum rl_verdict rl_take(struct rl_table *t, const char *name, uint64_t now_ms, bool slot, unsigned *retry_after_s);
/* Would rl_take refuse name for lack of a token? Takes nothing, and does
 * not remember a name it has not seen. */
bool rl_exhausted(struct rl_table *t, const char *name, uint64_t now_ms, unsigned *retry_after_s);
/* End of a request that took a slot. */
void rl_release(struct rl_table *t, const char *name);
/* Names remembered (tests). */
size_t rl_table_size(struct rl_table *t);

#endif
