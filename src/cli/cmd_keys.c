/* cmd_keys.c - `airlock keys create|ls|revoke`: API keys (admin). */
#include "cli.h"

#include "util.h"

static const struct cli_option keys_options[] = {
    {.name = "admin", .help = "keys create: the new key is an admin key"},
    {0},
};

/* The answer of a keys verb: printed raw with --json, else by show(). */
static int keys_call(struct cli_ctx *ctx, const char *method, const char *path, json_t *body, json_t **out)
{
    cleanup_free char *raw = NULL;
    if (call_json(ctx, method, path, body, out, &raw))
        return -1;
    if (ctx->json) {
        print_raw(raw);
        return 1;
    }
    return 0;
}

static int keys_create(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    json_auto_t *body = json_pack("{s:s, s:b}", "name", argv[0], "admin", cli_opt(ctx, "admin")->count > 0);
    if (!body)
        return cli_usage_error(ctx->cmd, "NAME must be UTF-8 text");
    json_auto_t *out = NULL;
    int r = keys_call(ctx, "POST", "/v1/keys", body, &out);
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    printf("id:    %s\nkey:   %s\nadmin: %s\n(the key is shown only once)\n", jstr(out, "id"), jstr(out, "key"),
           json_is_true(json_object_get(out, "admin")) ? "yes" : "no");
    return 0;
}

static int keys_ls(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc, (void)argv;
    json_auto_t *out = NULL;
    int r = keys_call(ctx, "GET", "/v1/keys", NULL, &out);
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    printf("%-24s %-20s %-6s %-8s %s\n", "ID", "NAME", "ADMIN", "REVOKED", "CREATED");
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(out, "keys"), i, k)
    {
        printf("%-24s %-20s %-6s %-8s %s\n", jstr(k, "id"), jstr(k, "name"),
               json_is_true(json_object_get(k, "admin")) ? "yes" : "no",
               json_is_true(json_object_get(k, "revoked")) ? "yes" : "no", jstr(k, "created_at"));
    }
    return 0;
}

static int keys_revoke(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    cleanup_free char *path = client_name_path(&ctx->client, "/v1/keys/", argv[0]);
    if (!path)
        return EXIT_ERROR;
    json_auto_t *out = NULL;
    int r = keys_call(ctx, "DELETE", path, NULL, &out);
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    printf("revoked %s\n", argv[0]);
    return 0;
}

static const struct cli_verb keys_verbs[] = {
    {.name = "create", .args = "NAME [--admin]", .min_args = 1, .max_args = 1, .run = keys_create},
    {.name = "ls", .alias = "list", .min_args = 0, .max_args = 0, .run = keys_ls},
    {.name = "revoke", .alias = "rm", .args = "ID", .min_args = 1, .max_args = 1, .run = keys_revoke},
    {0},
};

const struct cli_command cmd_keys = {
    .name = "keys",
    .summary = "manage API keys (admin)",
    .description = "Manage API keys (needs an admin key). A new key is shown once.",
    .options = keys_options,
    .needs_client = true,
    .verbs = keys_verbs,
};
