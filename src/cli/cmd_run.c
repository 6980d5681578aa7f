/* cmd_run.c - running code: `run` (a script in a fresh sealed sandbox),
 * `exec` (a command in a sandbox) and `install-wheels` (pip, offline). */
#include "cli.h"

#include "util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- run --------------------------------------------------------------- */

static const char *const isolations[] = {"jail", "vm", NULL};
static const char *const languages[] = {"python", "bash", "r", "javascript", NULL};

static const struct cli_option run_options[] = {
    {.name = "sandbox", .arg = ARG_STRING, .metavar = "ID", .help = "run in an existing sandbox (left running)"},
    {.name = "upload", .arg = ARG_STRING, .metavar = "LOCAL:REMOTE", .repeat = true,
     .help = "copy a local file in first"},
    {.name = "timeout", .arg = ARG_INT, .metavar = "S", .body_key = "timeout_s", .min = 1, .max = INT_MAX,
     .want = "a positive number of seconds", .help = "stop the script after S seconds (exit 124)"},
    {.name = "language", .arg = ARG_STRING, .metavar = "L", .choices = languages, .want = "python, bash, r or javascript",
     .help = "python, bash, r or javascript (default: from the extension: .sh .R .js)"},
    {.name = "env", .arg = ARG_KV, .metavar = "K=V", .body_key = "env", .want = "K=V",
     .help = "environment variable of the script"},
    /* the fresh sandbox's shape: no body_key, they go into the create */
    {.name = "template", .arg = ARG_STRING, .metavar = "T", .help = "template of the fresh sandbox (default: host)"},
    {.name = "memory-mb", .arg = ARG_INT, .metavar = "N", .min = 1, .max = INT_MAX, .want = "a positive integer",
     .help = "memory limit of the fresh sandbox"},
    {.name = "isolation", .arg = ARG_STRING, .metavar = "B", .choices = isolations, .want = "jail or vm",
     .help = "backend of the fresh sandbox: jail or vm (default: the daemon's)"},
    {0},
};

/* Upload the --upload files, then run the code in sandbox id. */
static int run_in(struct cli_ctx *ctx, const char *id)
{
    const struct cli_value *up = cli_opt(ctx, "upload");
    for (int i = 0; i < up->count; i++) {
        cleanup_free char *spec = strdup(up->list[i]);
        if (!spec)
            return EXIT_ERROR;
        char *colon = strrchr(spec, ':');
        *colon = '\0';
        if (do_upload(&ctx->client, id, spec, colon + 1, NULL) < 0)
            return g_interrupted ? EXIT_INTERRUPTED : EXIT_ERROR;
    }
    cleanup_free char *path = client_sandbox_path(&ctx->client, id, "/code", NULL);
    if (!path)
        return EXIT_ERROR;
    return run_request(ctx, path, ctx->body);
}

/* A fresh sandbox for the script; NULL after printing the error. The create
 * itself is not aborted by Ctrl-C: one cut off mid-way could leave a sandbox
 * we never learnt the id of. */
static char *create_sandbox(struct cli_ctx *ctx)
{
    const char *tmpl = cli_opt(ctx, "template")->str;
    json_auto_t *body = json_pack("{s:s, s:b}", "template", tmpl ? tmpl : "host", "egress", 0);
    long t = cli_opt(ctx, "timeout")->l, mem = cli_opt(ctx, "memory-mb")->l;
    if (!body || (t > 0 && jset(body, "timeout_s", json_integer(t + 60 > 300 ? t + 60 : 300))) ||
        (mem > 0 && jset(body, "memory_mb", json_integer(mem))))
        return NULL;
    const char *iso = cli_opt(ctx, "isolation")->str;
    if (iso && jset(body, "isolation", json_string(iso)))
        return NULL;
    json_auto_t *sb = NULL;
    ctx->client.abort_flag = NULL;
    int r = call_json(ctx, "POST", "/v1/sandboxes", body, &sb, NULL);
    ctx->client.abort_flag = &g_interrupted;
    if (r)
        return NULL;
    const char *sid = json_string_value(json_object_get(sb, "id"));
    if (!sid)
        fprintf(stderr, "airlock: create answered without an id\n");
    return sid ? strdup(sid) : NULL;
}

/* Check the arguments and put the script into ctx->body. */
static int run_prepare(struct cli_ctx *ctx, const char *script)
{
    const struct cli_value *up = cli_opt(ctx, "upload");
    for (int i = 0; i < up->count; i++) {
        const char *colon = strrchr(up->list[i], ':');
        if (!colon || colon == up->list[i] || !colon[1])
            return cli_usage_error(ctx->cmd, "--upload wants LOCAL:REMOTE, not '%s'", up->list[i]);
    }
    const char *language = cli_opt(ctx, "language")->str;
    if (!language) {
        const char *dot = strrchr(script, '.');
        language = "python";
        if (dot && (strcmp(dot, ".sh") == 0 || strcmp(dot, ".bash") == 0))
            language = "bash";
        else if (dot && (strcmp(dot, ".R") == 0 || strcmp(dot, ".r") == 0))
            language = "r";
        else if (dot && (strcmp(dot, ".js") == 0 || strcmp(dot, ".mjs") == 0))
            language = "javascript";
    }
    size_t code_len;
    cleanup_free char *code = read_whole(script, &code_len);
    if (!code) {
        fprintf(stderr, "airlock: cannot read %s: %m\n", script);
        return EXIT_ERROR;
    }
    json_t *jcode = json_stringn(code, code_len);
    if (!jcode) {
        fprintf(stderr, "airlock: %s is not valid UTF-8 text\n", script);
        return EXIT_ERROR;
    }
    if (jset(ctx->body, "code", jcode) | jset(ctx->body, "language", json_string(language)))
        return EXIT_ERROR;
    /* a script runs until it ends or its sandbox does: no per-call limit
     * unless --timeout gives one */
    if (cli_opt(ctx, "timeout")->l <= 0 && jset(ctx->body, "timeout_s", json_integer(0)))
        return EXIT_ERROR;
    return 0;
}

static int run_run(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    int rc = run_prepare(ctx, argv[0]);
    if (rc)
        return rc;
    const char *sandbox = cli_opt(ctx, "sandbox")->str;
    if (sandbox && (cli_opt(ctx, "template")->count || cli_opt(ctx, "memory-mb")->count ||
                    cli_opt(ctx, "isolation")->count))
        return cli_usage_error(ctx->cmd,
                               "--template, --memory-mb and --isolation shape a fresh sandbox; not with --sandbox");
    if (sandbox)
        return run_in(ctx, sandbox);
    cleanup_free char *sid = create_sandbox(ctx);
    if (!sid)
        return EXIT_ERROR;
    rc = g_interrupted ? EXIT_INTERRUPTED : run_in(ctx, sid);

    /* always destroyed, also after Ctrl-C: so not abortable, but bounded */
    cleanup_free char *path = client_sandbox_path(&ctx->client, sid, "", NULL);
    ctx->client.abort_flag = NULL;
    ctx->client.timeout_s = 30;
    if (!path || client_json(&ctx->client, "DELETE", path, NULL, NULL, NULL) < 0) {
        fprintf(stderr, "airlock: could not destroy sandbox %s: %s (%s)\n", sid, ctx->client.err.message,
                ctx->client.err.code);
        return rc ? rc : EXIT_ERROR;
    }
    if (g_interrupted)
        fprintf(stderr, "airlock: interrupted; sandbox %s destroyed\n", sid);
    return rc;
}

const struct cli_command cmd_run = {
    .name = "run",
    .summary = "run a script in a fresh sealed sandbox (or --sandbox ID)",
    .args = "SCRIPT",
    .description = "Run SCRIPT (Python, or bash for *.sh; '-' = stdin) in a fresh sealed sandbox, print\n"
                   "its output and exit with its exit code. The sandbox is always destroyed, also on\n"
                   "Ctrl-C. With --sandbox, use that existing sandbox and leave it running.\n"
                   "Without --timeout the script runs until it ends or its sandbox's lifetime does.",
    .options = run_options,
    .min_args = 1,
    .max_args = 1,
    .needs_client = true,
    .runs_code = true,
    .run = run_run,
};

/* ---- exec -------------------------------------------------------------- */

static const struct cli_option exec_options[] = {
    {.name = "env", .arg = ARG_KV, .metavar = "K=V", .body_key = "env", .want = "K=V", .help = "environment variable"},
    {.name = "cwd", .arg = ARG_STRING, .metavar = "DIR", .body_key = "cwd", .help = "working directory in the sandbox"},
    {.name = "timeout", .arg = ARG_INT, .metavar = "S", .body_key = "timeout_s", .min = 1, .max = INT_MAX,
     .want = "a positive number of seconds", .help = "kill the command after S seconds (exit 124)"},
    {.name = "stdin", .help = "send this process's stdin to the command"},
    {.name = "shell", .arg = ARG_STRING, .metavar = "STR", .help = "run STR with the sandbox's shell instead of an argv"},
    {0},
};

/* POST a command to ID/exec; an interruption is said here. */
static int exec_in(struct cli_ctx *ctx, const char *id, json_t *body)
{
    cleanup_free char *path = client_sandbox_path(&ctx->client, id, "/exec", NULL);
    if (!path)
        return EXIT_ERROR;
    int rc = run_request(ctx, path, body);
    if (g_interrupted)
        fprintf(stderr, "airlock: interrupted\n");
    return rc;
}

static int exec_stdin(struct cli_ctx *ctx)
{
    size_t n;
    cleanup_free char *in = read_whole("-", &n);
    if (!in) {
        fprintf(stderr, "airlock: cannot read stdin: %m\n");
        return EXIT_ERROR;
    }
    json_t *s = json_stringn(in, n);
    if (!s) {
        fprintf(stderr, "airlock: stdin is not valid UTF-8 text\n");
        return EXIT_ERROR;
    }
    return jset(ctx->body, "stdin", s) ? EXIT_ERROR : 0;
}

static int exec_run(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *shell = cli_opt(ctx, "shell")->str;
    if (shell && argc > 1)
        return cli_usage_error(ctx->cmd, "give either --shell STRING or CMD ARGS, not both");
    if (!shell && argc < 2)
        return cli_usage_error(ctx->cmd, "expected a command after the sandbox id (airlock exec ID CMD ...)");
    json_t *cmd = shell ? json_string(shell) : json_array();
    if (jset(ctx->body, "cmd", cmd))
        return cli_usage_error(ctx->cmd, "arguments must be valid UTF-8 text");
    for (int i = 1; !shell && i < argc; i++)
        if (json_array_append_new(cmd, json_string(argv[i])) != 0)
            return cli_usage_error(ctx->cmd, "argument %d is not valid UTF-8", i - 1);
    if (cli_opt(ctx, "stdin")->count && exec_stdin(ctx))
        return EXIT_ERROR;
    return exec_in(ctx, argv[0], ctx->body);
}

const struct cli_command cmd_exec = {
    .name = "exec",
    .summary = "run a command in a sandbox",
    .args = "ID [--] CMD [ARGS...] | ID --shell STR",
    .description = "Run a command in a sandbox, print its output, exit with its exit code.\n"
                   "Options are read up to CMD; everything from CMD on is the command's.",
    .options = exec_options,
    .min_args = 1,
    .max_args = -1,
    .stop_at = 2,
    .needs_client = true,
    .runs_code = true,
    .run = exec_run,
};

/* ---- install-wheels ---------------------------------------------------- */

static int wheels_run(struct cli_ctx *ctx, int argc, char **argv)
{
    /* --break-system-packages: Debian's PEP 668 marker guards the system's
     * Python; here that is the read-only template, and --user writes only
     * this sandbox's ~/.local (the same command as the SDK's install_wheels) */
    json_auto_t *cmd = json_pack("[s,s,s,s,s,s,s,s,s,s]", "python3", "-m", "pip", "install", "--no-index", "--user",
                                 "--no-cache-dir", "--disable-pip-version-check", "--no-warn-script-location",
                                 "--break-system-packages");
    for (int i = 1; cmd && i < argc; i++)
        if (json_array_append_new(cmd, json_string(argv[i])) != 0)
            return cli_usage_error(ctx->cmd, "wheel paths must be valid UTF-8");
    json_auto_t *body = json_pack("{s:O}", "cmd", cmd);
    if (!body)
        return EXIT_ERROR;
    return exec_in(ctx, argv[0], body);
}

const struct cli_command cmd_install_wheels = {
    .name = "install-wheels",
    .summary = "pip-install uploaded wheels in a sandbox, offline",
    .args = "ID WHEEL_PATH...",
    .description = "Install wheels already uploaded into the sandbox (airlock upload) with pip,\n"
                   "offline (--no-index): into the sandbox's writable ~/.local. A wheel whose\n"
                   "dependencies are not among the given ones fails with pip's own message.",
    .min_args = 2,
    .max_args = -1,
    .needs_client = true,
    .runs_code = true,
    .run = wheels_run,
};
