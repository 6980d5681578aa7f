/* The token-bucket table: refill arithmetic, in-flight slots, the bound on
 * names and what eviction may drop, and many threads at once. Time is an
 * argument, so nothing here waits. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "ratelimit.h"
#include "unit.h"

static struct rl_table *table(double rate, double burst, unsigned inflight, size_t entries)
{
    struct rl_config c = {.rate = rate, .burst = burst, .max_inflight = inflight, .max_entries = entries};
    struct rl_table *t = NULL;
    CHECK(rl_table_new(&c, &t) == 0);
    return t;
}

static void test_config(void)
{
    struct rl_table *t = NULL;
    struct rl_config bad = {.rate = 1, .burst = 0.5, .max_entries = 1};
    CHECK(rl_table_new(&bad, &t) == -EINVAL);
    bad = (struct rl_config){.rate = -1, .burst = 1, .max_entries = 1};
    CHECK(rl_table_new(&bad, &t) == -EINVAL);
    bad = (struct rl_config){.rate = 1, .burst = 1, .max_entries = 0};
    CHECK(rl_table_new(&bad, &t) == -EINVAL);
}

static void test_bucket(void)
{
    struct rl_table *t = table(1, 3, 0, 16);
    unsigned wait = 0;
    for (int i = 0; i < 3; i++)
        CHECK(rl_take(t, "key_a", 1000, false, &wait) == RL_OK);
    CHECK(rl_take(t, "key_a", 1000, false, &wait) == RL_RATE);
    CHECK(wait == 1);
    /* 0.999 tokens after 999 ms: still no */
    CHECK(rl_take(t, "key_a", 1999, false, &wait) == RL_RATE && wait == 1);
    CHECK(rl_take(t, "key_a", 2000, false, &wait) == RL_OK);
    CHECK(rl_take(t, "key_a", 2000, false, &wait) == RL_RATE);
    /* another name has its own bucket */
    CHECK(rl_take(t, "key_b", 2000, false, &wait) == RL_OK);
    /* refill stops at the burst: a long pause buys 3 requests, not 100 */
    for (int i = 0; i < 3; i++)
        CHECK(rl_take(t, "key_a", 100000, false, &wait) == RL_OK);
    CHECK(rl_take(t, "key_a", 100000, false, &wait) == RL_RATE);
    /* a clock that goes back refills nothing (and does not underflow) */
    CHECK(rl_take(t, "key_a", 50000, false, &wait) == RL_RATE);
    rl_table_free(t);

    /* Retry-After rounds up to whole seconds */
    t = table(0.01, 1, 0, 16);
    CHECK(rl_take(t, "slow", 0, false, &wait) == RL_OK);
    CHECK(rl_take(t, "slow", 0, false, &wait) == RL_RATE && wait == 100);
    CHECK(rl_take(t, "slow", 50000, false, &wait) == RL_RATE && wait == 50);
    CHECK(rl_take(t, "slow", 99999, false, &wait) == RL_RATE && wait == 1);
    CHECK(rl_take(t, "slow", 100000, false, &wait) == RL_OK);
    rl_table_free(t);

    /* rate 0: no rate limit at all */
    t = table(0, 0, 0, 16);
    for (int i = 0; i < 10000; i++)
        CHECK(rl_take(t, "k", 0, false, &wait) == RL_OK);
    rl_table_free(t);
}

static void test_exhausted(void)
{
    struct rl_table *t = table(1, 2, 0, 16);
    unsigned wait = 0;
    CHECK(!rl_exhausted(t, "ip4:10.0.0.1", 0, &wait));
    CHECK(rl_table_size(t) == 0); /* looking does not remember */
    CHECK(rl_take(t, "ip4:10.0.0.1", 0, false, &wait) == RL_OK);
    CHECK(!rl_exhausted(t, "ip4:10.0.0.1", 0, &wait));
    CHECK(rl_take(t, "ip4:10.0.0.1", 0, false, &wait) == RL_OK);
    CHECK(rl_exhausted(t, "ip4:10.0.0.1", 0, &wait) && wait == 1);
    CHECK(rl_exhausted(t, "ip4:10.0.0.1", 999, &wait));
    CHECK(!rl_exhausted(t, "ip4:10.0.0.1", 1000, &wait));
    CHECK(!rl_exhausted(t, "ip4:10.0.0.2", 0, &wait));
    rl_table_free(t);
}

static void test_inflight(void)
{
    struct rl_table *t = table(0.001, 3, 2, 16);
    unsigned wait = 0;
    CHECK(rl_take(t, "k", 0, true, &wait) == RL_OK);
    CHECK(rl_take(t, "k", 0, true, &wait) == RL_OK);
    CHECK(rl_take(t, "k", 0, true, &wait) == RL_INFLIGHT);
    /* a refusal takes nothing: one token is left for after the release */
    rl_release(t, "k");
    CHECK(rl_take(t, "k", 0, true, &wait) == RL_OK);
    rl_release(t, "k");
    rl_release(t, "k");
    CHECK(rl_take(t, "k", 0, true, &wait) == RL_RATE);
    /* a release without a slot does not go negative */
    rl_release(t, "k");
    rl_release(t, "nobody");
    rl_table_free(t);

    /* names longer than RL_NAME_MAX are cut the same way every time */
    char longname[200];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    t = table(0, 0, 1, 16);
    CHECK(rl_take(t, longname, 0, true, &wait) == RL_OK);
    CHECK(rl_take(t, longname, 0, true, &wait) == RL_INFLIGHT);
    rl_release(t, longname);
    CHECK(rl_take(t, longname, 0, true, &wait) == RL_OK);
    rl_table_free(t);
}

static void test_bound(void)
{
    unsigned wait = 0;
    char name[32];
    /* nothing idle: the least recently used name goes, the size holds */
    struct rl_table *t = table(1, 1, 0, 4);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        CHECK(rl_take(t, name, (uint64_t)i, false, &wait) == RL_OK);
    }
    CHECK(rl_table_size(t) == 4);
    CHECK(rl_take(t, "n4", 10, false, &wait) == RL_OK);
    CHECK(rl_table_size(t) == 4);
    /* n0 was forgotten: it is back with a full bucket; n1..n3 are not */
    CHECK(rl_take(t, "n0", 11, false, &wait) == RL_OK);
    CHECK(rl_take(t, "n3", 12, false, &wait) == RL_RATE);
    /* once their buckets are full again, every name is idle: one sweep
     * drops them all */
    CHECK(rl_take(t, "fresh", 60000, false, &wait) == RL_OK);
    CHECK(rl_table_size(t) == 1);
    rl_table_free(t);

    /* a name with a request in flight is never dropped */
    t = table(0, 0, 1, 2);
    CHECK(rl_take(t, "a", 0, true, &wait) == RL_OK);
    CHECK(rl_take(t, "b", 0, true, &wait) == RL_OK);
    CHECK(rl_take(t, "c", 0, true, &wait) == RL_FULL);
    CHECK(rl_table_size(t) == 2);
    rl_release(t, "a");
    CHECK(rl_take(t, "c", 0, true, &wait) == RL_OK);
    CHECK(rl_take(t, "b", 0, true, &wait) == RL_INFLIGHT); /* b kept its count */
    rl_release(t, "b");
    rl_release(t, "c");
    rl_table_free(t);

    /* many names through a small table: bounded all along */
    t = table(10, 5, 0, 64);
    for (int i = 0; i < 100000; i++) {
        snprintf(name, sizeof(name), "ip4:10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        CHECK(rl_take(t, name, (uint64_t)i / 100, false, &wait) == RL_OK);
    }
    CHECK(rl_table_size(t) <= 64);
    rl_table_free(t);
}

/* Four threads take and release slots of one name with max_inflight 4: no
 * take may be refused, and no update may be lost (a lost release would
 * refuse the last takes; a lost take would leave slots at the end). */
struct worker {
    struct rl_table *t;
    int refused;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    unsigned wait;
    for (int i = 0; i < 20000; i++) {
        if (rl_take(w->t, "shared", 0, true, &wait) != RL_OK) {
            w->refused++;
            continue;
        }
        rl_release(w->t, "shared");
    }
    return NULL;
}

static void test_threads(void)
{
    struct rl_table *t = table(0, 0, 4, 16);
    struct worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.t = t};
        CHECK(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(w[i].refused == 0);
    }
    unsigned wait;
    for (int i = 0; i < 4; i++)
        CHECK(rl_take(t, "shared", 0, true, &wait) == RL_OK);
    CHECK(rl_take(t, "shared", 0, true, &wait) == RL_INFLIGHT);
    rl_table_free(t);
}

int main(void)
{
    test_config();
    test_bucket();
    test_exhausted();
    test_inflight();
    test_bound();
    test_threads();
    UNIT_DONE();
}
