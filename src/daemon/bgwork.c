/* bgwork.c - see bgwork.h. */
#include "bgwork.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct job {
    void (*fn)(void *arg);
    void *arg;
};

struct bgwork {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    struct job *ring;
    size_t max, head, n; /* n queued, from ring[head] */
    bool running;        /* the worker is inside a job */
    bool stop;
};

static void *worker_main(void *arg)
{
    struct bgwork *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->n == 0 && !w->stop)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->n == 0)
            break; /* stopping, and everything queued has run */
        struct job j = w->ring[w->head];
        w->head = (w->head + 1) % w->max;
        w->n--;
        w->running = true;
        pthread_mutex_unlock(&w->lock);
        j.fn(j.arg);
        pthread_mutex_lock(&w->lock);
        w->running = false;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int bgwork_new(const char *name, size_t max, struct bgwork **out)
{
    if (max == 0)
        return -EINVAL;
    struct bgwork *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->ring = calloc(max, sizeof(*w->ring));
    if (!w->ring) {
        free(w);
        return -ENOMEM;
    }
    w->max = max;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    int r = pthread_create(&w->thread, NULL, worker_main, w);
    if (r != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w->ring);
        free(w);
        return -r;
    }
    (void)pthread_setname_np(w->thread, name); /* cosmetic (ps, gdb): a failure changes nothing */
    *out = w;
    return 0;
}

bool bgwork_submit(struct bgwork *w, void (*fn)(void *arg), void *arg)
{
    if (!w)
        return false;
    pthread_mutex_lock(&w->lock);
    bool ok = !w->stop && w->n < w->max;
    if (ok) {
        w->ring[(w->head + w->n) % w->max] = (struct job){fn, arg};
        w->n++;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return ok;
}

size_t bgwork_pending(struct bgwork *w)
{
    if (!w)
        return 0;
    pthread_mutex_lock(&w->lock);
    size_t n = w->n + (w->running ? 1 : 0);
    pthread_mutex_unlock(&w->lock);
    return n;
}

void bgwork_free(struct bgwork *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w->ring);
    free(w);
}
