/* run_stream.c - one code/exec request: its NDJSON events written to our
 * stdout/stderr as they arrive (or with --json the whole result printed), and
 * its outcome turned into this process's exit code (cli.h). */
#include "cli.h"

#include "util.h"

#include <string.h>

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

/* The outcome fields of a "result" event or a --json answer. */
static void take_result(struct run_state *st, json_t *res)
{
    json_t *e = json_object_get(res, "error");
    if (json_is_object(e)) {
        json_decref(st->error);
        st->error = json_incref(e);
    }
    st->timed_out = json_is_true(json_object_get(res, "timed_out"));
    json_t *x = json_object_get(res, "exit_code");
    if (json_is_integer(x)) {
        st->exit_code = (int)json_integer_value(x);
        st->have_exit = true;
    }
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
        take_result(st, ev);
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

/* Map what ran to this process's exit code: a timeout is 124 whatever the
 * code's own status was (Python reports 1 with a TimeoutError, exec 124). */
static int exit_code_of(const struct run_state *st)
{
    if (st->timed_out)
        return EXIT_TIMEOUT;
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

static int run_json(struct cli_ctx *ctx, const char *path, json_t *body)
{
    json_auto_t *out = NULL;
    cleanup_free char *raw = NULL;
    if (call_json(ctx, "POST", path, body, &out, &raw))
        return g_interrupted ? EXIT_INTERRUPTED : EXIT_ERROR;
    print_raw(raw);
    struct run_state st = {0};
    take_result(&st, out);
    int rc = exit_code_of(&st);
    json_decref(st.error);
    return rc;
}

int run_request(struct cli_ctx *ctx, const char *path, json_t *body)
{
    if (ctx->json)
        return run_json(ctx, path, body);
    struct run_state st = {0};
    int rc;
    if (client_stream(&ctx->client, path, body, on_event, &st) < 0) {
        /* an interruption is said by the caller, which knows what it stopped */
        if (!g_interrupted)
            client_print_error(&ctx->client);
        rc = g_interrupted ? EXIT_INTERRUPTED : EXIT_ERROR;
    } else if (st.stream_code[0]) {
        fprintf(stderr, "airlock: %s (%s)\n", st.stream_msg, st.stream_code);
        rc = EXIT_ERROR;
    } else {
        print_code_error(st.error, st.err_tail);
        rc = exit_code_of(&st);
    }
    json_decref(st.error);
    return rc;
}
