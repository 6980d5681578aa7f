/* templates.h - built templates and template builds (docs/templates.md).
 *
 * Store layout, content-addressed by tree hash under the state dir:
 *
 *   <state-dir>/templates/<tree hex>/root/          the root filesystem
 *   <state-dir>/templates/<tree hex>/image.erofs    the same tree as a disk image (vm backend)
 *   <state-dir>/templates/<tree hex>/manifest.json  packages, hashes, build time
 *   <state-dir>/templates/.build-<id>/              a build in progress
 *
 * and the SQLite `templates` table (name -> manifest). Two names with the
 * same tree share one directory. A build cache keyed by spec hash
 * (<cache-dir>/<spec hex>/, default /var/cache/airlock/templates) lets a
 * daemon with a fresh state dir (CI) copy a tree instead of rebuilding it.
 *
 * Builds run one at a time on a worker thread (two cores do not build two
 * Debian trees faster than one after the other); each keeps its progress
 * lines in memory for GET /v1/builds/{id}.
 *
 * Integrity: the tree hash is checked the first time a daemon uses a
 * template, and again after inotify reported any change below its root.
 */
#ifndef AIRLOCK_TEMPLATES_H
#define AIRLOCK_TEMPLATES_H

#include <stdbool.h>

#include <jansson.h>

#include "backend.h"
#include "operr.h"

struct daemon;
struct templates;
struct tmpl;

/* builds: false refuses POST /v1/templates with 503 (the HTTP fuzz harness:
 * an input must not start mmdebstrap). */
int templates_open(struct daemon *d, const char *cache_dir, bool builds, struct templates **out);
/* Stop the build worker (killing a running build) and free. */
void templates_close(struct templates *t);

/* A ready template for a new sandbox, verified (tree hash) and held until
 * templates_release: it cannot be removed meanwhile. ERR_NO_TEMPLATE,
 * ERR_TEMPLATE_CORRUPT. info/env/limits/warmup are the template's. */
int templates_acquire(struct templates *t, const char *name, struct tmpl **out, struct op_error *err);
void templates_release(struct templates *t, struct tmpl *tp);
const struct template_info *tmpl_info(const struct tmpl *tp);
json_t *tmpl_env(const struct tmpl *tp);    /* borrowed: object string->string */
json_t *tmpl_limits(const struct tmpl *tp); /* borrowed: {memory_mb?, cpus?, timeout_s?} */

json_t *templates_list_json(struct templates *t);
int templates_get_json(struct templates *t, const char *name, json_t **out, struct op_error *err);
/* Remove a template: ERR_NO_TEMPLATE, or ERR_TEMPLATE_IN_USE while it is
 * held (a create or a pool build in progress) or live_count(ctx, name) (the
 * caller's count of live sandboxes on it, asked under the templates' lock)
 * is not 0. The caller coordinates what lives above: the API layer first
 * drops the warm pool's ready sandboxes of it, and passes the registry's
 * count, so this file calls neither. */
int templates_remove(struct templates *t, const char *name, unsigned (*live_count)(void *ctx, const char *name),
                     void *ctx, struct op_error *err);

/* Queue a build of spec (validated here: ERR_INVALID_SPEC; ERR_BUILDS_OFF,
 * ERR_BUILD_BUSY, ERR_TOO_MANY_BUILDS). *out: the build's object. */
int templates_build_start(struct templates *t, json_t *spec, bool use_cache, json_t **out, struct op_error *err);
/* The build's state and its progress lines from index `since`;
 * ERR_NOT_FOUND. */
int templates_build_json(struct templates *t, const char *id, unsigned since, json_t **out, struct op_error *err);

#endif
