/* main.c - `airlock`, the command-line client of airlockd (docs/api.md):
 * the command table, the dispatcher and the exit codes (cli.h).
 *
 *   airlock [--url URL] [--key KEY] [--json] COMMAND [ARGS...]
 *
 * The dispatcher finds the command, parses its options from its table
 * (options.c), checks the number of arguments, opens the client once for the
 * commands that talk to airlockd, installs the interrupt handler and runs the
 * command; an interrupted command exits 130, whatever it was doing.
 */
#include "cli.h"

#include "util.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

volatile sig_atomic_t g_interrupted;

static void on_signal(int sig)
{
    g_interrupted = sig;
}

static const struct cli_command *const commands[] = {
    &cmd_create, &cmd_ls,   &cmd_info,     &cmd_rm,     &cmd_run,      &cmd_exec,           &cmd_upload,
    &cmd_download, &cmd_files, &cmd_keys, &cmd_logs, &cmd_template, &cmd_install_wheels, &cmd_mcp,
    &cmd_egress,   &cmd_pause, &cmd_resume, &cmd_fork, &cmd_diff, &cmd_merge,
};

static const struct cli_option root_options[] = {
    {.name = "version", .help = "print the version"},
    {0},
};

/* The options before COMMAND: the common ones and --version. */
static const struct cli_command cli_root = {
    .name = "",
    .options = root_options,
    .stop_at = 1,
};

static void print_top_help(FILE *f)
{
    fputs("usage: airlock [--url URL] [--key KEY] [--json] COMMAND [ARGS...]\n"
          "\n"
          "Run untrusted code in sealed sandboxes on an airlockd.\n"
          "\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        fprintf(f, "  %-15s %s\n", commands[i]->name, commands[i]->summary);
    fputs("\n"
          "global options:\n"
          "  --url URL   airlockd address: http://HOST:PORT or unix:///PATH\n"
          "              (default $AIRLOCK_URL, else http://127.0.0.1:7070)\n"
          "  --key KEY   API key (default $AIRLOCK_API_KEY)\n"
          "  --json      print the API's JSON instead of text\n"
          "  -h, --help  show help; `airlock help COMMAND` or `airlock COMMAND --help`\n"
          "  --version   print the version\n"
          "\n"
          "exit codes (every command): 0 ok, 1 error, 2 usage, 124 timed out,\n"
          "130 interrupted; run, exec and install-wheels otherwise exit with the\n"
          "exit code of what ran.\n",
          f);
}

void cli_print_help(const struct cli_command *cmd, FILE *f)
{
    if (cmd == &cli_root)
        print_top_help(f);
    else
        cli_print_command_help(cmd, f);
}

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (strcmp(commands[i]->name, name) == 0 || (commands[i]->alias && strcmp(commands[i]->alias, name) == 0))
            return commands[i];
    return NULL;
}

static int check_nargs(const struct cli_command *cmd, const char *what, const char *args, int min, int max, int n,
                       char **argv)
{
    if (n < min)
        return cli_usage_error(cmd, "expected %s%s%s", what, *what && args && *args ? " " : "", args ? args : "");
    if (max >= 0 && n > max)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[max]);
    return 0;
}

/* The verb argv[0] of cmd, after checking its arguments; NULL after a usage error. */
static const struct cli_verb *find_verb(const struct cli_command *cmd, int argc, char **argv)
{
    const struct cli_verb *v;
    if (argc == 0) {
        char names[256] = "";
        for (v = cmd->verbs; v->name; v++)
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", names[0] ? (v[1].name ? ", " : " or ") : "",
                     v->name);
        cli_usage_error(cmd, "expected %s", names);
        return NULL;
    }
    for (v = cmd->verbs; v->name; v++)
        if (strcmp(v->name, argv[0]) == 0 || (v->alias && strcmp(v->alias, argv[0]) == 0))
            break;
    if (!v->name) {
        cli_usage_error(cmd, "unknown %s command '%s'", cmd->name, argv[0]);
        return NULL;
    }
    char what[64];
    snprintf(what, sizeof(what), "%s %s", cmd->name, v->name);
    return check_nargs(cmd, what, v->args, v->min_args, v->max_args, argc - 1, argv + 1) ? NULL : v;
}

/* Ctrl-C, SIGTERM and SIGHUP set g_interrupted; the client's progress hook
 * then aborts the transfer in flight. No SA_RESTART: a blocking call returns
 * so the flag is seen. */
static int install_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGHUP, &sa, NULL) < 0) {
        fprintf(stderr, "airlock: sigaction: %m\n");
        return -1;
    }
    return 0;
}

static int run_command(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_command *cmd = ctx->cmd;
    cli_run_fn run = cmd->run;
    if (cmd->verbs) {
        const struct cli_verb *v = find_verb(cmd, argc, argv);
        if (!v)
            return EXIT_USAGE;
        run = v->run;
        argc--, argv++;
    } else if (check_nargs(cmd, "", cmd->args, cmd->min_args, cmd->max_args, argc, argv)) {
        return EXIT_USAGE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "airlock: curl_global_init failed\n");
        return EXIT_ERROR;
    }
    int rc = EXIT_ERROR;
    if (install_signals() == 0 && cmd->needs_client && client_init(&ctx->client, ctx->url, ctx->key) < 0)
        client_print_error(&ctx->client);
    else if (!cmd->needs_client || ctx->client.curl) {
        ctx->client.abort_flag = &g_interrupted;
        rc = run(ctx, argc, argv);
    }
    client_cleanup(&ctx->client);
    curl_global_cleanup();
    return g_interrupted ? EXIT_INTERRUPTED : rc;
}

/* `airlock help [COMMAND]`. */
static int help(int argc, char **argv)
{
    if (argc < 2) {
        print_top_help(stdout);
        return 0;
    }
    const struct cli_command *cmd = find_command(argv[1]);
    if (!cmd)
        return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
    cli_print_help(cmd, stdout);
    return 0;
}

static int dispatch(struct cli_ctx *root, int argc, char **argv)
{
    if (cli_opt(root, "version")->count) {
        printf("airlock 0.1.0\n");
        return 0;
    }
    if (argc == 0) {
        print_top_help(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[0], "help") == 0)
        return help(argc, argv);
    const struct cli_command *cmd = find_command(argv[0]);
    if (!cmd)
        return cli_usage_error(NULL, "unknown command '%s'", argv[0]);
    struct cli_ctx ctx = {.url = root->url, .key = root->key, .json = root->json};
    int n;
    int rc = cli_parse(&ctx, cmd, argc, argv, &n);
    if (rc == 0)
        rc = run_command(&ctx, n, argv);
    cli_ctx_free(&ctx);
    return rc < 0 ? 0 : rc;
}

int main(int argc, char **argv)
{
    struct cli_ctx root = {0};
    int n;
    int rc = cli_parse(&root, &cli_root, argc, argv, &n);
    if (rc == 0)
        rc = dispatch(&root, n, argv);
    cli_ctx_free(&root);
    fflush(stdout);
    return rc < 0 ? 0 : rc;
}
