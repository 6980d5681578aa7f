/* loop.c - the agent's event loop: control frames in, replies out, children
 * reaped, timeouts fired.
 *
 * One poll() per iteration over a pollfd array rebuilt from the agent state
 * (a handful of fds; rebuilding is cheaper to reason about than keeping an
 * epoll set in sync with children that come and go). Writes to the control
 * stream are blocking: the daemon reads every sandbox's stream on its own
 * thread, so a full socket only applies back-pressure, and a child whose
 * pipe we do not read for a moment just waits. Downloads, the one reply
 * whose size the user picks, are credit-paced (FILE_ACK) so a slow HTTP
 * client never makes that back-pressure reach the loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"

/* ---- replies ---------------------------------------------------------------- */

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

int agent_parse_limits(json_t *req, unsigned *timeout_ms, size_t *max_output, char *err, size_t errlen)
{
    json_t *t = json_object_get(req, "timeout_ms");
    json_t *m = json_object_get(req, "max_output");
    *timeout_ms = AGENT_DEFAULT_TIMEOUT_MS;
    *max_output = AGENT_DEFAULT_MAX_OUTPUT;
    if (t && !json_is_null(t)) {
        /* up to 24 h; the daemon enforces the sandbox lifetime anyway */
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > 86400000) {
            snprintf(err, errlen, "timeout_ms must be an integer between 0 and 86400000");
            return -EINVAL;
        }
        if (json_integer_value(t) > 0)
            *timeout_ms = (unsigned)json_integer_value(t);
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

void agent_kill_children(struct agent *a)
{
    repl_kill(a);
    job_kill_all(a);
    /* As PID 1 our exit kills the namespace anyway; doing it first also takes
     * orphans that started their own sessions. kill(-1) outside PID 1 would
     * hit the whole host, so only here. */
    if (a->is_pid1)
        (void)kill(-1, SIGKILL);
}

/* ---- requests ------------------------------------------------------------- */

static void handle_hello(struct agent *a, uint32_t req_id)
{
    agent_send_ok(a, req_id, json_pack("{s:i, s:s, s:i}", "version", PROTO_VERSION, "agent", AGENT_NAME, "pid", (int)getpid()));
}

static void handle_run_code(struct agent *a, uint32_t req_id, json_t *req)
{
    json_t *lang = json_object_get(req, "language");
    const char *l = lang ? json_string_value(lang) : "python";
    if (!l) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "language must be a string");
        return;
    }
    if (!json_is_string(json_object_get(req, "code"))) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "code must be a string");
        return;
    }
    if (strcmp(l, "python") == 0)
        repl_handle_run(a, req_id, req);
    else if (strcmp(l, "bash") == 0)
        job_handle_run_bash(a, req_id, req);
    else
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "language must be \"python\" or \"bash\"");
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
    pid_t pgid = 0;
    if (target != 0 && a->repl.req_id == target && a->repl.pid > 0) {
        pgid = a->repl.pid;
    } else {
        struct job *j = job_find_req(a, target);
        if (j && !j->exited)
            pgid = j->pid;
    }
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
    if (is_transfer_frame(h->type)) {
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
    case PROTO_RUN_CODE: handle_run_code(a, h->req_id, req); break;
    case PROTO_EXEC: job_handle_exec(a, h->req_id, req); break;
    case PROTO_SIGNAL: handle_signal(a, h->req_id, req); break;
    case PROTO_FILE_PUT:
    case PROTO_FILE_GET:
    case PROTO_FILE_LIST:
    case PROTO_FILE_DELETE:
    case PROTO_FILE_MKDIR: files_handle(a, h, req); break;
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

/* Reap every child that changed state, including orphans reparented to us
 * (as PID 1 or subreaper): a zombie nobody waits for would leak a pid. */
static void reap_children(struct agent *a)
{
    struct signalfd_siginfo si;
    while (read(a->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        ; /* the content does not matter: waitpid below finds every exit */
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            break;
        if (pid == a->repl.pid) {
            repl_on_exit(a, st);
            continue;
        }
        struct job *j = job_find_pid(a, pid);
        if (j)
            job_on_exit(a, j, st);
        else
            log_debug("reaped orphan %d", (int)pid);
    }
}

/* ---- the loop ------------------------------------------------------------- */

void agent_watch(struct agent *a, int fd, short events, enum watch_kind kind, struct job *job)
{
    if (fd < 0 || a->npfds >= AGENT_MAX_POLL)
        return;
    a->pfds[a->npfds] = (struct pollfd){.fd = fd, .events = events};
    a->watches[a->npfds] = (struct watch){.kind = kind, .job = job};
    a->npfds++;
}

static void build_pollset(struct agent *a)
{
    a->npfds = 0;
    agent_watch(a, a->ctl_fd, POLLIN, W_CTL, NULL);
    agent_watch(a, a->sig_fd, POLLIN, W_SIG, NULL);
    repl_add_pollfds(a);
    for (struct job *j = a->jobs; j; j = j->next) {
        agent_watch(a, j->out.fd, POLLIN, W_JOB_OUT, j);
        agent_watch(a, j->err.fd, POLLIN, W_JOB_ERR, j);
        agent_watch(a, j->stdin_fd, POLLOUT, W_JOB_IN, j);
    }
}

static int poll_timeout(struct agent *a, bool downloads_ready)
{
    if (downloads_ready)
        return 0;
    uint64_t next = repl_next_deadline(a);
    for (struct job *j = a->jobs; j; j = j->next)
        if (!j->exited && (next == 0 || j->deadline_ms < next))
            next = j->deadline_ms;
    if (next == 0)
        return -1;
    uint64_t now = now_mono_ms();
    return next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
}

/* A job's pointer may be freed by a handler (job finished), so a slot whose
 * job is gone is skipped by checking it is still on the list. */
static bool job_alive(struct agent *a, struct job *j)
{
    for (struct job *k = a->jobs; k; k = k->next)
        if (k == j)
            return true;
    return false;
}

static void dispatch_ready(struct agent *a, int i)
{
    struct watch *w = &a->watches[i];
    short rev = a->pfds[i].revents;
    if (!rev)
        return;
    switch (w->kind) {
    case W_CTL:
        if (rev & (POLLIN | POLLHUP | POLLERR))
            read_control_frame(a);
        break;
    case W_SIG: reap_children(a); break;
    case W_REPL_OUT:
        if (a->repl.out.fd == a->pfds[i].fd)
            (void)outstream_pump(a, &a->repl.out, a->repl.req_id, a->repl.max_output);
        break;
    case W_REPL_ERR:
        if (a->repl.err.fd == a->pfds[i].fd)
            (void)outstream_pump(a, &a->repl.err, a->repl.req_id, a->repl.max_output);
        break;
    case W_REPL_RES:
        if (a->repl.res_fd == a->pfds[i].fd)
            repl_on_result_readable(a);
        break;
    case W_JOB_OUT:
    case W_JOB_ERR:
        if (job_alive(a, w->job)) {
            struct outstream *s = w->kind == W_JOB_OUT ? &w->job->out : &w->job->err;
            if (s->fd == a->pfds[i].fd) {
                (void)outstream_pump(a, s, w->job->req_id, w->job->max_output);
                job_finish_if_done(a, w->job);
            }
        }
        break;
    case W_JOB_IN:
        if (job_alive(a, w->job) && w->job->stdin_fd == a->pfds[i].fd)
            job_on_stdin_writable(a, w->job);
        break;
    }
}

int agent_loop(struct agent *a)
{
    bool downloads_ready = false;
    while (!a->quit) {
        build_pollset(a);
        int n = poll(a->pfds, (nfds_t)a->npfds, poll_timeout(a, downloads_ready));
        if (n < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            a->exit_code = 1;
            return -errno;
        }
        /* the control stream first: a SIGNAL or an abort should not wait
         * behind a flood of output */
        for (int i = 0; n > 0 && i < a->npfds && !a->quit; i++)
            dispatch_ready(a, i);
        uint64_t now = now_mono_ms();
        repl_on_timer(a, now);
        job_on_timer(a, now);
        downloads_ready = files_pump_downloads(a);
    }
    return 0;
}
