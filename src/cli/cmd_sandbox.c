/* cmd_sandbox.c - the sandbox commands: create, ls, info, rm, logs. */
#include "cli.h"

#include "util.h"

#include <limits.h>
#include <string.h>

/* ---- create ------------------------------------------------------------ */

static const char *const isolations[] = {"jail", "vm", NULL};

static const struct cli_option create_options[] = {
    {.name = "template", .arg = ARG_STRING, .metavar = "T", .body_key = "template",
     .help = "root filesystem template (default: host)"},
    {.name = "timeout", .arg = ARG_INT, .metavar = "S", .body_key = "timeout_s", .min = 1, .max = INT_MAX,
     .want = "a positive number of seconds", .help = "lifetime in seconds; the sandbox is destroyed after it"},
    {.name = "memory-mb", .arg = ARG_INT, .metavar = "N", .body_key = "memory_mb", .min = 1, .max = INT_MAX,
     .want = "a positive integer", .help = "memory limit"},
    {.name = "cpus", .arg = ARG_NUMBER, .metavar = "N", .body_key = "cpus", .min = 0.01, .max = 1024,
     .want = "a positive number", .help = "CPU limit (may be fractional)"},
    {.name = "env", .arg = ARG_KV, .metavar = "K=V", .body_key = "env", .want = "K=V",
     .help = "environment of code run in the sandbox"},
    {.name = "metadata", .arg = ARG_KV, .metavar = "K=V", .body_key = "metadata", .want = "K=V",
     .help = "free-form labels"},
    {.name = "region", .arg = ARG_STRING, .metavar = "R", .body_key = "region", .help = "region to pin the sandbox to"},
    {.name = "egress", .body_key = "egress", .help = "open network egress: any public address, never loopback, link-local, private ranges or the host "
             "(docs/egress.md)"},
    {.name = "allow", .arg = ARG_STRING, .repeat = true, .metavar = "HOST:PORT",
     .help = "reach this host through the sandbox's egress proxy (repeatable; *.domain:port, cidr:port too; "
             "docs/egress.md)"},
    {.name = "isolation", .arg = ARG_STRING, .metavar = "B", .body_key = "isolation", .choices = isolations,
     .want = "jail or vm", .help = "jail (namespaces) or vm (a QEMU microvm of its own); default: the daemon's"},
    {0},
};

static int create_run(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc, (void)argv;
    json_auto_t *out = NULL;
    cleanup_free char *raw = NULL;
    const struct cli_value *allow = cli_opt(ctx, "allow");
    if (allow && allow->count > 0) {
        if (cli_opt(ctx, "egress")->count > 0) {
            fprintf(stderr, "airlock: --egress and --allow exclude each other\n");
            return EXIT_USAGE;
        }
        json_t *rules = json_array();
        for (int i = 0; i < allow->count; i++)
            json_array_append_new(rules, json_string(allow->list[i]));
        json_object_set_new(ctx->body, "egress", json_pack("{s:o}", "allow", rules));
    }
    if (call_json(ctx, "POST", "/v1/sandboxes", ctx->body, &out, &raw))
        return EXIT_ERROR;
    if (ctx->json)
        print_raw(raw);
    else
        printf("%s\n", json_string_value(json_object_get(out, "id")) ?: "");
    return 0;
}

const struct cli_command cmd_create = {
    .name = "create",
    .summary = "create a sandbox and print its id",
    .description = "Create a sandbox and print its id.",
    .options = create_options,
    .needs_client = true,
    .run = create_run,
};

/* ---- ls / info / rm / logs --------------------------------------------- */

static const char *const ls_states[] = {"running", "destroying", NULL};

static const struct cli_option ls_options[] = {
    /* collected into the (unsent) body, then written as the query */
    {.name = "metadata", .arg = ARG_KV, .metavar = "K=V", .body_key = "metadata", .want = "K=V",
     .help = "only sandboxes with this label"},
    {.name = "template", .arg = ARG_STRING, .metavar = "T", .help = "only sandboxes of this template"},
    {.name = "state", .arg = ARG_STRING, .metavar = "S", .choices = ls_states, .want = "running or destroying",
     .help = "only sandboxes in this state"},
    {0},
};

/* "/v1/sandboxes?metadata=k%3Dv%26k2%3Dv2&template=T&state=S": the pairs
 * escaped, joined, then escaped once more as one value (E2B's encoding). */
static char *ls_path(struct cli_ctx *ctx)
{
    char *path = strdup("/v1/sandboxes");
    char sep = '?';
    const char *k;
    json_t *v;
    cleanup_free char *pairs = NULL;
    json_object_foreach(json_object_get(ctx->body, "metadata"), k, v)
    {
        cleanup_free char *ek = client_name_path(&ctx->client, "", k);
        cleanup_free char *ev = client_name_path(&ctx->client, "", json_string_value(v));
        char *joined = NULL;
        if (!ek || !ev || asprintf(&joined, "%s%s%s=%s", pairs ? pairs : "", pairs ? "&" : "", ek, ev) < 0)
            goto oom;
        free(pairs);
        pairs = joined;
    }
    const char *names[] = {"metadata", "template", "state"};
    const char *vals[] = {pairs, cli_opt(ctx, "template")->str, cli_opt(ctx, "state")->str};
    for (size_t i = 0; path && i < 3; i++) {
        if (!vals[i])
            continue;
        cleanup_free char *e = client_name_path(&ctx->client, "", vals[i]);
        char *next = NULL;
        if (!e || asprintf(&next, "%s%c%s=%s", path, sep, names[i], e) < 0)
            goto oom;
        free(path);
        path = next;
        sep = '&';
    }
    return path;
oom:
    free(path);
    return NULL;
}

static int ls_run(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc, (void)argv;
    json_auto_t *out = NULL;
    cleanup_free char *path = ls_path(ctx);
    if (!path)
        return EXIT_ERROR;
    int r = fetch_or_print(ctx, path, &out);
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    printf("%-35s %-9s %-10s %-8s %s\n", "ID", "STATE", "TEMPLATE", "REGION", "EXPIRES");
    size_t i;
    json_t *sb;
    json_array_foreach(json_object_get(out, "sandboxes"), i, sb)
    {
        printf("%-35s %-9s %-10s %-8s %s\n", jstr(sb, "id"), jstr(sb, "state"), jstr(sb, "template"),
               jstr(sb, "region"), jstr(sb, "expires_at"));
    }
    return 0;
}

const struct cli_command cmd_ls = {
    .name = "ls",
    .alias = "list",
    .summary = "list live sandboxes",
    .description = "List live sandboxes (filtered by the server with --metadata, --template, --state).",
    .options = ls_options,
    .needs_client = true,
    .run = ls_run,
};

/* GET /v1/sandboxes/ID<suffix>: 0 with *out to show as text, 1 when the
 * answer was printed (--json), -1 after printing the error. */
static int fetch_sandbox(struct cli_ctx *ctx, const char *id, const char *suffix, json_t **out)
{
    cleanup_free char *path = client_sandbox_path(&ctx->client, id, suffix, NULL);
    return fetch_or_print(ctx, path, out);
}

static int info_run(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    json_auto_t *out = NULL;
    int r = fetch_sandbox(ctx, argv[0], "", &out);
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    cleanup_free char *pretty = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!pretty)
        return EXIT_ERROR;
    printf("%s\n", pretty);
    return 0;
}

const struct cli_command cmd_info = {
    .name = "info",
    .summary = "show one sandbox",
    .args = "ID",
    .description = "Show one sandbox (live or destroyed).",
    .min_args = 1,
    .max_args = 1,
    .needs_client = true,
    .run = info_run,
};

static int rm_run(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = 0;
    for (int i = 0; i < argc && !g_interrupted; i++) {
        cleanup_free char *path = client_sandbox_path(&ctx->client, argv[i], "", NULL);
        cleanup_free char *raw = NULL;
        if (call_json(ctx, "DELETE", path, NULL, NULL, &raw)) {
            rc = EXIT_ERROR;
            continue;
        }
        if (ctx->json)
            print_raw(raw);
        else
            printf("%s\n", argv[i]);
    }
    return rc;
}

const struct cli_command cmd_rm = {
    .name = "rm",
    .summary = "destroy sandboxes",
    .args = "ID...",
    .description = "Destroy sandboxes.",
    .min_args = 1,
    .max_args = -1,
    .needs_client = true,
    .run = rm_run,
};

/* POST /v1/sandboxes/ID/pause (or /resume) for each ID: prints the id and
 * the state it is in now (--json: the sandbox object). */
static int pause_resume(struct cli_ctx *ctx, int argc, char **argv, const char *suffix)
{
    int rc = 0;
    for (int i = 0; i < argc && !g_interrupted; i++) {
        cleanup_free char *path = client_sandbox_path(&ctx->client, argv[i], suffix, NULL);
        cleanup_free char *raw = NULL;
        json_auto_t *out = NULL;
        if (call_json(ctx, "POST", path, NULL, &out, &raw)) {
            rc = EXIT_ERROR;
            continue;
        }
        if (ctx->json)
            print_raw(raw);
        else
            printf("%s %s\n", argv[i], jstr(out, "state"));
    }
    return rc;
}

static int pause_run(struct cli_ctx *ctx, int argc, char **argv) { return pause_resume(ctx, argc, argv, "/pause"); }
static int resume_run(struct cli_ctx *ctx, int argc, char **argv) { return pause_resume(ctx, argc, argv, "/resume"); }

const struct cli_command cmd_pause = {
    .name = "pause",
    .summary = "pause sandboxes",
    .args = "ID...",
    .description = "Pause sandboxes: their processes stop (no CPU), memory, files and REPL state are kept and the "
                   "lifetime clock stops until `airlock resume` (at most the daemon's --max-paused).",
    .min_args = 1,
    .max_args = -1,
    .needs_client = true,
    .run = pause_run,
};

const struct cli_command cmd_resume = {
    .name = "resume",
    .summary = "resume paused sandboxes",
    .args = "ID...",
    .description = "Resume paused sandboxes where they stopped.",
    .min_args = 1,
    .max_args = -1,
    .needs_client = true,
    .run = resume_run,
};

static int logs_run(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    json_auto_t *out = NULL;
    int r = fetch_sandbox(ctx, argv[0], "/logs", &out);
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(out, "events"), i, ev)
    {
        json_t *d = json_object_get(ev, "detail");
        cleanup_free char *detail = json_is_string(d) ? strdup(json_string_value(d))
                                    : d && !json_is_null(d) ? json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY)
                                                            : NULL;
        printf("%s  %-12s %-24s %s\n", jstr(ev, "ts"), jstr(ev, "action"), jstr(ev, "key_id"), detail ? detail : "");
    }
    return 0;
}

const struct cli_command cmd_logs = {
    .name = "logs",
    .summary = "show a sandbox's audit trail",
    .args = "ID",
    .description = "Show a sandbox's audit trail (kept after destroy).",
    .min_args = 1,
    .max_args = 1,
    .needs_client = true,
    .run = logs_run,
};
