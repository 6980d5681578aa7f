#include "agent_client.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "faultinj.h"
#include "log.h"
#include "proto.h"
#include "util.h"

/* A write that makes no progress for this long means the agent stopped
 * reading: the stream is declared dead rather than blocking writers forever. */
#define AGENT_SEND_TIMEOUT_S 60

struct agent_req {
    struct agent_conn *c;
    uint32_t id;
    pthread_cond_t cond; /* signalled when a frame is queued or the conn dies */
    struct agent_frame *head, *tail;
    size_t bytes;
    bool dropped_stdout, dropped_stderr; /* output frames dropped: queue full */
    bool dropped_events;                 /* FILE_EVENT frames dropped (a watch nobody reads); cleared when asked */
    bool holds_pause;                    /* a call with a deadline: no pause while it runs (agent_conn_hold) */
    struct agent_req *next;
};

struct agent_conn {
    int fd;
    char name[48];
    pthread_t reader;
    bool reader_started;
    unsigned log_lines; /* LOG frames seen (reader thread only) */

    pthread_mutex_t lock;  /* reqs, queues, next_id, dead, closing */
    pthread_cond_t space;  /* signalled when a queue shrinks (the reader may wait) */
    struct agent_req *reqs;
    uint32_t next_id;
    bool dead;
    bool closing;          /* we shut it down: EOF is expected, not a crash */
    bool held;             /* the sandbox is paused: new requests are refused (-EAGAIN) */

    pthread_mutex_t write_lock; /* one frame at a time on the stream */

    void (*on_dead)(void *userdata);
    void *userdata;
};

void agent_frame_free(struct agent_frame *f)
{
    if (!f)
        return;
    free(f->data);
    free(f);
}

static struct agent_req *find_req(struct agent_conn *c, uint32_t id)
{
    for (struct agent_req *r = c->reqs; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

static void mark_dead_locked(struct agent_conn *c)
{
    c->dead = true;
    for (struct agent_req *r = c->reqs; r; r = r->next)
        pthread_cond_broadcast(&r->cond);
    pthread_cond_broadcast(&c->space);
}

/* The agent's own log, one line per LOG frame. It comes from inside the
 * sandbox, so it is bounded, made printable and rate-limited per sandbox:
 * a compromised agent cannot flood or forge the daemon's log lines. */
#define AGENT_LOG_LINES_MAX 200

static void log_agent_line(struct agent_conn *c, const uint8_t *data, size_t len)
{
    if (c->log_lines >= AGENT_LOG_LINES_MAX) {
        if (c->log_lines++ == AGENT_LOG_LINES_MAX)
            log_warn("agent %s: more than %d log lines; the rest are dropped", c->name, AGENT_LOG_LINES_MAX);
        return;
    }
    c->log_lines++;
    char line[PROTO_LOG_MAX + 1];
    size_t n = len < PROTO_LOG_MAX ? len : PROTO_LOG_MAX;
    for (size_t i = 0; i < n; i++)
        line[i] = data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : '?';
    line[n] = '\0';
    log_info("agent %s: %s", c->name, line);
}

static void *reader_main(void *arg)
{
    struct agent_conn *c = arg;
    int r;
    /* it relays requests' frames: never at the warm pool builder's priority */
    if ((r = thread_nice_as_process()) < 0)
        log_debug("agent %s: reader priority: %s", c->name, strerror(-r));
    for (;;) {
        struct proto_hdr h;
        uint8_t *payload = NULL;
        r = proto_recv(c->fd, &h, &payload);
        if (r < 0)
            break;
        if (h.type == PROTO_LOG) {
            log_agent_line(c, payload, h.len);
            free(payload);
            continue;
        }
        pthread_mutex_lock(&c->lock);
        struct agent_req *req = find_req(c, h.req_id);
        /* Only file data may make the reader wait (and the agent paces
         * downloads, so it does not in practice); output and replies never
         * do, or a RESULT would wait behind output nobody reads and stall
         * the whole sandbox. Their queue is bounded by dropping instead. */
        bool bulk = h.type == PROTO_FILE_DATA;
        if (!bulk && req && req->bytes + h.len > AGENT_OUTPUT_QUEUE_MAX_BYTES) {
            if (h.type == PROTO_STDOUT)
                req->dropped_stdout = true;
            else if (h.type == PROTO_STDERR)
                req->dropped_stderr = true;
            else if (h.type == PROTO_FILE_EVENT)
                req->dropped_events = true; /* said in the watch's stream ("overflow"), not once per frame here */
            else
                log_warn("agent %s: dropped %s frame: request %u has %zu bytes queued", c->name,
                         proto_type_name(h.type), h.req_id, req->bytes);
            pthread_mutex_unlock(&c->lock);
            free(payload);
            continue;
        }
        /* back-pressure: wait while this request's queue is full */
        while (bulk && req && req->head && req->bytes + h.len > AGENT_QUEUE_MAX_BYTES && !c->dead) {
            pthread_cond_wait(&c->space, &c->lock);
            req = find_req(c, h.req_id); /* it may have been freed meanwhile */
        }
        if (c->dead) {
            pthread_mutex_unlock(&c->lock);
            free(payload);
            r = -ECANCELED;
            break;
        }
        if (!req) {
            pthread_mutex_unlock(&c->lock);
            log_debug("agent %s: dropped %s frame for request %u nobody waits for", c->name, proto_type_name(h.type),
                      h.req_id);
            free(payload);
            continue;
        }
        struct agent_frame *f = malloc(sizeof(*f));
        if (!f) {
            pthread_mutex_unlock(&c->lock);
            free(payload);
            r = -ENOMEM;
            break;
        }
        *f = (struct agent_frame){.type = h.type, .flags = h.flags, .len = h.len, .data = payload};
        if (req->tail)
            req->tail->next = f;
        else
            req->head = f;
        req->tail = f;
        req->bytes += h.len;
        pthread_cond_signal(&req->cond);
        pthread_mutex_unlock(&c->lock);
    }

    pthread_mutex_lock(&c->lock);
    bool expected = c->closing;
    mark_dead_locked(c);
    pthread_mutex_unlock(&c->lock);
    if (!expected) {
        if (r == -EPIPE)
            log_warn("agent %s: connection closed by the agent", c->name);
        else
            log_warn("agent %s: connection failed: %s", c->name, strerror(-r));
        if (c->on_dead)
            c->on_dead(c->userdata);
    }
    return NULL;
}

int agent_conn_new(int fd, const char *name, void (*on_dead)(void *userdata), void *userdata,
                   struct agent_conn **out)
{
    struct agent_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    c->fd = fd;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->next_id = 1;
    c->on_dead = on_dead;
    c->userdata = userdata;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->write_lock, NULL);
    pthread_cond_init(&c->space, NULL);

    struct timeval tv = {.tv_sec = AGENT_SEND_TIMEOUT_S};
    /* Not a socket (vm backend: a serial port) is fine: no send timeout then. */
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    int r = pthread_create(&c->reader, NULL, reader_main, c);
    if (r != 0) {
        agent_conn_free(c);
        return -r;
    }
    c->reader_started = true;
    *out = c;
    return 0;
}

void agent_conn_shutdown(struct agent_conn *c)
{
    pthread_mutex_lock(&c->lock);
    c->closing = true;
    mark_dead_locked(c);
    pthread_mutex_unlock(&c->lock);
    (void)shutdown(c->fd, SHUT_RDWR);
}

void agent_conn_free(struct agent_conn *c)
{
    if (!c)
        return;
    agent_conn_shutdown(c);
    if (c->reader_started)
        pthread_join(c->reader, NULL);
    if (c->reqs)
        log_error("agent %s: freed with requests in flight (bug)", c->name);
    close(c->fd);
    pthread_cond_destroy(&c->space);
    pthread_mutex_destroy(&c->write_lock);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int agent_conn_hold(struct agent_conn *c)
{
    pthread_mutex_lock(&c->lock);
    int r = c->dead ? -EPIPE : 0;
    for (struct agent_req *q = c->reqs; q && r == 0; q = q->next)
        if (q->holds_pause)
            r = -EBUSY;
    if (r == 0)
        c->held = true;
    pthread_mutex_unlock(&c->lock);
    return r;
}

void agent_conn_release(struct agent_conn *c)
{
    pthread_mutex_lock(&c->lock);
    c->held = false;
    pthread_mutex_unlock(&c->lock);
}

bool agent_conn_is_dead(struct agent_conn *c)
{
    pthread_mutex_lock(&c->lock);
    bool dead = c->dead;
    pthread_mutex_unlock(&c->lock);
    return dead;
}

static int conn_send(struct agent_conn *c, uint8_t type, uint16_t flags, uint32_t id, const void *data, size_t len)
{
    if (agent_conn_is_dead(c))
        return -EPIPE;
    pthread_mutex_lock(&c->write_lock);
    int r = faultinj_agent_write() ?: proto_send(c->fd, type, flags, id, data, len);
    pthread_mutex_unlock(&c->write_lock);
    if (r == -EMSGSIZE)
        return r; /* nothing was written */
    if (r < 0) {
        /* A partial frame may be on the wire: the stream is unusable. */
        log_warn("agent %s: send %s: %s", c->name, proto_type_name(type), strerror(-r));
        pthread_mutex_lock(&c->lock);
        bool was_closing = c->closing;
        pthread_mutex_unlock(&c->lock);
        if (!was_closing)
            (void)shutdown(c->fd, SHUT_RDWR); /* the reader sees EOF and reports the death */
        return -EPIPE;
    }
    return 0;
}

static int send_json(struct agent_conn *c, uint8_t type, uint32_t id, json_t *payload)
{
    cleanup_free char *text = json_dumps(payload, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    return conn_send(c, type, 0, id, text, strlen(text));
}

int agent_req_start(struct agent_conn *c, uint8_t type, json_t *payload, struct agent_req **out)
{
    struct agent_req *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    cond_init_monotonic(&r->cond);
    r->c = c;

    /* a watch has no deadline, and it may wait across a pause */
    r->holds_pause = type != PROTO_FILE_WATCH;

    pthread_mutex_lock(&c->lock);
    if (c->dead || c->held) {
        int e = c->dead ? -EPIPE : -EAGAIN;
        pthread_mutex_unlock(&c->lock);
        pthread_cond_destroy(&r->cond);
        free(r);
        return e;
    }
    do {
        r->id = c->next_id++;
    } while (r->id == 0 || find_req(c, r->id));
    r->next = c->reqs;
    c->reqs = r;
    pthread_mutex_unlock(&c->lock);

    /* registered before sending, so no reply can be dropped */
    int ret = send_json(c, type, r->id, payload);
    if (ret < 0) {
        agent_req_free(r);
        return ret;
    }
    *out = r;
    return 0;
}

uint32_t agent_req_id(const struct agent_req *r) { return r->id; }

int agent_req_send(struct agent_req *r, uint8_t type, uint16_t flags, const void *data, size_t len)
{
    return conn_send(r->c, type, flags, r->id, data, len);
}

int agent_send_for(struct agent_conn *c, uint8_t type, uint32_t req_id, uint16_t flags, const void *data, size_t len)
{
    return conn_send(c, type, flags, req_id, data, len);
}

int agent_req_next(struct agent_req *r, uint64_t deadline_ms, struct agent_frame **out)
{
    struct agent_conn *c = r->c;
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000), .tv_nsec = (long)(deadline_ms % 1000) * 1000000};
    int ret = 0;
    pthread_mutex_lock(&c->lock);
    while (!r->head && !c->dead) {
        if (deadline_ms == 0 || now_mono_ms() >= deadline_ms ||
            pthread_cond_timedwait(&r->cond, &c->lock, &ts) == ETIMEDOUT) {
            if (!r->head && !c->dead) {
                ret = -ETIMEDOUT;
                break;
            }
        }
    }
    if (ret == 0) {
        if (r->head) {
            /* frames that arrived before a death are still delivered */
            struct agent_frame *f = r->head;
            r->head = f->next;
            if (!r->head)
                r->tail = NULL;
            r->bytes -= f->len;
            f->next = NULL;
            *out = f;
            pthread_cond_signal(&c->space);
        } else {
            ret = -EPIPE;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return ret;
}

bool agent_req_output_dropped(struct agent_req *r, uint8_t type)
{
    pthread_mutex_lock(&r->c->lock);
    bool dropped = type == PROTO_STDOUT ? r->dropped_stdout : type == PROTO_STDERR ? r->dropped_stderr : r->dropped_events;
    if (type == PROTO_FILE_EVENT)
        r->dropped_events = false; /* each loss is reported once */
    pthread_mutex_unlock(&r->c->lock);
    return dropped;
}

void agent_req_free(struct agent_req *r)
{
    if (!r)
        return;
    struct agent_conn *c = r->c;
    pthread_mutex_lock(&c->lock);
    for (struct agent_req **pp = &c->reqs; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    pthread_cond_broadcast(&c->space);
    pthread_mutex_unlock(&c->lock);
    while (r->head) {
        struct agent_frame *f = r->head;
        r->head = f->next;
        agent_frame_free(f);
    }
    pthread_cond_destroy(&r->cond);
    free(r);
}

int agent_send_oneway(struct agent_conn *c, uint8_t type, json_t *payload)
{
    uint32_t id;
    pthread_mutex_lock(&c->lock);
    do {
        id = c->next_id++;
    } while (id == 0 || find_req(c, id));
    pthread_mutex_unlock(&c->lock);
    return send_json(c, type, id, payload);
}

int agent_call(struct agent_conn *c, uint8_t type, json_t *payload, uint64_t timeout_ms, json_t **reply,
               struct op_error *err)
{
    cleanup_agent_req struct agent_req *req = NULL;
    int r = agent_req_start(c, type, payload, &req);
    if (r == -EAGAIN)
        return op_error_set(err, r, ERR_PAUSED, "the sandbox is paused: resume it first");
    if (r == -EMSGSIZE)
        return op_error_set(err, r, ERR_TOO_LARGE, "request too large for the agent protocol");
    if (r == -EPIPE)
        return op_error_set(err, r, ERR_AGENT_GONE, "sandbox agent is gone");
    if (r < 0)
        return op_error_set(err, r, ERR_INTERNAL, "send %s to the agent: %s", proto_type_name(type), strerror(-r));
    cleanup_frame struct agent_frame *f = NULL;
    r = agent_req_next(req, now_mono_ms() + timeout_ms, &f);
    if (r == -EPIPE)
        return op_error_set(err, r, ERR_AGENT_GONE, "sandbox agent is gone");
    if (r == -ETIMEDOUT)
        return op_error_set(err, r, ERR_AGENT_TIMEOUT, "sandbox agent did not answer %s within %llu s",
                            proto_type_name(type), (unsigned long long)(timeout_ms / 1000));
    if (r < 0)
        return op_error_set(err, r, ERR_INTERNAL, "agent %s: %s", proto_type_name(type), strerror(-r));
    if (f->type == PROTO_ERROR)
        return op_error_from_agent(err, (const char *)f->data, f->len);
    if (f->type != PROTO_OK)
        return op_error_set(err, -EPROTO, ERR_INTERNAL, "agent answered %s with %s", proto_type_name(type),
                            proto_type_name(f->type));
    json_t *j = json_loadb((const char *)f->data, f->len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return op_error_set(err, -EPROTO, ERR_INTERNAL, "agent sent a malformed %s reply", proto_type_name(type));
    }
    *reply = j;
    return 0;
}
