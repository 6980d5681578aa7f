/* egress_log.h - one sandbox's record of its egress connections: the last
 * EGRESS_LOG_MAX in memory (GET /v1/sandboxes/{id}/egress/log), each also
 * written to the audit log by the proxy. Thread-safe. */
#ifndef AIRLOCK_EGRESS_LOG_H
#define AIRLOCK_EGRESS_LOG_H

#include <stdint.h>

#include <jansson.h>

#define EGRESS_LOG_MAX 256

struct egress_log_entry {
    uint64_t time_ms;     /* wall clock, when the connection was accepted */
    char method[16];      /* "CONNECT", "GET", ... */
    char host[256];       /* as requested, before resolution */
    unsigned port;
    char address[64];     /* what the daemon connected to, "" if it never resolved or connected */
    uint64_t bytes_out;   /* sandbox -> upstream */
    uint64_t bytes_in;    /* upstream -> sandbox */
    uint64_t duration_ms;
    char verdict[16];     /* "allowed", "denied", "failed" (allowed, but the upstream did not answer), "revoked" */
    char reason[160];
};

struct egress_log;

int egress_log_new(struct egress_log **out);
void egress_log_free(struct egress_log *l);
void egress_log_add(struct egress_log *l, const struct egress_log_entry *e);
/* The entry as JSON (the API's and the audit detail's shape). */
json_t *egress_log_entry_json(const struct egress_log_entry *e);
/* {"entries":[...oldest first], "dropped": n} */
json_t *egress_log_json(struct egress_log *l);

#endif
