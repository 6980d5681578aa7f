/* ev.h - the agent's event loop: fds, timers, child exits, idle work.
 *
 * Modelled on Redis's ae.c: whoever owns an fd, a deadline or a child
 * registers it with a callback and a context, and the loop calls back. The
 * loop knows no subsystem (no REPL, job or file transfer): it polls, reaps
 * and fires, nothing else. All tables are fixed arrays inside struct agent,
 * and an all-zero struct ev is a valid empty loop (the agent and the fuzz
 * harness start from a zeroed struct agent).
 *
 * Handles are ints, 0 meaning "none" (so a calloc'd owner holds no watch),
 * and carry a generation: a stale handle cancels nothing, and a watch
 * removed by one callback is not dispatched later in the same turn, even if
 * its slot was reused meanwhile.
 */
#ifndef AIRLOCK_AGENT_EV_H
#define AIRLOCK_AGENT_EV_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define EV_MAX_WATCHES 256  /* control + signalfd + REPL (3) + 3 per job */
#define EV_MAX_TIMERS 128   /* one per job and one for the REPL */
#define EV_MAX_CHILDREN 128 /* job roots and the REPL runner */
#define EV_MAX_IDLE 4

struct agent;

/* revents: what poll() reported (POLLIN, POLLOUT, POLLHUP, POLLERR, POLLNVAL). */
typedef void ev_fd_fn(struct agent *a, void *ctx, short revents);
typedef void ev_timer_fn(struct agent *a, void *ctx);
/* The child was reaped (waitpid) with this status; its registration is gone. */
typedef void ev_child_fn(struct agent *a, void *ctx, pid_t pid, int wstatus);
/* Run once per turn; true if it has more to do at once (the loop must not
 * sleep in poll). */
typedef bool ev_idle_fn(struct agent *a, void *ctx);

struct ev_watch {
    ev_fd_fn *fn; /* NULL: free slot */
    void *ctx;
    int fd;
    short events;
    unsigned gen;
};

struct ev_timer {
    ev_timer_fn *fn; /* NULL: free slot */
    void *ctx;
    uint64_t at_ms; /* CLOCK_MONOTONIC (now_mono_ms) */
    unsigned gen;
};

struct ev_child {
    ev_child_fn *fn; /* NULL: free slot */
    void *ctx;
    pid_t pid;
};

struct ev_idle {
    ev_idle_fn *fn;
    void *ctx;
};

struct ev {
    struct ev_watch watches[EV_MAX_WATCHES];
    struct ev_timer timers[EV_MAX_TIMERS];
    struct ev_child children[EV_MAX_CHILDREN];
    struct ev_idle idle[EV_MAX_IDLE];
    int sig_fd; /* the SIGCHLD signalfd given to ev_reap_children, or 0/-1 */
    /* rebuilt every turn from watches[]: which slot (and generation) each
     * pollfd belongs to */
    struct pollfd pfds[EV_MAX_WATCHES];
    int pslot[EV_MAX_WATCHES];
    unsigned pgen[EV_MAX_WATCHES];
};

/* Watch fd for events. fd < 0 is no watch (returns 0, like a closed pipe);
 * -ENOSPC if the table is full. Watches are polled in slot order, lowest
 * first: the first registered (the control stream) is served first. */
int ev_watch(struct agent *a, int fd, short events, ev_fd_fn *fn, void *ctx);
/* Remove a watch (0 or a stale handle: nothing). Call it before closing the
 * fd. Safe from inside any callback. */
void ev_unwatch(struct agent *a, int handle);

/* Call fn once, at the first turn at or after at_ms. Handle or -ENOSPC. */
int ev_timer_add(struct agent *a, uint64_t at_ms, ev_timer_fn *fn, void *ctx);
void ev_timer_cancel(struct agent *a, int handle);

/* Deliver pid's exit to fn. 0 or -ENOSPC. */
int ev_child_add(struct agent *a, pid_t pid, ev_child_fn *fn, void *ctx);
/* Forget pid (its owner reaped it itself, or no longer cares). */
void ev_child_cancel(struct agent *a, pid_t pid);
/* Is pid a child somebody registered (a job root, the runner)? */
bool ev_child_known(const struct agent *a, pid_t pid);

/* Reap through this SIGCHLD signalfd: every child that changes state is
 * waited for, including orphans reparented to us (as PID 1 or subreaper);
 * registered ones go to their callback, the rest are logged and dropped. */
int ev_reap_children(struct agent *a, int sig_fd);

/* Run fn every turn after fds and timers. 0 or -ENOSPC. */
int ev_idle_add(struct agent *a, ev_idle_fn *fn, void *ctx);

/* Poll and dispatch until a->quit. 0, or -errno if poll failed
 * (a->exit_code is then 1). */
int ev_run(struct agent *a);

#endif
