/* report.c - how the jail's files report a failure.
 *
 * Two forms, one for each side of the clone (jail.h says why they differ):
 *  - parent code formats "op path: strerror" into the caller's buffer
 *    (jail_err), which the daemon logs or returns;
 *  - child code cannot format or allocate, so it fills a fixed record
 *    (child_fail) that child.c writes to the error pipe in one write.
 * Every file of the backend uses them; they call nothing in it.
 */
#include "jail.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int child_fail(struct jail_child_error *e, const char *op, const char *path, int err)
{
    e->err = err;
    size_t n = strnlen(op, sizeof(e->op) - 1);
    memcpy(e->op, op, n);
    e->op[n] = '\0';
    n = strnlen(path, sizeof(e->path) - 1);
    memcpy(e->path, path, n);
    e->path[n] = '\0';
    return -err;
}

int jail_err(char *err, size_t errlen, int r, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return r;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s: %s", what, strerror(r < 0 ? -r : r));
    return r;
}
