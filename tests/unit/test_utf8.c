#include <stdlib.h>

#include "unit.h"
#include "utf8.h"

#define FFFD "\xEF\xBF\xBD"

static void check_clean(const char *in, size_t len, const char *want)
{
    struct buf out = {0};
    long used = utf8_sanitize((const uint8_t *)in, len, true, &out);
    CHECK(used == (long)len);
    CHECK(out.len == strlen(want));
    CHECK(out.data && memcmp(out.data, want, strlen(want)) == 0);
    if (!out.data || strcmp(out.data, want) != 0)
        fprintf(stderr, "  input of %zu bytes gave '%s', want '%s'\n", len, out.data ? out.data : "", want);
    buf_free(&out);
}

#define CLEAN(lit, want) check_clean(lit, sizeof(lit) - 1, want)

static void test_sanitize(void)
{
    CLEAN("", "");
    CLEAN("hello", "hello");
    CLEAN("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
    CLEAN("a\xFF" "b", "a" FFFD "b");
    CLEAN("\x80", FFFD);
    CLEAN("\xC0\xAF", FFFD FFFD);              /* overlong '/' */
    CLEAN("\xE0\x80\xAF", FFFD FFFD FFFD);     /* overlong, 3 bytes */
    CLEAN("\xED\xA0\x80", FFFD FFFD FFFD);     /* surrogate U+D800 */
    CLEAN("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* > U+10FFFF */
    CLEAN("\xE2\x82" "x", FFFD "x");           /* truncated sequence: one replacement */
    CLEAN("\xF0\x9F\x98", FFFD);               /* truncated at the end, final */
    {
        struct buf out = {0};
        long used = utf8_sanitize((const uint8_t *)"a\0b", 3, true, &out);
        CHECK(used == 3 && out.len == 3 && out.data[1] == '\0');
        buf_free(&out);
    }
}

static void test_not_final_keeps_tail(void)
{
    struct buf out = {0};
    long used = utf8_sanitize((const uint8_t *)"ab\xE2\x82", 4, false, &out);
    CHECK(used == 2);
    CHECK(out.len == 2);
    buf_free(&out);
    /* an invalid tail is not held back */
    used = utf8_sanitize((const uint8_t *)"ab\xFF", 3, false, &out);
    CHECK(used == 3);
    buf_free(&out);
}

static void test_stream_split(void)
{
    const char *euro = "\xE2\x82\xAC";
    /* every split of "x€y😀z" into two chunks gives the same text */
    const char whole[] = "x\xE2\x82\xACy\xF0\x9F\x98\x80z";
    size_t n = sizeof(whole) - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        struct utf8_stream s = {0};
        struct buf out = {0};
        CHECK(utf8_stream_feed(&s, (const uint8_t *)whole, cut, &out) == 0);
        CHECK(utf8_stream_feed(&s, (const uint8_t *)whole + cut, n - cut, &out) == 0);
        CHECK(utf8_stream_finish(&s, &out) == 0);
        CHECK(out.len == n && memcmp(out.data, whole, n) == 0);
        buf_free(&out);
    }
    /* byte by byte */
    struct utf8_stream s = {0};
    struct buf out = {0};
    for (size_t i = 0; i < 3; i++)
        CHECK(utf8_stream_feed(&s, (const uint8_t *)euro + i, 1, &out) == 0);
    CHECK(utf8_stream_finish(&s, &out) == 0);
    CHECK_STREQ(out.data, euro);
    buf_free(&out);
    /* a sequence cut and never finished becomes U+FFFD at the end */
    CHECK(utf8_stream_feed(&s, (const uint8_t *)"a\xE2\x82", 3, &out) == 0);
    CHECK_STREQ(out.data, "a");
    CHECK(utf8_stream_finish(&s, &out) == 0);
    CHECK_STREQ(out.data, "a" FFFD);
    buf_free(&out);
    /* a pending lead byte followed by garbage */
    CHECK(utf8_stream_feed(&s, (const uint8_t *)"\xE2", 1, &out) == 0);
    CHECK(utf8_stream_feed(&s, (const uint8_t *)"zz", 2, &out) == 0);
    CHECK(utf8_stream_finish(&s, &out) == 0);
    CHECK_STREQ(out.data, FFFD "zz");
    buf_free(&out);
}

static void test_random_is_valid(void)
{
    /* whatever comes in, what goes out decodes strictly */
    srand(42);
    for (int round = 0; round < 2000; round++) {
        uint8_t in[64];
        size_t n = (size_t)(rand() % 64);
        for (size_t i = 0; i < n; i++)
            in[i] = (uint8_t)rand();
        struct buf out = {0};
        CHECK(utf8_sanitize(in, n, true, &out) == (long)n);
        struct buf again = {0};
        /* idempotent: sanitizing valid output changes nothing */
        CHECK(utf8_sanitize((const uint8_t *)(out.data ? out.data : ""), out.len, true, &again) == (long)out.len);
        CHECK(again.len == out.len && (out.len == 0 || memcmp(again.data, out.data, out.len) == 0));
        buf_free(&out);
        buf_free(&again);
    }
}

int main(void)
{
    test_sanitize();
    test_not_final_keeps_tail();
    test_stream_split();
    test_random_is_valid();
    UNIT_DONE();
}
