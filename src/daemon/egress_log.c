/* egress_log.c - a ring of a sandbox's last egress connections (egress_log.h). */
#include "egress_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct egress_log {
    pthread_mutex_t lock;
    struct egress_log_entry ring[EGRESS_LOG_MAX];
    uint64_t total; /* entries ever added: the ring holds the last min(total, MAX) */
};

int egress_log_new(struct egress_log **out)
{
    struct egress_log *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    pthread_mutex_init(&l->lock, NULL);
    *out = l;
    return 0;
}

void egress_log_free(struct egress_log *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void egress_log_add(struct egress_log *l, const struct egress_log_entry *e)
{
    pthread_mutex_lock(&l->lock);
    l->ring[l->total % EGRESS_LOG_MAX] = *e;
    l->total++;
    pthread_mutex_unlock(&l->lock);
}

json_t *egress_log_entry_json(const struct egress_log_entry *e)
{
    return json_pack("{s:I,s:s,s:s,s:i,s:s?,s:I,s:I,s:I,s:s,s:s}", "time_ms", (json_int_t)e->time_ms, "method",
                     e->method, "host", e->host, "port", (int)e->port, "address", e->address[0] ? e->address : NULL,
                     "bytes_out", (json_int_t)e->bytes_out, "bytes_in", (json_int_t)e->bytes_in, "duration_ms",
                     (json_int_t)e->duration_ms, "verdict", e->verdict, "reason", e->reason);
}

json_t *egress_log_json(struct egress_log *l)
{
    json_t *a = json_array();
    pthread_mutex_lock(&l->lock);
    uint64_t first = l->total > EGRESS_LOG_MAX ? l->total - EGRESS_LOG_MAX : 0;
    for (uint64_t i = first; i < l->total; i++)
        json_array_append_new(a, egress_log_entry_json(&l->ring[i % EGRESS_LOG_MAX]));
    uint64_t dropped = first;
    pthread_mutex_unlock(&l->lock);
    return json_pack("{s:o,s:I}", "entries", a, "dropped", (json_int_t)dropped);
}
