/* context.c - code contexts: the agent's table of independent REPLs.
 *
 * A context is one runner process (repl.c) with its own globals, in the same
 * sandbox as every other: the same uid, files, cgroup (so each context's
 * memory counts toward the sandbox's limit) and namespaces. a->repls[0] is
 * the default context, id "default", the REPL a sandbox always had: started
 * with the agent, restartable, never removed. Others are made by
 * CTX_CREATE, up to AGENT_MAX_CONTEXTS in all, and live until CTX_DELETE or
 * the sandbox's end.
 *
 *   CTX_CREATE  {"language","cwd"}  -> OK {"id","language","cwd","default"}
 *   CTX_LIST    {}                  -> OK {"contexts":[...]} (default first)
 *   CTX_RESTART {"id"}              -> OK context: a fresh runner
 *   CTX_DELETE  {"id"}              -> OK
 *   RUN_CODE    {"context":id, ...} -> that context's REPL; no context: the
 *                                      language's default one
 *
 * The default of python is slot 0; the default of r or javascript is a
 * context like the others with id "default-r" / "default-javascript",
 * made at that language's first call without a context (or with the agent,
 * --warm; lang.c), counted in the cap, restartable, and removable (the next
 * call without a context makes it again).
 *
 * A call running in a context that is restarted or removed ends at once with
 * an error naming why (repl_stop); the other contexts are not touched. The
 * runner of a new context is started before the reply, so its first call
 * pays no interpreter start (a fork of the zygote where there is one).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "util.h"

static json_t *context_json(const struct repl *r)
{
    return json_pack("{s:s, s:s, s:s, s:b}", "id", r->id, "language", r->language, "cwd",
                     r->cwd[0] ? r->cwd : "/home/user", "default", r->is_default);
}

static struct repl *context_find(struct agent *a, const char *id)
{
    for (size_t i = 0; i < AGENT_MAX_CONTEXTS; i++)
        if (a->repls[i].used && strcmp(a->repls[i].id, id) == 0)
            return &a->repls[i];
    return NULL;
}

void context_table_init(struct agent *a)
{
    for (size_t i = 0; i < AGENT_MAX_CONTEXTS; i++)
        repl_init(&a->repls[i]);
    struct repl *r = &a->repls[0];
    r->used = r->is_default = true;
    snprintf(r->id, sizeof(r->id), "%s", REPL_DEFAULT_ID);
    snprintf(r->language, sizeof(r->language), "python");
    snprintf(r->cwd, sizeof(r->cwd), "/home/user");
}

int context_init(struct agent *a)
{
    context_table_init(a);
    return repl_start(a, &a->repls[0]);
}

void context_free_all(struct agent *a)
{
    for (size_t i = 0; i < AGENT_MAX_CONTEXTS; i++)
        if (a->repls[i].used)
            repl_free(a, &a->repls[i]);
}

/* A free slot started as a context of language (canonical) and cwd, with
 * this id (NULL: a fresh "ctx-" one). 0 and *out, or -errno with err. */
static int context_new(struct agent *a, const char *id, const char *language, const char *cwd, struct repl **out,
                       char *err, size_t errlen)
{
    struct repl *r = NULL;
    for (size_t i = 1; i < AGENT_MAX_CONTEXTS && !r; i++)
        if (!a->repls[i].used)
            r = &a->repls[i];
    if (!r) {
        snprintf(err, errlen, "a sandbox has at most %d code contexts (the default one included); remove one first",
                 AGENT_MAX_CONTEXTS);
        return -ENOSPC;
    }
    char hex[17];
    int rc;
    if (!id && (rc = random_hex(hex, 8)) < 0) {
        snprintf(err, errlen, "getrandom: %s", strerror(-rc));
        return rc;
    }
    hex[16] = '\0';
    repl_init(r);
    if (id)
        snprintf(r->id, sizeof(r->id), "%s", id);
    else
        snprintf(r->id, sizeof(r->id), "ctx-%s", hex);
    snprintf(r->language, sizeof(r->language), "%s", language);
    snprintf(r->cwd, sizeof(r->cwd), "%s", cwd);
    r->used = true;
    if ((rc = repl_start(a, r)) < 0) {
        snprintf(err, errlen, "start the %s runner of a new context: %s", language, r->start_error);
        repl_free(a, r);
        repl_init(r);
        return rc;
    }
    log_info("code context %s (%s, %s) created", r->id, r->language, r->cwd);
    *out = r;
    return 0;
}

static const char *ctx_error_code(int rc)
{
    if (rc == -ENOSPC)
        return PROTO_ERR_TOO_MANY_CONTEXTS;
    if (rc == -ENOENT) /* the template lacks the interpreter (lang.c) */
        return PROTO_ERR_INVALID;
    return PROTO_ERR_INTERNAL;
}

static void context_create(struct agent *a, uint32_t req_id, json_t *req)
{
    json_t *jlang = json_object_get(req, "language");
    const char *language = jlang && !json_is_null(jlang) ? json_string_value(jlang) : "python";
    if (!language || !repl_language_known(language)) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "language %.64s is not available for a code context (python, r, javascript)",
                         language ? language : "(not a string)");
        return;
    }
    json_t *jcwd = json_object_get(req, "cwd");
    if (jcwd && !json_is_null(jcwd) && !json_is_string(jcwd)) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "cwd must be a string");
        return;
    }
    char cwd[PATH_NORM_MAX];
    char err[PATH_NORM_MAX + 700];
    int rc = proc_resolve_cwd(jcwd, cwd, err, sizeof(err));
    if (rc < 0) {
        agent_send_error(a, req_id, rc == -ENOENT ? PROTO_ERR_NOT_FOUND : PROTO_ERR_INVALID, "%s", err);
        return;
    }
    struct repl *r;
    if ((rc = context_new(a, NULL, lang_canonical(language), cwd, &r, err, sizeof(err))) < 0) {
        agent_send_error(a, req_id, ctx_error_code(rc), "%s", err);
        return;
    }
    agent_send_ok(a, req_id, context_json(r));
}

/* The default context of an R or JavaScript call without a context:
 * "default-<language>", made now if it is not there. NULL with an ERROR
 * sent when it cannot be. */
static struct repl *context_language_default(struct agent *a, uint32_t req_id, const char *language)
{
    char id[REPL_ID_MAX];
    snprintf(id, sizeof(id), "default-%s", language);
    struct repl *r = context_find(a, id);
    if (r)
        return r;
    char err[900];
    int rc = context_new(a, id, language, "/home/user", &r, err, sizeof(err));
    if (rc < 0) {
        agent_send_error(a, req_id, ctx_error_code(rc), "%s", err);
        return NULL;
    }
    return r;
}

void context_start_warm(struct agent *a)
{
    size_t i = 0;
    for (const char *l; (l = lang_warm_next(a, &i));) {
        char id[REPL_ID_MAX], err[900];
        struct repl *r;
        snprintf(id, sizeof(id), "default-%s", l);
        if (!context_find(a, id) && context_new(a, id, l, "/home/user", &r, err, sizeof(err)) < 0)
            log_warn("%s runner did not start: %s", l, err);
    }
}

static void context_list(struct agent *a, uint32_t req_id)
{
    json_t *list = json_array();
    for (size_t i = 0; i < AGENT_MAX_CONTEXTS; i++)
        if (a->repls[i].used)
            json_array_append_new(list, context_json(&a->repls[i]));
    agent_send_ok(a, req_id, json_pack("{s:o, s:i}", "contexts", list, "max", AGENT_MAX_CONTEXTS));
}

/* The context a CTX_RESTART / CTX_DELETE / RUN_CODE names, or an ERROR sent. */
static struct repl *context_named(struct agent *a, uint32_t req_id, json_t *jid)
{
    if (!json_is_string(jid)) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "context must be a context id (a string)");
        return NULL;
    }
    struct repl *r = context_find(a, json_string_value(jid));
    if (!r)
        agent_send_error(a, req_id, PROTO_ERR_NOT_FOUND, "code context %.64s not found", json_string_value(jid));
    return r;
}

static void context_restart(struct agent *a, uint32_t req_id, json_t *req)
{
    struct repl *r = context_named(a, req_id, json_object_get(req, "id"));
    if (!r)
        return;
    repl_stop(a, r, "ContextRestarted");
    if (repl_start(a, r) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "restart context %s: %s", r->id, r->start_error);
        return;
    }
    log_info("code context %s restarted", r->id);
    agent_send_ok(a, req_id, context_json(r));
}

static void context_delete(struct agent *a, uint32_t req_id, json_t *req)
{
    struct repl *r = context_named(a, req_id, json_object_get(req, "id"));
    if (!r)
        return;
    if (r->is_default) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "the default context cannot be removed (restart it instead)");
        return;
    }
    repl_stop(a, r, "ContextRemoved");
    log_info("code context %s removed", r->id);
    repl_free(a, r);
    repl_init(r); /* the slot is free */
    agent_send_ok(a, req_id, NULL);
}

void context_handle(struct agent *a, const struct proto_hdr *h, json_t *req)
{
    switch (h->type) {
    case PROTO_CTX_CREATE: context_create(a, h->req_id, req); break;
    case PROTO_CTX_LIST: context_list(a, h->req_id); break;
    case PROTO_CTX_RESTART: context_restart(a, h->req_id, req); break;
    case PROTO_CTX_DELETE: context_delete(a, h->req_id, req); break;
    default: agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "not a context request"); break;
    }
}

/* RUN_CODE for a REPL language: the named context, or the language's
 * default one. A language given with a context must be the context's. */
void context_handle_run(struct agent *a, uint32_t req_id, json_t *req)
{
    json_t *jctx = json_object_get(req, "context");
    json_t *jlang = json_object_get(req, "language");
    const char *given = json_is_string(jlang) ? json_string_value(jlang) : NULL;
    /* "js" is "javascript"; an unknown one ("bash" with a context) is
     * refused below as not the context's, or as unknown */
    const char *language = !given ? "python" : lang_canonical(given) ? lang_canonical(given) : given;
    struct repl *r;
    if (jctx && !json_is_null(jctx)) {
        if (!(r = context_named(a, req_id, jctx)))
            return;
        if (given && strcmp(language, r->language) != 0) {
            agent_send_error(a, req_id, PROTO_ERR_INVALID, "context %s runs %s, not %s", r->id, r->language, language);
            return;
        }
    } else if (strcmp(language, "python") == 0) {
        r = &a->repls[0];
    } else if (!lang_canonical(language)) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "unknown language \"%.64s\": available are %s", language, lang_list());
        return;
    } else if (!(r = context_language_default(a, req_id, language))) {
        return;
    }
    repl_handle_run(a, r, req_id, req);
}
