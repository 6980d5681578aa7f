/* proctab.h - a sandbox's background processes (exec with "background":
 * true), one table per sandbox, owned by it (build.c frees it before the
 * agent connection).
 *
 * A background process is an agent EXEC request that no HTTP client holds:
 * a pump thread of its own reads its frames (agent_client.h) into a bounded
 * output buffer, and any number of clients attach to it later (stream),
 * wait for it, signal it or write to its stdin. It runs until it exits, is
 * signalled to death, or the sandbox ends (the agent, PID 1 of the sandbox,
 * and everything below it go with it; the pump then sees the agent gone).
 *
 * The output buffer keeps the LAST PROC_OUTPUT_BUFFER bytes of stdout and
 * stderr, interleaved in the order the agent sent them, each byte at an
 * offset counted from the process's start. Older bytes are evicted; a
 * stream that wants bytes no longer held is told how many it lost (a
 * "dropped" event) and its final event says "output_complete": false. Output
 * is never reported complete when bytes were lost: evicted, cut by the
 * agent's per-stream cap (PROC_AGENT_MAX_OUTPUT), or dropped by a full
 * agent queue.
 *
 * Limits: PROC_MAX_RUNNING running processes per sandbox; the last
 * PROC_MAX_EXITED exited ones are kept for list and wait, older ones are
 * forgotten. */
#ifndef AIRLOCK_PROCTAB_H
#define AIRLOCK_PROCTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "operr.h"

#define PROC_MAX_RUNNING 16
#define PROC_MAX_EXITED 16
#define PROC_OUTPUT_BUFFER (1u << 20)          /* per process, both streams, plus per-chunk overhead */
#define PROC_AGENT_MAX_OUTPUT (4ull << 30)     /* the agent's per-stream cap for a background process */
#define PROC_START_TIMEOUT_MS 10000            /* the agent answers a start at once; this is a backstop */

struct proctab;
struct bgproc;
struct agent_conn;

int proctab_new(struct proctab **out);
/* Stop every pump (they end within a second, or at once when the agent is
 * gone) and free the table. Nobody may use it any more. */
void proctab_free(struct proctab *t);

/* Start a background process: send EXEC payload (the caller's argv/shell,
 * env, cwd, timeout; this adds stdin_open, notify_start and max_output) and
 * wait for the agent's start notice. desc (cmd, cwd: borrowed, copied) is
 * what list shows. 0 and *pid_out; or -errno with err filled: the cap
 * (ERR_AGENT "busy"), the agent's refusal (ERR_AGENT: a missing cwd...),
 * a program that could not be executed (ERR_AGENT "invalid_request", its
 * message), the agent gone. */
/* on_end (may be NULL) is called once from the pump when the process has
 * ended, with its pid and result fields (borrowed), before readers see them; it
 * owns end_ctx (it is called with it also if the start fails: result NULL). */
typedef void proc_end_fn(void *end_ctx, int pid, const json_t *result);
int proctab_start(struct proctab *t, struct agent_conn *c, json_t *payload, json_t *desc, proc_end_fn *on_end,
                  void *end_ctx, int *pid_out, uint32_t *id_out, struct op_error *err);

/* Look one up by pid (a running one first) or, with by_id, by its agent
 * request id (the E2B listener's pid). NULL if unknown; else a reference
 * for proctab_put. */
struct bgproc *proctab_get(struct proctab *t, long long key, bool by_id);
void proctab_put(struct proctab *t, struct bgproc *p);

/* The process's state as the API shows it (new reference). */
json_t *proctab_info(struct proctab *t, struct bgproc *p);
/* All of them, oldest first: {"processes":[info...]}. running_only: only
 * those still running; internal: with the desc keys that start with '_'
 * (kept for the E2B listener, not shown by Airlock's API). */
json_t *proctab_list(struct proctab *t, bool running_only, bool internal);
/* Wait until it has exited or deadline_ms (monotonic) passed, checking
 * gone() (the waiting client left) every second. true if it has exited. */
bool proctab_wait(struct proctab *t, struct bgproc *p, uint64_t deadline_ms, bool (*gone)(void *), void *ctx);

/* Signal its process group (SIGNAL). -ESRCH if it is not running, -EPIPE. */
int proctab_signal(struct proctab *t, struct bgproc *p, int sig);
/* Write to its stdin; eof closes it. -ESRCH not running, -EBADF stdin
 * already closed, -EPIPE agent gone. */
int proctab_stdin(struct proctab *t, struct bgproc *p, const void *data, size_t len, bool eof);

/* Set a pty process's window (PTY_RESIZE; the agent sends it SIGWINCH).
 * -ESRCH not running, -ENOTTY not started with pty, else agent_call's. */
int proctab_resize(struct proctab *t, struct bgproc *p, unsigned rows, unsigned cols, struct op_error *err);

/* An attached reader of a process's output, from byte offset `from` of it.
 * Events (JSON objects, in order) come from proctab_reader_next:
 *   {"type":"dropped","bytes":n,"offset":o}   n bytes before o are gone
 *   {"type":"stdout"|"stderr","data":text,"offset":o}
 *   {"type":"result", exit fields..., "output_complete":bool}
 *   {"type":"exit","exit_code":n}             the last one
 * The reader holds a reference to the process. */
struct proc_reader;
struct proc_reader *proctab_reader_new(struct proctab *t, struct bgproc *p, uint64_t from);
/* The next event (new reference): waits for output or the exit up to one
 * second at a time. NULL with *eos set after the last event, NULL without
 * it when a second passed with nothing to say (the caller checks its client
 * and calls again). */
json_t *proctab_reader_next(struct proc_reader *r, bool *eos);
void proctab_reader_free(struct proc_reader *r);

#endif
