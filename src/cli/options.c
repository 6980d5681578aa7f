/* options.c - the one option parser and help generator of the CLI.
 *
 * A loop over argv against the command's table (cli.h) rather than
 * getopt_long: getopt cannot stop after the Nth positional argument, and
 * `exec ID CMD ARGS...` needs exactly that so the command's own options
 * (`ls -l`) stay the command's. Long options may be abbreviated to a unique
 * prefix and take their value as `--opt V` or `--opt=V`, as with getopt_long.
 */
#include "cli.h"

#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Options every command takes; the dispatcher also takes them before the command. */
static const struct cli_option common_options[] = {
    {.name = "json", .help = "print the API's JSON instead of text"},
    {.name = "url", .arg = ARG_STRING, .metavar = "URL", .help = "airlockd address (default $AIRLOCK_URL)"},
    {.name = "key", .arg = ARG_STRING, .metavar = "KEY", .help = "API key (default $AIRLOCK_API_KEY)"},
    {.name = "help", .short_name = 'h', .help = "show this help"},
    {0},
};

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("airlock: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'airlock %s%s--help'.\n", cmd ? cmd->name : "", cmd && cmd->name[0] ? " " : "");
    return EXIT_USAGE;
}

static size_t n_options(const struct cli_option *o)
{
    size_t n = 0;
    while (o && o[n].name)
        n++;
    return n;
}

const struct cli_value *cli_opt(const struct cli_ctx *ctx, const char *name)
{
    for (size_t i = 0; i < n_options(ctx->cmd->options); i++)
        if (strcmp(ctx->cmd->options[i].name, name) == 0)
            return &ctx->values[i];
    abort(); /* a command asked for an option its table does not have */
}

void cli_ctx_free(struct cli_ctx *ctx)
{
    for (size_t i = 0; ctx->values && i < n_options(ctx->cmd->options); i++)
        free(ctx->values[i].list);
    free(ctx->values);
    json_decref(ctx->body);
    client_cleanup(&ctx->client);
    ctx->values = NULL;
    ctx->body = NULL;
}

/* ---- parsing ------------------------------------------------------------ */

/* The option `arg` names ("--time", "time=5", or the short 'h'); NULL if none
 * or ambiguous (after printing why). *is_common says which table it is from. */
static const struct cli_option *find_option(const struct cli_command *cmd, const char *arg, size_t len, char short_name,
                                            bool *is_common)
{
    const struct cli_option *tables[2] = {cmd->options, common_options};
    const struct cli_option *hit = NULL;
    int prefix_hits = 0;
    for (int t = 0; t < 2; t++) {
        for (const struct cli_option *o = tables[t]; o && o->name; o++) {
            if (short_name ? o->short_name == short_name : strlen(o->name) == len && strncmp(o->name, arg, len) == 0) {
                *is_common = t == 1;
                return o;
            }
            if (!short_name && strncmp(o->name, arg, len) == 0) {
                hit = o;
                *is_common = t == 1;
                prefix_hits++;
            }
        }
    }
    if (prefix_hits == 1)
        return hit;
    if (short_name)
        cli_usage_error(cmd, "unknown option '-%c'", short_name);
    else
        cli_usage_error(cmd, "%s option '--%.*s'", prefix_hits ? "ambiguous" : "unknown", (int)len, arg);
    return NULL;
}

static int bad_value(const struct cli_command *cmd, const struct cli_option *o, const char *v)
{
    return cli_usage_error(cmd, "--%s wants %s, not '%s'", o->name, o->want ? o->want : o->metavar, v);
}

/* Add "K=V" to the object under o->body_key. */
static int add_kv(struct cli_ctx *ctx, const struct cli_option *o, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return -1;
    json_t *obj = json_object_get(ctx->body, o->body_key);
    if (!obj && jset(ctx->body, o->body_key, obj = json_object()))
        return -1;
    cleanup_free char *k = strndup(kv, (size_t)(eq - kv));
    json_t *v = json_string(eq + 1);
    return k && v && json_object_set_new(obj, k, v) == 0 ? 0 : -1;
}

static bool is_choice(const struct cli_option *o, const char *v)
{
    for (const char *const *c = o->choices; c && *c; c++)
        if (strcmp(*c, v) == 0)
            return true;
    return !o->choices;
}

/* Record the value v (NULL for a flag) of option o. */
static int take_value(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_option *o,
                      struct cli_value *val, const char *v)
{
    char *end;
    val->count++;
    val->str = v;
    json_t *j = NULL;
    switch (o->arg) {
    case ARG_NONE:
        j = json_true();
        break;
    case ARG_STRING:
        if (!is_choice(o, v))
            return bad_value(cmd, o, v);
        if (o->repeat) {
            const char **l = realloc(val->list, sizeof(*l) * (size_t)(val->count + 1));
            if (!l)
                return EXIT_ERROR;
            val->list = l;
            l[val->count - 1] = v;
            l[val->count] = NULL;
        }
        j = json_string(v);
        if (!j && o->body_key)
            return cli_usage_error(cmd, "arguments must be valid UTF-8 text");
        break;
    case ARG_INT:
        errno = 0;
        val->l = strtol(v, &end, 10);
        if (errno || end == v || *end || val->l < o->min || val->l > o->max)
            return bad_value(cmd, o, v);
        j = json_integer(val->l);
        break;
    case ARG_NUMBER:
        errno = 0;
        val->d = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(val->d) || val->d < o->min || val->d > o->max)
            return bad_value(cmd, o, v);
        j = json_real(val->d);
        break;
    case ARG_KV:
        if (o->body_key && add_kv(ctx, o, v) < 0)
            return bad_value(cmd, o, v);
        return 0;
    }
    if (!o->body_key) {
        json_decref(j);
        return 0;
    }
    return jset(ctx->body, o->body_key, j) ? EXIT_ERROR : 0;
}

static int take_common(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_option *o, const char *v)
{
    if (strcmp(o->name, "help") == 0) {
        cli_print_help(cmd, stdout);
        return -1;
    }
    if (strcmp(o->name, "json") == 0)
        ctx->json = true;
    else if (strcmp(o->name, "url") == 0)
        ctx->url = v;
    else
        ctx->key = v;
    return 0;
}

/* One option at argv[*i]; advances *i past its value. */
static int parse_option(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    bool is_long = a[1] == '-', is_common = false;
    const char *name = a + (is_long ? 2 : 1);
    const char *eq = is_long ? strchr(name, '=') : NULL;
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    if (!is_long && len != 1)
        return cli_usage_error(cmd, "unknown option '%s'", a);
    const struct cli_option *o = find_option(cmd, name, len, is_long ? 0 : name[0], &is_common);
    if (!o)
        return EXIT_USAGE;
    const char *v = NULL;
    if (o->arg == ARG_NONE && eq)
        return cli_usage_error(cmd, "option '--%s' takes no value", o->name);
    if (o->arg != ARG_NONE) {
        if (eq)
            v = eq + 1;
        else if (*i + 1 < argc)
            v = argv[++*i];
        else
            return cli_usage_error(cmd, "option '%s' wants %s", a, o->metavar);
    }
    if (is_common)
        return take_common(ctx, cmd, o, v);
    return take_value(ctx, cmd, o, &ctx->values[o - cmd->options], v);
}

int cli_parse(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv, int *npos)
{
    ctx->cmd = cmd;
    ctx->values = calloc(n_options(cmd->options) + 1, sizeof(*ctx->values));
    if (!ctx->body)
        ctx->body = json_object();
    if (!ctx->values || !ctx->body)
        return EXIT_ERROR;
    /* positionals are moved down to argv[n], n < i: nothing not yet read is overwritten */
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0 || (a[0] != '-' || !a[1])) {
            bool rest = strcmp(a, "--") == 0 || (cmd->stop_at > 0 && n + 1 >= cmd->stop_at);
            if (!rest) {
                argv[n++] = argv[i];
                continue;
            }
            /* the rest of argv is positional, as given */
            for (i += strcmp(a, "--") == 0; i < argc; i++)
                argv[n++] = argv[i];
            break;
        }
        int r = parse_option(ctx, cmd, argc, argv, &i);
        if (r)
            return r;
    }
    argv[n] = NULL;
    *npos = n;
    return 0;
}

/* ---- help ---------------------------------------------------------------- */

/* Append " [--name ARG]..." for every option to a usage line, wrapping
 * at 80 columns under the command's name. */
static void usage_line(FILE *f, const char *lead, const char *head, const struct cli_option *opts, const char *args)
{
    int col = fprintf(f, "%s%s", lead, head);
    int indent = col + 1;
    for (const struct cli_option *o = opts; o && o->name; o++) {
        char item[96];
        int n = snprintf(item, sizeof(item), "[--%s%s%s]%s", o->name, o->arg ? " " : "", o->arg ? o->metavar : "",
                         o->repeat || o->arg == ARG_KV ? "..." : "");
        if (col + 1 + n > 79) {
            col = fprintf(f, "\n%*s", indent - 1, "") - 1;
        }
        col += fprintf(f, " %s", item);
    }
    if (args && *args) {
        if (col + 1 + (int)strlen(args) > 79)
            fprintf(f, "\n%*s", indent - 1, "");
        fprintf(f, " %s", args);
    }
    fputc('\n', f);
}

static void option_lines(FILE *f, const struct cli_option *opts)
{
    for (const struct cli_option *o = opts; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof(left), "%s%c%s--%s%s%s", o->short_name ? "-" : "", o->short_name ? o->short_name : ' ',
                 o->short_name ? ", " : "", o->name, o->arg ? " " : "", o->arg ? o->metavar : "");
        fprintf(f, "  %-22s %s%s\n", left + (o->short_name ? 0 : 1), o->help,
                o->repeat || o->arg == ARG_KV ? " (repeatable)" : "");
    }
}

void cli_print_command_help(const struct cli_command *cmd, FILE *f)
{
    char head[64];
    snprintf(head, sizeof(head), "airlock %s", cmd->name);
    if (!cmd->verbs) {
        usage_line(f, "usage: ", head, cmd->options, cmd->args);
    } else {
        for (const struct cli_verb *v = cmd->verbs; v->name; v++) {
            char vhead[128];
            snprintf(vhead, sizeof(vhead), "%s %s%s%s", head, v->name, v->args ? " " : "", v->args ? v->args : "");
            usage_line(f, v == cmd->verbs ? "usage: " : "       ", vhead, NULL, NULL);
        }
    }
    fprintf(f, "\n%s\n", cmd->description ? cmd->description : cmd->summary);
    if (cmd->options) {
        fputs("\noptions:\n", f);
        option_lines(f, cmd->options);
    }
    fputs("\ncommon options (every command):\n", f);
    option_lines(f, common_options);
    fputs("\nexit codes: 0 ok, 1 error, 2 usage, 124 timed out, 130 interrupted", f);
    fputs(cmd->runs_code ? ",\nelse the exit code of what ran\n" : "\n", f);
}
