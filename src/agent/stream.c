/* stream.c - forward a child's stdout/stderr pipe as STDOUT/STDERR frames.
 *
 * Each read takes at most AGENT_OUTPUT_FRAME bytes and becomes one frame, so
 * frames stay small and output from several children interleaves fairly.
 * Past the request's cap the pipe is still drained and the bytes dropped:
 * a child blocked on a full pipe would otherwise hang until its timeout with
 * the cause invisible to the user.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"

void outstream_init(struct outstream *s, int fd, uint8_t type)
{
    s->fd = fd;
    s->watch = 0;
    s->type = type;
    outstream_reset(s);
}

void outstream_reset(struct outstream *s)
{
    s->forwarded = 0;
    s->truncated = false;
}

void outstream_watch(struct agent *a, struct outstream *s, ev_fd_fn *fn, void *ctx)
{
    ev_unwatch(a, s->watch);
    s->watch = ev_watch(a, s->fd, POLLIN, fn, ctx);
    if (s->watch < 0) {
        /* cannot happen (the table holds every job's pipes); unread, the
         * child would block, so say why */
        log_error("cannot watch child %s pipe", s->type == PROTO_STDOUT ? "stdout" : "stderr");
        s->watch = 0;
    }
}

void outstream_close(struct agent *a, struct outstream *s)
{
    ev_unwatch(a, s->watch);
    s->watch = 0;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

int outstream_pump(struct agent *a, struct outstream *s, uint32_t req_id, size_t max)
{
    /* static: a 64 KiB scratch buffer reused by every stream; the agent is
     * single-threaded and the data is sent before the next read. */
    static uint8_t buf[AGENT_OUTPUT_FRAME];
    if (s->fd < 0)
        return -EPIPE;
    ssize_t n = read(s->fd, buf, sizeof(buf));
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        int e = errno;
        log_warn("read child %s: %s", s->type == PROTO_STDOUT ? "stdout" : "stderr", strerror(e));
        outstream_close(a, s);
        return -e;
    }
    if (n == 0) {
        outstream_close(a, s);
        return -EPIPE;
    }
    if (req_id == 0)
        return 1; /* output between REPL calls (a background thread): no one to send it to */
    size_t len = (size_t)n;
    size_t room = s->forwarded < max ? max - s->forwarded : 0;
    if (len > room) {
        len = room;
        s->truncated = true;
    }
    if (len > 0) {
        agent_send(a, s->type, 0, req_id, buf, len);
        s->forwarded += len;
    }
    return 1;
}

void outstream_drain(struct agent *a, struct outstream *s, uint32_t req_id, size_t max)
{
    /* bounded so a child that writes as fast as we read cannot pin us here */
    for (int i = 0; i < 4096 && !a->quit; i++)
        if (outstream_pump(a, s, req_id, max) <= 0)
            return;
}
