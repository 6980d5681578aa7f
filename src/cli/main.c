/* main.c - `airlock`, the command-line client of airlockd (docs/api.md).
 *
 *   airlock [--url URL] [--key KEY] [--json] COMMAND [ARGS...]
 *
 * Every command accepts --help and --json (print the API's raw JSON).
 * Exit codes: 0 success, 1 an API or connection error (printed as
 * "airlock: <message> (<code>)"), 2 a usage error; `run` and `exec` exit with
 * the code of what they ran.
 */
#include "client.h"

#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EXIT_API 1
#define EXIT_USAGE 2
#define MAX_SCRIPT (16u << 20)

struct globals {
    const char *url;
    const char *key;
    bool json;
};

/* Set by the SIGINT/SIGTERM handler of `run`; libcurl's progress hook reads
 * it to abort the transfer in flight. Global because signal handlers can
 * reach nothing else. */
static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig)
{
    g_interrupted = sig;
}

static void client_cleanupp(struct client *c) { client_cleanup(c); }
#define cleanup_client __attribute__((cleanup(client_cleanupp)))
static void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
#define cleanup_file __attribute__((cleanup(fclosep)))

/* ---- usage ------------------------------------------------------------- */

static const char *const main_usage =
    "usage: airlock [--url URL] [--key KEY] [--json] COMMAND [ARGS...]\n"
    "\n"
    "Run untrusted code in sealed sandboxes on an airlockd.\n"
    "\n"
    "commands:\n"
    "  create     create a sandbox and print its id\n"
    "  ls         list live sandboxes\n"
    "  info       show one sandbox\n"
    "  rm         destroy sandboxes\n"
    "  run        run a script in a fresh sealed sandbox (or --sandbox ID)\n"
    "  exec       run a command in a sandbox\n"
    "  upload     copy a local file into a sandbox\n"
    "  download   copy a file out of a sandbox\n"
    "  keys       manage API keys (admin)\n"
    "  logs       show a sandbox's audit trail\n"
    "  template   build, list, show and remove templates (build/rm: admin)\n"
    "  install-wheels  pip-install uploaded wheels in a sandbox, offline\n"
    "\n"
    "global options:\n"
    "  --url URL   airlockd address: http://HOST:PORT or unix:///PATH\n"
    "              (default $AIRLOCK_URL, else http://127.0.0.1:7070)\n"
    "  --key KEY   API key (default $AIRLOCK_API_KEY)\n"
    "  --json      print the API's JSON instead of text\n"
    "  -h, --help  show help; `airlock COMMAND --help` for a command\n"
    "  --version   print the version\n";

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("airlock: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'airlock %s--help'.\n", cmd ? cmd : "");
    return EXIT_USAGE;
}

/* Options every command takes. */
#define COMMON_LONGOPTS                                                                            \
    {"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, 'J'},                             \
        {"url", required_argument, NULL, 'U'}, {"key", required_argument, NULL, 'K'}

/* Handle a common option. 1 if handled, 0 if not, -1 to exit 0 (help shown). */
static int common_opt(int ch, struct globals *g, const char *usage)
{
    switch (ch) {
    case 'h':
        fputs(usage, stdout);
        return -1;
    case 'J':
        g->json = true;
        return 1;
    case 'U':
        g->url = optarg;
        return 1;
    case 'K':
        g->key = optarg;
        return 1;
    default:
        return 0;
    }
}

static int open_client(struct client *c, const struct globals *g)
{
    if (client_init(c, g->url, g->key) < 0) {
        client_print_error(c);
        return -1;
    }
    return 0;
}

/* Print the raw body of a --json answer, ending with a newline. */
static void print_raw(const char *raw)
{
    size_t n = strlen(raw);
    fputs(raw, stdout);
    if (n == 0 || raw[n - 1] != '\n')
        fputc('\n', stdout);
}

/* ---- argument parsing helpers ------------------------------------------ */

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Set o[k] = v, taking v's reference. 1 on failure (v NULL: not UTF-8, or OOM),
 * so callers can collect failures with `bad |= jset(...)`. */
static int jset(json_t *o, const char *k, json_t *v)
{
    return v && json_object_set_new(o, k, v) == 0 ? 0 : 1;
}

/* Add "K=V" to a JSON object. -1 when there is no '='. */
static int add_kv(json_t *obj, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return -1;
    cleanup_free char *k = strndup(kv, (size_t)(eq - kv));
    json_t *v = json_string(eq + 1);
    if (!k || !v || json_object_set_new(obj, k, v) < 0)
        return -1;
    return 0;
}

/* Read a whole (small) file; NUL-terminated. */
static char *read_whole(const char *path, size_t *len)
{
    cleanup_file FILE *f = strcmp(path, "-") == 0 ? NULL : fopen(path, "rb");
    FILE *in = strcmp(path, "-") == 0 ? stdin : f;
    if (!in)
        return NULL;
    size_t cap = 8192, n = 0;
    cleanup_free char *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= MAX_SCRIPT) {
                errno = EFBIG;
                return NULL;
            }
            char *p = realloc(buf, cap * 2);
            if (!p)
                return NULL;
            buf = p;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, in);
        n += r;
        if (r == 0) {
            if (ferror(in))
                return NULL;
            break;
        }
    }
    buf[n] = '\0';
    *len = n;
    return steal_ptr(&buf);
}

/* ---- create ------------------------------------------------------------ */

static const char *const create_usage =
    "usage: airlock create [--template T] [--timeout S] [--memory-mb N] [--cpus N]\n"
    "                      [--env K=V]... [--metadata K=V]... [--region R] [--egress] [--json]\n"
    "\n"
    "Create a sandbox and print its id.\n"
    "\n"
    "  --template T     root filesystem template (default: host)\n"
    "  --timeout S      lifetime in seconds; the sandbox is destroyed after it\n"
    "  --memory-mb N    memory limit\n"
    "  --cpus N         CPU limit (may be fractional)\n"
    "  --env K=V        environment of code run in the sandbox (repeatable)\n"
    "  --metadata K=V   free-form labels (repeatable)\n"
    "  --region R       region to pin the sandbox to\n"
    "  --egress         ask for network egress (refused: sandboxes are sealed)\n";

static int cmd_create(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONGOPTS,
        {"template", required_argument, NULL, 't'},
        {"timeout", required_argument, NULL, 'T'},
        {"memory-mb", required_argument, NULL, 'm'},
        {"cpus", required_argument, NULL, 'c'},
        {"env", required_argument, NULL, 'e'},
        {"metadata", required_argument, NULL, 'M'},
        {"region", required_argument, NULL, 'r'},
        {"egress", no_argument, NULL, 'E'},
        {0},
    };
    json_auto_t *body = json_object();
    json_auto_t *env = json_object();
    json_auto_t *meta = json_object();
    if (!body || !env || !meta)
        return EXIT_API;
    int ch, bad = 0;
    long l;
    double d;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int r = common_opt(ch, g, create_usage);
        if (r < 0)
            return 0;
        if (r > 0)
            continue;
        switch (ch) {
        case 't':
            bad |= jset(body, "template", json_string(optarg));
            break;
        case 'T':
            if (parse_long(optarg, 1, INT_MAX, &l) < 0)
                return usage_error("create ", "--timeout wants a positive number of seconds, not '%s'", optarg);
            bad |= jset(body, "timeout_s", json_integer(l));
            break;
        case 'm':
            if (parse_long(optarg, 1, INT_MAX, &l) < 0)
                return usage_error("create ", "--memory-mb wants a positive integer, not '%s'", optarg);
            bad |= jset(body, "memory_mb", json_integer(l));
            break;
        case 'c':
            if (parse_double(optarg, 0.01, 1024, &d) < 0)
                return usage_error("create ", "--cpus wants a positive number, not '%s'", optarg);
            bad |= jset(body, "cpus", json_real(d));
            break;
        case 'e':
            if (add_kv(env, optarg) < 0)
                return usage_error("create ", "--env wants K=V, not '%s'", optarg);
            break;
        case 'M':
            if (add_kv(meta, optarg) < 0)
                return usage_error("create ", "--metadata wants K=V, not '%s'", optarg);
            break;
        case 'r':
            bad |= jset(body, "region", json_string(optarg));
            break;
        case 'E':
            bad |= jset(body, "egress", json_true());
            break;
        default:
            return usage_error("create ", "bad option");
        }
    }
    if (optind != argc)
        return usage_error("create ", "unexpected argument '%s'", argv[optind]);
    if (json_object_size(env) > 0)
        bad |= jset(body, "env", json_incref(env));
    if (json_object_size(meta) > 0)
        bad |= jset(body, "metadata", json_incref(meta));
    if (bad)
        return usage_error("create ", "arguments must be valid UTF-8 text");

    cleanup_client struct client c = {0};
    if (open_client(&c, g) < 0)
        return EXIT_API;
    json_auto_t *out = NULL;
    cleanup_free char *raw = NULL;
    if (client_json(&c, "POST", "/v1/sandboxes", body, &out, &raw) < 0) {
        client_print_error(&c);
        return EXIT_API;
    }
    if (g->json)
        print_raw(raw);
    else
        printf("%s\n", json_string_value(json_object_get(out, "id")) ?: "");
    return 0;
}

/* ---- ls / info / rm ---------------------------------------------------- */

static const char *const ls_usage = "usage: airlock ls [--json]\n\nList live sandboxes.\n";

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

/* Parse a command that takes only the common options; returns -1 to exit 0,
 * a positive exit code on a usage error, 0 to go on. */
static int parse_common_only(struct globals *g, int argc, char **argv, const char *cmd, const char *usage)
{
    static const struct option opts[] = {COMMON_LONGOPTS, {0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int r = common_opt(ch, g, usage);
        if (r < 0)
            return -1;
        if (r == 0)
            return usage_error(cmd, "bad option");
    }
    return 0;
}

/* GET path. With --json the raw answer is printed and 1 returned; else 0
 * and *out is the parsed answer to show as text; -1 after printing the error. */
static int fetch(struct client *c, const struct globals *g, const char *path, json_t **out)
{
    cleanup_free char *raw = NULL;
    if (!path || client_json(c, "GET", path, NULL, out, &raw) < 0) {
        client_print_error(c);
        return -1;
    }
    if (g->json) {
        print_raw(raw);
        return 1;
    }
    return 0;
}

/* `airlock CMD ID`: GET /v1/sandboxes/ID<suffix>. Returns 0 with *out to show
 * as text, or 1 when the command is done and must exit with *rc. */
static int fetch_sandbox_resource(struct globals *g, int argc, char **argv, const char *cmd, const char *usage,
                                  const char *suffix, json_t **out, int *rc)
{
    int r = parse_common_only(g, argc, argv, cmd, usage);
    if (r) {
        *rc = r < 0 ? 0 : r;
        return 1;
    }
    if (argc - optind != 1) {
        *rc = usage_error(cmd, "expected one sandbox id");
        return 1;
    }
    cleanup_client struct client c = {0};
    if (open_client(&c, g) < 0) {
        *rc = EXIT_API;
        return 1;
    }
    cleanup_free char *path = client_sandbox_path(&c, argv[optind], suffix, NULL);
    r = fetch(&c, g, path, out);
    *rc = r < 0 ? EXIT_API : 0;
    return r != 0;
}

static int cmd_ls(struct globals *g, int argc, char **argv)
{
    int r = parse_common_only(g, argc, argv, "ls ", ls_usage);
    if (r)
        return r < 0 ? 0 : r;
    if (optind != argc)
        return usage_error("ls ", "unexpected argument '%s'", argv[optind]);
    cleanup_client struct client c = {0};
    if (open_client(&c, g) < 0)
        return EXIT_API;
    json_auto_t *out = NULL;
    r = fetch(&c, g, "/v1/sandboxes", &out);
    if (r != 0)
        return r < 0 ? EXIT_API : 0;
    json_t *list = json_object_get(out, "sandboxes");
    printf("%-35s %-9s %-10s %-8s %s\n", "ID", "STATE", "TEMPLATE", "REGION", "EXPIRES");
    size_t i;
    json_t *sb;
    json_array_foreach(list, i, sb)
    {
        printf("%-35s %-9s %-10s %-8s %s\n", jstr(sb, "id"), jstr(sb, "state"), jstr(sb, "template"),
               jstr(sb, "region"), jstr(sb, "expires_at"));
    }
    return 0;
}

static const char *const info_usage = "usage: airlock info ID [--json]\n\nShow one sandbox (live or destroyed).\n";

static int cmd_info(struct globals *g, int argc, char **argv)
{
    json_auto_t *out = NULL;
    int rc;
    if (fetch_sandbox_resource(g, argc, argv, "info ", info_usage, "", &out, &rc))
        return rc;
    cleanup_free char *pretty = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!pretty)
        return EXIT_API;
    printf("%s\n", pretty);
    return 0;
}

static const char *const rm_usage = "usage: airlock rm ID... [--json]\n\nDestroy sandboxes.\n";

static int cmd_rm(struct globals *g, int argc, char **argv)
{
    int r = parse_common_only(g, argc, argv, "rm ", rm_usage);
    if (r)
        return r < 0 ? 0 : r;
    if (optind == argc)
        return usage_error("rm ", "expected at least one sandbox id");
    cleanup_client struct client c = {0};
    if (open_client(&c, g) < 0)
        return EXIT_API;
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        cleanup_free char *path = client_sandbox_path(&c, argv[i], "", NULL);
        cleanup_free char *raw = NULL;
        if (!path || client_json(&c, "DELETE", path, NULL, NULL, &raw) < 0) {
            client_print_error(&c);
            rc = EXIT_API;
            continue;
        }
        if (g->json)
            print_raw(raw);
        else
            printf("%s\n", argv[i]);
    }
    return rc;
}

/* ---- streaming code / exec --------------------------------------------- */

#define STDERR_TAIL 65536

struct run_state {
    /* The last bytes written to stderr: the runner also prints a traceback
     * there, and it should not be shown twice. */
    char err_tail[STDERR_TAIL];
    size_t err_tail_len;
    int exit_code;
    bool have_exit;
    bool timed_out;
    json_t *error;          /* the user code's error object, if any */
    char stream_code[64];   /* a request-level error sent inside the stream */
    char stream_msg[1024];
};

static void write_data(FILE *f, json_t *ev)
{
    json_t *d = json_object_get(ev, "data");
    if (!json_is_string(d))
        return;
    (void)!fwrite(json_string_value(d), 1, json_string_length(d), f);
    fflush(f);
}

static void remember_stderr(struct run_state *st, json_t *ev)
{
    json_t *d = json_object_get(ev, "data");
    if (!json_is_string(d))
        return;
    const char *p = json_string_value(d);
    size_t n = json_string_length(d);
    if (n >= STDERR_TAIL - 1) {
        p += n - (STDERR_TAIL - 1);
        n = STDERR_TAIL - 1;
    }
    if (st->err_tail_len + n >= STDERR_TAIL) {
        size_t drop = st->err_tail_len + n - (STDERR_TAIL - 1);
        memmove(st->err_tail, st->err_tail + drop, st->err_tail_len - drop);
        st->err_tail_len -= drop;
    }
    memcpy(st->err_tail + st->err_tail_len, p, n);
    st->err_tail_len += n;
    st->err_tail[st->err_tail_len] = '\0';
}

static int on_event(json_t *ev, void *ud)
{
    struct run_state *st = ud;
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type)
        return 0;
    if (strcmp(type, "stdout") == 0) {
        write_data(stdout, ev);
    } else if (strcmp(type, "stderr") == 0) {
        write_data(stderr, ev);
        remember_stderr(st, ev);
    } else if (strcmp(type, "result") == 0) {
        json_t *e = json_object_get(ev, "error");
        if (json_is_object(e)) {
            json_decref(st->error);
            st->error = json_incref(e);
        }
        st->timed_out = json_is_true(json_object_get(ev, "timed_out"));
        json_t *x = json_object_get(ev, "exit_code");
        if (json_is_integer(x)) {
            st->exit_code = (int)json_integer_value(x);
            st->have_exit = true;
        }
    } else if (strcmp(type, "exit") == 0) {
        json_t *x = json_object_get(ev, "exit_code");
        if (json_is_integer(x)) {
            st->exit_code = (int)json_integer_value(x);
            st->have_exit = true;
        }
    } else if (strcmp(type, "error") == 0) {
        json_t *e = json_object_get(ev, "error");
        snprintf(st->stream_code, sizeof(st->stream_code), "%s", jstr(e, "code"));
        snprintf(st->stream_msg, sizeof(st->stream_msg), "%s", jstr(e, "message"));
    }
    return 0;
}

/* Map what ran to this process's exit code. */
static int exit_code_of(const struct run_state *st)
{
    int x = st->have_exit ? st->exit_code : 1;
    if (st->error && x == 0)
        x = 1;
    if (x < 0)
        x = 128 - x <= 255 ? 128 - x : 255;
    if (x > 255)
        x = 255;
    return x;
}

/* Show the user code's error on stderr: its traceback, unless the program's
 * own stderr already showed it, and "Name: value" unless either names it
 * (a timeout's traceback shows the interrupted frame, not "TimeoutError"). */
static void print_code_error(json_t *error, const char *already_shown)
{
    if (!error)
        return;
    const char *tb = json_string_value(json_object_get(error, "traceback"));
    const char *name = jstr(error, "name");
    const char *value = json_string_value(json_object_get(error, "value"));
    bool tb_shown = tb && *tb && strstr(already_shown, tb);
    if (tb && *tb && !tb_shown) {
        fputs(tb, stderr);
        if (tb[strlen(tb) - 1] != '\n')
            fputc('\n', stderr);
    }
    if ((tb && strstr(tb, name)) || strstr(already_shown, name))
        return;
    fprintf(stderr, "%s%s%s\n", name, value && *value ? ": " : "", value && *value ? value : "");
}

/* POST a code/exec request: streamed to our stdout/stderr, or with --json the
 * whole result printed. Returns this process's exit code. */
static int run_request(struct client *c, const struct globals *g, const char *path, json_t *body)
{
    struct run_state st = {0};
    int rc;
    if (g->json) {
        json_auto_t *out = NULL;
        cleanup_free char *raw = NULL;
        if (client_json(c, "POST", path, body, &out, &raw) < 0) {
            client_print_error(c);
            return EXIT_API;
        }
        print_raw(raw);
        json_t *x = json_object_get(out, "exit_code");
        st.have_exit = json_is_integer(x);
        st.exit_code = (int)json_integer_value(x);
        st.error = json_is_object(json_object_get(out, "error")) ? json_incref(json_object_get(out, "error")) : NULL;
        rc = exit_code_of(&st);
        json_decref(st.error);
        return rc;
    }
    if (client_stream(c, path, body, on_event, &st) < 0) {
        json_decref(st.error);
        if (!g_interrupted) /* `run` reports the interruption itself */
            client_print_error(c);
        return EXIT_API;
    }
    if (st.stream_code[0]) {
        json_decref(st.error);
        fprintf(stderr, "airlock: %s (%s)\n", st.stream_msg, st.stream_code);
        return EXIT_API;
    }
    print_code_error(st.error, st.err_tail);
    rc = exit_code_of(&st);
    json_decref(st.error);
    return rc;
}

/* ---- exec -------------------------------------------------------------- */

static const char *const exec_usage =
    "usage: airlock exec ID [--env K=V]... [--cwd DIR] [--timeout S] [--stdin] -- CMD [ARGS...]\n"
    "       airlock exec ID [options] --shell 'COMMAND STRING'\n"
    "\n"
    "Run a command in a sandbox, print its output, exit with its exit code.\n"
    "\n"
    "  --env K=V     environment variable (repeatable)\n"
    "  --cwd DIR     working directory in the sandbox\n"
    "  --timeout S   kill the command after S seconds\n"
    "  --stdin       send this process's stdin to the command\n"
    "  --shell STR   run STR with the sandbox's shell instead of an argv\n";

static int cmd_exec(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONGOPTS,
        {"env", required_argument, NULL, 'e'},
        {"cwd", required_argument, NULL, 'C'},
        {"timeout", required_argument, NULL, 'T'},
        {"stdin", no_argument, NULL, 'I'},
        {"shell", required_argument, NULL, 'S'},
        {0},
    };
    json_auto_t *body = json_object();
    json_auto_t *env = json_object();
    if (!body || !env)
        return EXIT_API;
    const char *shell = NULL;
    bool send_stdin = false;
    int ch, bad = 0;
    long l;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int r = common_opt(ch, g, exec_usage);
        if (r < 0)
            return 0;
        if (r > 0)
            continue;
        switch (ch) {
        case 'e':
            if (add_kv(env, optarg) < 0)
                return usage_error("exec ", "--env wants K=V, not '%s'", optarg);
            break;
        case 'C':
            bad |= jset(body, "cwd", json_string(optarg));
            break;
        case 'T':
            if (parse_long(optarg, 1, INT_MAX, &l) < 0)
                return usage_error("exec ", "--timeout wants a positive number of seconds, not '%s'", optarg);
            bad |= jset(body, "timeout_s", json_integer(l));
            break;
        case 'I':
            send_stdin = true;
            break;
        case 'S':
            shell = optarg;
            break;
        default:
            return usage_error("exec ", "bad option");
        }
    }
    if (optind >= argc)
        return usage_error("exec ", "expected a sandbox id");
    const char *id = argv[optind++];
    if (shell) {
        if (optind != argc)
            return usage_error("exec ", "give either --shell STRING or -- CMD ARGS, not both");
        bad |= jset(body, "cmd", json_string(shell));
    } else {
        if (optind >= argc)
            return usage_error("exec ", "expected a command after the sandbox id (airlock exec ID -- CMD ...)");
        json_t *cmd = json_array();
        if (!cmd)
            return EXIT_API;
        bad |= jset(body, "cmd", cmd);
        for (int i = optind; i < argc; i++) {
            json_t *a = json_string(argv[i]);
            if (!a)
                return usage_error("exec ", "argument %d is not valid UTF-8", i - optind);
            bad |= json_array_append_new(cmd, a) != 0;
        }
    }
    if (json_object_size(env) > 0)
        bad |= jset(body, "env", json_incref(env));
    if (send_stdin) {
        size_t n;
        cleanup_free char *in = read_whole("-", &n);
        if (!in) {
            fprintf(stderr, "airlock: cannot read stdin: %m\n");
            return EXIT_API;
        }
        json_t *s = json_stringn(in, n);
        if (!s) {
            fprintf(stderr, "airlock: stdin is not valid UTF-8 text\n");
            return EXIT_API;
        }
        bad |= jset(body, "stdin", s);
    }
    if (bad)
        return usage_error("exec ", "arguments must be valid UTF-8 text");
    cleanup_client struct client c = {0};
    if (open_client(&c, g) < 0)
        return EXIT_API;
    cleanup_free char *path = client_sandbox_path(&c, id, "/exec", NULL);
    if (!path)
        return EXIT_API;
    return run_request(&c, g, path, body);
}

/* ---- upload / download ------------------------------------------------- */

/* Stream the local file into the sandbox. 0, or -1 after printing the error.
 * *out (if out) gets the API's answer. */
static int do_upload(struct client *c, const char *id, const char *local, const char *remote, json_t **out)
{
    cleanup_file FILE *f = fopen(local, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) < 0) {
        fprintf(stderr, "airlock: cannot open %s: %m\n", local);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "airlock: %s is not a regular file\n", local);
        return -1;
    }
    cleanup_free char *path = client_sandbox_path(c, id, "/files", remote);
    if (!path || client_upload(c, path, f, (curl_off_t)st.st_size, out) < 0) {
        client_print_error(c);
        return -1;
    }
    return 0;
}

static const char *const upload_usage =
    "usage: airlock upload ID LOCAL REMOTE [--json]\n\nCopy the local file LOCAL to REMOTE in the sandbox (streamed).\n";

static int cmd_upload(struct globals *g, int argc, char **argv)
{
    int r = parse_common_only(g, argc, argv, "upload ", upload_usage);
    if (r)
        return r < 0 ? 0 : r;
    if (argc - optind != 3)
        return usage_error("upload ", "expected ID LOCAL REMOTE");
    cleanup_client struct client c = {0};
    if (open_client(&c, g) < 0)
        return EXIT_API;
    json_auto_t *out = NULL;
    if (do_upload(&c, argv[optind], argv[optind + 1], argv[optind + 2], &out) < 0)
        return EXIT_API;
    cleanup_free char *raw = g->json && out ? json_dumps(out, JSON_COMPACT) : NULL;
    if (raw)
        print_raw(raw);
    else if (!g->json)
        printf("%s -> %s\n", argv[optind + 1], argv[optind + 2]);
    return 0;
}

static const char *const download_usage =
    "usage: airlock download ID REMOTE [LOCAL|-]\n\n"
    "Copy REMOTE out of the sandbox to LOCAL (default: its base name; '-' = stdout).\n";

static int cmd_download(struct globals *g, int argc, char **argv)
{
    int r = parse_common_only(g, argc, argv, "download ", download_usage);
    if (r)
        return r < 0 ? 0 : r;
    if (argc - optind < 2 || argc - optind > 3)
        return usage_error("download ", "expected ID REMOTE [LOCAL|-]");
    const char *id = argv[optind], *remote = argv[optind + 1];
    cleanup_free char *rcopy = strdup(remote);
    if (!rcopy)
        return EXIT_API;
    const char *local = argc - optind == 3 ? argv[optind + 2] : basename(rcopy);
    if (!*local || strcmp(local, "/") == 0 || strcmp(local, "..") == 0 || strcmp(local, ".") == 0)
        return usage_error("download ", "cannot derive a local name from '%s'; give LOCAL", remote);

    cleanup_client struct client c = {0};
    if (open_client(&c, g) < 0)
        return EXIT_API;
    cleanup_free char *path = client_sandbox_path(&c, id, "/files", remote);
    if (!path)
        return EXIT_API;
    if (strcmp(local, "-") == 0) {
        if (client_download(&c, path, stdout) < 0) {
            client_print_error(&c);
            return EXIT_API;
        }
        return 0;
    }
    /* Download next to the destination and rename on success, so a failed
     * download never leaves a truncated LOCAL behind. */
    cleanup_free char *tmp = NULL;
    if (asprintf(&tmp, "%s.airlock-XXXXXX", local) < 0) {
        tmp = NULL;
        return EXIT_API;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "airlock: cannot create %s: %m\n", tmp);
        return EXIT_API;
    }
    cleanup_file FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return EXIT_API;
    }
    int dr = client_download(&c, path, f);
    int cr = fclose(f);
    f = NULL;
    if (dr < 0 || cr != 0 || rename(tmp, local) < 0) {
        if (dr < 0)
            client_print_error(&c);
        else
            fprintf(stderr, "airlock: cannot write %s: %m\n", local);
        unlink(tmp);
        return EXIT_API;
    }
    if (g->json)
        printf("{\"path\":\"%s\",\"local\":\"%s\"}\n", remote, local);
    return 0;
}

/* ---- run --------------------------------------------------------------- */

static const char *const run_usage =
    "usage: airlock run [--sandbox ID] [--upload LOCAL:REMOTE]... [--timeout S]\n"
    "                   [--language python|bash] [--json] SCRIPT\n"
    "\n"
    "Run SCRIPT (Python, or bash for *.sh) in a fresh sealed sandbox, print its\n"
    "output and exit with its exit code. The sandbox is always destroyed, also on\n"
    "Ctrl-C. With --sandbox, use that existing sandbox and leave it running.\n"
    "\n"
    "  --sandbox ID            run in an existing sandbox\n"
    "  --upload LOCAL:REMOTE   copy a local file in first (repeatable)\n"
    "  --timeout S             stop the script after S seconds\n"
    "  --language L            python or bash (default: from the extension)\n";

struct run_opts {
    const char *sandbox;
    const char *language;
    const char *script;
    long timeout;
    char **uploads;
    int n_uploads;
};

static int run_in(struct client *c, const struct globals *g, const char *id, const struct run_opts *o,
                  const char *code, size_t code_len)
{
    for (int i = 0; i < o->n_uploads; i++) {
        cleanup_free char *spec = strdup(o->uploads[i]);
        if (!spec)
            return EXIT_API;
        char *colon = strrchr(spec, ':');
        *colon = '\0';
        if (do_upload(c, id, spec, colon + 1, NULL) < 0)
            return g_interrupted ? 130 : EXIT_API;
    }
    json_auto_t *body = json_object();
    json_t *jcode = json_stringn(code, code_len);
    if (!body || !jcode) {
        json_decref(jcode);
        fprintf(stderr, "airlock: %s is not valid UTF-8 text\n", o->script);
        return EXIT_API;
    }
    int bad = jset(body, "code", jcode);
    bad |= jset(body, "language", json_string(o->language));
    if (o->timeout > 0)
        bad |= jset(body, "timeout_s", json_integer(o->timeout));
    if (bad)
        return EXIT_API;
    cleanup_free char *path = client_sandbox_path(c, id, "/code", NULL);
    if (!path)
        return EXIT_API;
    int rc = run_request(c, g, path, body);
    return g_interrupted ? 130 : rc;
}

static int cmd_run(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONGOPTS,
        {"sandbox", required_argument, NULL, 's'},
        {"upload", required_argument, NULL, 'u'},
        {"timeout", required_argument, NULL, 'T'},
        {"language", required_argument, NULL, 'l'},
        {0},
    };
    struct run_opts o = {0};
    cleanup_free char **uploads = calloc((size_t)argc + 1, sizeof(char *));
    if (!uploads)
        return EXIT_API;
    o.uploads = uploads;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int r = common_opt(ch, g, run_usage);
        if (r < 0)
            return 0;
        if (r > 0)
            continue;
        switch (ch) {
        case 's':
            o.sandbox = optarg;
            break;
        case 'u': {
            const char *colon = strrchr(optarg, ':');
            if (!colon || colon == optarg || !colon[1])
                return usage_error("run ", "--upload wants LOCAL:REMOTE, not '%s'", optarg);
            o.uploads[o.n_uploads++] = optarg;
            break;
        }
        case 'T':
            if (parse_long(optarg, 1, INT_MAX, &o.timeout) < 0)
                return usage_error("run ", "--timeout wants a positive number of seconds, not '%s'", optarg);
            break;
        case 'l':
            if (strcmp(optarg, "python") != 0 && strcmp(optarg, "bash") != 0)
                return usage_error("run ", "--language is python or bash, not '%s'", optarg);
            o.language = optarg;
            break;
        default:
            return usage_error("run ", "bad option");
        }
    }
    if (argc - optind != 1)
        return usage_error("run ", "expected one SCRIPT");
    o.script = argv[optind];
    if (!o.language) {
        const char *dot = strrchr(o.script, '.');
        o.language = dot && (strcmp(dot, ".sh") == 0 || strcmp(dot, ".bash") == 0) ? "bash" : "python";
    }
    size_t code_len;
    cleanup_free char *code = read_whole(o.script, &code_len);
    if (!code) {
        fprintf(stderr, "airlock: cannot read %s: %m\n", o.script);
        return EXIT_API;
    }

    cleanup_client struct client c = {0};
    if (open_client(&c, g) < 0)
        return EXIT_API;
    if (o.sandbox)
        return run_in(&c, g, o.sandbox, &o, code, code_len);

    /* Ctrl-C (or SIGTERM/SIGHUP) aborts the upload or run in flight; then the
     * sandbox is destroyed before we exit. No SA_RESTART: a blocking call
     * returns so the flag is seen. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGHUP, &sa, NULL) < 0) {
        fprintf(stderr, "airlock: sigaction: %m\n");
        return EXIT_API;
    }

    /* The create itself is not aborted: a create cut off mid-way could leave
     * a sandbox we never learnt the id of. */
    json_auto_t *body = json_pack("{s:s, s:b}", "template", "host", "egress", 0);
    if (!body)
        return EXIT_API;
    if (o.timeout > 0 && jset(body, "timeout_s", json_integer(o.timeout + 60 > 300 ? o.timeout + 60 : 300)))
        return EXIT_API;
    json_auto_t *sb = NULL;
    if (client_json(&c, "POST", "/v1/sandboxes", body, &sb, NULL) < 0) {
        client_print_error(&c);
        return EXIT_API;
    }
    const char *sid = json_string_value(json_object_get(sb, "id"));
    if (!sid) {
        fprintf(stderr, "airlock: create answered without an id\n");
        return EXIT_API;
    }
    int rc = 130;
    if (!g_interrupted) {
        c.abort_flag = &g_interrupted;
        rc = run_in(&c, g, sid, &o, code, code_len);
        c.abort_flag = NULL;
    }

    cleanup_free char *path = client_sandbox_path(&c, sid, "", NULL);
    c.timeout_s = 30;
    if (!path || client_json(&c, "DELETE", path, NULL, NULL, NULL) < 0) {
        fprintf(stderr, "airlock: could not destroy sandbox %s: %s (%s)\n", sid, c.err.message, c.err.code);
        return rc ? rc : EXIT_API;
    }
    if (g_interrupted)
        fprintf(stderr, "airlock: interrupted; sandbox %s destroyed\n", sid);
    return rc;
}

/* ---- keys -------------------------------------------------------------- */

static const char *const keys_usage =
    "usage: airlock keys create NAME [--admin]\n"
    "       airlock keys ls\n"
    "       airlock keys revoke ID\n"
    "\n"
    "Manage API keys (needs an admin key). A new key is shown once.\n";

static int cmd_keys(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {COMMON_LONGOPTS, {"admin", no_argument, NULL, 'A'}, {0}};
    bool admin = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int r = common_opt(ch, g, keys_usage);
        if (r < 0)
            return 0;
        if (r > 0)
            continue;
        if (ch == 'A')
            admin = true;
        else
            return usage_error("keys ", "bad option");
    }
    if (optind >= argc)
        return usage_error("keys ", "expected create, ls or revoke");
    const char *sub = argv[optind++];
    int nargs = argc - optind;
    cleanup_client struct client c = {0};
    json_auto_t *out = NULL;
    cleanup_free char *raw = NULL;
    cleanup_free char *path = NULL;
    int r;

    if (strcmp(sub, "create") == 0) {
        if (nargs != 1)
            return usage_error("keys ", "expected keys create NAME");
        json_auto_t *body = json_pack("{s:s, s:b}", "name", argv[optind], "admin", admin);
        if (!body)
            return usage_error("keys ", "NAME must be UTF-8 text");
        if (open_client(&c, g) < 0)
            return EXIT_API;
        r = client_json(&c, "POST", "/v1/keys", body, &out, &raw);
    } else if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0) {
        if (nargs != 0)
            return usage_error("keys ", "keys ls takes no arguments");
        if (open_client(&c, g) < 0)
            return EXIT_API;
        r = client_json(&c, "GET", "/v1/keys", NULL, &out, &raw);
    } else if (strcmp(sub, "revoke") == 0 || strcmp(sub, "rm") == 0) {
        if (nargs != 1)
            return usage_error("keys ", "expected keys revoke ID");
        if (open_client(&c, g) < 0)
            return EXIT_API;
        if (!(path = client_name_path(&c, "/v1/keys/", argv[optind])))
            return EXIT_API;
        r = client_json(&c, "DELETE", path, NULL, &out, &raw);
    } else {
        return usage_error("keys ", "unknown keys command '%s'", sub);
    }
    if (r < 0) {
        client_print_error(&c);
        return EXIT_API;
    }
    if (g->json) {
        print_raw(raw);
        return 0;
    }
    if (strcmp(sub, "create") == 0) {
        printf("id:    %s\nkey:   %s\nadmin: %s\n(the key is shown only once)\n", jstr(out, "id"), jstr(out, "key"),
               json_is_true(json_object_get(out, "admin")) ? "yes" : "no");
    } else if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0) {
        printf("%-24s %-20s %-6s %-8s %s\n", "ID", "NAME", "ADMIN", "REVOKED", "CREATED");
        size_t i;
        json_t *k;
        json_array_foreach(json_object_get(out, "keys"), i, k)
        {
            printf("%-24s %-20s %-6s %-8s %s\n", jstr(k, "id"), jstr(k, "name"),
                   json_is_true(json_object_get(k, "admin")) ? "yes" : "no",
                   json_is_true(json_object_get(k, "revoked")) ? "yes" : "no", jstr(k, "created_at"));
        }
    } else {
        printf("revoked %s\n", argv[optind]);
    }
    return 0;
}

/* ---- logs -------------------------------------------------------------- */

static const char *const logs_usage = "usage: airlock logs ID [--json]\n\nShow a sandbox's audit trail (kept after destroy).\n";

static int cmd_logs(struct globals *g, int argc, char **argv)
{
    json_auto_t *out = NULL;
    int rc;
    if (fetch_sandbox_resource(g, argc, argv, "logs ", logs_usage, "/logs", &out, &rc))
        return rc;
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(out, "events"), i, ev)
    {
        json_t *d = json_object_get(ev, "detail");
        cleanup_free char *detail = json_is_string(d) ? strdup(json_string_value(d))
                                                       : (d && !json_is_null(d) ? json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY) : NULL);
        printf("%s  %-12s %-24s %s\n", jstr(ev, "ts"), jstr(ev, "action"), jstr(ev, "key_id"), detail ? detail : "");
    }
    return 0;
}

/* ---- template ---------------------------------------------------------- */

static const char *const template_usage =
    "usage: airlock template build SPEC.json [--no-cache] [--no-follow]\n"
    "       airlock template ls\n"
    "       airlock template show NAME\n"
    "       airlock template rm NAME\n"
    "\n"
    "Build and manage templates: root filesystems built from Debian packages\n"
    "(docs/templates.md). build and rm need an admin key.\n"
    "\n"
    "  --no-cache    rebuild even if the daemon's build cache has this spec\n"
    "  --no-follow   print the build id and return at once instead of\n"
    "                following its progress to the end\n";

/* Print a build's progress until it ends. 0 if it succeeded. */
static int follow_build(struct client *c, const struct globals *g, const char *id)
{
    unsigned since = 0;
    for (;;) {
        cleanup_free char *path = NULL;
        if (asprintf(&path, "/v1/builds/%s?since=%u", id, since) < 0) {
            path = NULL;
            return EXIT_API;
        }
        json_auto_t *out = NULL;
        if (client_json(c, "GET", path, NULL, &out, NULL) < 0) {
            client_print_error(c);
            return EXIT_API;
        }
        size_t i;
        json_t *line;
        json_array_foreach(json_object_get(out, "progress"), i, line)
            if (!g->json)
                printf("  %s\n", json_string_value(line));
        fflush(stdout);
        since = (unsigned)json_integer_value(json_object_get(out, "next"));
        const char *state = jstr(out, "state");
        if (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0) {
            if (g->json) {
                cleanup_free char *text = json_dumps(out, JSON_COMPACT);
                puts(text ? text : "{}");
            } else if (strcmp(state, "succeeded") == 0) {
                json_t *secs = json_object_get(out, "seconds");
                printf("template %s built: %s (%.1f s%s)\n", jstr(out, "template"), jstr(out, "tree_hash"),
                       json_number_value(secs), json_is_true(json_object_get(out, "cache_hit")) ? ", from the cache" : "");
            }
            if (strcmp(state, "failed") == 0) {
                fprintf(stderr, "airlock: build %s failed: %s\n", id, jstr(out, "error"));
                return EXIT_API;
            }
            return 0;
        }
        if (g_interrupted) {
            fprintf(stderr, "airlock: stopped following build %s (it goes on; airlock template ls shows the result)\n",
                    id);
            return EXIT_API;
        }
        usleep(500 * 1000);
    }
}

static int cmd_template(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONGOPTS, {"no-cache", no_argument, NULL, 'N'}, {"no-follow", no_argument, NULL, 'F'}, {0}};
    bool no_cache = false, no_follow = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int r = common_opt(ch, g, template_usage);
        if (r < 0)
            return 0;
        if (r > 0)
            continue;
        if (ch == 'N')
            no_cache = true;
        else if (ch == 'F')
            no_follow = true;
        else
            return usage_error("template ", "bad option");
    }
    if (optind >= argc)
        return usage_error("template ", "expected build, ls, show or rm");
    const char *sub = argv[optind++];
    int nargs = argc - optind;
    cleanup_client struct client c = {0};
    json_auto_t *out = NULL;
    cleanup_free char *raw = NULL;
    cleanup_free char *path = NULL;
    int r;

    if (strcmp(sub, "build") == 0) {
        if (nargs != 1)
            return usage_error("template ", "expected template build SPEC.json");
        json_error_t jerr;
        json_auto_t *spec = json_load_file(argv[optind], 0, &jerr);
        if (!spec) {
            fprintf(stderr, "airlock: %s:%d: %s\n", argv[optind], jerr.line, jerr.text);
            return EXIT_USAGE;
        }
        if (open_client(&c, g) < 0)
            return EXIT_API;
        r = client_json(&c, "POST", no_cache ? "/v1/templates?cache=false" : "/v1/templates", spec, &out, &raw);
        if (r < 0) {
            client_print_error(&c);
            return EXIT_API;
        }
        if (no_follow) {
            if (g->json)
                print_raw(raw);
            else
                printf("%s\n", jstr(out, "id"));
            return 0;
        }
        if (!g->json)
            printf("build %s of template %s (spec %s)\n", jstr(out, "id"), jstr(out, "template"), jstr(out, "spec_hash"));
        signal(SIGINT, on_signal);
        return follow_build(&c, g, jstr(out, "id"));
    }
    if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0) {
        if (nargs != 0)
            return usage_error("template ", "template ls takes no arguments");
        if (open_client(&c, g) < 0)
            return EXIT_API;
        r = client_json(&c, "GET", "/v1/templates", NULL, &out, &raw);
    } else if (strcmp(sub, "show") == 0 || strcmp(sub, "rm") == 0) {
        if (nargs != 1)
            return usage_error("template ", "expected template %s NAME", sub);
        if (open_client(&c, g) < 0)
            return EXIT_API;
        if (!(path = client_name_path(&c, "/v1/templates/", argv[optind])))
            return EXIT_API;
        r = client_json(&c, strcmp(sub, "rm") == 0 ? "DELETE" : "GET", path, NULL, &out, &raw);
    } else {
        return usage_error("template ", "unknown template command '%s'", sub);
    }
    if (r < 0) {
        client_print_error(&c);
        return EXIT_API;
    }
    if (g->json) {
        print_raw(raw);
        return 0;
    }
    size_t i;
    json_t *t;
    if (strcmp(sub, "rm") == 0) {
        printf("removed %s\n", argv[optind]);
    } else if (strcmp(sub, "show") == 0) {
        printf("name:        %s\ndescription: %s\n", jstr(out, "name"), jstr(out, "description"));
        if (json_object_get(out, "tree_hash")) {
            printf("suite:       %s (%s)\ntree hash:   %s\nspec hash:   %s\nbuilt at:    %s (%.1f s)\n"
                   "size:        %lld bytes in %lld files; erofs image %lld bytes\nwarm-up:     %s\npackages:\n",
                   jstr(out, "suite"), jstr(out, "mirror"), jstr(out, "tree_hash"), jstr(out, "spec_hash"),
                   jstr(out, "built_at"), json_number_value(json_object_get(out, "build_seconds")),
                   (long long)json_integer_value(json_object_get(out, "size_bytes")),
                   (long long)json_integer_value(json_object_get(out, "files")),
                   (long long)json_integer_value(json_object_get(json_object_get(out, "image"), "bytes")),
                   jstr(out, "warmup"));
            json_array_foreach(json_object_get(out, "packages"), i, t)
                printf("  %-40s %s\n", jstr(t, "name"), jstr(t, "version"));
        }
    } else {
        printf("%-16s %-10s %-10s %-9s %-21s %s\n", "NAME", "SUITE", "SIZE_MB", "PACKAGES", "BUILT", "TREE_HASH");
        json_array_foreach(json_object_get(out, "templates"), i, t)
            printf("%-16s %-10s %-10.1f %-9lld %-21s %.23s\n", jstr(t, "name"), jstr(t, "suite"),
                   (double)json_integer_value(json_object_get(t, "size_bytes")) / 1e6,
                   (long long)json_integer_value(json_object_get(t, "packages")), jstr(t, "built_at"),
                   jstr(t, "tree_hash"));
    }
    return 0;
}

/* ---- install-wheels ---------------------------------------------------- */

static const char *const wheels_usage =
    "usage: airlock install-wheels ID WHEEL_PATH...\n"
    "\n"
    "Install wheels already uploaded into the sandbox (airlock upload) with pip,\n"
    "offline (--no-index): into the sandbox's writable ~/.local. A wheel whose\n"
    "dependencies are not among the given ones fails with pip's own message.\n";

static int cmd_install_wheels(struct globals *g, int argc, char **argv)
{
    int pr = parse_common_only(g, argc, argv, "install-wheels ", wheels_usage);
    if (pr != 0)
        return pr < 0 ? 0 : pr;
    if (argc - optind < 2)
        return usage_error("install-wheels ", "expected a sandbox id and at least one wheel path");
    const char *id = argv[optind++];
    /* --break-system-packages: Debian's PEP 668 marker guards the system's
     * Python; here that is the read-only template, and --user writes only
     * this sandbox's ~/.local (the same command as the SDK's install_wheels) */
    json_auto_t *cmd = json_pack("[s,s,s,s,s,s,s,s,s,s]", "python3", "-m", "pip", "install", "--no-index", "--user",
                                 "--no-cache-dir", "--disable-pip-version-check", "--no-warn-script-location",
                                 "--break-system-packages");
    for (int i = optind; cmd && i < argc; i++)
        if (json_array_append_new(cmd, json_string(argv[i])) != 0)
            return usage_error("install-wheels ", "wheel paths must be valid UTF-8");
    json_auto_t *body = json_pack("{s:O}", "cmd", cmd);
    cleanup_client struct client c = {0};
    if (!body || open_client(&c, g) < 0)
        return EXIT_API;
    cleanup_free char *path = client_sandbox_path(&c, id, "/exec", NULL);
    if (!path)
        return EXIT_API;
    return run_request(&c, g, path, body);
}

/* ---- main -------------------------------------------------------------- */

struct command {
    const char *name;
    int (*fn)(struct globals *g, int argc, char **argv);
};

static const struct command commands[] = {
    {"create", cmd_create}, {"ls", cmd_ls},         {"list", cmd_ls},         {"info", cmd_info},
    {"rm", cmd_rm},         {"run", cmd_run},       {"exec", cmd_exec},       {"upload", cmd_upload},
    {"download", cmd_download}, {"keys", cmd_keys}, {"logs", cmd_logs}, {"template", cmd_template},
    {"install-wheels", cmd_install_wheels},
};

int main(int argc, char **argv)
{
    static const struct option opts[] = {COMMON_LONGOPTS, {"version", no_argument, NULL, 'V'}, {0}};
    struct globals g = {0};
    int ch;
    /* '+': stop at the command name; the command parses the rest. */
    while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        int r = common_opt(ch, &g, main_usage);
        if (r < 0)
            return 0;
        if (r > 0)
            continue;
        if (ch == 'V') {
            printf("airlock 0.1.0\n");
            return 0;
        }
        return usage_error(NULL, "bad option");
    }
    if (optind >= argc) {
        fputs(main_usage, stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (strcmp(name, "help") == 0) {
        fputs(main_usage, stdout);
        return 0;
    }
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        if (strcmp(name, commands[i].name) != 0)
            continue;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "airlock: curl_global_init failed\n");
            return EXIT_API;
        }
        int sub_argc = argc - optind;
        char **sub_argv = argv + optind;
        optind = 0; /* glibc: full re-initialisation of getopt for the command */
        int rc = commands[i].fn(&g, sub_argc, sub_argv);
        curl_global_cleanup();
        fflush(stdout);
        return rc;
    }
    return usage_error(NULL, "unknown command '%s'", name);
}
