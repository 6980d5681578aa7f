/* pool.c - the warm pool (pool.h): one shape, the default create's, kept
 * between --pool-size and --pool-max ready sandboxes by one refill thread.
 *
 * Only the refill thread builds and discards; request threads only pop, under
 * the lock, which is all a pool hit costs. Building (~5 ms) and discarding
 * (cgroup kill and rmdir) happen outside the lock, so a take never waits for
 * either. */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define POOL_PERIOD_MS 1000       /* idle re-check, and the demand window unit */
#define POOL_FAIL_BACKOFF_MS 1000 /* after a failed build: do not spin on a broken backend */

struct pool {
    struct daemon *d;
    struct sandbox_shape shape;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    pthread_t thread;
    bool stop;

    /* guarded by lock */
    struct sandbox **ready; /* LIFO stack, pool_max slots */
    unsigned nready;
    unsigned target;
    /* demand: creates of this shape in the current and the previous window */
    uint64_t window_start_ms;
    unsigned window_now, window_prev;
    uint64_t hits, misses, built, build_failures, discarded_dead;
};

static void rotate_window_locked(struct pool *p, uint64_t now)
{
    if (now - p->window_start_ms < POOL_PERIOD_MS)
        return;
    /* a window with no creates at all in between clears the history */
    p->window_prev = now - p->window_start_ms < 2 * POOL_PERIOD_MS ? p->window_now : 0;
    p->window_now = 0;
    p->window_start_ms = now;
}

/* Adaptive size: as many as the creates of the last one to two seconds,
 * within [pool_size, pool_max]. A burst grows the pool for the next burst;
 * a quiet second lets it shrink back to the baseline. */
static unsigned target_locked(struct pool *p)
{
    const struct config *cfg = &p->d->cfg;
    unsigned demand = p->window_now + p->window_prev;
    if (demand < cfg->pool_size)
        demand = cfg->pool_size;
    if (demand > cfg->pool_max)
        demand = cfg->pool_max;
    return demand;
}

static void wait_locked(struct pool *p, unsigned ms)
{
    uint64_t deadline = now_mono_ms() + ms;
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000), .tv_nsec = (long)(deadline % 1000) * 1000000};
    (void)pthread_cond_timedwait(&p->wake, &p->lock, &ts);
}

/* A ready sandbox whose agent died (OOM, a kill from the host) would only be
 * found at take time and cost that create a build: drop it now. Returns one
 * such sandbox, removed from the stack, or NULL. Lock order: pool, then the
 * registry (sandbox_crashed); nothing takes them the other way round. */
static struct sandbox *pop_crashed_locked(struct pool *p)
{
    for (unsigned i = 0; i < p->nready; i++) {
        if (sandbox_crashed(p->ready[i])) {
            struct sandbox *sb = p->ready[i];
            memmove(&p->ready[i], &p->ready[i + 1], (p->nready - i - 1) * sizeof(*p->ready));
            p->nready--;
            return sb;
        }
    }
    return NULL;
}

static void *refill_main(void *arg)
{
    struct pool *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct sandbox *dead = pop_crashed_locked(p);
        if (dead) {
            pthread_mutex_unlock(&p->lock);
            log_warn("warm pool: %s: agent died while waiting; discarded", sandbox_id(dead));
            sandbox_discard(dead);
            pthread_mutex_lock(&p->lock);
            p->discarded_dead++;
            continue;
        }
        rotate_window_locked(p, now_mono_ms());
        p->target = target_locked(p);
        if (p->nready > p->target) {
            /* shrink: the oldest first would be fairer to memory, but any
             * is equivalent; they are all unused */
            struct sandbox *sb = p->ready[--p->nready];
            pthread_mutex_unlock(&p->lock);
            sandbox_discard(sb);
            pthread_mutex_lock(&p->lock);
            continue;
        }
        if (p->nready == p->target) {
            wait_locked(p, POOL_PERIOD_MS);
            continue;
        }
        pthread_mutex_unlock(&p->lock);
        struct sandbox *sb = NULL;
        struct api_error err = {0};
        int r = sandbox_build(p->d, &p->shape, &sb, &err);
        pthread_mutex_lock(&p->lock);
        if (r < 0) {
            p->build_failures++;
            log_warn("warm pool: build failed: %s", err.message);
            if (!p->stop)
                wait_locked(p, POOL_FAIL_BACKOFF_MS);
            continue;
        }
        if (p->stop || p->nready >= p->d->cfg.pool_max) {
            pthread_mutex_unlock(&p->lock);
            sandbox_discard(sb);
            pthread_mutex_lock(&p->lock);
            continue;
        }
        p->ready[p->nready++] = sb;
        p->built++;
        log_debug("warm pool: %s ready (%u/%u)", sandbox_id(sb), p->nready, p->target);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int pool_new(struct daemon *d, struct pool **out)
{
    *out = NULL;
    if (d->cfg.pool_size == 0)
        return 0;
    struct pool *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->ready = calloc(d->cfg.pool_max, sizeof(*p->ready));
    if (!p->ready) {
        free(p);
        return -ENOMEM;
    }
    p->d = d;
    /* the shape of a create that names nothing (api_sandboxes.c's defaults) */
    p->shape = (struct sandbox_shape){
        .tmpl = &d->host_template,
        .memory_mb = 1024 < d->cfg.max_memory_mb ? 1024 : d->cfg.max_memory_mb,
        .cpus = 1.0,
        .egress = false,
    };
    p->target = d->cfg.pool_size;
    p->window_start_ms = now_mono_ms();
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    int r = pthread_create(&p->thread, NULL, refill_main, p);
    if (r != 0) {
        log_error("warm pool: start the refill thread: %s", strerror(r));
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p->ready);
        free(p);
        return -r;
    }
    log_info("warm pool: %u to %u sandboxes of %u MiB, %.2f cpus", d->cfg.pool_size, d->cfg.pool_max,
             p->shape.memory_mb, p->shape.cpus);
    *out = p;
    return 0;
}

void pool_stop(struct pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    bool was_stopped = p->stop;
    p->stop = true; /* from now on pool_take answers NULL */
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    if (was_stopped)
        return;
    pthread_join(p->thread, NULL); /* waits for a build in progress */
    /* the thread is gone and takes see stop; emptying the stack under the
     * lock keeps pool_stats_json off the sandboxes discarded below */
    pthread_mutex_lock(&p->lock);
    unsigned n = p->nready;
    p->nready = 0;
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < n; i++)
        sandbox_discard(p->ready[i]);
    if (n)
        log_info("warm pool: destroyed %u ready sandbox(es)", n);
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    pool_stop(p);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->ready);
    free(p);
}

struct sandbox *pool_take(struct pool *p, const struct sandbox_shape *s)
{
    if (!p || !sandbox_shape_equal(&p->shape, s))
        return NULL;
    struct sandbox *sb = NULL;
    pthread_mutex_lock(&p->lock);
    if (!p->stop) {
        rotate_window_locked(p, now_mono_ms());
        p->window_now++;
        if (p->nready)
            sb = p->ready[--p->nready];
        if (sb)
            p->hits++;
        else
            p->misses++;
        pthread_cond_signal(&p->wake); /* refill (and maybe grow) now */
    }
    pthread_mutex_unlock(&p->lock);
    if (sb)
        log_debug("warm pool: hit, %s taken", sandbox_id(sb));
    return sb;
}

json_t *pool_stats_json(struct pool *p)
{
    if (!p)
        return json_pack("{s:b}", "enabled", false);
    const struct config *cfg = &p->d->cfg;
    pthread_mutex_lock(&p->lock);
    /* Reading cgroup files under the lock is a few microseconds each, and
     * only the refill thread (which waits) and takes contend for it; the
     * lock is what keeps the sandboxes from being discarded meanwhile. */
    uint64_t mem = 0;
    for (unsigned i = 0; i < p->nready; i++)
        mem += sandbox_memory_bytes(p->ready[i]);
    json_t *j = json_pack("{s:b,s:i,s:i,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:I}", "enabled", true, "target",
                          (int)p->target, "ready", (int)p->nready, "min", (int)cfg->pool_size, "max",
                          (int)cfg->pool_max, "hits", (json_int_t)p->hits, "misses", (json_int_t)p->misses, "built",
                          (json_int_t)p->built, "build_failures", (json_int_t)p->build_failures, "discarded_dead",
                          (json_int_t)p->discarded_dead, "memory_bytes", (json_int_t)mem);
    pthread_mutex_unlock(&p->lock);
    return j;
}
