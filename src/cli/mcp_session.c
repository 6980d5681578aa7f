/* mcp_session.c - one MCP session: its airlockd client and its sandbox.
 *
 * The sandbox is created on the first tool call, from the server's flags.
 * Its lifetime (--sandbox-timeout) is set again at every later call, so it
 * works as an idle timeout: a session in use keeps its sandbox, and the
 * sandbox of a server that died (killed, host crash) expires on its own.
 */
#include "mcp.h"

#include "cli.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mcp_session_init(struct mcp_session *s, const struct mcp_config *cfg)
{
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    if (client_init(&s->client, cfg->url, cfg->key) < 0)
        return -1;
    s->client.abort_flag = &g_interrupted;
    return 0;
}

const char *mcp_session_child(const struct mcp_session *s, const char *id)
{
    for (unsigned i = 0; id && i < s->n_children; i++)
        if (strcmp(s->children[i], id) == 0)
            return s->children[i];
    return NULL;
}

int mcp_session_child_add(struct mcp_session *s, const char *id)
{
    if (s->n_children >= MCP_MAX_CHILDREN)
        return -1;
    char *c = strdup(id);
    if (!c)
        return -1;
    s->children[s->n_children++] = c;
    return 0;
}

void mcp_session_child_forget(struct mcp_session *s, const char *id)
{
    for (unsigned i = 0; i < s->n_children; i++)
        if (strcmp(s->children[i], id) == 0) {
            free(s->children[i]);
            s->children[i] = s->children[--s->n_children];
            return;
        }
}

/* DELETE one sandbox at the session's end, saying what happened. */
static void destroy_at_end(struct mcp_session *s, const char *id)
{
    /* always tried, also after SIGTERM: so not abortable, but bounded */
    cleanup_free char *path = client_sandbox_path(&s->client, id, "", NULL);
    s->client.abort_flag = NULL;
    s->client.timeout_s = 30;
    int r = path ? client_json(&s->client, "DELETE", path, NULL, NULL, NULL) : -1;
    if (r < 0 && (s->client.err.status == 404 || s->client.err.status == 410))
        fprintf(stderr, "airlock mcp: session ended; sandbox %s was already gone (%s)\n", id, s->client.err.message);
    else if (r < 0)
        fprintf(stderr, "airlock mcp: could not destroy sandbox %s: %s (%s)\n", id, s->client.err.message,
                s->client.err.code);
    else
        fprintf(stderr, "airlock mcp: session ended; sandbox %s destroyed\n", id);
}

void mcp_session_end(struct mcp_session *s)
{
    for (unsigned i = 0; i < s->n_children && s->client.curl; i++)
        destroy_at_end(s, s->children[i]);
    for (unsigned i = 0; i < s->n_children; i++)
        free(s->children[i]);
    if (s->sandbox_id && s->client.curl)
        destroy_at_end(s, s->sandbox_id);
    free(s->sandbox_id);
    free(s->client_name);
    client_cleanup(&s->client);
    memset(s, 0, sizeof(*s));
}

void mcp_session_lost(struct mcp_session *s)
{
    free(s->sandbox_id);
    s->sandbox_id = NULL;
}

static json_t *create_body(const struct mcp_session *s)
{
    const struct mcp_config *cfg = s->cfg;
    json_t *body = json_pack("{s:b, s:I, s:{s:s}}", "egress", cfg->egress, "timeout_s", (json_int_t)cfg->lifetime_s,
                             "metadata", "created_by", "airlock mcp");
    if (!body)
        return NULL;
    int bad = 0;
    if (cfg->template_name)
        bad |= json_object_set_new(body, "template", json_string(cfg->template_name));
    if (cfg->memory_mb > 0)
        bad |= json_object_set_new(body, "memory_mb", json_integer(cfg->memory_mb));
    if (cfg->cpus > 0)
        bad |= json_object_set_new(body, "cpus", json_real(cfg->cpus));
    if (cfg->env)
        bad |= json_object_set(body, "env", cfg->env);
    /* the client's own name, so `airlock ls --metadata` can tell sessions apart */
    if (s->client_name)
        bad |= json_object_set_new(json_object_get(body, "metadata"), "mcp_client", json_string(s->client_name));
    if (bad) {
        json_decref(body);
        return NULL;
    }
    return body;
}

/* A failure of our own (not airlockd's answer) in s->client.err. */
static int own_error(struct mcp_session *s, const char *message)
{
    memset(&s->client.err, 0, sizeof(s->client.err));
    snprintf(s->client.err.code, sizeof(s->client.err.code), "internal");
    snprintf(s->client.err.message, sizeof(s->client.err.message), "%s", message);
    return -1;
}

static int create_sandbox(struct mcp_session *s)
{
    json_auto_t *body = create_body(s);
    if (!body)
        return own_error(s, "out of memory");
    /* a create cut off half-way could leave a sandbox we never learnt the id of */
    s->client.abort_flag = NULL;
    json_auto_t *sb = NULL;
    int r = client_json(&s->client, "POST", "/v1/sandboxes", body, &sb, NULL);
    s->client.abort_flag = &g_interrupted;
    if (r < 0)
        return -1;
    const char *id = json_string_value(json_object_get(sb, "id"));
    s->sandbox_id = id ? strdup(id) : NULL;
    if (!s->sandbox_id)
        return own_error(s, "airlockd's create answered without an id");
    fprintf(stderr, "airlock mcp: sandbox %s created\n", s->sandbox_id);
    return 0;
}

/* POST .../timeout: the lifetime counts again from now. */
static int renew(struct mcp_session *s)
{
    cleanup_free char *path = client_sandbox_path(&s->client, s->sandbox_id, "/timeout", NULL);
    json_auto_t *body = json_pack("{s:I}", "timeout_s", (json_int_t)s->cfg->lifetime_s);
    if (!path || !body)
        return -1;
    return client_json(&s->client, "POST", path, body, NULL, NULL);
}

int mcp_session_sandbox(struct mcp_session *s, const char **note)
{
    if (note)
        *note = NULL;
    if (s->sandbox_id) {
        if (renew(s) == 0)
            return 0;
        /* 404/410: it expired (the session sat idle past its lifetime) or
         * was deleted behind our back; anything else is a real failure */
        if (s->client.err.status != 404 && s->client.err.status != 410)
            return -1;
        fprintf(stderr, "airlock mcp: sandbox %s is gone (%s); creating a new one\n", s->sandbox_id,
                s->client.err.message);
        mcp_session_lost(s);
        if (note)
            *note = "note: this session's previous sandbox is gone (it expired while idle, or was deleted); "
                    "this call ran in a fresh sandbox, so earlier files, variables and imports are lost.";
    }
    return create_sandbox(s);
}
