/* cmd_family.c - fork families (docs/api.md, `POST /v1/sandboxes/{id}/fork`):
 *
 *   airlock fork ID [N]          N children of ID (default 1); prints their ids
 *   airlock diff A B             files added, removed, changed in B relative to A
 *   airlock merge CHILD PARENT   PARENT takes CHILD's files; CHILD is destroyed
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "util.h"

static int fork_run(struct cli_ctx *ctx, int argc, char **argv)
{
    long n = 1;
    if (argc > 1) {
        char *end = NULL;
        n = strtol(argv[1], &end, 10);
        if (!end || *end || n < 1 || n > 32)
            return cli_usage_error(ctx->cmd, "N must be a number from 1 to 32, got '%s'", argv[1]);
    }
    cleanup_free char *path = client_sandbox_path(&ctx->client, argv[0], "/fork", NULL);
    json_auto_t *body = json_pack("{s:i}", "n", (int)n);
    json_auto_t *out = NULL;
    cleanup_free char *raw = NULL;
    if (!body || call_json(ctx, "POST", path, body, &out, &raw))
        return EXIT_ERROR;
    if (ctx->json) {
        print_raw(raw);
        return 0;
    }
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(out, "sandboxes"), i, s)
        printf("%s\t%s\n", jstr(s, "id"), jstr(out, "state"));
    return 0;
}

const struct cli_command cmd_fork = {
    .name = "fork",
    .summary = "branch a sandbox into N new ones",
    .args = "ID [N]",
    .description = "Fork sandbox ID into N (1..32, default 1) children: same template, limits, egress policy and\n"
                   "owner, each its own id and lifetime. Prints one line per child: its id and what it holds\n"
                   "(\"full\": memory, processes and files, vm sandboxes; \"files\": a copy of /tmp, /data and\n"
                   "/home/user with a fresh REPL, jail sandboxes).",
    .min_args = 1,
    .max_args = 2,
    .needs_client = true,
    .run = fork_run,
};

static void print_entries(json_t *out, const char *key, char mark)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(out, key), i, e)
    {
        json_t *size = json_object_get(e, mark == '~' ? "size_b" : "size");
        printf("%c %s\t%lld\n", mark, jstr(e, "path"), (long long)json_integer_value(size));
    }
}

static int diff_run(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    char suffix[128];
    snprintf(suffix, sizeof(suffix), "/diff/%s", argv[1]);
    cleanup_free char *path = client_sandbox_path(&ctx->client, argv[0], suffix, NULL);
    json_auto_t *out = NULL;
    int r = fetch_or_print(ctx, path, &out);
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    print_entries(out, "added", '+');
    print_entries(out, "removed", '-');
    print_entries(out, "changed", '~');
    return 0;
}

const struct cli_command cmd_diff = {
    .name = "diff",
    .summary = "compare the files of two sandboxes of one family",
    .args = "A B",
    .description = "Files of /tmp, /data and /home/user added (+), removed (-) and changed (~) in B relative\n"
                   "to A, with B's size. A and B must be of one fork family.",
    .min_args = 2,
    .max_args = 2,
    .needs_client = true,
    .run = diff_run,
};

static int merge_run(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    char suffix[128];
    snprintf(suffix, sizeof(suffix), "/merge_into/%s", argv[1]);
    cleanup_free char *path = client_sandbox_path(&ctx->client, argv[0], suffix, NULL);
    json_auto_t *out = NULL;
    cleanup_free char *raw = NULL;
    if (call_json(ctx, "POST", path, NULL, &out, &raw))
        return EXIT_ERROR;
    if (ctx->json)
        print_raw(raw);
    else
        printf("%s merged into %s (%s: %lld files, %lld bytes)\n", argv[0], argv[1], jstr(out, "state"),
               (long long)json_integer_value(json_object_get(out, "files")),
               (long long)json_integer_value(json_object_get(out, "bytes")));
    return 0;
}

const struct cli_command cmd_merge = {
    .name = "merge",
    .alias = "merge_into",
    .summary = "commit a child's files into its parent",
    .args = "CHILD PARENT",
    .description = "PARENT takes CHILD's files (/tmp, /data, /home/user: PARENT ends up holding exactly\n"
                   "CHILD's), and CHILD is destroyed. Both must be of one fork family.",
    .min_args = 2,
    .max_args = 2,
    .needs_client = true,
    .run = merge_run,
};
