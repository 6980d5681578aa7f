/* listq.h - server-side filters and pagination of GET /v1/sandboxes.
 *
 * Pure jansson over the list the registry made (sandbox JSON objects), so
 * the registry keeps one concern (who is alive, and references) and the API
 * layer one (query parameters to statuses).
 */
#ifndef AIRLOCK_LISTQ_H
#define AIRLOCK_LISTQ_H

#include <jansson.h>
#include <stddef.h>

#define LISTQ_MAX_LIMIT 1000
#define LISTQ_MAX_META 16

struct listq {
    const char *state;    /* "running" | "destroying", NULL: any */
    const char *template; /* NULL: any */
    /* metadata pairs that must all match, as E2B's API writes them:
     * "k1=v1&k2=v2" (URL-encoded once more inside the query) */
    size_t n_meta;
    char *meta_key[LISTQ_MAX_META];
    char *meta_val[LISTQ_MAX_META];
    size_t limit;           /* 0: no limit */
    const char *next_token; /* the last id of the previous page, NULL: from the start */
};

/* Parse the query's raw values (any may be NULL) into q. On a bad value
 * returns -EINVAL with a message naming the parameter in err. */
int listq_parse(struct listq *q, const char *state, const char *template, const char *metadata,
                const char *limit, const char *next_token, char *err, size_t errlen);
void listq_free(struct listq *q);

/* The page of sandboxes (a new array, sorted by id) that q selects from
 * all; *next_token is set to a new string (the page's last id) when more
 * follow, else NULL. NULL on out of memory. */
json_t *listq_page(json_t *all, const struct listq *q, json_t **next_token);

#endif
