#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "util.h"

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

void proto_hdr_encode(const struct proto_hdr *h, uint8_t out[PROTO_HDR_LEN])
{
    put_le32(out, PROTO_MAGIC);
    out[4] = h->version;
    out[5] = h->type;
    put_le16(out + 6, h->flags);
    put_le32(out + 8, h->req_id);
    put_le32(out + 12, h->len);
}

int proto_hdr_decode(const uint8_t in[PROTO_HDR_LEN], struct proto_hdr *h)
{
    if (get_le32(in) != PROTO_MAGIC || in[4] != PROTO_VERSION)
        return -EPROTO;
    h->version = in[4];
    h->type = in[5];
    h->flags = get_le16(in + 6);
    h->req_id = get_le32(in + 8);
    h->len = get_le32(in + 12);
    if (h->len > PROTO_MAX_PAYLOAD)
        return -EMSGSIZE;
    return 0;
}

int proto_send(int fd, uint8_t type, uint16_t flags, uint32_t req_id, const void *payload, size_t len)
{
    if (len > PROTO_MAX_PAYLOAD)
        return -EMSGSIZE;
    uint8_t hdr[PROTO_HDR_LEN];
    struct proto_hdr h = {.version = PROTO_VERSION, .type = type, .flags = flags, .req_id = req_id, .len = (uint32_t)len};
    proto_hdr_encode(&h, hdr);

    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, len}};
    int iovcnt = len ? 2 : 1;
    size_t total = sizeof(hdr) + len;
    while (total > 0) {
        ssize_t n = writev(fd, iov, iovcnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        total -= (size_t)n;
        /* advance the iovecs past what was written (short writes on pipes/sockets) */
        for (int i = 0; i < iovcnt && n > 0; i++) {
            size_t take = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + take;
            iov[i].iov_len -= take;
            n -= (ssize_t)take;
        }
    }
    return 0;
}

int proto_recv(int fd, struct proto_hdr *h, uint8_t **payload)
{
    uint8_t hdr[PROTO_HDR_LEN];
    *payload = NULL;
    int r = read_exact(fd, hdr, sizeof(hdr));
    if (r < 0)
        return r;
    r = proto_hdr_decode(hdr, h);
    if (r < 0)
        return r;
    uint8_t *buf = malloc((size_t)h->len + 1);
    if (!buf)
        return -ENOMEM;
    r = read_exact(fd, buf, h->len);
    if (r < 0) {
        free(buf);
        return r == -EPIPE ? -EPROTO : r; /* EOF mid-frame is a protocol error */
    }
    buf[h->len] = '\0';
    *payload = buf;
    return 0;
}

const char *proto_type_name(uint8_t type)
{
    switch (type) {
    case PROTO_HELLO: return "HELLO";
    case PROTO_SHUTDOWN: return "SHUTDOWN";
    case PROTO_GUEST_SYNC: return "GUEST_SYNC";
    case PROTO_RUN_CODE: return "RUN_CODE";
    case PROTO_CTX_CREATE: return "CTX_CREATE";
    case PROTO_CTX_LIST: return "CTX_LIST";
    case PROTO_CTX_RESTART: return "CTX_RESTART";
    case PROTO_CTX_DELETE: return "CTX_DELETE";
    case PROTO_EXEC: return "EXEC";
    case PROTO_SIGNAL: return "SIGNAL";
    case PROTO_PTY_RESIZE: return "PTY_RESIZE";
    case PROTO_STDIN: return "STDIN";
    case PROTO_FILE_PUT: return "FILE_PUT";
    case PROTO_FILE_GET: return "FILE_GET";
    case PROTO_FILE_LIST: return "FILE_LIST";
    case PROTO_FILE_DELETE: return "FILE_DELETE";
    case PROTO_FILE_MKDIR: return "FILE_MKDIR";
    case PROTO_FILE_DATA: return "FILE_DATA";
    case PROTO_FILE_ACK: return "FILE_ACK";
    case PROTO_FILE_STAT: return "FILE_STAT";
    case PROTO_FILE_RENAME: return "FILE_RENAME";
    case PROTO_FILE_WATCH: return "FILE_WATCH";
    case PROTO_FILE_EVENT: return "FILE_EVENT";
    case PROTO_STDOUT: return "STDOUT";
    case PROTO_STDERR: return "STDERR";
    case PROTO_RESULT: return "RESULT";
    case PROTO_OK: return "OK";
    case PROTO_ERROR: return "ERROR";
    case PROTO_LOG: return "LOG";
    default: return "UNKNOWN";
    }
}
