/* gzip.h - gzip (RFC 1952) both ways for file transfers, on zlib: an
 * upload sent with Content-Encoding: gzip is inflated as it streams, and a
 * download asked for with Accept-Encoding: gzip is deflated as it streams
 * (api_files.c). Neither holds more than zlib's window. */
#ifndef AIRLOCK_GZIP_H
#define AIRLOCK_GZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct gunzip;
struct gzip_enc;

int gunzip_new(struct gunzip **out);
/* Inflate len bytes of gzip; every piece of output goes to emit (at most
 * `chunk` bytes each). Concatenated gzip members are one file (RFC 1952).
 * 0; -EINVAL for bytes that are not gzip (or after a member: garbage);
 * emit's negative return. */
int gunzip_feed(struct gunzip *g, const void *in, size_t len, size_t chunk,
                int (*emit)(void *ctx, const void *data, size_t n), void *ctx);
/* Every member read was whole (its trailer checked): the upload can end. */
bool gunzip_complete(const struct gunzip *g);
void gunzip_free(struct gunzip *g);

int gzip_enc_new(struct gzip_enc **out);
/* Deflate from *in (*in_len bytes; both advanced past what was taken) into
 * out (max bytes); finish: nothing follows *in. Returns the bytes written
 * (0: it needs more input), *done once the stream with its trailer is
 * out; -EIO on a zlib error. */
ssize_t gzip_enc_step(struct gzip_enc *e, const uint8_t **in, size_t *in_len, bool finish, char *out, size_t max,
                      bool *done);
void gzip_enc_free(struct gzip_enc *e);

#endif
