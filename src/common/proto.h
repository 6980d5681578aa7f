/* proto.h - the framed protocol between airlockd and airlock-agent.
 *
 * One byte stream (a socketpair for the jail backend, a virtio serial port
 * for the vm backend) carries frames in both directions. Every frame is a
 * 16-byte little-endian header followed by `len` payload bytes:
 *
 *   0      4        5      6        8          12         16
 *   +------+--------+------+--------+----------+----------+------------+
 *   | magic| version| type | flags  |  req_id  |   len    | payload... |
 *   | ALK1 |   1    |  u8  |  u16   |   u32    |   u32    | len bytes  |
 *   +------+--------+------+--------+----------+----------+------------+
 *
 * Control payloads are UTF-8 JSON objects; STDOUT/STDERR/FILE_DATA payloads
 * are raw bytes. len is bounded by PROTO_MAX_PAYLOAD on both sides: a peer
 * that sends more is broken or hostile and the connection is dropped.
 *
 * req_id is chosen by the daemon (non-zero, unique among in-flight requests)
 * and echoed on every frame the agent sends for that request; several
 * requests may be in flight at once. The frame that completes a request
 * carries PROTO_F_END. See docs/protocol.md for each message.
 */
#ifndef AIRLOCK_PROTO_H
#define AIRLOCK_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC 0x314B4C41u /* "ALK1" little-endian */
#define PROTO_VERSION 1
#define PROTO_HDR_LEN 16
#define PROTO_MAX_PAYLOAD (1u << 20) /* 1 MiB */
#define PROTO_DATA_CHUNK (256u * 1024u) /* preferred size of data frames */
/* FILE_GET flow control: the agent keeps at most this many FILE_DATA bytes
 * of one download unacknowledged (FILE_ACK). The daemon's per-request queue
 * (AGENT_QUEUE_MAX_BYTES) must hold a whole window, so its reader never has
 * to wait on a slow download client. */
#define PROTO_GET_WINDOW (1024u * 1024u)

#define PROTO_F_END 0x0001 /* last frame of this request */
#define PROTO_LOG_MAX 1024u /* longest LOG line a daemon accepts */

enum proto_type {
    /* daemon -> agent */
    PROTO_HELLO = 0x01,       /* {"version":1} -> OK {"version","agent","pid"} */
    PROTO_SHUTDOWN = 0x02,    /* {} -> OK, then the agent exits */
    PROTO_GUEST_SYNC = 0x03,  /* vm guests only: {"entropy":hex,"realtime_ns":n} -> OK, after a
                               * snapshot restore and after a resume (registry.c): entropy added and
                               * the CRNG reseeded, clock set */
    PROTO_RUN_CODE = 0x10,    /* {"code","language","context","timeout_ms","env","max_output"} */
    PROTO_EXEC = 0x11,        /* {"argv":[..]|"shell":"..","env","cwd","stdin","stdin_open","notify_start","pty":{rows,cols},
                               *  "timeout_ms","max_output"}; with notify_start, OK {"pid"} (no END) once the
                               *  process runs, before its output (a background process's handle) */
    PROTO_SIGNAL = 0x12,      /* {"target":req_id,"signal":n} -> OK */
    PROTO_STDIN = 0x13,       /* raw bytes for the stdin of the EXEC with this req_id, one started with
                               * "stdin_open":true; END closes that stdin. No reply; dropped if none */
    /* code contexts (independent REPLs, src/agent/context.c); a context is
     * {"id","language","cwd","default"} */
    PROTO_CTX_CREATE = 0x14,  /* {"language","cwd"} -> OK context (its runner started) */
    PROTO_CTX_LIST = 0x15,    /* {} -> OK {"contexts":[context...]} */
    PROTO_CTX_RESTART = 0x16, /* {"id"} -> OK context: a fresh runner, its state gone */
    PROTO_CTX_DELETE = 0x17,  /* {"id"} -> OK; the default context cannot be removed */
    PROTO_PTY_RESIZE = 0x18,  /* {"target":req_id,"rows":n,"cols":n} -> OK: the window size of an EXEC started
                               * with "pty"; NOT_FOUND if it is not a running pty command */
    PROTO_FILE_PUT = 0x20,    /* {"path","mode"} then FILE_DATA frames, last with END -> OK {"path","size"} */
    PROTO_FILE_GET = 0x21,    /* {"path"} -> OK {"size","mode"} (no END), FILE_DATA..., last with END;
                               * paced by FILE_ACK, cancelled by an ERROR from the daemon */
    PROTO_FILE_LIST = 0x22,   /* {"path","depth"} -> OK {"path","entries":[info...],"truncated"?} (info: FILE_STAT) */
    PROTO_FILE_DELETE = 0x23, /* {"path","recursive"} -> OK */
    PROTO_FILE_MKDIR = 0x24,  /* {"path"} -> OK {"path","created"} (parents made; an existing dir: created false) */
    PROTO_FILE_DATA = 0x25,   /* raw bytes, both directions */
    PROTO_FILE_ACK = 0x26,    /* {"bytes":n} with a FILE_GET's id: n more bytes consumed. No reply */
    PROTO_FILE_STAT = 0x27,   /* {"path"} -> OK {"path","name","type","size","mode","mode_octal","permissions",
                               *  "owner","group","uid","gid","mtime","modified_at","symlink_target"} (not followed) */
    PROTO_FILE_RENAME = 0x28, /* {"path","to","overwrite"} -> OK info of "to" (FILE_STAT's fields) */
    PROTO_FILE_WATCH = 0x29,  /* {"path","recursive"} -> OK {"path","recursive","dirs"} (no END), FILE_EVENT...;
                               * the last (if the directory goes) with END and "end"; cancelled by an ERROR */

    /* agent -> daemon */
    PROTO_STDOUT = 0x40, /* raw bytes of the request's stdout */
    PROTO_STDERR = 0x41, /* raw bytes of the request's stderr */
    PROTO_RESULT = 0x42, /* END. {"exit_code","error","results","duration_ms",
                          *       "stdout_truncated","stderr_truncated","timed_out","killed_signal"} */
    PROTO_OK = 0x43,     /* JSON reply to a control request */
    PROTO_ERROR = 0x44,  /* END. {"code","message"}: the request failed */
    PROTO_LOG = 0x45,    /* req_id 0. one line of the agent's own log (text, <= PROTO_LOG_MAX) */
    PROTO_FILE_EVENT = 0x46, /* a FILE_WATCH's {"events":[{"type","path","is_dir"}],"end"?} */
};

struct proto_hdr {
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint32_t req_id;
    uint32_t len;
};

/* Encode a header into 16 bytes. */
void proto_hdr_encode(const struct proto_hdr *h, uint8_t out[PROTO_HDR_LEN]);
/* Decode and validate (magic, version, len <= PROTO_MAX_PAYLOAD).
 * 0, or -EPROTO / -EMSGSIZE. */
int proto_hdr_decode(const uint8_t in[PROTO_HDR_LEN], struct proto_hdr *h);

/* Blocking helpers for a stream fd. proto_send writes header+payload with
 * one writev (callers serialize writers). proto_recv reads one frame; the
 * payload is malloc'd (NUL-terminated for convenience, len excludes it) and
 * returned in *payload. 0, -EPIPE on clean EOF, or -errno/-EPROTO. */
int proto_send(int fd, uint8_t type, uint16_t flags, uint32_t req_id, const void *payload, size_t len);
int proto_recv(int fd, struct proto_hdr *h, uint8_t **payload);

const char *proto_type_name(uint8_t type);

/* Agent error codes carried in PROTO_ERROR {"code": ...}; the daemon maps
 * them onto HTTP status codes (see docs/protocol.md). */
#define PROTO_ERR_NOT_FOUND "not_found"         /* 404 */
#define PROTO_ERR_INVALID "invalid_request"     /* 400 */
#define PROTO_ERR_PATH_ESCAPE "path_escape"     /* 400 */
#define PROTO_ERR_FORBIDDEN "path_forbidden"    /* 400: under /proc, /sys or /dev */
#define PROTO_ERR_DIGEST "digest_mismatch"      /* 400: an upload's bytes lack the sha256 given */
#define PROTO_ERR_TOO_LARGE "payload_too_large" /* 413 */
#define PROTO_ERR_NO_SPACE "no_space"           /* 507 */
#define PROTO_ERR_IS_DIR "is_directory"         /* 409 */
#define PROTO_ERR_NOT_DIR "not_directory"       /* 409 */
#define PROTO_ERR_EXISTS "exists"               /* 409 */
#define PROTO_ERR_BUSY "busy"                   /* 409 */
#define PROTO_ERR_TOO_MANY_CONTEXTS "too_many_contexts" /* 429: AGENT_MAX_CONTEXTS */
#define PROTO_ERR_INTERNAL "internal"           /* 500 */

#endif
