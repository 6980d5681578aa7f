/* cli_util.c - small helpers the commands share: printing answers, reading
 * JSON fields and local files, one request with its error printed. */
#include "cli.h"

#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCRIPT (16u << 20)

static void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
#define cleanup_file __attribute__((cleanup(fclosep)))

/* Print the raw body of a --json answer, ending with a newline. */
void print_raw(const char *raw)
{
    size_t n = strlen(raw);
    fputs(raw, stdout);
    if (n == 0 || raw[n - 1] != '\n')
        fputc('\n', stdout);
}

const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

/* Set o[k] = v, taking v's reference. 1 on failure (v NULL: not UTF-8, or OOM),
 * so callers can collect failures with `bad |= jset(...)`. */
int jset(json_t *o, const char *k, json_t *v)
{
    return v && json_object_set_new(o, k, v) == 0 ? 0 : 1;
}

/* Read a whole (small) file, "-" for stdin; NUL-terminated. */
char *read_whole(const char *path, size_t *len)
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

int call_json(struct cli_ctx *ctx, const char *method, const char *path, json_t *body, json_t **out, char **raw)
{
    if (!path || client_json(&ctx->client, method, path, body, out, raw) < 0) {
        client_print_error(&ctx->client);
        return EXIT_ERROR;
    }
    return 0;
}

int fetch_or_print(struct cli_ctx *ctx, const char *path, json_t **out)
{
    cleanup_free char *raw = NULL;
    if (call_json(ctx, "GET", path, NULL, out, &raw))
        return -1;
    if (ctx->json) {
        print_raw(raw);
        return 1;
    }
    return 0;
}
