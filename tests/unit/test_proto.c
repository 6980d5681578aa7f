/* test_proto.c - the frame codec both peers trust: every length bounded,
 * every malformed header refused, short reads and EOF handled. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"
#include "unit.h"
#include "util.h"

static void test_header_round_trip(void)
{
    struct proto_hdr in = {PROTO_VERSION, PROTO_RUN_CODE, PROTO_F_END, 0xdeadbeefu, 12345}, out;
    uint8_t raw[PROTO_HDR_LEN];
    proto_hdr_encode(&in, raw);
    CHECK(memcmp(raw, "ALK1", 4) == 0); /* magic is little-endian "ALK1" on the wire */
    CHECK(proto_hdr_decode(raw, &out) == 0);
    CHECK(out.type == PROTO_RUN_CODE && out.flags == PROTO_F_END && out.req_id == 0xdeadbeefu && out.len == 12345);
}

static void test_header_rejects(void)
{
    struct proto_hdr h = {PROTO_VERSION, PROTO_OK, 0, 1, PROTO_MAX_PAYLOAD}, out;
    uint8_t raw[PROTO_HDR_LEN];
    proto_hdr_encode(&h, raw);
    CHECK(proto_hdr_decode(raw, &out) == 0); /* exactly the limit is fine */

    h.len = PROTO_MAX_PAYLOAD + 1;
    proto_hdr_encode(&h, raw);
    CHECK(proto_hdr_decode(raw, &out) == -EMSGSIZE);

    h.len = 0xffffffffu;
    proto_hdr_encode(&h, raw);
    CHECK(proto_hdr_decode(raw, &out) == -EMSGSIZE);

    h.len = 1;
    proto_hdr_encode(&h, raw);
    raw[0] ^= 0xff;
    CHECK(proto_hdr_decode(raw, &out) == -EPROTO);

    proto_hdr_encode(&h, raw);
    raw[4] = PROTO_VERSION + 1;
    CHECK(proto_hdr_decode(raw, &out) == -EPROTO);
}

static void test_send_recv(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    const char msg[] = "{\"version\":1}";
    CHECK(proto_send(sv[0], PROTO_HELLO, 0, 7, msg, strlen(msg)) == 0);
    CHECK(proto_send(sv[0], PROTO_FILE_DATA, PROTO_F_END, 7, NULL, 0) == 0);

    struct proto_hdr h;
    uint8_t *p = NULL;
    CHECK(proto_recv(sv[1], &h, &p) == 0);
    CHECK(h.type == PROTO_HELLO && h.req_id == 7 && h.len == strlen(msg));
    CHECK(p && memcmp(p, msg, h.len) == 0 && p[h.len] == '\0');
    free(p);
    CHECK(proto_recv(sv[1], &h, &p) == 0);
    CHECK(h.type == PROTO_FILE_DATA && h.flags == PROTO_F_END && h.len == 0);
    free(p);

    /* too big to send */
    CHECK(proto_send(sv[0], PROTO_STDOUT, 0, 1, msg, PROTO_MAX_PAYLOAD + 1) == -EMSGSIZE);

    /* a header promising more than arrives, then EOF: a protocol error, not a frame */
    uint8_t raw[PROTO_HDR_LEN];
    struct proto_hdr lie = {PROTO_VERSION, PROTO_STDOUT, 0, 1, 100};
    proto_hdr_encode(&lie, raw);
    CHECK(write_all(sv[0], raw, sizeof(raw)) == 0);
    CHECK(write_all(sv[0], "short", 5) == 0);
    close(sv[0]);
    p = NULL;
    CHECK(proto_recv(sv[1], &h, &p) == -EPROTO);
    CHECK(p == NULL);
    /* clean EOF between frames */
    CHECK(proto_recv(sv[1], &h, &p) == -EPIPE);
    close(sv[1]);
}

static void test_oversized_header_not_allocated(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    uint8_t raw[PROTO_HDR_LEN];
    struct proto_hdr h = {PROTO_VERSION, PROTO_STDOUT, 0, 1, 0x7fffffffu}, out;
    proto_hdr_encode(&h, raw);
    CHECK(write_all(sv[0], raw, sizeof(raw)) == 0);
    uint8_t *p = NULL;
    CHECK(proto_recv(sv[1], &out, &p) == -EMSGSIZE);
    CHECK(p == NULL);
    close(sv[0]);
    close(sv[1]);
}

static void test_names(void)
{
    CHECK_STREQ(proto_type_name(PROTO_RESULT), "RESULT");
    CHECK_STREQ(proto_type_name(0xee), "UNKNOWN");
}

int main(void)
{
    test_header_round_trip();
    test_header_rejects();
    test_send_recv();
    test_oversized_header_not_allocated();
    test_names();
    UNIT_DONE();
}
