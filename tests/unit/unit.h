/* unit.h - the smallest test harness: CHECK records a failure and goes on. */
#ifndef AIRLOCK_UNIT_H
#define AIRLOCK_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            unit_failures++;                                                         \
        }                                                                            \
    } while (0)

#define CHECK_STREQ(a, b)                                                                             \
    do {                                                                                              \
        const char *a_ = (a), *b_ = (b);                                                              \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                      \
            fprintf(stderr, "%s:%d: '%s' != '%s'\n", __FILE__, __LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
            unit_failures++;                                                                          \
        }                                                                                             \
    } while (0)

#define UNIT_DONE()                                                  \
    do {                                                             \
        if (unit_failures)                                           \
            fprintf(stderr, "%d check(s) failed\n", unit_failures);  \
        return unit_failures ? 1 : 0;                                \
    } while (0)

#endif
