/* cli.h - the command table of `airlock`, the CLI of airlockd (docs/api.md).
 *
 * Every command is one `struct cli_command`: its name, a one-line summary,
 * its positional arguments, its options, whether it talks to airlockd and
 * either a run function or sub-verbs. main.c holds the table; options.c
 * parses argv against a command's options and generates its usage and
 * --help from them, so no command has a parser or a usage string of its own.
 *
 * Exit codes, the same for every command (README "CLI"):
 *   0 ok, 1 an API/connection/local error, 2 a usage error, 124 the code
 *   timed out, 130 interrupted (SIGINT/SIGTERM/SIGHUP); `run`, `exec` and
 *   `install-wheels` otherwise exit with the code's own exit code.
 */
#ifndef AIRLOCK_CLI_CLI_H
#define AIRLOCK_CLI_CLI_H

#include "client.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

enum {
    EXIT_OK = 0,
    EXIT_ERROR = 1,
    EXIT_USAGE = 2,
    EXIT_TIMEOUT = 124,
    EXIT_INTERRUPTED = 130,
};

enum cli_arg {
    ARG_NONE,   /* a flag */
    ARG_STRING, /* any text (one of `choices` when set) */
    ARG_INT,    /* an integer in [min, max] */
    ARG_NUMBER, /* a real in [min, max] */
    ARG_KV,     /* K=V, repeatable: collected into one JSON object */
};

struct cli_option {
    const char *name;    /* long name, without "--" */
    char short_name;     /* 0: none */
    enum cli_arg arg;
    const char *metavar; /* "S", "K=V": shown in the usage */
    const char *help;
    /* When set, the value also goes into ctx->body under this key (a flag as
     * true, ARG_KV as an object), so a command's request body is its table. */
    const char *body_key;
    bool repeat;         /* ARG_STRING: may be given many times (a list) */
    double min, max;     /* ARG_INT, ARG_NUMBER */
    const char *const *choices; /* ARG_STRING: NULL-terminated allowed values */
    const char *want;    /* "a positive number of seconds": the usage error says what it wants */
};

/* What the parser found for one option. */
struct cli_value {
    int count;          /* times given (0: absent) */
    const char *str;    /* ARG_STRING (the last one), ARG_INT/NUMBER as given */
    long l;             /* ARG_INT */
    double d;           /* ARG_NUMBER */
    const char **list;  /* ARG_STRING with repeat: all of them, in order */
};

struct cli_ctx;
typedef int (*cli_run_fn)(struct cli_ctx *ctx, int argc, char **argv);

struct cli_verb {
    const char *name;
    const char *alias;  /* NULL: none */
    const char *args;   /* "NAME": the verb's positional arguments */
    int min_args, max_args;
    cli_run_fn run;
};

struct cli_command {
    const char *name;
    const char *alias;          /* NULL: none */
    const char *summary;        /* one line, for `airlock help` */
    const char *args;           /* positional arguments, "ID LOCAL REMOTE" */
    const char *description;    /* a paragraph for `airlock help CMD` */
    const struct cli_option *options; /* {0}-terminated, NULL: none */
    int min_args, max_args;     /* positionals; max -1: any number */
    /* Options are parsed only before the positional argument number
     * stop_at (1-based): from there on argv is the command's (`exec ID CMD
     * ARGS...`). 0: options are accepted anywhere. */
    int stop_at;
    bool needs_client;
    bool runs_code;             /* exits with the code's own exit code */
    cli_run_fn run;             /* NULL when the command has verbs */
    const struct cli_verb *verbs; /* {0}-terminated */
};

struct cli_ctx {
    const struct cli_command *cmd;
    const char *url, *key;
    bool json;
    struct client client;       /* open when cmd->needs_client */
    json_t *body;               /* the values of options with a body_key */
    struct cli_value *values;   /* one per cmd->options entry */
};

/* Set by the SIGINT/SIGTERM/SIGHUP handler main.c installs; the client's
 * progress hook aborts the transfer in flight when it is set. Global because
 * a signal handler can reach nothing else. */
extern volatile sig_atomic_t g_interrupted;

/* ---- options.c ---------------------------------------------------------- */

/* Parse argv[1..] of cmd (argv[0] is its name) into ctx: the common options
 * (--json, --url, --key, -h/--help) and cmd's own. The positionals are moved
 * to the front of argv; *npos is their number. Returns 0, -1 when --help was
 * shown (exit 0), or EXIT_USAGE after printing the error. */
int cli_parse(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv, int *npos);
/* `airlock CMD --help`, generated from the command's table. */
void cli_print_help(const struct cli_command *cmd, FILE *f);
/* The same for a command of the table (main.c has the top-level help). */
void cli_print_command_help(const struct cli_command *cmd, FILE *f);
/* "airlock: <message>\nTry 'airlock CMD --help'." on stderr; EXIT_USAGE. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The parsed value of cmd's option `name` (must be in its table). */
const struct cli_value *cli_opt(const struct cli_ctx *ctx, const char *name);
void cli_ctx_free(struct cli_ctx *ctx);

/* ---- cli_util.c ------------------------------------------------------------- */

void print_raw(const char *raw);
const char *jstr(json_t *o, const char *k);
int jset(json_t *o, const char *k, json_t *v);
char *read_whole(const char *path, size_t *len);
/* client_json, printing the error: 0, or EXIT_ERROR. */
int call_json(struct cli_ctx *ctx, const char *method, const char *path, json_t *body, json_t **out, char **raw);
/* GET path: 1 when --json printed the raw answer, 0 with *out to show as
 * text, -1 after printing the error. */
int fetch_or_print(struct cli_ctx *ctx, const char *path, json_t **out);

/* ---- the commands ------------------------------------------------------- */

extern const struct cli_command cmd_create, cmd_ls, cmd_info, cmd_rm, cmd_logs, cmd_pause,
    cmd_resume; /* cmd_sandbox.c */
extern const struct cli_command cmd_egress;                                        /* cmd_egress.c */
extern const struct cli_command cmd_fork, cmd_diff, cmd_merge;                     /* cmd_family.c */
extern const struct cli_command cmd_run, cmd_exec, cmd_install_wheels;            /* cmd_run.c */
extern const struct cli_command cmd_upload, cmd_download;                         /* cmd_files.c */
extern const struct cli_command cmd_files;                                        /* cmd_fileops.c */
extern const struct cli_command cmd_keys;                                         /* cmd_keys.c */
extern const struct cli_command cmd_template;                                     /* cmd_templates.c */
extern const struct cli_command cmd_mcp;                                          /* cmd_mcp.c */

/* cmd_files.c: stream the local file into the sandbox; 0 or -1 after
 * printing the error. *out (if out) gets the API's answer. */
int do_upload(struct client *c, const char *id, const char *local, const char *remote, json_t **out);

/* run_stream.c: POST a code/exec request, streamed to our stdout/stderr (or
 * with --json the whole result printed). Returns this process's exit code. */
int run_request(struct cli_ctx *ctx, const char *path, json_t *body);

#endif
