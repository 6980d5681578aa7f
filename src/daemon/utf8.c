#include "utf8.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t REPLACEMENT[3] = {0xEF, 0xBF, 0xBD}; /* U+FFFD */

/* For a lead byte: total sequence length (0 if it cannot start one) and the
 * allowed range of the second byte, which is what excludes overlongs (E0, F0),
 * surrogates (ED) and code points above U+10FFFF (F4). */
static int lead_info(uint8_t c, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0; /* continuation byte or overlong C0/C1 */
    if (c < 0xE0)
        return 2;
    if (c < 0xF0) {
        if (c == 0xE0)
            *lo = 0xA0;
        else if (c == 0xED)
            *hi = 0x9F;
        return 3;
    }
    if (c < 0xF5) {
        if (c == 0xF0)
            *lo = 0x90;
        else if (c == 0xF4)
            *hi = 0x8F;
        return 4;
    }
    return 0;
}

long utf8_sanitize(const uint8_t *in, size_t len, bool final, struct buf *out)
{
    /* An empty buf has data == NULL (a run without output), and NULL + 0 is
     * undefined behaviour in C, which the copy below the loop would do. */
    if (len == 0)
        return buf_append(out, "", 0) < 0 ? -ENOMEM : 0;
    size_t i = 0, run = 0; /* in[run..i) is valid and not yet copied */
    int r;
    while (i < len) {
        uint8_t lo, hi;
        int n = lead_info(in[i], &lo, &hi);
        if (n == 1) {
            i++;
            continue;
        }
        size_t k = 1; /* bytes of the sequence that are well-formed so far */
        if (n > 0) {
            while (k < (size_t)n && i + k < len) {
                uint8_t c = in[i + k];
                uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
                if (c < l || c > h)
                    break;
                k++;
            }
            if (k == (size_t)n) {
                i += k;
                continue;
            }
            if (i + k == len && !final) {
                /* incomplete but valid so far: leave it for the next chunk */
                break;
            }
        }
        /* invalid: flush the valid run, one U+FFFD for the maximal subpart */
        if ((r = buf_append(out, in + run, i - run)) < 0 || (r = buf_append(out, REPLACEMENT, 3)) < 0)
            return r;
        i += k;
        run = i;
    }
    if ((r = buf_append(out, in + run, i - run)) < 0)
        return r;
    return (long)i;
}

int utf8_stream_feed(struct utf8_stream *s, const uint8_t *in, size_t len, struct buf *out)
{
    const uint8_t *p = in;
    size_t n = len;
    uint8_t *joined = NULL;
    if (s->npend > 0) {
        /* a character split across chunks: decode pending + this chunk */
        joined = malloc(s->npend + len);
        if (!joined)
            return -ENOMEM;
        memcpy(joined, s->pend, s->npend);
        if (len)
            memcpy(joined + s->npend, in, len);
        p = joined;
        n = s->npend + len;
    }
    long used = utf8_sanitize(p, n, false, out);
    if (used >= 0) {
        s->npend = n - (size_t)used; /* an incomplete sequence: at most 3 bytes */
        memcpy(s->pend, p + used, s->npend);
    }
    free(joined);
    return used < 0 ? (int)used : 0;
}

int utf8_stream_finish(struct utf8_stream *s, struct buf *out)
{
    long used = utf8_sanitize(s->pend, s->npend, true, out);
    s->npend = 0;
    return used < 0 ? (int)used : 0;
}
