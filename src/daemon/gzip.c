/* gzip.c - streaming gzip for the files routes (gzip.h). Level 1: the
 * point is fewer bytes on a slow link, not the smallest file, and the
 * daemon's CPU is every sandbox's. */
#include "gzip.h"

#include <errno.h>
#include <stdlib.h>
#include <zlib.h>

#define GZIP_WBITS (15 + 16) /* the largest window, gzip wrapper (not zlib's, not raw) */

struct gunzip {
    z_stream z;
    bool in_member; /* a member was begun and its trailer not yet read */
    bool any;       /* a member was read whole */
    unsigned char out[64 * 1024];
};

int gunzip_new(struct gunzip **out)
{
    struct gunzip *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    if (inflateInit2(&g->z, GZIP_WBITS) != Z_OK) {
        free(g);
        return -ENOMEM;
    }
    *out = g;
    return 0;
}

int gunzip_feed(struct gunzip *g, const void *in, size_t len, size_t chunk,
                int (*emit)(void *ctx, const void *data, size_t n), void *ctx)
{
    g->z.next_in = (unsigned char *)in;
    g->z.avail_in = (uInt)len;
    size_t room = chunk < sizeof(g->out) ? chunk : sizeof(g->out);
    while (g->z.avail_in > 0) {
        if (!g->in_member) { /* another member follows a whole one */
            if (g->any && inflateReset(&g->z) != Z_OK)
                return -EINVAL;
            g->in_member = true;
        }
        g->z.next_out = g->out;
        g->z.avail_out = (uInt)room;
        int zr = inflate(&g->z, Z_NO_FLUSH);
        size_t n = room - g->z.avail_out;
        if (n > 0) {
            int r = emit(ctx, g->out, n);
            if (r < 0)
                return r;
        }
        if (zr == Z_STREAM_END) {
            g->in_member = false;
            g->any = true;
        } else if (zr != Z_OK && !(zr == Z_BUF_ERROR && n > 0)) {
            return -EINVAL;
        }
    }
    return 0;
}

bool gunzip_complete(const struct gunzip *g)
{
    return g->any && !g->in_member;
}

void gunzip_free(struct gunzip *g)
{
    if (!g)
        return;
    inflateEnd(&g->z);
    free(g);
}

struct gzip_enc {
    z_stream z;
};

int gzip_enc_new(struct gzip_enc **out)
{
    struct gzip_enc *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    if (deflateInit2(&e->z, 1, Z_DEFLATED, GZIP_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(e);
        return -ENOMEM;
    }
    *out = e;
    return 0;
}

ssize_t gzip_enc_step(struct gzip_enc *e, const uint8_t **in, size_t *in_len, bool finish, char *out, size_t max,
                      bool *done)
{
    e->z.next_in = (unsigned char *)*in;
    e->z.avail_in = (uInt)*in_len;
    e->z.next_out = (unsigned char *)out;
    e->z.avail_out = (uInt)max;
    int zr = deflate(&e->z, finish ? Z_FINISH : Z_NO_FLUSH);
    if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
        return -EIO;
    size_t used = *in_len - e->z.avail_in;
    if (used) { /* a finish step may have no input at all: *in is NULL then, and NULL + 0 is undefined */
        *in += used;
        *in_len -= used;
    }
    *done = zr == Z_STREAM_END;
    return (ssize_t)(max - e->z.avail_out);
}

void gzip_enc_free(struct gzip_enc *e)
{
    if (!e)
        return;
    deflateEnd(&e->z);
    free(e);
}
