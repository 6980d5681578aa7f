/* fuzz_proto.c - the frame decoder (src/common/proto.c) and what the daemon
 * does with the frames an agent sends (src/daemon/agent_client.c, errors.c,
 * utf8.c).
 *
 * The agent runs next to user code, so the daemon treats its stream as
 * hostile: every byte of it here is fuzz input. Input layout:
 *
 *   byte 0       mode: bits 0-1 pick the path below, bits 2-3 how many
 *                requests the daemon has in flight (agent_client mode)
 *   byte 1       n: the next n bytes (at most 16) are the split schedule
 *                (how the writer thread cuts the stream into writes)
 *   the rest     the byte stream the peer sends
 *
 * Paths:
 *   0  proto_recv on a socket, as the agent's read_control_frame and the
 *      daemon's reader thread call it, against a reference decoder written
 *      here from docs/protocol.md: same frames, same error at the end.
 *   1  the daemon's agent connection with requests 1..k in flight: the real
 *      reader thread routes the frames, each request's queue is drained and
 *      each frame handled the way the API handlers do (ERROR ->
 *      api_error_from_agent, OK/RESULT -> JSON, STDOUT/STDERR -> UTF-8
 *      sanitizing for the JSON answer).
 *   2  agent_call (HELLO) answered by the stream: the control-request path.
 *   3  the header codec alone: decode(x) then encode must give x back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "agent_client.h"
#include "buf.h"
#include "api_errors.h"
#include "fuzz.h"
#include "log.h"
#include "proto.h"
#include "utf8.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* the code under test logs every bad frame; that is not news here */
    log_init("fuzz_proto", (enum log_level)(LOG_LVL_ERROR + 1));
    return 0;
}

/* ---- reference decoder */

struct ref_frame {
    struct proto_hdr h;
    const uint8_t *payload;
};

/* Next frame of the stream at *off. 1 with *f set, or the error proto_recv
 * must report: -EPIPE at EOF (also inside a header: read_exact cannot tell a
 * short header from a closed stream), -EPROTO for a bad magic/version or EOF
 * inside a payload, -EMSGSIZE for an oversized length. */
static int ref_next(const uint8_t *s, size_t len, size_t *off, struct ref_frame *f)
{
    if (len - *off < PROTO_HDR_LEN)
        return -EPIPE;
    const uint8_t *p = s + *off;
    uint32_t magic = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (magic != PROTO_MAGIC || p[4] != PROTO_VERSION)
        return -EPROTO;
    f->h.version = p[4];
    f->h.type = p[5];
    f->h.flags = (uint16_t)(p[6] | p[7] << 8);
    f->h.req_id = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
    f->h.len = (uint32_t)p[12] | (uint32_t)p[13] << 8 | (uint32_t)p[14] << 16 | (uint32_t)p[15] << 24;
    if (f->h.len > PROTO_MAX_PAYLOAD)
        return -EMSGSIZE;
    if (len - *off - PROTO_HDR_LEN < f->h.len)
        return -EPROTO;
    f->payload = p + PROTO_HDR_LEN;
    *off += PROTO_HDR_LEN + f->h.len;
    return 1;
}

/* ---- path 0: proto_recv against the reference */

static void fuzz_recv(const uint8_t *stream, size_t len, const uint8_t *sched, size_t nsched)
{
    int sv[2];
    FUZZ_SETUP(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s", strerror(errno));
    struct fuzz_writer *w = NULL;
    FUZZ_SETUP(fuzz_writer_start(sv[1], stream, len, sched, nsched, &w) == 0, "writer thread");

    size_t off = 0;
    for (;;) {
        struct ref_frame want;
        int expect = ref_next(stream, len, &off, &want);
        struct proto_hdr h;
        uint8_t *payload = NULL;
        int r = proto_recv(sv[0], &h, &payload);
        if (expect < 0) {
            FUZZ_CHECK(r == expect, "proto_recv returned %d, the stream says %d", r, expect);
            FUZZ_CHECK(payload == NULL, "payload set on error");
            break;
        }
        FUZZ_CHECK(r == 0, "proto_recv failed (%d) on a well-formed frame", r);
        FUZZ_CHECK(h.type == want.h.type && h.flags == want.h.flags && h.req_id == want.h.req_id &&
                       h.len == want.h.len,
                   "header mismatch");
        FUZZ_CHECK(payload != NULL, "no payload buffer");
        FUZZ_CHECK(memcmp(payload, want.payload, h.len) == 0, "payload mismatch");
        FUZZ_CHECK(payload[h.len] == '\0', "payload not NUL-terminated");
        free(payload);
    }
    close(sv[0]); /* the writer sees the hang-up and stops */
    fuzz_writer_join(w);
    close(sv[1]);
}

/* ---- paths 1 and 2: the daemon's side */

/* What an API handler does with one frame of a request. */
static void handle_frame(const struct agent_frame *f, struct utf8_stream *u8)
{
    FUZZ_CHECK(f->len <= PROTO_MAX_PAYLOAD, "frame of %u bytes queued", f->len);
    FUZZ_CHECK(f->data && f->data[f->len] == '\0', "frame data not NUL-terminated");
    switch (f->type) {
    case PROTO_ERROR: {
        /* the error must always become a valid API error envelope */
        struct api_error err = {0};
        int r = api_error_from_agent(&err, (const char *)f->data, f->len);
        FUZZ_CHECK(r == -EREMOTEIO, "api_error_from_agent returned %d", r);
        FUZZ_CHECK(err.status >= 400 && err.status < 600, "status %u", err.status);
        json_t *j = api_error_json(&err);
        FUZZ_CHECK(j != NULL, "no JSON envelope for code '%s' message '%s'", err.code, err.message);
        json_decref(j);
        break;
    }
    case PROTO_OK:
    case PROTO_RESULT: {
        json_t *j = json_loadb((const char *)f->data, f->len, 0, NULL);
        json_decref(j);
        break;
    }
    case PROTO_STDOUT:
    case PROTO_STDERR: {
        /* output bytes become JSON strings: the sanitizer must make any
         * bytes valid UTF-8, split across frames or not */
        struct buf out = {0};
        int r = utf8_stream_feed(u8, f->data, f->len, &out);
        FUZZ_CHECK(r >= 0, "utf8_stream_feed: %d", r);
        json_t *s = json_stringn(out.data ? out.data : "", out.len);
        FUZZ_CHECK(s != NULL, "sanitized output is not valid UTF-8 (%zu bytes)", out.len);
        json_decref(s);
        buf_free(&out);
        break;
    }
    default: break;
    }
}

struct dead_flag {
    pthread_mutex_t lock;
    unsigned calls;
};

static void on_dead(void *userdata)
{
    struct dead_flag *df = userdata;
    pthread_mutex_lock(&df->lock);
    df->calls++;
    pthread_mutex_unlock(&df->lock);
}

#define MAX_REQS 4
#define WAIT_MS 10000 /* generous: the stream is finite, only a bug would wait this long */

static void fuzz_conn(const uint8_t *stream, size_t len, const uint8_t *sched, size_t nsched, unsigned nreqs,
                      bool call)
{
    int sv[2];
    FUZZ_SETUP(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s", strerror(errno));
    struct dead_flag df = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct agent_conn *c = NULL;
    FUZZ_SETUP(agent_conn_new(sv[0], "fuzz", on_dead, &df, &c) == 0, "agent_conn_new");

    json_t *hello = json_pack("{s:i}", "version", PROTO_VERSION);
    struct fuzz_writer *w = NULL;
    if (call) {
        /* request id 1 is registered before the request is sent, and the
         * writer starts now: the first frames may race the send, exactly as
         * a fast agent would */
        FUZZ_SETUP(fuzz_writer_start(sv[1], stream, len, sched, nsched, &w) == 0, "writer thread");
        json_t *reply = NULL;
        struct op_error oerr = {0};
        int r = agent_call(c, PROTO_HELLO, hello, WAIT_MS, &reply, &oerr);
        if (r == 0) {
            FUZZ_CHECK(json_is_object(reply), "agent_call succeeded without an object");
            json_decref(reply);
        } else {
            /* what the API layer would answer for it */
            struct api_error err = {0};
            api_error_from_op(&err, r, &oerr);
            FUZZ_CHECK(err.status >= 400 && err.status < 600 && err.code[0], "agent_call %d without an error", r);
            FUZZ_CHECK(r != -ETIMEDOUT, "agent_call timed out on a finite stream");
            json_t *j = api_error_json(&err);
            FUZZ_CHECK(j != NULL, "no JSON envelope for '%s'", err.message);
            json_decref(j);
        }
    } else {
        /* requests 1..nreqs are in flight before the agent says anything */
        struct agent_req *reqs[MAX_REQS] = {0};
        for (unsigned i = 0; i < nreqs; i++)
            FUZZ_SETUP(agent_req_start(c, PROTO_RUN_CODE, hello, &reqs[i]) == 0, "agent_req_start");
        FUZZ_SETUP(fuzz_writer_start(sv[1], stream, len, sched, nsched, &w) == 0, "writer thread");
        for (unsigned i = 0; i < nreqs; i++) {
            struct utf8_stream u8 = {0};
            for (;;) {
                struct agent_frame *f = NULL;
                int r = agent_req_next(reqs[i], now_mono_ms() + WAIT_MS, &f);
                if (r < 0) {
                    FUZZ_CHECK(r == -EPIPE, "agent_req_next: %d on a finite stream", r);
                    break;
                }
                handle_frame(f, &u8);
                agent_frame_free(f);
            }
            struct buf out = {0};
            FUZZ_CHECK(utf8_stream_finish(&u8, &out) >= 0, "utf8_stream_finish");
            json_t *s = json_stringn(out.data ? out.data : "", out.len);
            FUZZ_CHECK(s != NULL, "flushed output is not valid UTF-8");
            json_decref(s);
            buf_free(&out);
            agent_req_free(reqs[i]);
        }
        FUZZ_CHECK(agent_conn_is_dead(c), "connection alive after the stream ended");
    }
    json_decref(hello);
    agent_conn_free(c); /* joins the reader (on_dead has run if it will) and hangs up on the writer */
    fuzz_writer_join(w);
    close(sv[1]);
    /* the stream ended under us, so the death was not expected: reported
     * once (unless agent_call returned first and we closed it ourselves) */
    FUZZ_CHECK(df.calls <= 1, "on_dead ran %u times", df.calls);
    if (!call)
        FUZZ_CHECK(df.calls == 1, "on_dead ran %u times", df.calls);
}

/* ---- path 3: the header codec */

static void fuzz_header(const uint8_t *s, size_t len)
{
    for (size_t off = 0; off + PROTO_HDR_LEN <= len; off += PROTO_HDR_LEN) {
        struct proto_hdr h;
        int r = proto_hdr_decode(s + off, &h);
        FUZZ_CHECK(r == 0 || r == -EPROTO || r == -EMSGSIZE, "decode returned %d", r);
        if (r < 0)
            continue;
        FUZZ_CHECK(h.len <= PROTO_MAX_PAYLOAD, "len %u accepted", h.len);
        uint8_t back[PROTO_HDR_LEN];
        proto_hdr_encode(&h, back);
        FUZZ_CHECK(memcmp(back, s + off, PROTO_HDR_LEN) == 0, "encode(decode(x)) != x");
        (void)proto_type_name(h.type);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned mode = data[0] & 3;
    unsigned nreqs = 1 + ((data[0] >> 2) & 3);
    size_t nsched = data[1] % 17;
    if (size < 2 + nsched)
        return 0;
    const uint8_t *sched = data + 2;
    const uint8_t *stream = data + 2 + nsched;
    size_t len = size - 2 - nsched;
    switch (mode) {
    case 0: fuzz_recv(stream, len, sched, nsched); break;
    case 1: fuzz_conn(stream, len, sched, nsched, nreqs, false); break;
    case 2: fuzz_conn(stream, len, sched, nsched, 0, true); break;
    case 3: fuzz_header(stream, len); break;
    }
    return 0;
}
