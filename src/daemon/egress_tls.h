/* egress_tls.h - the server name of a TLS ClientHello (RFC 8446 4.1.2,
 * RFC 6066 3), so the proxy can check it against the CONNECT host. Pure,
 * bounds-checked at every length; reads, never decrypts or answers. */
#ifndef AIRLOCK_EGRESS_TLS_H
#define AIRLOCK_EGRESS_TLS_H

#include <stddef.h>
#include <stdint.h>

/* Largest first record we wait for: one TLS record (16 KiB) and its header. */
#define EGRESS_TLS_MAX_HELLO (16384 + 5)

/* buf holds the first bytes the client sent after CONNECT.
 *  1  a ClientHello naming a server: the name in out (NUL-terminated)
 *  0  a ClientHello without server_name
 *  -EAGAIN  a TLS handshake record, not complete yet: read more
 *  -EPROTO  a TLS handshake record that is not a well-formed ClientHello
 *  -ENOTSUP not TLS at all (first byte is not a handshake record) */
int egress_tls_sni(const uint8_t *buf, size_t len, char *out, size_t outlen);

#endif
