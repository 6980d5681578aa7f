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
#include "daemon.h"
#include "errors.h"
#include "templates.h"

void api_template_build(struct http_req *req)
{
    const char *cache = http_query(req, "cache");
    if (cache && strcmp(cache, "true") != 0 && strcmp(cache, "false") != 0) {
        http_reply_errorf(req, 400, "invalid_request", "cache must be true or false");
        return;
    }
    json_t *build = NULL;
    struct api_error err = {0};
    if (templates_build_start(req->d->templates, req->body, !cache || strcmp(cache, "true") == 0, &build, &err) < 0)
        http_reply_error(req, &err);
    else
        http_reply_json(req, 202, build);
}

void api_template_list(struct http_req *req) { http_reply_json(req, 200, templates_list_json(req->d->templates)); }

void api_template_get(struct http_req *req)
{
    json_t *m = NULL;
    struct api_error err = {0};
    if (strcmp(req->param, "host") == 0) {
        http_reply_json(req, 200,
                        json_pack("{s:s,s:s}", "name", "host", "description",
                                  "built in: the host's /usr, read-only, with a generated /etc"));
        return;
    }
    if (templates_get_json(req->d->templates, req->param, &m, &err) < 0)
        http_reply_error(req, &err);
    else
        http_reply_json(req, 200, m);
}

void api_template_delete(struct http_req *req)
{
    struct api_error err = {0};
    if (strcmp(req->param, "host") == 0) {
        http_reply_errorf(req, 400, "invalid_request", "the built-in template 'host' cannot be removed");
        return;
    }
    if (templates_remove(req->d->templates, req->param, &err) < 0)
        http_reply_error(req, &err);
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
    struct api_error err = {0};
    if (templates_build_json(req->d->templates, req->param, since, &j, &err) < 0)
        http_reply_error(req, &err);
    else
        http_reply_json(req, 200, j);
}
