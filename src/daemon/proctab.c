/* proctab.c - a sandbox's background processes (proctab.h).
 *
 * One lock per table guards everything in it: the list, each process's
 * state and output buffer, the readers' view of them; one condition
 * variable wakes waiters and readers when output or an exit arrives.
 *
 *   t->list:  bgproc -> bgproc -> ...         oldest first
 *   bgproc:   head -> chunk -> chunk -> tail  output, oldest first
 *             chunk {off, len, type, data}:   bytes [off, off+len) of the
 *                                             process's output sequence
 *             base_off: first byte still held (everything before it was
 *             evicted); end_off: bytes received in all.
 *
 * A pump thread per running process (detached) moves the agent's frames in.
 * It holds no reference: the table waits for every pump to finish before it
 * is freed (proctab_free), and an entry is evicted only once its pump is
 * done and nobody holds it (refs). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_client.h"
#include "log.h"
#include "proctab.h"
#include "proto.h"
#include "store.h"
#include "utf8.h"
#include "util.h"

#define PUMP_SLICE_MS 1000

struct pchunk {
    struct pchunk *next;
    uint64_t off;
    uint32_t len;
    uint8_t type; /* PROTO_STDOUT or PROTO_STDERR */
    uint8_t data[];
};

struct bgproc {
    struct bgproc *next;
    unsigned refs;        /* proctab_get / readers */
    uint32_t id;          /* the agent's request id */
    int pid;              /* in the sandbox's pid namespace */
    json_t *desc;         /* cmd, cwd, started_at */
    struct agent_conn *conn;
    struct agent_req *areq; /* the pump's */
    bool running;
    bool pump_done;
    bool stdin_open;
    bool lost;            /* output cut by the agent or dropped by a full queue */
    json_t *result;       /* once exited: the exit fields */
    proc_end_fn *on_end;  /* the pump's, once */
    void *end_ctx;
    struct pchunk *head, *tail;
    uint64_t base_off, end_off;
    size_t held;          /* bytes of chunks, overhead included, <= PROC_OUTPUT_BUFFER */
};

struct proctab {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct bgproc *list;
    unsigned starting;    /* starts in progress: counted against the cap */
    unsigned pumps;       /* pump threads not yet done */
    bool closing;
};

int proctab_new(struct proctab **out)
{
    struct proctab *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    pthread_mutex_init(&t->lock, NULL);
    cond_init_monotonic(&t->cond);
    *out = t;
    return 0;
}

static void chunks_free(struct bgproc *p)
{
    while (p->head) {
        struct pchunk *c = p->head;
        p->head = c->next;
        free(c);
    }
    p->tail = NULL;
}

static void bgproc_free(struct bgproc *p)
{
    chunks_free(p);
    json_decref(p->desc);
    json_decref(p->result);
    free(p);
}

void proctab_free(struct proctab *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->closing = true;
    while (t->pumps > 0) /* each notices within PUMP_SLICE_MS */
        pthread_cond_wait(&t->cond, &t->lock);
    pthread_mutex_unlock(&t->lock);
    while (t->list) {
        struct bgproc *p = t->list;
        t->list = p->next;
        bgproc_free(p);
    }
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* ---- the pump */

/* under t->lock */
static void append_output(struct bgproc *p, uint8_t type, const uint8_t *data, size_t len)
{
    if (len == 0)
        return;
    size_t need = sizeof(struct pchunk) + len;
    if (need > PROC_OUTPUT_BUFFER) { /* a frame larger than the whole buffer: keep its tail */
        size_t keep = PROC_OUTPUT_BUFFER - sizeof(struct pchunk);
        chunks_free(p);
        p->held = 0;
        p->end_off += len - keep;
        p->base_off = p->end_off;
        data += len - keep;
        len = keep;
        need = PROC_OUTPUT_BUFFER;
    }
    while (p->head && p->held + need > PROC_OUTPUT_BUFFER) {
        struct pchunk *c = p->head;
        p->head = c->next;
        if (!p->head)
            p->tail = NULL;
        p->held -= sizeof(*c) + c->len;
        p->base_off = c->off + c->len;
        free(c);
    }
    struct pchunk *c = malloc(need);
    if (!c) { /* counted as received, not held: readers are told it is gone */
        p->end_off += len;
        p->base_off = p->end_off;
        chunks_free(p);
        p->held = 0;
        return;
    }
    c->next = NULL;
    c->off = p->end_off;
    c->len = (uint32_t)len;
    c->type = type;
    memcpy(c->data, data, len);
    if (p->tail)
        p->tail->next = c;
    else
        p->head = c;
    p->tail = c;
    p->held += need;
    p->end_off += len;
}

/* The exit fields from a RESULT payload (the agent is only partly trusted:
 * only the fields we know, of the types we expect). */
static json_t *result_from(const struct agent_frame *f)
{
    json_auto_t *res = json_loadb((const char *)f->data, f->len, 0, NULL);
    json_t *ec = json_object_get(res, "exit_code");
    json_t *error = json_object_get(res, "error");
    json_t *ks = json_object_get(res, "killed_signal");
    return json_pack("{s:o,s:o,s:o,s:b,s:I,s:b,s:b}", "exit_code", json_is_integer(ec) ? json_incref(ec) : json_null(),
                     "error", json_is_object(error) ? json_incref(error) : json_null(), "killed_signal",
                     json_is_integer(ks) ? json_incref(ks) : json_null(), "timed_out",
                     json_is_true(json_object_get(res, "timed_out")), "duration_ms",
                     json_integer_value(json_object_get(res, "duration_ms")), "stdout_truncated",
                     json_is_true(json_object_get(res, "stdout_truncated")), "stderr_truncated",
                     json_is_true(json_object_get(res, "stderr_truncated")));
}

static json_t *ended_result(const char *name, const char *msg)
{
    return json_pack("{s:n,s:{s:s,s:s,s:s},s:n,s:b,s:i,s:b,s:b}", "exit_code", "error", "name", name, "value", msg,
                     "traceback", "", "killed_signal", "timed_out", 0, "duration_ms", 0, "stdout_truncated", 0,
                     "stderr_truncated", 0);
}

struct pump_arg {
    struct proctab *t;
    struct bgproc *p;
};

static void *pump_main(void *arg)
{
    struct proctab *t = ((struct pump_arg *)arg)->t;
    struct bgproc *p = ((struct pump_arg *)arg)->p;
    free(arg);
    json_t *result = NULL;
    for (;;) {
        struct agent_frame *f = NULL;
        int r = agent_req_next(p->areq, now_mono_ms() + PUMP_SLICE_MS, &f);
        if (r == -ETIMEDOUT) {
            pthread_mutex_lock(&t->lock);
            bool closing = t->closing;
            pthread_mutex_unlock(&t->lock);
            if (closing) {
                result = ended_result("SandboxEnded", "the sandbox ended while the process ran");
                break;
            }
            continue;
        }
        if (r < 0) {
            result = ended_result("SandboxEnded", "the sandbox ended while the process ran");
            break;
        }
        if (f->type == PROTO_STDOUT || f->type == PROTO_STDERR) {
            bool dropped = agent_req_output_dropped(p->areq, f->type);
            pthread_mutex_lock(&t->lock);
            if (dropped)
                p->lost = true;
            append_output(p, f->type, f->data, f->len);
            pthread_cond_broadcast(&t->cond);
            pthread_mutex_unlock(&t->lock);
        } else if (f->type == PROTO_RESULT) {
            result = result_from(f);
        } else if (f->type == PROTO_ERROR) {
            struct op_error oe = {0};
            (void)op_error_from_agent(&oe, (const char *)f->data, f->len);
            result = ended_result("AgentError", oe.msg);
        }
        bool end = (f->flags & PROTO_F_END) != 0;
        agent_frame_free(f);
        if (end)
            break;
    }
    /* both asked (each query clears its flag) */
    bool lost_out = agent_req_output_dropped(p->areq, PROTO_STDOUT);
    bool lost_err = agent_req_output_dropped(p->areq, PROTO_STDERR);
    bool lost = lost_out || lost_err;
    agent_req_free(p->areq);
    pthread_mutex_lock(&t->lock);
    p->areq = NULL;
    if (!result)
        result = ended_result("InternalError", "out of memory");
    if (result && (json_is_true(json_object_get(result, "stdout_truncated")) ||
                   json_is_true(json_object_get(result, "stderr_truncated"))))
        lost = true;
    if (lost)
        p->lost = true;
    char ts[40];
    format_time(now_wall_ms(), true, ts, sizeof(ts));
    if (result)
        json_object_set_new(result, "ended_at", json_string(ts));
    pthread_mutex_unlock(&t->lock);
    if (p->on_end) /* before pumps-- : the table's free waits for it */
        p->on_end(p->end_ctx, p->pid, result);
    pthread_mutex_lock(&t->lock);
    p->result = result;
    p->running = false;
    p->stdin_open = false;
    p->pump_done = true;
    t->pumps--;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    return NULL; /* nothing of t or p is touched after the unlock */
}

/* ---- starting */

static unsigned running_locked(struct proctab *t)
{
    unsigned n = t->starting;
    for (struct bgproc *p = t->list; p; p = p->next)
        n += p->running;
    return n;
}

/* Forget the oldest exited processes beyond PROC_MAX_EXITED that nobody
 * holds. Under t->lock. */
static void evict_locked(struct proctab *t)
{
    unsigned exited = 0;
    for (struct bgproc *p = t->list; p; p = p->next)
        exited += p->pump_done;
    for (struct bgproc **pp = &t->list; *pp && exited > PROC_MAX_EXITED;) {
        struct bgproc *p = *pp;
        if (p->pump_done && p->refs == 0) {
            *pp = p->next;
            bgproc_free(p);
            exited--;
        } else {
            pp = &p->next;
        }
    }
}

/* The agent's start notice, or why there is none. */
static int await_start(struct agent_req *areq, int *pid, struct op_error *err)
{
    struct buf errtext = {0};
    uint64_t deadline = now_mono_ms() + PROC_START_TIMEOUT_MS;
    int ret;
    for (;;) {
        cleanup_frame struct agent_frame *f = NULL;
        int r = agent_req_next(areq, deadline, &f);
        if (r == -ETIMEDOUT) {
            ret = op_error_set(err, r, ERR_AGENT_TIMEOUT, "the sandbox agent did not start the process in time");
            break;
        }
        if (r < 0) {
            ret = op_error_set(err, -EPIPE, ERR_AGENT_GONE, "the sandbox agent is gone");
            break;
        }
        if (f->type == PROTO_OK) {
            json_auto_t *ok = json_loadb((const char *)f->data, f->len, 0, NULL);
            json_t *jp = json_object_get(ok, "pid");
            if (!json_is_integer(jp) || json_integer_value(jp) <= 0 || json_integer_value(jp) > (1 << 22)) {
                ret = op_error_set(err, -EPROTO, ERR_INTERNAL, "the agent's start notice has no pid");
                break;
            }
            *pid = (int)json_integer_value(jp);
            ret = 0;
            break;
        }
        if (f->type == PROTO_ERROR) {
            ret = op_error_from_agent(err, (const char *)f->data, f->len);
            break;
        }
        if (f->type == PROTO_STDERR) { /* "airlock: execve ...": the program could not run */
            if (errtext.len < 1024)
                (void)buf_append(&errtext, f->data, f->len < 1024 ? f->len : 1024);
            continue;
        }
        if (f->type == PROTO_RESULT) {
            size_t n = errtext.len;
            while (n > 0 && errtext.data[n - 1] == '\n')
                n--;
            ret = op_error_set(err, -ENOEXEC, ERR_AGENT, "%.*s", (int)n,
                               n ? errtext.data : "the process could not be started");
            snprintf(err->agent_code, sizeof(err->agent_code), "%s", PROTO_ERR_INVALID);
            break;
        }
    }
    buf_free(&errtext);
    return ret;
}

int proctab_start(struct proctab *t, struct agent_conn *c, json_t *payload, json_t *desc, proc_end_fn *on_end,
                  void *end_ctx, int *pid_out, uint32_t *id_out, struct op_error *err)
{
    pthread_mutex_lock(&t->lock);
    if (running_locked(t) >= PROC_MAX_RUNNING) {
        pthread_mutex_unlock(&t->lock);
        if (on_end)
            on_end(end_ctx, 0, NULL);
        int r = op_error_set(err, -EAGAIN, ERR_AGENT, "too many background processes in this sandbox (limit %d): "
                             "wait for or kill one first", PROC_MAX_RUNNING);
        snprintf(err->agent_code, sizeof(err->agent_code), "%s", PROTO_ERR_BUSY);
        return r;
    }
    t->starting++;
    pthread_mutex_unlock(&t->lock);

    struct bgproc *p = calloc(1, sizeof(*p));
    struct pump_arg *pa = malloc(sizeof(*pa));
    struct agent_req *areq = NULL;
    int pid = 0, r;
    json_object_set_new(payload, "stdin_open", json_true());
    json_object_set_new(payload, "notify_start", json_true());
    json_object_set_new(payload, "max_output", json_integer((json_int_t)PROC_AGENT_MAX_OUTPUT));
    if (!p || !pa) {
        r = op_error_set(err, -ENOMEM, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    r = agent_req_start(c, PROTO_EXEC, payload, &areq);
    if (r < 0) {
        if (r == -EMSGSIZE)
            op_error_set(err, r, ERR_TOO_LARGE, "the request is larger than the agent protocol allows (1 MiB)");
        else
            op_error_set(err, r, ERR_AGENT_GONE, "send the command to the agent: %s", strerror(-r));
        goto fail;
    }
    r = await_start(areq, &pid, err);
    if (r < 0)
        goto fail;
    char ts[40];
    format_time(now_wall_ms(), true, ts, sizeof(ts));
    p->desc = json_deep_copy(desc);
    if (!p->desc)
        p->desc = json_object();
    json_object_set_new(p->desc, "started_at", json_string(ts));
    p->id = agent_req_id(areq);
    p->pid = pid;
    p->conn = c;
    p->areq = areq;
    p->running = p->stdin_open = true;
    p->on_end = on_end;
    p->end_ctx = end_ctx;
    pa->t = t;
    pa->p = p;

    pthread_mutex_lock(&t->lock);
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    r = -pthread_create(&th, &attr, pump_main, pa);
    pthread_attr_destroy(&attr);
    t->starting--;
    if (r < 0) {
        pthread_mutex_unlock(&t->lock);
        op_error_set(err, r, ERR_INTERNAL, "start the output pump: %s", strerror(-r));
        json_t *sig = json_pack("{s:I,s:i}", "target", (json_int_t)p->id, "signal", SIGKILL);
        (void)agent_send_oneway(c, PROTO_SIGNAL, sig);
        json_decref(sig);
        agent_req_free(areq);
        bgproc_free(p);
        free(pa);
        if (on_end)
            on_end(end_ctx, 0, NULL);
        return r;
    }
    t->pumps++;
    struct bgproc **pp = &t->list;
    while (*pp)
        pp = &(*pp)->next;
    *pp = p;
    evict_locked(t);
    pthread_mutex_unlock(&t->lock);
    *pid_out = pid;
    if (id_out)
        *id_out = p->id;
    return 0;

fail:
    if (areq && pid > 0) { /* started, but we cannot keep it */
        json_t *sig = json_pack("{s:I,s:i}", "target", (json_int_t)agent_req_id(areq), "signal", SIGKILL);
        (void)agent_send_oneway(c, PROTO_SIGNAL, sig);
        json_decref(sig);
    }
    agent_req_free(areq);
    free(p);
    free(pa);
    pthread_mutex_lock(&t->lock);
    t->starting--;
    pthread_mutex_unlock(&t->lock);
    if (on_end)
        on_end(end_ctx, 0, NULL);
    return r;
}

/* ---- lookups */

struct bgproc *proctab_get(struct proctab *t, long long key, bool by_id)
{
    struct bgproc *found = NULL;
    pthread_mutex_lock(&t->lock);
    for (struct bgproc *p = t->list; p; p = p->next) {
        if ((by_id ? (long long)p->id : (long long)p->pid) != key)
            continue;
        if (!found || p->running) /* a pid reused by a new process: the running one */
            found = p;
    }
    if (found)
        found->refs++;
    pthread_mutex_unlock(&t->lock);
    return found;
}

void proctab_put(struct proctab *t, struct bgproc *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&t->lock);
    p->refs--;
    evict_locked(t);
    pthread_mutex_unlock(&t->lock);
}

/* internal: also the desc keys starting with '_' (the E2B listener's own) */
static json_t *info_locked(const struct bgproc *p, bool internal)
{
    json_t *o = json_pack("{s:i,s:I,s:s,s:b}", "pid", p->pid, "id", (json_int_t)p->id, "state",
                          p->running ? "running" : "exited", "stdin_open", p->stdin_open);
    if (!o)
        return NULL;
    const char *k;
    json_t *v;
    json_object_foreach(p->desc, k, v)
        if (internal || k[0] != '_')
            json_object_set(o, k, v);
    json_object_set_new(o, "output", json_pack("{s:I,s:I,s:I,s:i,s:b}", "bytes", (json_int_t)p->end_off, "held",
                                                (json_int_t)(p->end_off - p->base_off), "evicted",
                                                (json_int_t)p->base_off, "buffer_limit", (int)PROC_OUTPUT_BUFFER,
                                                "complete", !p->lost && p->base_off == 0));
    if (p->result)
        json_object_update(o, p->result);
    return o;
}

json_t *proctab_info(struct proctab *t, struct bgproc *p)
{
    pthread_mutex_lock(&t->lock);
    json_t *o = info_locked(p, false);
    pthread_mutex_unlock(&t->lock);
    return o;
}

json_t *proctab_list(struct proctab *t, bool running_only, bool internal)
{
    json_t *a = json_array();
    pthread_mutex_lock(&t->lock);
    for (struct bgproc *p = t->list; a && p; p = p->next)
        if (!running_only || p->running)
            json_array_append_new(a, info_locked(p, internal));
    pthread_mutex_unlock(&t->lock);
    return json_pack("{s:o}", "processes", a ? a : json_array());
}

bool proctab_wait(struct proctab *t, struct bgproc *p, uint64_t deadline_ms, bool (*gone)(void *), void *ctx)
{
    pthread_mutex_lock(&t->lock);
    while (!p->pump_done) {
        uint64_t now = now_mono_ms();
        if (now >= deadline_ms)
            break;
        uint64_t until = now + 1000 < deadline_ms ? now + 1000 : deadline_ms;
        struct timespec ts = mono_deadline(until);
        (void)pthread_cond_timedwait(&t->cond, &t->lock, &ts);
        if (!p->pump_done && gone && gone(ctx))
            break;
    }
    bool done = p->pump_done;
    pthread_mutex_unlock(&t->lock);
    return done;
}

int proctab_signal(struct proctab *t, struct bgproc *p, int sig)
{
    pthread_mutex_lock(&t->lock);
    bool running = p->running;
    uint32_t id = p->id;
    pthread_mutex_unlock(&t->lock);
    if (!running)
        return -ESRCH;
    json_t *m = json_pack("{s:I,s:i}", "target", (json_int_t)id, "signal", sig);
    int r = m ? agent_send_oneway(p->conn, PROTO_SIGNAL, m) : -ENOMEM;
    json_decref(m);
    return r;
}

int proctab_stdin(struct proctab *t, struct bgproc *p, const void *data, size_t len, bool eof)
{
    pthread_mutex_lock(&t->lock);
    int r = !p->running ? -ESRCH : !p->stdin_open ? -EBADF : 0;
    if (r == 0 && eof)
        p->stdin_open = false;
    uint32_t id = p->id;
    pthread_mutex_unlock(&t->lock);
    if (r < 0)
        return r;
    /* one frame each; the agent queues up to 4 MiB the process has not read */
    const uint8_t *d = data;
    do {
        size_t n = len < PROTO_DATA_CHUNK ? len : PROTO_DATA_CHUNK;
        bool last = n == len;
        r = agent_send_for(p->conn, PROTO_STDIN, id, last && eof ? PROTO_F_END : 0, d, n);
        d += n;
        len -= n;
    } while (r == 0 && len > 0);
    return r;
}

int proctab_resize(struct proctab *t, struct bgproc *p, unsigned rows, unsigned cols, struct op_error *err)
{
    pthread_mutex_lock(&t->lock);
    bool running = p->running;
    bool pty = json_is_true(json_object_get(p->desc, "pty"));
    uint32_t id = p->id;
    pthread_mutex_unlock(&t->lock);
    if (!running)
        return -ESRCH;
    if (!pty)
        return -ENOTTY;
    json_auto_t *m = json_pack("{s:I,s:i,s:i}", "target", (json_int_t)id, "rows", (int)rows, "cols", (int)cols);
    json_t *reply = NULL;
    int r = agent_call(p->conn, PROTO_PTY_RESIZE, m, 5000, &reply, err);
    json_decref(reply);
    if (r == -EREMOTEIO && !strcmp(err->agent_code, PROTO_ERR_NOT_FOUND))
        return -ESRCH; /* it exited meanwhile */
    return r;
}

/* ---- readers */

struct proc_reader {
    struct proctab *t;
    struct bgproc *p;
    uint64_t pos;
    bool lost;          /* this reader missed bytes */
    struct utf8_stream u8[2];
    bool flushed, sent_result, sent_exit;
};

struct proc_reader *proctab_reader_new(struct proctab *t, struct bgproc *p, uint64_t from)
{
    struct proc_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->t = t;
    r->p = p;
    r->pos = from;
    pthread_mutex_lock(&t->lock);
    p->refs++;
    pthread_mutex_unlock(&t->lock);
    return r;
}

void proctab_reader_free(struct proc_reader *r)
{
    if (!r)
        return;
    proctab_put(r->t, r->p);
    free(r);
}

static json_t *text_event(struct proc_reader *r, uint8_t type, const uint8_t *data, size_t len, uint64_t off)
{
    struct buf text = {0};
    struct utf8_stream *u = &r->u8[type == PROTO_STDERR];
    int rc = data ? utf8_stream_feed(u, data, len, &text) : utf8_stream_finish(u, &text);
    json_t *ev = NULL;
    if (rc == 0 && text.len > 0)
        ev = json_pack("{s:s,s:s%,s:I}", "type", type == PROTO_STDERR ? "stderr" : "stdout", "data", text.data,
                       text.len, "offset", (json_int_t)off);
    buf_free(&text);
    return ev;
}

/* under t->lock: the next event from what is there, or NULL */
static json_t *next_locked(struct proc_reader *r, bool *eos)
{
    struct bgproc *p = r->p;
    for (;;) {
        if (r->pos < p->base_off) {
            json_t *ev = json_pack("{s:s,s:I,s:I}", "type", "dropped", "bytes", (json_int_t)(p->base_off - r->pos),
                                   "offset", (json_int_t)p->base_off);
            r->pos = p->base_off;
            r->lost = true;
            return ev;
        }
        struct pchunk *c = p->head;
        while (c && c->off + c->len <= r->pos)
            c = c->next;
        if (c) {
            size_t skip = r->pos > c->off ? (size_t)(r->pos - c->off) : 0;
            r->pos = c->off + c->len;
            json_t *ev = text_event(r, c->type, c->data + skip, c->len - skip, c->off + skip);
            if (ev)
                return ev;
            continue; /* only part of a character so far */
        }
        if (!p->pump_done)
            return NULL;
        if (!r->flushed) {
            json_t *ev = text_event(r, PROTO_STDOUT, NULL, 0, r->pos);
            if (!ev)
                ev = text_event(r, PROTO_STDERR, NULL, 0, r->pos);
            if (ev)
                return ev;
            r->flushed = true;
        }
        if (!r->sent_result) {
            r->sent_result = true;
            json_t *ev = json_pack("{s:s,s:i}", "type", "result", "pid", p->pid);
            if (ev && p->result)
                json_object_update(ev, p->result);
            if (ev)
                json_object_set_new(ev, "output_complete", json_boolean(!r->lost && !p->lost));
            return ev;
        }
        if (!r->sent_exit) {
            r->sent_exit = true;
            json_t *ec = p->result ? json_object_get(p->result, "exit_code") : NULL;
            return json_pack("{s:s,s:O?}", "type", "exit", "exit_code", ec);
        }
        *eos = true;
        return NULL;
    }
}

json_t *proctab_reader_next(struct proc_reader *r, bool *eos)
{
    *eos = false;
    pthread_mutex_lock(&r->t->lock);
    json_t *ev = next_locked(r, eos);
    if (!ev && !*eos) {
        struct timespec ts = mono_deadline(now_mono_ms() + 1000);
        (void)pthread_cond_timedwait(&r->t->cond, &r->t->lock, &ts);
        ev = next_locked(r, eos);
    }
    pthread_mutex_unlock(&r->t->lock);
    return ev;
}
