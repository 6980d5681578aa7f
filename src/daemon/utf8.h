/* utf8.h - turn arbitrary bytes (program output) into valid UTF-8.
 *
 * Invalid sequences become U+FFFD following the Unicode "maximal subpart"
 * practice: one replacement per maximal prefix of a well-formed sequence, then
 * decoding resumes at the offending byte. Overlongs, surrogates and code points
 * above U+10FFFF are invalid. NUL bytes are kept (they are valid UTF-8 and
 * jansson encodes them as \u0000).
 *
 * Streaming: output arrives in chunks that may split a character. A
 * utf8_stream holds back an incomplete trailing sequence (at most 3 bytes)
 * and prepends it to the next chunk; utf8_stream_finish flushes it as U+FFFD. */
#ifndef AIRLOCK_UTF8_H
#define AIRLOCK_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Append the sanitized form of in[0..len) to out. If !final, an incomplete
 * but so-far valid sequence at the end is not consumed. Returns the number of
 * input bytes consumed, or -ENOMEM. */
long utf8_sanitize(const uint8_t *in, size_t len, bool final, struct buf *out);

struct utf8_stream {
    uint8_t pend[4];
    size_t npend;
};

int utf8_stream_feed(struct utf8_stream *s, const uint8_t *in, size_t len, struct buf *out);
int utf8_stream_finish(struct utf8_stream *s, struct buf *out);

#endif
