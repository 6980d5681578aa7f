/* cmd_mcp.c - `airlock mcp`: the MCP server (mcp.h, docs/mcp.md), its flags
 * and the stdio transport.
 *
 * stdio: one session for the life of the process. Messages are JSON-RPC,
 * one per line on stdin, answers one per line on stdout (jansson's compact
 * output escapes every newline inside a string, so a message is one line);
 * stdout carries nothing else, the log goes to stderr. The session ends, and
 * its sandbox is destroyed, when stdin closes (the client went away) or on
 * SIGINT/SIGTERM/SIGHUP.
 */
#include "cli.h"
#include "mcp.h"

#include "util.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const char *const transports[] = {"stdio", "http", NULL};

static const struct cli_option mcp_options[] = {
    {.name = "transport", .arg = ARG_STRING, .metavar = "T", .choices = transports, .want = "stdio or http",
     .help = "stdio (default: the client starts this process) or http (Streamable HTTP)"},
    {.name = "listen", .arg = ARG_STRING, .metavar = "HOST:PORT",
     .help = "http: where to listen (default 127.0.0.1:7071; port 0: any free port)"},
    {.name = "token", .arg = ARG_STRING, .metavar = "T",
     .help = "http: clients must send 'Authorization: Bearer T' (default $AIRLOCK_MCP_TOKEN)"},
    {.name = "api-key", .arg = ARG_STRING, .metavar = "KEY", .help = "airlockd API key (the same as --key)"},
    /* the shape of every session's sandbox: never the model's to choose */
    {.name = "template", .arg = ARG_STRING, .metavar = "T", .help = "template of the sandboxes (default: host)"},
    {.name = "memory-mb", .arg = ARG_INT, .metavar = "N", .min = 1, .max = INT_MAX, .want = "a positive integer",
     .help = "memory limit of each sandbox"},
    {.name = "cpus", .arg = ARG_NUMBER, .metavar = "N", .min = 0.01, .max = 1024, .want = "a positive number",
     .help = "CPU limit of each sandbox"},
    {.name = "env", .arg = ARG_KV, .metavar = "K=V", .body_key = "env", .want = "K=V",
     .help = "environment variable of the sandboxes"},
    {.name = "egress", .help = "ask for network egress (refused by airlockd: sandboxes are sealed)"},
    {.name = "sandbox-timeout", .arg = ARG_INT, .metavar = "S", .min = 1, .max = INT_MAX,
     .want = "a positive number of seconds",
     .help = "a sandbox's lifetime, renewed at every tool call (default 1800)"},
    {.name = "call-timeout", .arg = ARG_INT, .metavar = "S", .min = 1, .max = INT_MAX,
     .want = "a positive number of seconds", .help = "limit of one run_python/run_bash call (default 50)"},
    {.name = "max-file-mb", .arg = ARG_INT, .metavar = "N", .min = 1, .max = 1024, .want = "1 to 1024",
     .help = "largest file download_file returns (default 16)"},
    {0},
};

static int write_message(json_t *msg)
{
    cleanup_free char *text = json_dumps(msg, JSON_COMPACT);
    if (!text)
        return -1;
    if (fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        fprintf(stderr, "airlock mcp: cannot write to stdout: %m\n");
        return -1;
    }
    return 0;
}

static int serve_stdio(const struct mcp_config *cfg)
{
    struct mcp_session s;
    if (mcp_session_init(&s, cfg) < 0) {
        client_print_error(&s.client);
        client_cleanup(&s.client);
        return EXIT_ERROR;
    }
    fprintf(stderr, "airlock mcp: serving MCP on stdio\n");
    cleanup_free char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (!g_interrupted && (n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        json_auto_t *answer = mcp_handle_text(&s, line, (size_t)n);
        if (answer && write_message(answer) < 0) {
            rc = EXIT_ERROR;
            break;
        }
    }
    if (ferror(stdin) && !g_interrupted) {
        fprintf(stderr, "airlock mcp: reading stdin: %m\n");
        rc = EXIT_ERROR;
    }
    mcp_session_end(&s);
    return rc;
}

static int mcp_run(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argc, (void)argv;
    const char *transport = cli_opt(ctx, "transport")->str;
    bool http = transport && strcmp(transport, "http") == 0;
    if (!http && (cli_opt(ctx, "listen")->count || cli_opt(ctx, "token")->count))
        return cli_usage_error(ctx->cmd, "--listen and --token are for --transport http");
    struct mcp_config cfg = {
        .url = ctx->url,
        .key = cli_opt(ctx, "api-key")->str ? cli_opt(ctx, "api-key")->str : ctx->key,
        .template_name = cli_opt(ctx, "template")->str,
        .memory_mb = cli_opt(ctx, "memory-mb")->l,
        .cpus = cli_opt(ctx, "cpus")->d,
        .lifetime_s = cli_opt(ctx, "sandbox-timeout")->count ? cli_opt(ctx, "sandbox-timeout")->l : 1800,
        /* under the 60 s MCP clients commonly wait for an answer (the
         * TypeScript SDK's default): a timed-out call is then the tool's
         * error result, not the client giving up on the request */
        .call_timeout_s = cli_opt(ctx, "call-timeout")->count ? cli_opt(ctx, "call-timeout")->l : 50,
        .egress = cli_opt(ctx, "egress")->count > 0,
        .env = json_object_get(ctx->body, "env"),
        .max_file_bytes = (cli_opt(ctx, "max-file-mb")->count ? cli_opt(ctx, "max-file-mb")->l : 16) << 20,
    };
    if (cfg.call_timeout_s > cfg.lifetime_s)
        return cli_usage_error(ctx->cmd, "--call-timeout (%ld s) is longer than --sandbox-timeout (%ld s)",
                               cfg.call_timeout_s, cfg.lifetime_s);
    /* a client that goes away must not kill us before the sandbox is destroyed */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "airlock mcp: signal: %m\n");
        return EXIT_ERROR;
    }
    if (!http)
        return serve_stdio(&cfg);
    const char *listen = cli_opt(ctx, "listen")->str;
    const char *token = cli_opt(ctx, "token")->str;
    if (!token && getenv("AIRLOCK_MCP_TOKEN") && *getenv("AIRLOCK_MCP_TOKEN"))
        token = getenv("AIRLOCK_MCP_TOKEN");
    return mcp_http_serve(&cfg, listen ? listen : "127.0.0.1:7071", token);
}

const struct cli_command cmd_mcp = {
    .name = "mcp",
    .summary = "serve the sandbox to AI agents over MCP (stdio or HTTP)",
    .description =
        "Serve Airlock as a Model Context Protocol server: tools run_python (state kept),\n"
        "run_bash, upload_file, download_file and list_files on one sealed sandbox per MCP\n"
        "session, created at its first tool call and destroyed when the session ends (or,\n"
        "if this server dies, after --sandbox-timeout). The sandbox's template, limits and\n"
        "egress come from these flags only, never from the model.\n"
        "stdio (default): the MCP client starts `airlock mcp` and talks on stdin/stdout.\n"
        "http: Streamable HTTP at http://HOST:PORT/mcp, one session per Mcp-Session-Id;\n"
        "DELETE /mcp ends a session. See docs/mcp.md for client configuration.",
    .options = mcp_options,
    .run = mcp_run,
};
