/* buf.h - a growable byte buffer (data is always NUL-terminated). */
#ifndef AIRLOCK_BUF_H
#define AIRLOCK_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

int buf_append(struct buf *b, const void *p, size_t n); /* 0 or -ENOMEM */
int buf_append_str(struct buf *b, const char *s);
void buf_consume(struct buf *b, size_t n); /* drop n bytes from the front */
void buf_free(struct buf *b);

#endif
