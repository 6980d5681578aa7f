/* cmd_fileops.c - `airlock files ls|stat|mkdir|mv|rm|watch`: the files
 * API's directory operations (docs/api.md, files/list, info, mkdir,
 * rename, DELETE files and watch). Transfers are cmd_files.c's (upload, download). */
#include "cli.h"

#include "util.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

static const char *const LIST_DEPTH_WANT = "a depth from 1 to 64";

static const struct cli_option files_options[] = {
    {.name = "depth", .arg = ARG_INT, .metavar = "N", .help = "files ls: list N levels (default 1)", .min = 1,
     .max = 64, .want = LIST_DEPTH_WANT},
    {.name = "overwrite", .short_name = 'f', .help = "files mv: replace an existing destination"},
    {.name = "recursive", .short_name = 'r', .help = "files watch: the directories below too"},
    {0},
};

/* /v1/sandboxes/ID/files<suffix>?path=P[&name=value]: escaped; NULL on failure. */
static char *files_path(struct cli_ctx *ctx, const char *id, const char *suffix, const char *path, const char *name,
                        const char *value)
{
    cleanup_free char *base = client_sandbox_path(&ctx->client, id, suffix, path);
    if (!base || !name)
        return steal_ptr(&base);
    char *ev = curl_easy_escape(ctx->client.curl, value, 0);
    char *p = NULL;
    if (!ev || asprintf(&p, "%s&%s=%s", base, name, ev) < 0)
        p = NULL;
    curl_free(ev);
    return p;
}

/* One call: 0 with *out (text to show), 1 when --json printed the answer,
 * -1 after printing the error. */
static int files_call(struct cli_ctx *ctx, const char *method, const char *path, json_t **out)
{
    cleanup_free char *raw = NULL;
    if (call_json(ctx, method, path, NULL, out, &raw))
        return -1;
    if (ctx->json) {
        print_raw(raw);
        return 1;
    }
    return 0;
}

static long long jint(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* One `ls -l`-style line: permissions, owner, group, size, time, name (the
 * path when listing deeper than one level), '/' after a directory and the
 * target after a symlink. */
static void print_entry(json_t *e, bool full_path)
{
    const char *type = jstr(e, "type"), *target = json_string_value(json_object_get(e, "symlink_target"));
    printf("%s %-8s %-8s %10lld %s %s%s%s%s\n", jstr(e, "permissions"), jstr(e, "owner"), jstr(e, "group"),
           jint(e, "size"), jstr(e, "modified_at"), full_path ? jstr(e, "path") : jstr(e, "name"),
           strcmp(type, "dir") == 0 ? "/" : "", target ? " -> " : "", target ? target : "");
}

static int files_ls(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_value *depth = cli_opt(ctx, "depth");
    char d[16];
    snprintf(d, sizeof(d), "%ld", depth->count ? depth->l : 1L);
    cleanup_free char *path = files_path(ctx, argv[0], "/files/list", argc > 1 ? argv[1] : "/home/user",
                                         depth->count ? "depth" : NULL, d);
    json_auto_t *out = NULL;
    int r = path ? files_call(ctx, "GET", path, &out) : -1;
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(out, "entries"), i, e)
        print_entry(e, depth->count && depth->l > 1);
    if (json_is_true(json_object_get(out, "truncated")))
        fprintf(stderr, "airlock: the listing was cut at the API's reply limit\n");
    return 0;
}

static int files_stat(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    cleanup_free char *path = files_path(ctx, argv[0], "/files/info", argv[1], NULL, NULL);
    json_auto_t *out = NULL;
    int r = path ? files_call(ctx, "GET", path, &out) : -1;
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    printf("path: %s\ntype: %s\nsize: %lld\nmode: %s (%s)\nowner: %s (%lld)\ngroup: %s (%lld)\nmodified: %s\n",
           jstr(out, "path"), jstr(out, "type"), jint(out, "size"), jstr(out, "mode_octal"), jstr(out, "permissions"),
           jstr(out, "owner"), jint(out, "uid"), jstr(out, "group"), jint(out, "gid"), jstr(out, "modified_at"));
    if (json_is_string(json_object_get(out, "symlink_target")))
        printf("target: %s\n", jstr(out, "symlink_target"));
    return 0;
}

/* mkdir and rm take many paths: each is tried, the exit code is 1 if any failed. */
static int files_mkdir(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        cleanup_free char *path = files_path(ctx, argv[0], "/files/mkdir", argv[i], NULL, NULL);
        json_auto_t *out = NULL;
        int r = path ? files_call(ctx, "POST", path, &out) : -1;
        if (r < 0)
            rc = EXIT_ERROR;
        else if (r == 0)
            printf(json_is_true(json_object_get(out, "created")) ? "created %s\n" : "%s exists\n", jstr(out, "path"));
    }
    return rc;
}

static int files_rm(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        cleanup_free char *path = files_path(ctx, argv[0], "/files", argv[i], NULL, NULL);
        json_auto_t *out = NULL;
        int r = path ? files_call(ctx, "DELETE", path, &out) : -1;
        if (r < 0)
            rc = EXIT_ERROR;
        else if (r == 0)
            printf(json_is_true(json_object_get(out, "deleted")) ? "removed %s\n" : "%s: nothing there\n",
                   jstr(out, "path"));
    }
    return rc;
}

static int files_mv(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    cleanup_free char *p = files_path(ctx, argv[0], "/files/rename", argv[1], "to", argv[2]);
    cleanup_free char *path = NULL;
    if (p && cli_opt(ctx, "overwrite")->count && asprintf(&path, "%s&overwrite=true", p) < 0)
        path = NULL;
    else if (p && !path)
        path = steal_ptr(&p);
    json_auto_t *out = NULL;
    int r = path ? files_call(ctx, "POST", path, &out) : -1;
    if (r != 0)
        return r < 0 ? EXIT_ERROR : 0;
    printf("%s -> %s\n", argv[1], jstr(out, "path"));
    return 0;
}

/* One event line: "create /data/x" (a '/' after a directory), or with
 * --json the line as the API sent it. Ends the stream after end/error. */
struct watch_out {
    struct cli_ctx *ctx;
    bool failed; /* the stream's last line was an error */
};

static int watch_event(json_t *ev, void *ud)
{
    struct watch_out *wo = ud;
    struct cli_ctx *ctx = wo->ctx;
    const char *type = jstr(ev, "type");
    if (ctx->json) {
        cleanup_free char *line = json_dumps(ev, JSON_COMPACT);
        if (line)
            print_raw(line);
    } else if (strcmp(type, "ready") == 0) {
        fprintf(stderr, "watching %s%s (Ctrl-C to stop)\n", jstr(ev, "path"),
                json_is_true(json_object_get(ev, "recursive")) ? " and below" : "");
    } else if (strcmp(type, "end") == 0) {
        fprintf(stderr, "airlock: %s\n", jstr(ev, "reason"));
    } else if (strcmp(type, "error") == 0) {
        json_t *e = json_object_get(ev, "error");
        fprintf(stderr, "airlock: %s (%s)\n", jstr(e, "message"), jstr(e, "code"));
    } else {
        printf("%-7s %s%s\n", type, json_is_string(json_object_get(ev, "path")) ? jstr(ev, "path") : "",
               json_is_true(json_object_get(ev, "is_dir")) ? "/" : "");
    }
    fflush(stdout);
    if (strcmp(type, "error") == 0)
        wo->failed = true;
    return 0;
}

static int files_watch(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    cleanup_free char *path = files_path(ctx, argv[0], "/files/watch", argv[1],
                                         cli_opt(ctx, "recursive")->count ? "recursive" : NULL, "true");
    struct watch_out wo = {.ctx = ctx};
    if (!path || client_stream(&ctx->client, path, NULL, watch_event, &wo) < 0) {
        if (!g_interrupted)
            client_print_error(&ctx->client);
        return EXIT_ERROR;
    }
    return wo.failed ? EXIT_ERROR : 0;
}

static const struct cli_verb files_verbs[] = {
    {.name = "ls", .alias = "list", .args = "ID [PATH] [--depth N]", .min_args = 1, .max_args = 2, .run = files_ls},
    {.name = "stat", .alias = "info", .args = "ID PATH", .min_args = 2, .max_args = 2, .run = files_stat},
    {.name = "mkdir", .args = "ID PATH...", .min_args = 2, .max_args = -1, .run = files_mkdir},
    {.name = "mv", .alias = "rename", .args = "ID FROM TO [--overwrite]", .min_args = 3, .max_args = 3,
     .run = files_mv},
    {.name = "rm", .args = "ID PATH...", .min_args = 2, .max_args = -1, .run = files_rm},
    {.name = "watch", .args = "ID PATH [--recursive]", .min_args = 2, .max_args = 2, .run = files_watch},
    {0},
};

const struct cli_command cmd_files = {
    .name = "files",
    .summary = "list, inspect, create, move and remove files in a sandbox",
    .description = "Files in the sandbox ID (paths absolute, or relative to /home/user). ls lists a directory\n"
                   "(default /home/user; --depth N descends N levels, printing full paths); stat describes a\n"
                   "path without following a symlink; mkdir creates directories with their parents (an\n"
                   "existing one is not an error); mv moves within /tmp, /data or /home/user (an existing\n"
                   "destination is an error unless --overwrite); rm removes files and directories with\n"
                   "their contents (a missing path is not an error); watch prints a directory's changes\n"
                   "(create, write, remove, rename, chmod) as they happen, until Ctrl-C or the directory goes.\n"
                   "Copy files in and out with upload and download.",
    .options = files_options,
    .needs_client = true,
    .verbs = files_verbs,
};
