/* test_ev.c - the agent's event loop (src/agent/ev.c) on real pipes, timers
 * and children: what a callback removes is not dispatched later in the same
 * turn, stale handles cancel nothing, timers fire once, and the reaper hands
 * a registered child's exit to its owner and reaps unregistered ones too. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "ev.h"
#include "unit.h"
#include "util.h"

static struct agent *new_agent(void)
{
    struct agent *a = calloc(1, sizeof(*a));
    if (!a)
        abort();
    return a;
}

static void readable_pipe(int p[2])
{
    if (pipe(p) < 0 || write(p[1], "x", 1) != 1)
        abort();
}

/* ev_run, ended after 10 s by a timer of its own if the test's callbacks
 * never stop it (a broken loop fails the test instead of hanging it). */
static void watchdog_cb(struct agent *a, void *ctx)
{
    *(bool *)ctx = true;
    a->quit = true;
}

static int run_bounded(struct agent *a)
{
    bool fired = false;
    int t = ev_timer_add(a, now_mono_ms() + 10000, watchdog_cb, &fired);
    a->quit = false;
    int r = ev_run(a);
    ev_timer_cancel(a, t);
    CHECK(!fired);
    return r;
}

/* ---- a callback that removes (and replaces) another watch ---------------- */

struct removal {
    int victim;       /* handle to remove */
    int victim_fd;
    int replacement;  /* handle registered in its place */
    int calls_remover, calls_victim, calls_replacement;
};

static void victim_cb(struct agent *a, void *ctx, short rev)
{
    (void)a;
    (void)rev;
    ((struct removal *)ctx)->calls_victim++;
}

static void replacement_cb(struct agent *a, void *ctx, short rev)
{
    (void)rev;
    ((struct removal *)ctx)->calls_replacement++;
    a->quit = true;
}

static void remover_cb(struct agent *a, void *ctx, short rev)
{
    (void)rev;
    struct removal *r = ctx;
    r->calls_remover++;
    if (r->calls_remover == 1) {
        ev_unwatch(a, r->victim);
        /* takes the slot just freed: must not be dispatched with the
         * victim's revents of this turn */
        r->replacement = ev_watch(a, r->victim_fd, POLLIN, replacement_cb, r);
    }
}

static void test_removed_in_turn(void)
{
    struct agent *a = new_agent();
    int p1[2], p2[2];
    readable_pipe(p1);
    readable_pipe(p2);
    struct removal r = {.victim_fd = p2[0]};
    int h1 = ev_watch(a, p1[0], POLLIN, remover_cb, &r);
    r.victim = ev_watch(a, p2[0], POLLIN, victim_cb, &r);
    CHECK(h1 > 0 && r.victim > 0 && h1 != r.victim);
    CHECK(run_bounded(a) == 0);
    CHECK(r.calls_victim == 0);
    CHECK(r.replacement > 0 && r.replacement != r.victim);
    /* the replacement ran on a later turn, not on the victim's slot of the first */
    CHECK(r.calls_replacement == 1 && r.calls_remover == 2);
    /* a stale handle (the victim's) removes nothing: the replacement stays */
    ev_unwatch(a, r.victim);
    ev_unwatch(a, h1);
    CHECK(run_bounded(a) == 0 && r.calls_replacement == 2);
    ev_unwatch(a, 0); /* "none" */
    close(p1[0]), close(p1[1]), close(p2[0]), close(p2[1]);
    free(a);
}

static void test_negative_fd_is_no_watch(void)
{
    struct agent *a = new_agent();
    CHECK(ev_watch(a, -1, POLLIN, victim_cb, NULL) == 0);
    free(a);
}

/* ---- timers ----------------------------------------------------------------- */

static int timer_calls[3];

static void timer_cb(struct agent *a, void *ctx)
{
    int i = (int)(intptr_t)ctx;
    timer_calls[i]++;
    if (i == 2)
        a->quit = true;
}

static void test_timers(void)
{
    struct agent *a = new_agent();
    uint64_t now = now_mono_ms();
    int t0 = ev_timer_add(a, now, timer_cb, (void *)0);
    int t1 = ev_timer_add(a, now, timer_cb, (void *)1);
    int t2 = ev_timer_add(a, now + 20, timer_cb, (void *)2);
    CHECK(t0 > 0 && t1 > 0 && t2 > 0);
    ev_timer_cancel(a, t1);
    CHECK(run_bounded(a) == 0);
    CHECK(timer_calls[0] == 1 && timer_calls[1] == 0 && timer_calls[2] == 1);
    /* fired timers are gone; a stale handle does not cancel the slot's next
     * timer */
    int t3 = ev_timer_add(a, now_mono_ms(), timer_cb, (void *)2);
    ev_timer_cancel(a, t0);
    ev_timer_cancel(a, t2);
    CHECK(t3 > 0 && run_bounded(a) == 0 && timer_calls[2] == 2 && timer_calls[0] == 1);
    free(a);
}

/* ---- children ---------------------------------------------------------------- */

struct exit_seen {
    pid_t pid;
    int status;
    int calls;
};

static void child_cb(struct agent *a, void *ctx, pid_t pid, int wstatus)
{
    struct exit_seen *e = ctx;
    e->pid = pid;
    e->status = wstatus;
    e->calls++;
    CHECK(!ev_child_known(a, pid)); /* gone before its owner hears of it */
    a->quit = true;
}

static pid_t spawn_exit(int code)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(code);
    if (pid < 0)
        abort();
    return pid;
}

/* Until pid has exited (a zombie, not reaped); bounded so that a broken
 * test cannot hang, not a timing assertion. */
static void wait_zombie(pid_t pid)
{
    uint64_t until = now_mono_ms() + 10000;
    for (;;) {
        siginfo_t si = {0};
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == pid || now_mono_ms() > until)
            return;
        usleep(1000);
    }
}

static void test_children(void)
{
    struct agent *a = new_agent();
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    CHECK(sigprocmask(SIG_BLOCK, &mask, NULL) == 0);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    CHECK(sfd >= 0);
    CHECK(ev_reap_children(a, sfd) == 0);

    /* an unregistered child first: reaped, nobody called */
    pid_t orphan = spawn_exit(3);
    wait_zombie(orphan);
    struct exit_seen e = {0};
    pid_t pid = spawn_exit(7);
    CHECK(ev_child_add(a, pid, child_cb, &e) == 0);
    CHECK(ev_child_known(a, pid) && !ev_child_known(a, orphan));
    CHECK(run_bounded(a) == 0);
    CHECK(e.calls == 1 && e.pid == pid && WIFEXITED(e.status) && WEXITSTATUS(e.status) == 7);
    CHECK(waitpid(orphan, NULL, WNOHANG) < 0 && errno == ECHILD); /* the reaper took it */

    /* a cancelled child is reaped as an orphan, its callback never runs */
    pid = spawn_exit(9);
    CHECK(ev_child_add(a, pid, child_cb, &e) == 0);
    ev_child_cancel(a, pid);
    CHECK(!ev_child_known(a, pid));
    wait_zombie(pid);
    CHECK(ev_timer_add(a, now_mono_ms(), timer_cb, (void *)2) > 0); /* one turn */
    CHECK(run_bounded(a) == 0 && e.calls == 1);
    CHECK(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD);
    close(sfd);
    free(a);
}

int main(void)
{
    test_removed_in_turn();
    test_negative_fd_is_no_watch();
    test_timers();
    test_children();
    UNIT_DONE();
}
