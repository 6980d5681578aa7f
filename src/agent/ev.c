/* ev.c - the agent's event loop (ev.h): one poll() per turn over the
 * registered fds, then due timers, then idle work.
 *
 * The pollfd array is rebuilt every turn from the watch table (a handful of
 * fds; rebuilding is cheaper to reason about than keeping an epoll set in
 * sync with children that come and go). A callback may remove any watch,
 * its own included (a job that finishes closes its pipes): every pollfd
 * remembers the slot and generation it was built from, and a slot whose
 * generation changed is skipped for the rest of the turn.
 *
 * SIGCHLD arrives through a signalfd watched like any other fd. PID 1 must
 * reap everything (a zombie nobody waits for would leak a pid), so the
 * reaper waits for any child and hands the registered ones to their owner.
 */
#include <errno.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "ev.h"
#include "log.h"
#include "util.h"

/* handle = gen << EV_SLOT_BITS | (slot + 1): never 0, positive */
#define EV_SLOT_BITS 9
#define EV_GEN_MASK 0x3fffffu
_Static_assert(EV_MAX_WATCHES < (1 << EV_SLOT_BITS) && EV_MAX_TIMERS < (1 << EV_SLOT_BITS), "slot must fit the handle");

static int make_handle(int slot, unsigned gen)
{
    return (int)((gen & EV_GEN_MASK) << EV_SLOT_BITS) | (slot + 1);
}

/* The slot a handle names, -1 if it names none (0, or out of range). */
static int handle_slot(int h, int nslots)
{
    int slot = h > 0 ? (h & ((1 << EV_SLOT_BITS) - 1)) - 1 : -1;
    return slot < nslots ? slot : -1;
}

/* Is the handle's generation the one its slot holds now? */
static bool handle_current(int h, unsigned slot_gen)
{
    return ((unsigned)h >> EV_SLOT_BITS) == (slot_gen & EV_GEN_MASK);
}

/* ---- fds ------------------------------------------------------------------- */

int ev_watch(struct agent *a, int fd, short events, ev_fd_fn *fn, void *ctx)
{
    if (fd < 0)
        return 0;
    for (int i = 0; i < EV_MAX_WATCHES; i++) {
        struct ev_watch *w = &a->ev.watches[i];
        if (w->fn)
            continue;
        unsigned gen = (w->gen + 1) & EV_GEN_MASK;
        *w = (struct ev_watch){.fn = fn, .ctx = ctx, .fd = fd, .events = events, .gen = gen};
        return make_handle(i, gen);
    }
    log_error("event loop: no room to watch fd %d (%d watches)", fd, EV_MAX_WATCHES);
    return -ENOSPC;
}

void ev_unwatch(struct agent *a, int handle)
{
    int slot = handle_slot(handle, EV_MAX_WATCHES);
    if (slot < 0)
        return;
    struct ev_watch *w = &a->ev.watches[slot];
    if (!w->fn || !handle_current(handle, w->gen))
        return; /* already removed: the slot may be someone else's now */
    w->fn = NULL;
    w->ctx = NULL;
    w->fd = -1;
    w->gen = (w->gen + 1) & EV_GEN_MASK; /* pollfds built from it go stale */
}

/* ---- timers ---------------------------------------------------------------- */

int ev_timer_add(struct agent *a, uint64_t at_ms, ev_timer_fn *fn, void *ctx)
{
    for (int i = 0; i < EV_MAX_TIMERS; i++) {
        struct ev_timer *t = &a->ev.timers[i];
        if (t->fn)
            continue;
        unsigned gen = (t->gen + 1) & EV_GEN_MASK;
        *t = (struct ev_timer){.fn = fn, .ctx = ctx, .at_ms = at_ms, .gen = gen};
        return make_handle(i, gen);
    }
    log_error("event loop: no room for a timer (%d timers)", EV_MAX_TIMERS);
    return -ENOSPC;
}

void ev_timer_cancel(struct agent *a, int handle)
{
    int slot = handle_slot(handle, EV_MAX_TIMERS);
    if (slot < 0)
        return;
    struct ev_timer *t = &a->ev.timers[slot];
    if (!t->fn || !handle_current(handle, t->gen))
        return; /* fired or cancelled: the slot may be someone else's now */
    t->fn = NULL;
    t->ctx = NULL;
}

static void fire_timers(struct agent *a, uint64_t now)
{
    for (int i = 0; i < EV_MAX_TIMERS; i++) {
        struct ev_timer *t = &a->ev.timers[i];
        if (!t->fn || t->at_ms > now)
            continue;
        ev_timer_fn *fn = t->fn;
        void *ctx = t->ctx;
        t->fn = NULL; /* one-shot: the callback may arm a new one */
        t->ctx = NULL;
        fn(a, ctx);
    }
}

/* Milliseconds until the next timer (at most 60 s), -1 if none. */
static int next_timeout(const struct agent *a, uint64_t now)
{
    uint64_t next = 0;
    for (int i = 0; i < EV_MAX_TIMERS; i++) {
        const struct ev_timer *t = &a->ev.timers[i];
        if (t->fn && (next == 0 || t->at_ms < next))
            next = t->at_ms;
    }
    if (next == 0)
        return -1;
    return next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
}

/* ---- children -------------------------------------------------------------- */

static struct ev_child *child_find(struct agent *a, pid_t pid)
{
    for (int i = 0; i < EV_MAX_CHILDREN; i++)
        if (a->ev.children[i].fn && a->ev.children[i].pid == pid)
            return &a->ev.children[i];
    return NULL;
}

int ev_child_add(struct agent *a, pid_t pid, ev_child_fn *fn, void *ctx)
{
    for (int i = 0; i < EV_MAX_CHILDREN; i++) {
        struct ev_child *c = &a->ev.children[i];
        if (!c->fn) {
            *c = (struct ev_child){.fn = fn, .ctx = ctx, .pid = pid};
            return 0;
        }
    }
    log_error("event loop: no room to track child %d (%d children)", (int)pid, EV_MAX_CHILDREN);
    return -ENOSPC;
}

void ev_child_cancel(struct agent *a, pid_t pid)
{
    struct ev_child *c = child_find(a, pid);
    if (c)
        *c = (struct ev_child){0};
}

bool ev_child_known(const struct agent *a, pid_t pid)
{
    for (int i = 0; i < EV_MAX_CHILDREN; i++)
        if (a->ev.children[i].fn && a->ev.children[i].pid == pid)
            return true;
    return false;
}

static void reap(struct agent *a, void *ctx, short revents)
{
    (void)ctx;
    (void)revents;
    struct signalfd_siginfo si;
    while (read(a->ev.sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        ; /* the content does not matter: waitpid below finds every exit */
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            break;
        struct ev_child *c = child_find(a, pid);
        if (!c) {
            log_debug("reaped orphan %d", (int)pid);
            continue;
        }
        ev_child_fn *fn = c->fn;
        void *cctx = c->ctx;
        *c = (struct ev_child){0}; /* gone before its owner hears of it */
        fn(a, cctx, pid, st);
    }
}

int ev_reap_children(struct agent *a, int sig_fd)
{
    a->ev.sig_fd = sig_fd;
    int h = ev_watch(a, sig_fd, POLLIN, reap, NULL);
    return h < 0 ? h : 0;
}

/* ---- idle work and the loop ------------------------------------------------ */

int ev_idle_add(struct agent *a, ev_idle_fn *fn, void *ctx)
{
    for (int i = 0; i < EV_MAX_IDLE; i++) {
        if (!a->ev.idle[i].fn) {
            a->ev.idle[i] = (struct ev_idle){.fn = fn, .ctx = ctx};
            return 0;
        }
    }
    return -ENOSPC;
}

static bool run_idle(struct agent *a)
{
    bool busy = false;
    for (int i = 0; i < EV_MAX_IDLE; i++)
        if (a->ev.idle[i].fn && a->ev.idle[i].fn(a, a->ev.idle[i].ctx))
            busy = true;
    return busy;
}

static int build_pollset(struct ev *ev)
{
    int n = 0;
    for (int i = 0; i < EV_MAX_WATCHES; i++) {
        const struct ev_watch *w = &ev->watches[i];
        if (!w->fn)
            continue;
        ev->pfds[n] = (struct pollfd){.fd = w->fd, .events = w->events};
        ev->pslot[n] = i;
        ev->pgen[n] = w->gen;
        n++;
    }
    return n;
}

static void dispatch(struct agent *a, int i)
{
    struct ev *ev = &a->ev;
    short rev = ev->pfds[i].revents;
    struct ev_watch *w = &ev->watches[ev->pslot[i]];
    if (!rev || !w->fn || w->gen != ev->pgen[i])
        return; /* nothing happened, or removed by an earlier callback this turn */
    w->fn(a, w->ctx, rev);
}

int ev_run(struct agent *a)
{
    bool busy = false;
    while (!a->quit) {
        int npfds = build_pollset(&a->ev);
        int n = poll(a->ev.pfds, (nfds_t)npfds, busy ? 0 : next_timeout(a, now_mono_ms()));
        if (n < 0 && errno != EINTR) {
            int e = errno;
            log_error("poll: %s", strerror(e));
            a->exit_code = 1;
            return -e;
        }
        /* in slot order: the control stream, registered first, before
         * any child's output (a SIGNAL or an abort should not wait behind
         * a flood of output) */
        for (int i = 0; n > 0 && i < npfds && !a->quit; i++)
            dispatch(a, i);
        fire_timers(a, now_mono_ms());
        busy = run_idle(a);
    }
    return 0;
}
