/* listq.c - filters and pagination of the sandbox list (listq.h).
 *
 * Pages are in id order and a token is the last id a page held: the next
 * page is the ids after it. Ids are random, so the order says nothing of age,
 * but it is stable while sandboxes come and go, which a creation-order
 * offset is not (a sandbox destroyed between two pages would shift one past
 * the client). */
#include "listq.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int pct_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '%' && r[1] && r[2]) {
            char hex[3] = {r[1], r[2], 0};
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end || v == 0)
                return -EINVAL;
            *w++ = (char)v;
            r += 2;
        } else if (*r == '+') {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return 0;
}

static int parse_meta(struct listq *q, const char *metadata, char *err, size_t errlen)
{
    char *copy = strdup(metadata);
    if (!copy)
        return -ENOMEM;
    int r = 0;
    char *save = NULL;
    for (char *pair = strtok_r(copy, "&", &save); pair; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        if (!eq || eq == pair) {
            snprintf(err, errlen, "metadata must be key=value pairs joined by '&', not '%s'", pair);
            r = -EINVAL;
            break;
        }
        if (q->n_meta >= LISTQ_MAX_META) {
            snprintf(err, errlen, "metadata: at most %d pairs", LISTQ_MAX_META);
            r = -EINVAL;
            break;
        }
        *eq = '\0';
        char *k = strdup(pair), *v = strdup(eq + 1);
        if (!k || !v) {
            free(k), free(v);
            r = -ENOMEM;
            break;
        }
        q->meta_key[q->n_meta] = k;
        q->meta_val[q->n_meta++] = v;
        if (pct_decode(k) < 0 || pct_decode(v) < 0) {
            snprintf(err, errlen, "metadata: a bad %%-escape in '%s'", k);
            r = -EINVAL;
            break;
        }
    }
    free(copy);
    return r;
}

int listq_parse(struct listq *q, const char *state, const char *template, const char *metadata,
                const char *limit, const char *next_token, char *err, size_t errlen)
{
    memset(q, 0, sizeof(*q));
    if (state && strcmp(state, "running") != 0 && strcmp(state, "paused") != 0 && strcmp(state, "destroying") != 0) {
        snprintf(err, errlen, "state must be \"running\", \"paused\" or \"destroying\" (the list holds live sandboxes)");
        return -EINVAL;
    }
    q->state = state;
    q->template = template;
    q->next_token = next_token && *next_token ? next_token : NULL;
    if (limit) {
        char *end;
        errno = 0;
        long v = strtol(limit, &end, 10);
        if (errno || *end || end == limit || v < 1 || v > LISTQ_MAX_LIMIT) {
            snprintf(err, errlen, "limit must be an integer between 1 and %d", LISTQ_MAX_LIMIT);
            return -EINVAL;
        }
        q->limit = (size_t)v;
    }
    if (metadata && *metadata) {
        int r = parse_meta(q, metadata, err, errlen);
        if (r < 0) {
            listq_free(q);
            return r;
        }
    }
    return 0;
}

void listq_free(struct listq *q)
{
    for (size_t i = 0; i < q->n_meta; i++) {
        free(q->meta_key[i]);
        free(q->meta_val[i]);
    }
    q->n_meta = 0;
}

static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static bool matches(json_t *sb, const struct listq *q)
{
    const char *s;
    if (q->state && (!(s = jstr(sb, "state")) || strcmp(s, q->state) != 0))
        return false;
    if (q->template && (!(s = jstr(sb, "template")) || strcmp(s, q->template) != 0))
        return false;
    json_t *md = json_object_get(sb, "metadata");
    for (size_t i = 0; i < q->n_meta; i++) {
        const char *v = json_string_value(json_object_get(md, q->meta_key[i]));
        if (!v || strcmp(v, q->meta_val[i]) != 0)
            return false;
    }
    if (q->next_token && (!(s = jstr(sb, "id")) || strcmp(s, q->next_token) <= 0))
        return false;
    return true;
}

static int by_id(const void *a, const void *b)
{
    const char *x = jstr(*(json_t *const *)a, "id"), *y = jstr(*(json_t *const *)b, "id");
    return strcmp(x ? x : "", y ? y : "");
}

json_t *listq_page(json_t *all, const struct listq *q, json_t **next_token)
{
    *next_token = NULL;
    size_t n = json_array_size(all), m = 0;
    json_t **v = calloc(n + 1, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (matches(json_array_get(all, i), q))
            v[m++] = json_array_get(all, i);
    qsort(v, m, sizeof(*v), by_id);
    size_t take = q->limit && q->limit < m ? q->limit : m;
    json_t *page = json_array();
    for (size_t i = 0; page && i < take; i++)
        json_array_append(page, v[i]);
    if (page && take < m)
        *next_token = json_string(jstr(v[take - 1], "id"));
    free(v);
    return page;
}
