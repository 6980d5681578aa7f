/* cmd_egress.c - `airlock egress ID [set RULE... | open | log]`: a sandbox's egress
 * allow-list and the log of its proxy (docs/egress.md). */
#include "cli.h"

#include "util.h"

#include <string.h>

static int egress_show(struct cli_ctx *ctx, const char *id)
{
    cleanup_free char *path = client_sandbox_path(&ctx->client, id, "/egress", NULL);
    json_auto_t *out = NULL;
    int r = fetch_or_print(ctx, path, &out);
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    if (json_is_true(json_object_get(out, "open"))) {
        printf("open\n");
        return 0;
    }
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(out, "allow"), i, rule) printf("%s\n", json_string_value(rule) ?: "");
    return 0;
}

/* `set RULE...` (an allow-list; none: nothing allowed), or `open` */
static int egress_set(struct cli_ctx *ctx, const char *id, int n, char **rules, bool open)
{
    cleanup_free char *path = client_sandbox_path(&ctx->client, id, "/egress", NULL);
    json_t *allow = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(allow, json_string(rules[i]));
    json_auto_t *body = NULL;
    if (open) {
        json_decref(allow);
        body = json_pack("{s:b}", "egress", 1);
    } else {
        body = json_pack("{s:o}", "allow", allow);
    }
    json_auto_t *out = NULL;
    cleanup_free char *raw = NULL;
    if (call_json(ctx, "PUT", path, body, &out, &raw))
        return EXIT_ERROR;
    if (ctx->json)
        print_raw(raw);
    else
        printf("%lld open connection(s) closed\n", (long long)json_integer_value(json_object_get(out, "closed")));
    return 0;
}

static int egress_log(struct cli_ctx *ctx, const char *id)
{
    cleanup_free char *path = client_sandbox_path(&ctx->client, id, "/egress/log", NULL);
    json_auto_t *out = NULL;
    int r = fetch_or_print(ctx, path, &out);
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(out, "entries"), i, e)
    {
        const char *addr = json_string_value(json_object_get(e, "address"));
        printf("%lld  %-8s %-7s %s:%lld -> %s  out %lld in %lld  %lld ms  %s\n",
               (long long)json_integer_value(json_object_get(e, "time_ms")), jstr(e, "verdict"), jstr(e, "method"),
               jstr(e, "host"), (long long)json_integer_value(json_object_get(e, "port")), addr ? addr : "-",
               (long long)json_integer_value(json_object_get(e, "bytes_out")),
               (long long)json_integer_value(json_object_get(e, "bytes_in")),
               (long long)json_integer_value(json_object_get(e, "duration_ms")), jstr(e, "reason"));
    }
    return 0;
}

static int egress_run(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc == 1)
        return egress_show(ctx, argv[0]);
    if (strcmp(argv[1], "set") == 0)
        return egress_set(ctx, argv[0], argc - 2, argv + 2, false);
    if (strcmp(argv[1], "open") == 0 && argc == 2)
        return egress_set(ctx, argv[0], 0, NULL, true);
    if (strcmp(argv[1], "log") == 0 && argc == 2)
        return egress_log(ctx, argv[0]);
    fprintf(stderr, "airlock egress: expected ID, ID set [RULE...], ID open or ID log\n");
    return EXIT_USAGE;
}

const struct cli_command cmd_egress = {
    .name = "egress",
    .summary = "show or change a sandbox's egress allow-list, or its log",
    .args = "ID [set RULE... | open | log]",
    .description = "Show a sandbox's egress policy (one rule a line, or `open`); `set` replaces it with an "
                   "allow-list at once (no rule: nothing allowed, no route; open connections it no longer allows "
                   "are closed); `open` switches to open egress; `log` shows every connection through its "
                   "egress proxy and every DNS query of open egress, allowed or denied (docs/egress.md).",
    .min_args = 1,
    .max_args = -1,
    .needs_client = true,
    .run = egress_run,
};
