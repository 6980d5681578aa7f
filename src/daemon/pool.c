/* pool.c - the warm pool (pool.h): one stack of ready sandboxes per shape,
 * all kept filled by one refill thread within one budget (--pool-max).
 *
 * Only the refill thread builds and discards; request threads only pop (and
 * register a shape not seen before), under the lock, which is all a pool hit
 * costs. Building (~5 ms) and discarding (cgroup kill and rmdir) happen
 * outside the lock, so a take never waits for either.
 *
 * One thread, not one per shape: on a machine with few cores two builds at
 * once only halve each other's speed, and a single builder makes the global
 * budget trivially exact (nothing is built that the budget has no room for).
 *
 *   pool
 *    ├─ lock, wake (the refill thread sleeps on it; a take signals it)
 *    └─ shapes[0..nshapes)        shapes[0] is the default create's, always there
 *         ├─ shape (template, memory_mb, cpus, egress)
 *         ├─ ready[0..nready)     LIFO: the newest is taken first
 *         ├─ demand windows       creates of this shape, this and the last second
 *         └─ target -> share      what demand asks for -> what the budget grants
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "templates.h"
#include "util.h"

#define POOL_PERIOD_MS 1000       /* idle re-check, and the demand window unit */
#define POOL_FAIL_BACKOFF_MS 1000 /* after a failed build: do not spin on a broken backend */
/* a burst's pool size halves every ~10 s (shape_target) */
#define POOL_BUILD_NICE 10 /* the refill thread's priority below the daemon's */

struct shape_pool {
    /* shape.tmpl is only valid during the create that registered the shape
     * (a built template is held by that request alone), so the pool keeps
     * the template's name and resolves it for each build (resolve_template) */
    struct sandbox_shape shape;
    char tmpl_name[64];
    bool is_default;
    struct sandbox **ready; /* LIFO stack, pool_max slots */
    unsigned nready;
    unsigned target; /* what this shape's demand asks for */
    unsigned share;  /* what the budget grants it: <= target */
    /* demand: creates of this shape in the current and the previous window */
    uint64_t window_start_ms;
    unsigned window_now, window_prev;
    uint64_t last_take_ms;
    double peak;      /* the highest recent demand, decaying (shape_target) */
    uint64_t peak_ms; /* when peak was last updated */
    uint64_t hits, misses, built, build_failures, discarded_dead;
};

struct pool {
    struct daemon *d;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    pthread_t thread;

    /* guarded by lock */
    bool stop;
    bool building;          /* the refill thread is building (outside the lock) */
    char building_tmpl[64]; /* for this template */
    pthread_cond_t built_cond; /* signalled when a build is over */
    struct shape_pool *shapes[POOL_MAX_SHAPES];
    unsigned nshapes;
    /* totals, also over shapes already forgotten */
    uint64_t hits, misses, built, build_failures, discarded_dead;
};

static struct shape_pool *shape_pool_new(const struct sandbox_shape *s, unsigned cap, bool is_default)
{
    struct shape_pool *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return NULL;
    sp->ready = calloc(cap ? cap : 1, sizeof(*sp->ready));
    if (!sp->ready) {
        free(sp);
        return NULL;
    }
    sp->shape = *s;
    sp->shape.tmpl = NULL;
    snprintf(sp->tmpl_name, sizeof(sp->tmpl_name), "%s", s->tmpl->name);
    sp->is_default = is_default;
    sp->window_start_ms = sp->last_take_ms = sp->peak_ms = now_mono_ms();
    return sp;
}

/* Frees the bookkeeping only: the caller has emptied ready[]. */
static void shape_pool_free(struct shape_pool *sp)
{
    if (!sp)
        return;
    free(sp->ready);
    free(sp);
}

static bool shape_matches(const struct shape_pool *sp, const char *tmpl_name, const struct sandbox_shape *s)
{
    return strcmp(sp->tmpl_name, tmpl_name) == 0 && sp->shape.memory_mb == s->memory_mb &&
           sp->shape.cpus == s->cpus && sp->shape.egress == s->egress && sp->shape.isolation == s->isolation;
}

static struct shape_pool *find_locked(struct pool *p, const char *tmpl_name, const struct sandbox_shape *s)
{
    for (unsigned i = 0; i < p->nshapes; i++)
        if (shape_matches(p->shapes[i], tmpl_name, s))
            return p->shapes[i];
    return NULL;
}

static void remove_at_locked(struct pool *p, unsigned i)
{
    memmove(&p->shapes[i], &p->shapes[i + 1], (p->nshapes - i - 1) * sizeof(*p->shapes));
    p->nshapes--;
}

static void rotate_window(struct shape_pool *sp, uint64_t now)
{
    if (now - sp->window_start_ms < POOL_PERIOD_MS)
        return;
    /* a window with no creates at all in between clears the history */
    sp->window_prev = now - sp->window_start_ms < 2 * POOL_PERIOD_MS ? sp->window_now : 0;
    sp->window_now = 0;
    sp->window_start_ms = now;
}

/* Adaptive size: the shape's creates of the last one to two seconds, or,
 * when that is less, the peak of that number decaying by half every
 * ~10 s. A burst grows the pool at once, and the pool stays
 * large enough for a similar burst for a while (bursts come in series:
 * an agent fanning out, a batch of tests) before it shrinks back: to
 * --pool-size for the default shape, to one for another shape asked for in
 * the last POOL_SHAPE_IDLE_MS (its next create is then still a hit), to none
 * for a shape nobody asked for in that long. */
static unsigned shape_target(const struct pool *p, struct shape_pool *sp, uint64_t now)
{
    const struct config *cfg = &p->d->cfg;
    double demand = sp->window_now + sp->window_prev;
    /* decay in whole seconds: 0.933^10 ~ 1/2 (no libm for one exp2) */
    for (; now - sp->peak_ms >= 1000; sp->peak_ms += 1000)
        sp->peak *= 0.933;
    if (demand >= sp->peak) {
        sp->peak = demand;
        sp->peak_ms = now;
    }
    unsigned want = (unsigned)(sp->peak + 0.5);
    unsigned floor = sp->is_default ? cfg->pool_size : (now - sp->last_take_ms < POOL_SHAPE_IDLE_MS ? 1 : 0);
    if (want < floor)
        want = floor;
    return want < cfg->pool_max ? want : cfg->pool_max;
}

/* Recompute every shape's target and its share of the --pool-max budget:
 * the default shape's --pool-size first (the operator asked for it), then
 * one more at a time to each shape still below its target, round robin
 * (max-min fairness: a busy shape cannot starve a quiet one of its single
 * ready sandbox). Forgets shapes idle and empty. */
static void plan_locked(struct pool *p, uint64_t now)
{
    const struct config *cfg = &p->d->cfg;
    for (unsigned i = 0; i < p->nshapes;) {
        struct shape_pool *sp = p->shapes[i];
        rotate_window(sp, now);
        sp->target = shape_target(p, sp, now);
        if (!sp->is_default && sp->target == 0 && sp->nready == 0) {
            log_debug("warm pool: shape %s/%u MiB/%.2f cpus/egress %d idle; forgotten", sp->tmpl_name,
                      sp->shape.memory_mb, sp->shape.cpus, sp->shape.egress);
            remove_at_locked(p, i);
            shape_pool_free(sp);
            continue;
        }
        sp->share = 0;
        i++;
    }
    unsigned budget = cfg->pool_max;
    for (unsigned i = 0; i < p->nshapes; i++) {
        struct shape_pool *sp = p->shapes[i];
        if (sp->is_default) {
            unsigned first = sp->target < cfg->pool_size ? sp->target : cfg->pool_size;
            sp->share = first < budget ? first : budget;
            budget -= sp->share;
        }
    }
    bool grew = true;
    while (budget > 0 && grew) {
        grew = false;
        for (unsigned i = 0; i < p->nshapes && budget > 0; i++) {
            struct shape_pool *sp = p->shapes[i];
            if (sp->share < sp->target) {
                sp->share++;
                budget--;
                grew = true;
            }
        }
    }
}

static void wait_locked(struct pool *p, unsigned ms)
{
    uint64_t deadline = now_mono_ms() + ms;
    struct timespec ts = mono_deadline(deadline);
    (void)pthread_cond_timedwait(&p->wake, &p->lock, &ts);
}

static struct sandbox *pop_at(struct shape_pool *sp, unsigned i)
{
    struct sandbox *sb = sp->ready[i];
    memmove(&sp->ready[i], &sp->ready[i + 1], (sp->nready - i - 1) * sizeof(*sp->ready));
    sp->nready--;
    return sb;
}

/* A ready sandbox whose agent died (OOM, a kill from the host) would only be
 * found at take time and cost that create a build: drop it now. Returns one
 * such sandbox, removed from its stack, or NULL. sandbox_crashed is an
 * atomic flag (build.c): no other lock is taken under the pool's. */
static struct sandbox *pop_crashed_locked(struct pool *p)
{
    for (unsigned i = 0; i < p->nshapes; i++) {
        struct shape_pool *sp = p->shapes[i];
        for (unsigned j = 0; j < sp->nready; j++) {
            if (sandbox_crashed(sp->ready[j])) {
                sp->discarded_dead++;
                p->discarded_dead++;
                return pop_at(sp, j);
            }
        }
    }
    return NULL;
}

/* One ready sandbox beyond its shape's share, removed, or NULL. */
static struct sandbox *pop_surplus_locked(struct pool *p)
{
    for (unsigned i = 0; i < p->nshapes; i++) {
        struct shape_pool *sp = p->shapes[i];
        /* the oldest first: all are unused, and the oldest have had their
         * pages aged out of the caches the longest */
        if (sp->nready > sp->share)
            return pop_at(sp, 0);
    }
    return NULL;
}

/* The shape furthest below its share (the first such in order, which puts
 * the default shape first on a tie), or NULL when all are full. */
static struct shape_pool *neediest_locked(struct pool *p)
{
    struct shape_pool *best = NULL;
    unsigned best_gap = 0;
    for (unsigned i = 0; i < p->nshapes; i++) {
        struct shape_pool *sp = p->shapes[i];
        unsigned gap = sp->share > sp->nready ? sp->share - sp->nready : 0;
        if (gap > best_gap) {
            best = sp;
            best_gap = gap;
        }
    }
    return best;
}

static unsigned total_ready_locked(const struct pool *p)
{
    unsigned n = 0;
    for (unsigned i = 0; i < p->nshapes; i++)
        n += p->shapes[i]->nready;
    return n;
}

/* Discard sb outside the lock (a teardown takes milliseconds). */
static void discard_unlocked(struct pool *p, struct sandbox *sb)
{
    pthread_mutex_unlock(&p->lock);
    sandbox_discard(sb);
    pthread_mutex_lock(&p->lock);
}

/* The template of a build: the daemon's host template, or a built one,
 * acquired (verified, and held against removal) until the build is done;
 * *held is then the caller's to release. */
static int resolve_template(struct pool *p, const char *name, struct sandbox_shape *shape, struct tmpl **held,
                            struct op_error *err)
{
    struct daemon *d = p->d;
    *held = NULL;
    if (strcmp(name, d->host_template.name) == 0) {
        shape->tmpl = &d->host_template;
        return 0;
    }
    if (!d->templates)
        return op_error_set(err, -ENOENT, ERR_NO_TEMPLATE, "no template store");
    int r = templates_acquire(d->templates, name, held, err);
    if (r < 0)
        return r;
    shape->tmpl = tmpl_info(*held);
    return 0;
}

/* Build one sandbox for sp and push it, if its shape is still wanted when
 * the build is done (the shape may be forgotten meanwhile: idle, or its
 * template removed). Called and returns with the lock held; builds
 * without it. While the build runs, p->building names its template, and
 * pool_drop_template waits for it: the template is held (not removable)
 * until the sandbox is pushed or destroyed. */
static void build_one_locked(struct pool *p, struct shape_pool *sp)
{
    struct sandbox_shape shape = sp->shape; /* a copy: sp may be freed meanwhile */
    char name[sizeof(sp->tmpl_name)];
    memcpy(name, sp->tmpl_name, sizeof(name));
    p->building = true;
    memcpy(p->building_tmpl, name, sizeof(p->building_tmpl));
    pthread_mutex_unlock(&p->lock);
    struct op_error err = {0};
    struct tmpl *held = NULL;
    if (resolve_template(p, name, &shape, &held, &err) < 0) {
        /* removed or corrupt: nobody can create on it, so stop pooling it */
        log_warn("warm pool: template %s: %s; its pool is dropped", name, err.msg);
        pthread_mutex_lock(&p->lock);
        p->building = false; /* before the drop, which would wait for it */
        pthread_cond_broadcast(&p->built_cond);
        pthread_mutex_unlock(&p->lock);
        pool_drop_template(p, name);
        pthread_mutex_lock(&p->lock);
        return;
    }

    struct sandbox *sb = NULL;
    int r = sandbox_build(p->d, &shape, true, &sb, &err);

    pthread_mutex_lock(&p->lock);
    sp = find_locked(p, name, &shape);
    if (r < 0) {
        p->build_failures++;
        if (sp)
            sp->build_failures++;
        log_warn("warm pool: build failed: %s", err.msg);
    } else if (p->stop || !sp || total_ready_locked(p) >= p->d->cfg.pool_max) {
        discard_unlocked(p, sb);
    } else {
        /* nready < pool_max for sp follows from the total being below it */
        sp->ready[sp->nready++] = sb;
        sp->built++;
        p->built++;
        log_debug("warm pool: %s ready (%u/%u of %s/%u MiB)", sandbox_id(sb), sp->nready, sp->share, name,
                  shape.memory_mb);
    }
    /* The sandbox keeps its own mounts of the tree; from here on a removal
     * of the template drops it from the stack first (pool_drop_template). */
    if (held) {
        pthread_mutex_unlock(&p->lock);
        templates_release(p->d->templates, held);
        pthread_mutex_lock(&p->lock);
    }
    p->building = false;
    pthread_cond_broadcast(&p->built_cond);
    if (r < 0 && err.code == ERR_WARMUP && !p->stop) {
        /* A template defect (its warm-up raises): every build of it would
         * fail the same way, so stop pooling it rather than rebuild it once
         * a second. A later create on it is a miss that tries again, and
         * brings the shape back for one more pool build at most. */
        log_warn("warm pool: template %s cannot be pooled; its pool is dropped", name);
        pthread_mutex_unlock(&p->lock);
        pool_drop_template(p, name);
        pthread_mutex_lock(&p->lock);
        return;
    }
    if (r < 0 && !p->stop)
        wait_locked(p, POOL_FAIL_BACKOFF_MS);
}

static void *refill_main(void *arg)
{
    struct pool *p = arg;
    /* Builds are background work: on a small host they compete for the same
     * cores as the requests they exist to speed up. A lower priority for this
     * thread alone (nice is per thread on Linux) lets a request preempt a
     * build; the agents it builds get the daemon's priority back (jail.c). */
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0);
    if (!(base == -1 && errno != 0) &&
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), base + POOL_BUILD_NICE) < 0)
        log_warn("warm pool: setpriority: %s; builds run at the daemon's priority", strerror(errno));
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct sandbox *sb = pop_crashed_locked(p);
        if (sb) {
            log_warn("warm pool: %s: agent died while waiting; discarded", sandbox_id(sb));
            discard_unlocked(p, sb);
            continue;
        }
        plan_locked(p, now_mono_ms());
        if ((sb = pop_surplus_locked(p)) != NULL) {
            discard_unlocked(p, sb);
            continue;
        }
        struct shape_pool *sp = neediest_locked(p);
        if (!sp) {
            wait_locked(p, POOL_PERIOD_MS);
            continue;
        }
        build_one_locked(p, sp);
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
    p->d = d;
    /* the shape of a create that names nothing (api_sandboxes.c's defaults) */
    struct sandbox_shape def = {
        .tmpl = &d->host_template,
        .memory_mb = 1024 < d->cfg.max_memory_mb ? 1024 : d->cfg.max_memory_mb,
        .cpus = 1.0,
        .egress = false,
        .isolation = d->cfg.isolation,
    };
    if (!(p->shapes[0] = shape_pool_new(&def, d->cfg.pool_max, true))) {
        free(p);
        return -ENOMEM;
    }
    p->shapes[0]->target = p->shapes[0]->share = d->cfg.pool_size;
    p->nshapes = 1;
    pthread_mutex_init(&p->lock, NULL);
    cond_init_monotonic(&p->wake);
    pthread_cond_init(&p->built_cond, NULL);
    int r = pthread_create(&p->thread, NULL, refill_main, p);
    if (r != 0) {
        log_error("warm pool: start the refill thread: %s", strerror(r));
        pthread_cond_destroy(&p->wake);
        pthread_cond_destroy(&p->built_cond);
        pthread_mutex_destroy(&p->lock);
        shape_pool_free(p->shapes[0]);
        free(p);
        return -r;
    }
    log_info("warm pool: %u to %u sandboxes (all shapes together); default shape %u MiB, %.2f cpus",
             d->cfg.pool_size, d->cfg.pool_max, def.memory_mb, def.cpus);
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
    /* The thread is gone and takes see stop. Each sandbox leaves its stack
     * under the lock (pool_stats_json reads the stacks) and is discarded
     * outside it. */
    unsigned n = 0;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->nshapes; i++) {
        struct shape_pool *sp = p->shapes[i];
        while (sp->nready) {
            struct sandbox *sb = sp->ready[--sp->nready];
            discard_unlocked(p, sb);
            n++;
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (n)
        log_info("warm pool: destroyed %u ready sandbox(es)", n);
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    pool_stop(p);
    for (unsigned i = 0; i < p->nshapes; i++)
        shape_pool_free(p->shapes[i]);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->built_cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

struct sandbox *pool_take(struct pool *p, const struct sandbox_shape *s)
{
    if (!p)
        return NULL;
    struct sandbox *sb = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->stop) {
        pthread_mutex_unlock(&p->lock);
        return NULL;
    }
    uint64_t now = now_mono_ms();
    struct shape_pool *sp = find_locked(p, s->tmpl->name, s);
    if (!sp && p->nshapes < POOL_MAX_SHAPES) {
        /* a new shape: this create is a miss, the next ones of it need not be */
        if ((sp = shape_pool_new(s, p->d->cfg.pool_max, false)) != NULL)
            p->shapes[p->nshapes++] = sp;
    }
    if (sp) {
        rotate_window(sp, now);
        sp->window_now++;
        sp->last_take_ms = now;
        if (sp->nready)
            sb = sp->ready[--sp->nready];
        if (sb)
            sp->hits++;
        else
            sp->misses++;
    }
    if (sb)
        p->hits++;
    else
        p->misses++;
    pthread_cond_signal(&p->wake); /* refill (and maybe grow) now */
    pthread_mutex_unlock(&p->lock);
    if (sb)
        log_debug("warm pool: hit, %s taken", sandbox_id(sb));
    return sb;
}

void pool_drop_template(struct pool *p, const char *name)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    /* a build of it in flight holds the template: wait until the sandbox
     * is pushed (and destroyed below) or discarded, and the hold is gone */
    while (p->building && strcmp(p->building_tmpl, name) == 0)
        pthread_cond_wait(&p->built_cond, &p->lock);
    /* once stopped, pool_stop owns the stacks */
    for (unsigned i = 0; i < p->nshapes && !p->stop;) {
        struct shape_pool *sp = p->shapes[i];
        if (sp->is_default || strcmp(sp->tmpl_name, name) != 0) {
            i++;
            continue;
        }
        remove_at_locked(p, i); /* unreachable for takes and the refill thread from here */
        while (sp->nready)
            discard_unlocked(p, sp->ready[--sp->nready]);
        shape_pool_free(sp);
    }
    pthread_mutex_unlock(&p->lock);
}

json_t *pool_stats_json(struct pool *p)
{
    if (!p)
        return json_pack("{s:b}", "enabled", false);
    const struct config *cfg = &p->d->cfg;
    json_t *shapes = json_array();
    if (!shapes)
        return NULL;
    pthread_mutex_lock(&p->lock);
    /* Reading cgroup files under the lock is a few microseconds each, and
     * only the refill thread (which waits) and takes contend for it; the
     * lock is what keeps the sandboxes from being discarded meanwhile. */
    uint64_t mem = 0;
    unsigned target = 0, ready = 0;
    for (unsigned i = 0; i < p->nshapes; i++) {
        struct shape_pool *sp = p->shapes[i];
        uint64_t smem = 0;
        for (unsigned j = 0; j < sp->nready; j++)
            smem += sandbox_memory_bytes(sp->ready[j]);
        mem += smem;
        target += sp->share;
        ready += sp->nready;
        json_t *j = json_pack("{s:s,s:i,s:f,s:b,s:s,s:b,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:I}", "template",
                              sp->tmpl_name, "memory_mb", (int)sp->shape.memory_mb, "cpus", sp->shape.cpus,
                              "egress", sp->shape.egress, "isolation", sp->shape.isolation == ISO_VM ? "vm" : "jail",
                              "default", sp->is_default, "target", (int)sp->share,
                              "ready", (int)sp->nready, "hits", (json_int_t)sp->hits, "misses",
                              (json_int_t)sp->misses, "built", (json_int_t)sp->built, "build_failures",
                              (json_int_t)sp->build_failures, "discarded_dead", (json_int_t)sp->discarded_dead,
                              "memory_bytes", (json_int_t)smem);
        if (json_array_append_new(shapes, j) < 0) {
            pthread_mutex_unlock(&p->lock);
            json_decref(shapes);
            return NULL;
        }
    }
    json_t *j = json_pack("{s:b,s:i,s:i,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "enabled", true, "target",
                          (int)target, "ready", (int)ready, "min", (int)cfg->pool_size, "max", (int)cfg->pool_max,
                          "hits", (json_int_t)p->hits, "misses", (json_int_t)p->misses, "built",
                          (json_int_t)p->built, "build_failures", (json_int_t)p->build_failures, "discarded_dead",
                          (json_int_t)p->discarded_dead, "memory_bytes", (json_int_t)mem, "shapes", shapes);
    pthread_mutex_unlock(&p->lock);
    return j;
}
