/* cmd_templates.c - `airlock template build|ls|show|rm` (docs/templates.md). */
#include "cli.h"

#include "util.h"

#include <string.h>
#include <unistd.h>

static const struct cli_option template_options[] = {
    {.name = "no-cache", .help = "build: rebuild even if the build cache has this spec"},
    {.name = "no-follow", .help = "build: print the build id and return, not following it"},
    {0},
};

/* Print a finished build's outcome. 0 if it succeeded. */
static int build_ended(struct cli_ctx *ctx, const char *id, json_t *out)
{
    bool ok = strcmp(jstr(out, "state"), "succeeded") == 0;
    if (ctx->json) {
        cleanup_free char *text = json_dumps(out, JSON_COMPACT);
        puts(text ? text : "{}");
    } else if (ok) {
        printf("template %s built: %s (%.1f s%s)\n", jstr(out, "template"), jstr(out, "tree_hash"),
               json_number_value(json_object_get(out, "seconds")),
               json_is_true(json_object_get(out, "cache_hit")) ? ", from the cache" : "");
    }
    if (!ok) {
        fprintf(stderr, "airlock: build %s failed: %s\n", id, jstr(out, "error"));
        return EXIT_ERROR;
    }
    return 0;
}

/* Print a build's progress until it ends. 0 if it succeeded. */
static int follow_build(struct cli_ctx *ctx, const char *id)
{
    for (unsigned since = 0;;) {
        cleanup_free char *path = NULL;
        if (asprintf(&path, "/v1/builds/%s?since=%u", id, since) < 0) {
            path = NULL;
            return EXIT_ERROR;
        }
        json_auto_t *out = NULL;
        if (!g_interrupted && client_json(&ctx->client, "GET", path, NULL, &out, NULL) < 0 && !g_interrupted) {
            client_print_error(&ctx->client);
            return EXIT_ERROR;
        }
        if (g_interrupted) {
            fprintf(stderr, "airlock: stopped following build %s (it goes on; airlock template ls shows the result)\n",
                    id);
            return EXIT_INTERRUPTED;
        }
        size_t i;
        json_t *line;
        json_array_foreach(json_object_get(out, "progress"), i, line)
            if (!ctx->json)
                printf("  %s\n", json_string_value(line));
        fflush(stdout);
        since = (unsigned)json_integer_value(json_object_get(out, "next"));
        const char *state = jstr(out, "state");
        if (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0)
            return build_ended(ctx, id, out);
        usleep(500 * 1000);
    }
}

static int template_build(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    json_error_t jerr;
    json_auto_t *spec = json_load_file(argv[0], 0, &jerr);
    if (!spec) {
        fprintf(stderr, "airlock: %s:%d: %s\n", argv[0], jerr.line, jerr.text);
        return EXIT_USAGE;
    }
    json_auto_t *out = NULL;
    cleanup_free char *raw = NULL;
    bool no_cache = cli_opt(ctx, "no-cache")->count > 0;
    if (call_json(ctx, "POST", no_cache ? "/v1/templates?cache=false" : "/v1/templates", spec, &out, &raw))
        return EXIT_ERROR;
    if (cli_opt(ctx, "no-follow")->count) {
        if (ctx->json)
            print_raw(raw);
        else
            printf("%s\n", jstr(out, "id"));
        return 0;
    }
    if (!ctx->json)
        printf("build %s of template %s (spec %s)\n", jstr(out, "id"), jstr(out, "template"), jstr(out, "spec_hash"));
    return follow_build(ctx, jstr(out, "id"));
}

/* GET or DELETE /v1/templates[/NAME]: 1 when printed (--json), 0 with *out, -1 on error. */
static int template_call(struct cli_ctx *ctx, const char *method, const char *name, json_t **out)
{
    cleanup_free char *path = name ? client_name_path(&ctx->client, "/v1/templates/", name) : strdup("/v1/templates");
    cleanup_free char *raw = NULL;
    if (!path || call_json(ctx, method, path, NULL, out, &raw))
        return -1;
    if (ctx->json) {
        print_raw(raw);
        return 1;
    }
    return 0;
}

static int template_ls(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc, (void)argv;
    json_auto_t *out = NULL;
    int r = template_call(ctx, "GET", NULL, &out);
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    size_t i;
    json_t *t;
    printf("%-16s %-10s %-10s %-9s %-21s %s\n", "NAME", "SUITE", "SIZE_MB", "PACKAGES", "BUILT", "TREE_HASH");
    json_array_foreach(json_object_get(out, "templates"), i, t)
        printf("%-16s %-10s %-10.1f %-9lld %-21s %.23s\n", jstr(t, "name"), jstr(t, "suite"),
               (double)json_integer_value(json_object_get(t, "size_bytes")) / 1e6,
               (long long)json_integer_value(json_object_get(t, "packages")), jstr(t, "built_at"),
               jstr(t, "tree_hash"));
    return 0;
}

static int template_show(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    json_auto_t *out = NULL;
    int r = template_call(ctx, "GET", argv[0], &out);
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    printf("name:        %s\ndescription: %s\n", jstr(out, "name"), jstr(out, "description"));
    if (!json_object_get(out, "tree_hash"))
        return 0;
    printf("suite:       %s (%s)\ntree hash:   %s\nspec hash:   %s\nbuilt at:    %s (%.1f s)\n"
           "size:        %lld bytes in %lld files; erofs image %lld bytes\nwarm-up:     %s\npackages:\n",
           jstr(out, "suite"), jstr(out, "mirror"), jstr(out, "tree_hash"), jstr(out, "spec_hash"),
           jstr(out, "built_at"), json_number_value(json_object_get(out, "build_seconds")),
           (long long)json_integer_value(json_object_get(out, "size_bytes")),
           (long long)json_integer_value(json_object_get(out, "files")),
           (long long)json_integer_value(json_object_get(json_object_get(out, "image"), "bytes")), jstr(out, "warmup"));
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(out, "packages"), i, t)
        printf("  %-40s %s\n", jstr(t, "name"), jstr(t, "version"));
    return 0;
}

static int template_rm(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    json_auto_t *out = NULL;
    int r = template_call(ctx, "DELETE", argv[0], &out);
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    printf("removed %s\n", argv[0]);
    return 0;
}

static const struct cli_verb template_verbs[] = {
    {.name = "build", .args = "SPEC.json [--no-cache] [--no-follow]", .min_args = 1, .max_args = 1,
     .run = template_build},
    {.name = "ls", .alias = "list", .min_args = 0, .max_args = 0, .run = template_ls},
    {.name = "show", .args = "NAME", .min_args = 1, .max_args = 1, .run = template_show},
    {.name = "rm", .args = "NAME", .min_args = 1, .max_args = 1, .run = template_rm},
    {0},
};

const struct cli_command cmd_template = {
    .name = "template",
    .summary = "build, list, show and remove templates (build/rm: admin)",
    .description = "Build and manage templates: root filesystems built from Debian packages\n"
                   "(docs/templates.md). build and rm need an admin key.",
    .options = template_options,
    .needs_client = true,
    .verbs = template_verbs,
};
