/* ratelimit.c - token buckets in a chained hash table of fixed capacity.
 *
 *   heads[hash(name) & mask] -> entry -> entry -> NULL
 *
 * The hash is FNV-1a over a random seed: names can come from the network
 * (client addresses), and a seed the client does not know keeps it from
 * piling every name into one chain. A chain is short in any case: the table
 * holds at most max_entries names and has at least as many heads. */
#include "ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util.h"

/* Refills add up in floating point, so ten refills of 0.1 may fall a hair
 * short of 1.0: a token is "there" within this much. */
#define TOKEN_EPS 1e-9

struct rl_entry {
    char name[RL_NAME_MAX + 1];
    double tokens;
    uint64_t refilled_ms; /* tokens are as of this time */
    uint64_t used_ms;     /* last take: the least recently used goes first */
    unsigned inflight;
    struct rl_entry *next;
};

struct rl_table {
    struct rl_config cfg;
    pthread_mutex_t lock;
    uint64_t seed;
    size_t mask; /* heads - 1 */
    size_t count;
    struct rl_entry **heads;
};

int rl_table_new(const struct rl_config *cfg, struct rl_table **out)
{
    if (cfg->max_entries == 0 || (cfg->rate > 0 && cfg->burst < 1) || cfg->rate < 0)
        return -EINVAL;
    struct rl_table *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->cfg = *cfg;
    size_t n = 16;
    while (n < cfg->max_entries && n < (1u << 20))
        n <<= 1;
    t->heads = calloc(n, sizeof(*t->heads));
    if (!t->heads) {
        free(t);
        return -ENOMEM;
    }
    t->mask = n - 1;
    /* a seed is nice to have, not essential: without one, chains are still
     * bounded by max_entries */
    if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed))
        t->seed = now_mono_ms();
    pthread_mutex_init(&t->lock, NULL);
    *out = t;
    return 0;
}

void rl_table_free(struct rl_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i <= t->mask; i++) {
        for (struct rl_entry *e = t->heads[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    pthread_mutex_destroy(&t->lock);
    free(t->heads);
    free(t);
}

static size_t slot_of(const struct rl_table *t, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull ^ t->seed;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29; /* FNV's low bits mix poorly; the mask keeps only those */
    return (size_t)h & t->mask;
}

static void refill(const struct rl_table *t, struct rl_entry *e, uint64_t now_ms)
{
    if (t->cfg.rate <= 0 || now_ms <= e->refilled_ms)
        return;
    e->tokens += (double)(now_ms - e->refilled_ms) * t->cfg.rate / 1000.0;
    if (e->tokens > t->cfg.burst)
        e->tokens = t->cfg.burst;
    e->refilled_ms = now_ms;
}

static unsigned retry_after(const struct rl_table *t, const struct rl_entry *e)
{
    double s = (1.0 - e->tokens) / t->cfg.rate;
    if (s >= 86400)
        return 86400;
    unsigned whole = (unsigned)s;
    whole += whole < s; /* round up: a retry before then is refused again */
    return whole < 1 ? 1 : whole;
}

/* Forgetting it changes nothing: a full bucket, no request in flight. */
static bool is_idle(const struct rl_table *t, struct rl_entry *e, uint64_t now_ms)
{
    if (e->inflight)
        return false;
    refill(t, e, now_ms);
    return t->cfg.rate <= 0 || e->tokens + TOKEN_EPS >= t->cfg.burst;
}

static struct rl_entry *find_locked(struct rl_table *t, const char *name)
{
    for (struct rl_entry *e = t->heads[slot_of(t, name)]; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static void unlink_locked(struct rl_table *t, struct rl_entry *victim)
{
    for (struct rl_entry **pp = &t->heads[slot_of(t, victim->name)]; *pp; pp = &(*pp)->next) {
        if (*pp == victim) {
            *pp = victim->next;
            free(victim);
            t->count--;
            return;
        }
    }
}

/* Make room for one more name: drop every idle entry, or else the least
 * recently used one with nothing in flight. false if all are in flight. */
static bool make_room_locked(struct rl_table *t, uint64_t now_ms)
{
    struct rl_entry *lru = NULL;
    size_t before = t->count;
    for (size_t i = 0; i <= t->mask; i++) {
        for (struct rl_entry **pp = &t->heads[i]; *pp;) {
            struct rl_entry *e = *pp;
            if (is_idle(t, e, now_ms)) {
                *pp = e->next;
                free(e);
                t->count--;
                continue;
            }
            if (!e->inflight && (!lru || e->used_ms < lru->used_ms))
                lru = e;
            pp = &e->next;
        }
    }
    if (t->count < before)
        return true;
    if (!lru)
        return false;
    unlink_locked(t, lru);
    return true;
}

/* The entry of name, created (full bucket) if needed; NULL if no room. */
static struct rl_entry *get_locked(struct rl_table *t, const char *name, uint64_t now_ms)
{
    struct rl_entry *e = find_locked(t, name);
    if (e)
        return e;
    if (t->count >= t->cfg.max_entries && !make_room_locked(t, now_ms))
        return NULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    memcpy(e->name, name, strlen(name) + 1); /* stored_name: fits */
    e->tokens = t->cfg.burst;
    e->refilled_ms = now_ms;
    size_t i = slot_of(t, e->name);
    e->next = t->heads[i];
    t->heads[i] = e;
    t->count++;
    return e;
}

/* Names are compared as stored: cut to RL_NAME_MAX like the entry's copy. */
static const char *stored_name(const char *name, char buf[RL_NAME_MAX + 1])
{
    if (strlen(name) <= RL_NAME_MAX)
        return name;
    memcpy(buf, name, RL_NAME_MAX);
    buf[RL_NAME_MAX] = '\0';
    return buf;
}

enum rl_verdict rl_take(struct rl_table *t, const char *name, uint64_t now_ms, bool slot, unsigned *retry_after_s)
{
    char buf[RL_NAME_MAX + 1];
    name = stored_name(name, buf);
    *retry_after_s = 1;
    enum rl_verdict v = RL_OK;
    pthread_mutex_lock(&t->lock);
    struct rl_entry *e = get_locked(t, name, now_ms);
    if (!e) {
        v = RL_FULL;
        goto out;
    }
    refill(t, e, now_ms);
    if (t->cfg.rate > 0 && e->tokens + TOKEN_EPS < 1.0) {
        *retry_after_s = retry_after(t, e);
        v = RL_RATE;
        goto out;
    }
    if (slot && t->cfg.max_inflight && e->inflight >= t->cfg.max_inflight) {
        v = RL_INFLIGHT;
        goto out;
    }
    if (t->cfg.rate > 0 && (e->tokens -= 1.0) < 0)
        e->tokens = 0; /* the TOKEN_EPS shortfall */
    if (slot)
        e->inflight++;
    e->used_ms = now_ms;
out:
    pthread_mutex_unlock(&t->lock);
    return v;
}

bool rl_exhausted(struct rl_table *t, const char *name, uint64_t now_ms, unsigned *retry_after_s)
{
    char buf[RL_NAME_MAX + 1];
    name = stored_name(name, buf);
    bool exhausted = false;
    pthread_mutex_lock(&t->lock);
    struct rl_entry *e = find_locked(t, name);
    if (e && t->cfg.rate > 0) {
        refill(t, e, now_ms);
        if (e->tokens + TOKEN_EPS < 1.0) {
            exhausted = true;
            *retry_after_s = retry_after(t, e);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return exhausted;
}

void rl_release(struct rl_table *t, const char *name)
{
    char buf[RL_NAME_MAX + 1];
    name = stored_name(name, buf);
    pthread_mutex_lock(&t->lock);
    struct rl_entry *e = find_locked(t, name);
    /* an entry with a slot taken is never evicted, so it is there */
    if (e && e->inflight)
        e->inflight--;
    pthread_mutex_unlock(&t->lock);
}

size_t rl_table_size(struct rl_table *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->count;
    pthread_mutex_unlock(&t->lock);
    return n;
}
