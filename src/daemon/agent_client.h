/* agent_client.h - the daemon's side of docs/protocol.md, one per sandbox.
 *
 * A reader thread reads every frame the agent sends (proto_recv bounds each
 * to PROTO_MAX_PAYLOAD) and routes it by req_id into that request's queue.
 * Frames for ids nobody waits for (finished or abandoned requests) are
 * dropped. A queue holds at most AGENT_QUEUE_MAX_BYTES; when a client reads
 * slower than the agent writes, the reader waits (back-pressure on the agent)
 * instead of buffering without bound. That wait stalls every request of the
 * sandbox, so downloads never reach it: the agent sends at most
 * PROTO_GET_WINDOW unacknowledged bytes per FILE_GET (api_files.c acks).
 * Nothing but FILE_DATA waits at all: output (capped per call by the agent)
 * and replies are queued, and past AGENT_OUTPUT_QUEUE_MAX_BYTES dropped (the
 * result then says truncated), so a client that streams a run and stops
 * reading cannot stall the sandbox's other requests.
 *
 * Writers are serialized by a mutex; request ids come from a counter.
 * When the stream ends or breaks, the connection is dead: every waiter wakes
 * with -EPIPE and the on_dead callback runs once (from the reader thread) so
 * the sandbox can be destroyed.
 *
 *   struct agent_req *r;
 *   agent_req_start(c, PROTO_RUN_CODE, payload, &r);
 *   while (agent_req_next(r, deadline, &f) == 0) { ...; if (f->flags & PROTO_F_END) break; }
 *   agent_req_free(r);
 */
#ifndef AIRLOCK_AGENT_CLIENT_H
#define AIRLOCK_AGENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "operr.h"

#define AGENT_QUEUE_MAX_BYTES (4u << 20)
/* above twice the agent's default 10 MiB per-stream cap, plus slack */
#define AGENT_OUTPUT_QUEUE_MAX_BYTES (24u << 20)

struct agent_conn;
struct agent_req;

struct agent_frame {
    uint8_t type;
    uint16_t flags;
    uint32_t len;
    uint8_t *data; /* NUL-terminated, len excludes it */
    struct agent_frame *next;
};

void agent_frame_free(struct agent_frame *f);
static inline void agent_frame_freep(struct agent_frame **f) { agent_frame_free(*f); }
#define cleanup_frame __attribute__((cleanup(agent_frame_freep)))

/* Takes ownership of fd and starts the reader thread. `name` (the sandbox id)
 * is used in log lines. */
int agent_conn_new(int fd, const char *name, void (*on_dead)(void *userdata), void *userdata,
                   struct agent_conn **out);
/* Mark dead and shut the stream down: wakes the reader and all waiters. */
void agent_conn_shutdown(struct agent_conn *c);
/* Shut down, join the reader, free. No request may still exist. */
void agent_conn_free(struct agent_conn *c);
bool agent_conn_is_dead(struct agent_conn *c);
/* Pausing the sandbox: from now on agent_req_start refuses (-EAGAIN) until
 * agent_conn_release. -EBUSY (nothing held) while a request other than a
 * FILE_WATCH is in flight: a paused agent cannot answer, and the call's
 * deadline (the daemon's and the agent's own) would run out during the
 * pause; -EPIPE if the connection is dead. */
int agent_conn_hold(struct agent_conn *c);
void agent_conn_release(struct agent_conn *c);

/* Send a request frame (JSON payload, no END) and register its queue.
 * -EAGAIN while the connection is held (a paused sandbox). */
int agent_req_start(struct agent_conn *c, uint8_t type, json_t *payload, struct agent_req **out);
uint32_t agent_req_id(const struct agent_req *r);
/* Send another frame with this request's id (FILE_DATA, or ERROR to abort). */
int agent_req_send(struct agent_req *r, uint8_t type, uint16_t flags, const void *data, size_t len);
/* Next frame of this request. deadline_ms is CLOCK_MONOTONIC ms (0: do not
 * wait). 0 and *out set; -ETIMEDOUT; -EPIPE when the agent is gone. */
int agent_req_next(struct agent_req *r, uint64_t deadline_ms, struct agent_frame **out);
/* Whether output frames of this request (STDOUT, STDERR, or FILE_EVENT:
 * then the flag is cleared, so each loss is said once) were dropped (a
 * full queue). */
bool agent_req_output_dropped(struct agent_req *r, uint8_t type);
/* Unregister (later frames for the id are dropped) and free. NULL is fine. */
void agent_req_free(struct agent_req *r);
static inline void agent_req_freep(struct agent_req **r) { agent_req_free(*r); }
#define cleanup_agent_req __attribute__((cleanup(agent_req_freep)))

/* Send one frame for another request's id, which this caller does not own
 * (STDIN for a running EXEC): no reply; the agent drops it if that request
 * is not there. */
int agent_send_for(struct agent_conn *c, uint8_t type, uint32_t req_id, uint16_t flags, const void *data, size_t len);

/* Send a fire-and-forget request (SIGNAL), whose reply is dropped. */
int agent_send_oneway(struct agent_conn *c, uint8_t type, json_t *payload);

/* One round trip for control requests (HELLO, FILE_LIST, FILE_DELETE...):
 * returns 0 with *reply = the OK payload, or fills err:
 *   -EREMOTEIO ERR_AGENT (the agent's code/message passed through),
 *   -EPIPE ERR_AGENT_GONE, -ETIMEDOUT ERR_AGENT_TIMEOUT, -EMSGSIZE
 *   ERR_TOO_LARGE, -EPROTO bad reply ERR_INTERNAL. */
int agent_call(struct agent_conn *c, uint8_t type, json_t *payload, uint64_t timeout_ms, json_t **reply,
               struct op_error *err);

#endif
