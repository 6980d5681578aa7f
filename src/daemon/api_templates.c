/* api_templates.c - /v1/templates and /v1/builds (docs/api.md, docs/templates.md).
 *
 * POST /v1/templates      body: a template spec; ?cache=false rebuilds even
 *                         when the build cache has this spec. 202 + the build.
 * GET  /v1/templates      summaries; GET /v1/templates/{name}: the manifest
 * DELETE /v1/templates/{name}   409 template_in_use while sandboxes run on it
 * GET  /v1/builds/{id}?since=N  state and progress lines from N
 *
 * Building and removing are admin-only: a build runs dpkg as root on the
 * host and fills the disk; every key may list what it can create on. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_errors.h"
#include "daemon.h"
#include "pool.h"
#include "registry.h"
#include "templates.h"

void api_template_build(struct http_req *req)
{
    const char *cache = http_query(req, "cache");
    if (cache && strcmp(cache, "true") != 0 && strcmp(cache, "false") != 0) {
        http_reply_errorf(req, 400, "invalid_request", "cache must be true or false");
        return;
    }
    json_t *build = NULL;
    struct op_error err = {0};
    int r = templates_build_start(req->d->templates, req->body, !cache || strcmp(cache, "true") == 0, &build, &err);
    if (r < 0)
        api_reply_op_error(req, r, &err);
    else
        http_reply_json(req, 202, build);
}

void api_template_list(struct http_req *req) { http_reply_json(req, 200, templates_list_json(req->d->templates)); }

void api_template_get(struct http_req *req)
{
    json_t *m = NULL;
    struct op_error err = {0};
    if (strcmp(req->param, "host") == 0) {
        http_reply_json(req, 200,
                        json_pack("{s:s,s:s}", "name", "host", "description",
                                  "built in: the host's /usr, read-only, with a generated /etc"));
        return;
    }
    int r = templates_get_json(req->d->templates, req->param, &m, &err);
    if (r < 0)
        api_reply_op_error(req, r, &err);
    else
        http_reply_json(req, 200, m);
}

/* templates_remove's count of live sandboxes on a template: the registry's. */
static unsigned live_on_template(void *ctx, const char *name) { return sandbox_count_template(ctx, name); }

void api_template_delete(struct http_req *req)
{
    struct op_error err = {0};
    if (strcmp(req->param, "host") == 0) {
        http_reply_errorf(req, 400, "invalid_request", "the built-in template 'host' cannot be removed");
        return;
    }
    /* The warm pool's ready sandboxes of this template are nobody's and are
     * not counted by the registry: destroy them first (outside the
     * templates' lock: the pool's thread acquires templates). One the pool
     * is building holds the template, and the removal is then refused as in
     * use. The removal itself asks the registry for the live ones. */
    pool_drop_template(req->d->pool, req->param);
    int r = templates_remove(req->d->templates, req->param, live_on_template, req->d, &err);
    if (r < 0)
        api_reply_op_error(req, r, &err);
    else
        http_reply_json(req, 200, json_pack("{s:s,s:s}", "name", req->param, "state", "removed"));
}

void api_build_get(struct http_req *req)
{
    unsigned since = 0;
    const char *s = http_query(req, "since");
    if (s) {
        char *end = NULL;
        unsigned long v = strtoul(s, &end, 10);
        if (!s[0] || *end || s[0] == '-' || v > 100000000) {
            http_reply_errorf(req, 400, "invalid_request", "since must be a line number");
            return;
        }
        since = (unsigned)v;
    }
    json_t *j = NULL;
    struct op_error err = {0};
    int r = templates_build_json(req->d->templates, req->param, since, &j, &err);
    if (r < 0)
        api_reply_op_error(req, r, &err);
    else
        http_reply_json(req, 200, j);
}
