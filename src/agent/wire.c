/* wire.c - frames out on the control stream to airlockd (docs/protocol.md).
 *
 * Every reply, output frame and log line the agent sends goes through
 * agent_send. Writes are blocking: the daemon reads every sandbox's stream
 * on its own thread, so a full socket only applies back-pressure, and a
 * child whose pipe we do not read for a moment just waits. Downloads, the
 * one reply whose size the user picks, are credit-paced (FILE_ACK, files.c)
 * so a slow HTTP client never makes that back-pressure reach the loop.
 *
 * Also here, because every request handler shares them: the request's
 * {timeout_ms, max_output} limits and the mapping of an errno to a
 * protocol error code. This file calls nothing of the agent's but the
 * protocol encoder and the log.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "util.h"

void agent_send(struct agent *a, uint8_t type, uint16_t flags, uint32_t req_id, const void *buf, size_t len)
{
    if (a->quit && a->exit_code != 0)
        return; /* the stream is already known dead */
    int r = proto_send(a->ctl_fd, type, flags, req_id, buf, len);
    if (r < 0) {
        /* first mark the stream dead: the log line below is forwarded over
         * the same stream (agent_log_sink), which must not be tried again */
        a->quit = true;
        a->exit_code = 1;
        log_error("write %s frame to control fd: %s", proto_type_name(type), strerror(-r));
    }
}

void agent_log_sink(void *ctx, enum log_level lvl, const char *line)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char buf[PROTO_LOG_MAX];
    int n = snprintf(buf, sizeof(buf), "%s: %s", names[lvl], line);
    if (n < 0)
        return;
    agent_send(ctx, PROTO_LOG, 0, 0, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void agent_send_json(struct agent *a, uint8_t type, uint16_t flags, uint32_t req_id, json_t *obj)
{
    cleanup_free char *s = json_dumps(obj, JSON_COMPACT);
    if (!s) {
        log_error("json_dumps failed for %s reply to req %u", proto_type_name(type), req_id);
        static const char oom[] = "{\"code\":\"internal\",\"message\":\"cannot encode reply\"}";
        agent_send(a, PROTO_ERROR, PROTO_F_END, req_id, oom, sizeof(oom) - 1);
        return;
    }
    size_t len = strlen(s);
    if (len > PROTO_MAX_PAYLOAD) {
        agent_send_error(a, req_id, PROTO_ERR_TOO_LARGE, "reply of %zu bytes exceeds the frame limit", len);
        return;
    }
    agent_send(a, type, flags, req_id, s, len);
}

void agent_send_ok(struct agent *a, uint32_t req_id, json_t *obj)
{
    if (!obj)
        obj = json_object();
    agent_send_json(a, PROTO_OK, PROTO_F_END, req_id, obj);
    json_decref(obj);
}

void agent_send_error(struct agent *a, uint32_t req_id, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s, s:s}", "code", code, "message", msg);
    if (!o) /* msg was not valid UTF-8 (e.g. a user path): send it without */
        o = json_pack("{s:s, s:s}", "code", code, "message", "(message not valid UTF-8)");
    agent_send_json(a, PROTO_ERROR, PROTO_F_END, req_id, o);
    json_decref(o);
}

/* Keep a RESULT within PROTO_MAX_PAYLOAD: rich results (figures, HTML) go
 * first, then the traceback is shortened. Output is never in RESULT. */
static size_t json_size(json_t *o)
{
    return json_dumpb(o, NULL, 0, JSON_COMPACT);
}

void agent_send_result(struct agent *a, uint32_t req_id, json_t *obj)
{
    oomwatch_result(a, req_id, obj);
    if (json_size(obj) > PROTO_MAX_PAYLOAD) {
        json_object_set_new(obj, "results", json_array());
        json_object_set_new(obj, "results_truncated", json_true());
    }
    json_t *err = json_object_get(obj, "error");
    if (json_size(obj) > PROTO_MAX_PAYLOAD && json_is_object(err)) {
        json_object_set_new(err, "traceback", json_string("(traceback too large)"));
        const char *v = json_string_value(json_object_get(err, "value"));
        if (v && strlen(v) > 4096) {
            size_t n = 4096;
            while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
                n--; /* cut on a UTF-8 character boundary: jansson rejects broken UTF-8 */
            json_object_set_new(err, "value", json_stringn(v, n));
        }
    }
    agent_send_json(a, PROTO_RESULT, PROTO_F_END, req_id, obj);
    json_decref(obj);
}

int agent_parse_limits(json_t *req, uint64_t *timeout_ms, size_t *max_output, char *err, size_t errlen)
{
    json_t *t = json_object_get(req, "timeout_ms");
    json_t *m = json_object_get(req, "max_output");
    *timeout_ms = AGENT_DEFAULT_TIMEOUT_MS;
    *max_output = AGENT_DEFAULT_MAX_OUTPUT;
    if (t && !json_is_null(t)) {
        /* up to the daemon's longest sandbox lifetime (365 days): a call may
         * run as long as its sandbox lives, and the daemon ends it with it */
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > AGENT_MAX_TIMEOUT_MS) {
            snprintf(err, errlen, "timeout_ms must be an integer between 0 and %lld", (long long)AGENT_MAX_TIMEOUT_MS);
            return -EINVAL;
        }
        if (json_integer_value(t) > 0)
            *timeout_ms = (uint64_t)json_integer_value(t);
    }
    if (m && !json_is_null(m)) {
        if (!json_is_integer(m) || json_integer_value(m) < 0 || json_integer_value(m) > (1ll << 32)) {
            snprintf(err, errlen, "max_output must be an integer between 0 and 4294967296");
            return -EINVAL;
        }
        if (json_integer_value(m) > 0)
            *max_output = (size_t)json_integer_value(m);
    }
    return 0;
}

/* ---- errno -> protocol error ---------------------------------------------- */

static const char *errno_code(int e)
{
    switch (e) {
    case ENOENT: return PROTO_ERR_NOT_FOUND;
    case EISDIR: return PROTO_ERR_IS_DIR;
    case ENOTDIR: return PROTO_ERR_NOT_DIR;
    case EEXIST: return PROTO_ERR_EXISTS;
    case ENOSPC:
    case EDQUOT: return PROTO_ERR_NO_SPACE;
    case EXDEV: /* RESOLVE_BENEATH-style escapes */
    case ELOOP: /* magic links, or symlink loops: either way not followed */
        return PROTO_ERR_PATH_ESCAPE;
    case EFBIG: return PROTO_ERR_TOO_LARGE;
    case ENAMETOOLONG:
    case EINVAL:
    case EROFS:
    case EACCES:
    case EPERM:
    case ENOTEMPTY: return PROTO_ERR_INVALID;
    default: return PROTO_ERR_INTERNAL;
    }
}

void agent_send_errno(struct agent *a, uint32_t req_id, int err, const char *op, const char *path)
{
    if (err == ELOOP || err == EXDEV)
        agent_send_error(a, req_id, PROTO_ERR_PATH_ESCAPE, "%s %s: path leaves the sandbox or loops", op, path);
    else
        agent_send_error(a, req_id, errno_code(err), "%s %s: %s", op, path, strerror(err));
}
