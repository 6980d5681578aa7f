/* ctl.c - the control stream in: frames from airlockd, dispatched to the
 * subsystem that serves them (context.c, job.c, files.c).
 *
 * The control fd is the first watch registered (ctl_start, before the
 * REPL's pipes exist), so each turn of the loop reads it before any
 * child's output: a SIGNAL or an abort does not wait behind a flood of
 * output. EOF or a malformed header ends the agent: the stream cannot be
 * resynchronised, and for PID 1 exiting ends the sandbox.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"

/* ---- requests ------------------------------------------------------------- */

static void handle_hello(struct agent *a, uint32_t req_id)
{
    agent_send_ok(a, req_id, json_pack("{s:i, s:s, s:i}", "version", PROTO_VERSION, "agent", AGENT_NAME, "pid", (int)getpid()));
}

static void handle_run_code(struct agent *a, uint32_t req_id, json_t *req)
{
    json_t *lang = json_object_get(req, "language");
    const char *l = lang && !json_is_null(lang) ? json_string_value(lang) : "python";
    if (!l) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "language must be a string");
        return;
    }
    if (!json_is_string(json_object_get(req, "code"))) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "code must be a string");
        return;
    }
    json_t *ctx = json_object_get(req, "context");
    if (strcmp(l, "bash") == 0 && (!ctx || json_is_null(ctx)))
        job_handle_run_bash(a, req_id, req); /* a fresh process, no context */
    else
        context_handle_run(a, req_id, req); /* a REPL: the context named, or the language's default */
}

static void handle_signal(struct agent *a, uint32_t req_id, json_t *req)
{
    json_t *t = json_object_get(req, "target");
    json_t *s = json_object_get(req, "signal");
    if (!json_is_integer(t) || !json_is_integer(s) || json_integer_value(s) < 1 || json_integer_value(s) > 64) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "target must be a request id and signal an integer 1..64");
        return;
    }
    uint32_t target = (uint32_t)json_integer_value(t);
    int sig = (int)json_integer_value(s);
    pid_t pgid = repl_pgid_of(a, target);
    if (pgid <= 0)
        pgid = job_pgid_of(a, target);
    if (pgid <= 0) {
        agent_send_error(a, req_id, PROTO_ERR_NOT_FOUND, "no running request %u", target);
        return;
    }
    if (kill(-pgid, sig) < 0 && errno != ESRCH) {
        agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "kill -%d %d: %s", sig, (int)pgid, strerror(errno));
        return;
    }
    agent_send_ok(a, req_id, NULL);
}

/* Frames that continue a transfer: upload data or abort, download ack or
 * cancel. They never get a reply of their own. */
static bool is_transfer_frame(uint8_t type)
{
    return type == PROTO_FILE_DATA || type == PROTO_ERROR || type == PROTO_FILE_ACK;
}

static void dispatch(struct agent *a, const struct proto_hdr *h, const uint8_t *payload)
{
    log_debug("frame %s req %u len %u", proto_type_name(h->type), h->req_id, h->len);
    if (h->type == PROTO_STDIN) { /* raw bytes for a running command */
        job_stdin_frame(a, h, payload);
        return;
    }
    if (is_transfer_frame(h->type)) {
        if (!watch_handle_peer_frame(a, h)) /* a watch's cancel, else a transfer's frame */
            files_handle_peer_frame(a, h, payload);
        return;
    }
    if (h->req_id == 0) {
        agent_send_error(a, 0, PROTO_ERR_INVALID, "req_id must be non-zero");
        return;
    }
    json_error_t jerr;
    json_t *req = json_loadb((const char *)payload, h->len, 0, &jerr);
    if (!req || !json_is_object(req)) {
        json_decref(req);
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "payload is not a JSON object: %s", req ? "not an object" : jerr.text);
        return;
    }
    switch (h->type) {
    case PROTO_HELLO: handle_hello(a, h->req_id); break;
    case PROTO_SHUTDOWN:
        agent_send_ok(a, h->req_id, NULL);
        a->quit = true;
        break;
    case PROTO_GUEST_SYNC: guest_sync(a, h->req_id, req); break;
    case PROTO_RUN_CODE:
        oomwatch_call_started(a, h->req_id);
        meminfo_call_started(a);
        handle_run_code(a, h->req_id, req);
        break;
    case PROTO_EXEC:
        oomwatch_call_started(a, h->req_id);
        meminfo_call_started(a);
        job_handle_exec(a, h->req_id, req);
        break;
    case PROTO_SIGNAL: handle_signal(a, h->req_id, req); break;
    case PROTO_CTX_CREATE:
    case PROTO_CTX_LIST:
    case PROTO_CTX_RESTART:
    case PROTO_CTX_DELETE: context_handle(a, h, req); break;
    case PROTO_PTY_RESIZE: job_handle_resize(a, h->req_id, req); break;
    case PROTO_FILE_PUT:
    case PROTO_FILE_GET:
    case PROTO_FILE_LIST:
    case PROTO_FILE_DELETE:
    case PROTO_FILE_MKDIR:
    case PROTO_FILE_STAT:
    case PROTO_FILE_RENAME: files_handle(a, h, req); break;
    case PROTO_FILE_WATCH: watch_handle(a, h, req); break;
    default:
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "unexpected frame type 0x%02x (%s)", h->type, proto_type_name(h->type));
        break;
    }
    json_decref(req);
}

/* One frame from the daemon. EOF or a malformed header ends the agent: the
 * stream cannot be resynchronised, and for PID 1 exiting ends the sandbox. */
static void read_control_frame(struct agent *a)
{
    struct proto_hdr h;
    uint8_t *payload = NULL;
    int r = proto_recv(a->ctl_fd, &h, &payload);
    if (r == -EPIPE) {
        log_debug("control stream closed");
        a->quit = true;
        return;
    }
    if (r < 0) {
        log_error("control stream: %s; exiting", r == -EPROTO ? "bad frame header" : r == -EMSGSIZE ? "frame too large" : strerror(-r));
        a->quit = true;
        a->exit_code = 1;
        return;
    }
    dispatch(a, &h, payload);
    free(payload);
}

/* ---- children ------------------------------------------------------------- */


static void on_control_readable(struct agent *a, void *ctx, short revents)
{
    (void)ctx;
    if (revents & (POLLIN | POLLHUP | POLLERR))
        read_control_frame(a);
}

int ctl_start(struct agent *a)
{
    int h = ev_watch(a, a->ctl_fd, POLLIN, on_control_readable, NULL);
    if (h < 0)
        return h;
    return files_init(a);
}
