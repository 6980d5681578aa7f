/* tmpl_build.h - one template build: mmdebstrap, sanitize, files, manifest,
 * tree hash, erofs image, store, cache (docs/templates.md "How a build runs").
 * The fields are read and written under the caller's lock (templates.c)
 * except by tmpl_build_run, which takes that lock for each change. */
#ifndef AIRLOCK_TMPL_BUILD_H
#define AIRLOCK_TMPL_BUILD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "tmpl_spec.h"

enum build_state { BUILD_QUEUED, BUILD_RUNNING, BUILD_SUCCEEDED, BUILD_FAILED };

#define BUILD_MAX_LINES 4000 /* progress lines kept; older ones are dropped */

struct tmpl_build {
    char id[24]; /* "bld_" + 16 hex */
    char name[TMPL_NAME_MAX + 1];
    char spec_hash[TMPL_HASH_LEN + 1];
    json_t *spec; /* canonical */
    bool use_cache;
    enum build_state state;
    char error[512];
    bool cache_hit;
    char tree_hash[80];
    char **lines;
    size_t n_lines, dropped;
    uint64_t queued_ms, started_ms, finished_ms; /* wall clock */
    pid_t child;    /* running tool's process group, 0 if none */
    bool cancelled; /* the daemon is stopping */
};

/* Takes spec->canon. */
int tmpl_build_new(struct tmpl_spec *spec, bool use_cache, struct tmpl_build **out);
void tmpl_build_free(struct tmpl_build *b);
/* Lock held. {"id","template","state","progress":[lines from since],"next":n,...} */
json_t *tmpl_build_json(const struct tmpl_build *b, unsigned since);
/* Run the build (no lock held; lock guards b). 0 and the manifest of the
 * tree now stored under store_dir, or -errno with b->error set. */
int tmpl_build_run(struct tmpl_build *b, const char *store_dir, const char *cache_dir, pthread_mutex_t *lock,
                   json_t **manifest);
int tmpl_build_fail(struct tmpl_build *b, pthread_mutex_t *lock, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tmpl_build_finish(struct tmpl_build *b, bool ok); /* lock held */
void tmpl_build_cancel(struct tmpl_build *b);          /* lock held */

#endif
