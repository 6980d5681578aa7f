/* egress_tls.c - a ClientHello's server_name (egress_tls.h). One record
 * only: a ClientHello split over several records is refused (-EPROTO), which
 * no common client does (post-quantum key shares still fit in 16 KiB). */
#include "egress_tls.h"

#include <errno.h>
#include <string.h>

struct rd {
    const uint8_t *p;
    size_t left;
};

static int take(struct rd *r, size_t n, const uint8_t **out)
{
    if (r->left < n)
        return -EPROTO;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

static int u8(struct rd *r, size_t *v)
{
    const uint8_t *b;
    if (take(r, 1, &b) < 0)
        return -EPROTO;
    *v = b[0];
    return 0;
}

static int u16(struct rd *r, size_t *v)
{
    const uint8_t *b;
    if (take(r, 2, &b) < 0)
        return -EPROTO;
    *v = (size_t)b[0] << 8 | b[1];
    return 0;
}

static int u24(struct rd *r, size_t *v)
{
    const uint8_t *b;
    if (take(r, 3, &b) < 0)
        return -EPROTO;
    *v = (size_t)b[0] << 16 | (size_t)b[1] << 8 | b[2];
    return 0;
}

/* A sub-reader of the next n bytes (a length-prefixed vector). */
static int sub(struct rd *r, size_t n, struct rd *s)
{
    const uint8_t *b;
    if (take(r, n, &b) < 0)
        return -EPROTO;
    s->p = b;
    s->left = n;
    return 0;
}

static int server_name(struct rd *ext, char *out, size_t outlen)
{
    size_t list_len, type, name_len;
    struct rd list;
    if (u16(ext, &list_len) < 0 || sub(ext, list_len, &list) < 0)
        return -EPROTO;
    while (list.left) {
        struct rd name;
        if (u8(&list, &type) < 0 || u16(&list, &name_len) < 0 || sub(&list, name_len, &name) < 0)
            return -EPROTO;
        if (type != 0) /* host_name is the only type defined */
            continue;
        if (name_len == 0 || name_len >= outlen || memchr(name.p, '\0', name_len))
            return -EPROTO;
        memcpy(out, name.p, name_len);
        out[name_len] = '\0';
        return 1;
    }
    return 0;
}

int egress_tls_sni(const uint8_t *buf, size_t len, char *out, size_t outlen)
{
    if (len == 0)
        return -EAGAIN;
    if (buf[0] != 0x16) /* handshake */
        return -ENOTSUP;
    if (len < 5)
        return -EAGAIN;
    size_t rec_len = (size_t)buf[3] << 8 | buf[4];
    if (buf[1] != 0x03 || rec_len == 0 || rec_len > 16384)
        return -EPROTO;
    if (len < 5 + rec_len)
        return -EAGAIN;
    struct rd r = {buf + 5, rec_len}, hs, v;
    size_t type, hs_len, n;
    const uint8_t *skip;
    if (u8(&r, &type) < 0 || type != 1 /* client_hello */ || u24(&r, &hs_len) < 0 || sub(&r, hs_len, &hs) < 0)
        return -EPROTO;
    if (take(&hs, 2 + 32, &skip) < 0)                        /* legacy_version, random */
        return -EPROTO;
    if (u8(&hs, &n) < 0 || take(&hs, n, &skip) < 0)          /* legacy_session_id */
        return -EPROTO;
    if (u16(&hs, &n) < 0 || take(&hs, n, &skip) < 0)         /* cipher_suites */
        return -EPROTO;
    if (u8(&hs, &n) < 0 || take(&hs, n, &skip) < 0)          /* legacy_compression_methods */
        return -EPROTO;
    if (hs.left == 0)
        return 0; /* no extensions at all */
    if (u16(&hs, &n) < 0 || sub(&hs, n, &v) < 0)
        return -EPROTO;
    while (v.left) {
        size_t etype, elen;
        struct rd ext;
        if (u16(&v, &etype) < 0 || u16(&v, &elen) < 0 || sub(&v, elen, &ext) < 0)
            return -EPROTO;
        if (etype == 0)
            return server_name(&ext, out, outlen);
    }
    return 0;
}
