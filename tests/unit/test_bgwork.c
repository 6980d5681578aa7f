/* The teardown queue: bounded, in order, drained by bgwork_free. */
#include <unistd.h>

#include "bgwork.h"
#include "unit.h"

static int started[2], gate[2];
static char order[8];
static size_t norder;

static void blocking_job(void *arg)
{
    order[norder++] = *(char *)arg;
    char c = 's';
    CHECK(write(started[1], &c, 1) == 1);
    CHECK(read(gate[0], &c, 1) == 1); /* held until the test has filled the queue */
}

static void job(void *arg) { order[norder++] = *(char *)arg; }

int main(void)
{
    CHECK(pipe(started) == 0 && pipe(gate) == 0);
    CHECK(!bgwork_submit(NULL, job, "x")); /* no worker: the caller runs it */

    struct bgwork *w = NULL;
    CHECK(bgwork_new("test", 0, &w) < 0);
    CHECK(bgwork_new("test", 2, &w) == 0);
    static char a = 'a', b = 'b', c = 'c', d = 'd';
    CHECK(bgwork_submit(w, blocking_job, &a));
    char s;
    CHECK(read(started[0], &s, 1) == 1); /* a runs, and holds the worker */
    CHECK(bgwork_pending(w) == 1);
    CHECK(bgwork_submit(w, job, &b));
    CHECK(bgwork_submit(w, job, &c));
    CHECK(!bgwork_submit(w, job, &d)); /* full: 2 queued */
    CHECK(bgwork_pending(w) == 3);
    CHECK(write(gate[1], "g", 1) == 1);
    bgwork_free(w); /* runs b and c before it returns */
    CHECK(norder == 3);
    CHECK(memcmp(order, "abc", 3) == 0);
    UNIT_DONE();
}
