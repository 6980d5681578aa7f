/* tree.c - find and kill every process a timed-out call started.
 *
 * A timed-out call must stop everything it started, also what left its
 * process group (setsid) or its parent (double fork). Signalling a process
 * group is not enough for that, so on timeout, and only then (the hot path
 * never walks /proc), the agent reads /proc/[0-9]*'/stat into a table of
 * (pid, ppid, session, start time) and marks what belongs to the call:
 *
 *   jobs (bash/exec)  every descendant of the job's root. The root is a
 *                     child subreaper (proc.c, spawn_spec.subreaper), so an
 *                     orphan of its descendants is re-parented to the root,
 *                     not to us, and stays in the tree however it detached.
 *   python calls      descendants of the runner that started during the call
 *                     (through processes that did too: a server started by
 *                     an earlier call keeps its own children), and orphans
 *                     the agent adopted that started during the call. The
 *                     runner is not a subreaper (repl.c says why), so the
 *                     detached ones of a call are re-parented to us.
 *
 * The marked processes are SIGKILLed in passes until a pass finds none: a
 * process forked between our read of /proc and the kill is found by the next
 * pass (its parent is dead, so it was re-parented to the root or to us). The
 * caller stops the root (SIGSTOP) first, so it cannot start new ones.
 *
 * "Started during the call": /proc/PID/stat field 22 is in clock ticks
 * (10 ms) since boot; a process of the same tick as the call start counts
 * if its pid is above the namespace's last pid at call start (pids are
 * allocated upwards, and a wrap within one tick is impossible).
 *
 * What an attacker can do against it, and why that is fine: user code can
 * clear the subreaper flag of a job root it controls (prctl from the root
 * process itself), or start a process with a timeout of its own. A call that
 * ends normally may leave processes running anyway, by design, so this is a
 * clean-up of runaway code, not a boundary: the boundary is the sandbox's
 * cgroup (cpu, memory, pids) and destroy, which kills the whole namespace.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define TREE_MAX_PASSES 32

struct pentry {
    pid_t pid, ppid, sid;
    unsigned long long start; /* clock ticks since boot */
    char state;
    bool mark;
};

struct ptable {
    struct pentry *v;
    size_t n, cap;
};

static void ptable_free(struct ptable *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

/* Parse one /proc/PID/stat. The command name may contain spaces and ')',
 * so the fields are counted from the last ')'. */
static int parse_stat(const char *buf, struct pentry *e)
{
    const char *p = strrchr(buf, ')');
    if (!p)
        return -EINVAL;
    char state;
    int ppid, pgrp, sid;
    unsigned long long start;
    /* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
     * cmajflt utime stime cutime cstime priority nice num_threads
     * itrealvalue starttime */
    if (sscanf(p + 1, " %c %d %d %d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &state, &ppid, &pgrp,
               &sid, &start) != 5)
        return -EINVAL;
    e->state = state;
    e->ppid = ppid;
    e->sid = sid;
    e->start = start;
    return 0;
}

/* Every process visible in /proc. Processes that exit while we read are
 * skipped (ENOENT/ESRCH). */
static int ptable_load(struct ptable *t)
{
    DIR *d = opendir("/proc");
    if (!d) {
        int e = errno;
        log_warn("opendir /proc: %s", strerror(e));
        return -e;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue; /* exited meanwhile */
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        struct pentry e = {.pid = (pid_t)atoi(de->d_name)};
        if (parse_stat(buf, &e) < 0)
            continue;
        if (t->n == t->cap) {
            size_t ncap = t->cap ? t->cap * 2 : 256;
            struct pentry *nv = realloc(t->v, ncap * sizeof(*nv));
            if (!nv) {
                rc = -ENOMEM;
                log_warn("out of memory reading the process table");
                break;
            }
            t->v = nv;
            t->cap = ncap;
        }
        t->v[t->n++] = e;
    }
    closedir(d);
    return rc;
}

static struct pentry *ptable_find(struct ptable *t, pid_t pid)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].pid == pid)
            return &t->v[i];
    return NULL;
}

/* Mark, transitively, every child of a marked process that passes `keep`
 * (NULL: all). O(n x depth), n is bounded by the sandbox's pids.max. */
static void mark_descendants(struct ptable *t, bool (*keep)(const struct pentry *, const void *), const void *ctx)
{
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < t->n; i++) {
            struct pentry *e = &t->v[i];
            if (e->mark || (keep && !keep(e, ctx)))
                continue;
            struct pentry *parent = ptable_find(t, e->ppid);
            if (parent && parent->mark) {
                e->mark = true;
                changed = true;
            }
        }
    }
}

/* ---- call marks ------------------------------------------------------------- */

static unsigned long long boottime_ticks(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
        return 0;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    /* the kernel rounds down the same way (nsec_to_clock_t) */
    return (unsigned long long)ts.tv_sec * (unsigned long long)hz +
           (unsigned long long)ts.tv_nsec / (1000000000ull / (unsigned long long)hz);
}

void tree_mark_now(struct tree_mark *m, int last_pid_fd)
{
    m->ticks = boottime_ticks();
    m->last_pid = -1;
    if (last_pid_fd < 0)
        return;
    /* one pread on a descriptor opened at start: the hot path's only cost */
    char buf[32];
    ssize_t n = pread(last_pid_fd, buf, sizeof(buf) - 1, 0);
    if (n > 0) {
        buf[n] = '\0';
        m->last_pid = (pid_t)atoi(buf);
    }
}

/* Did e start after the mark? Same tick: only with a higher pid (without
 * the last pid, a process of the same tick counts as started during). */
static bool started_after(const struct pentry *e, const struct tree_mark *m)
{
    if (e->start != m->ticks)
        return e->start > m->ticks;
    return m->last_pid < 0 || e->pid > m->last_pid;
}

static bool keep_new(const struct pentry *e, const void *ctx)
{
    return started_after(e, ctx);
}

/* ---- killing ------------------------------------------------------------------ */

/* The pids SIGKILLed so far: a later pass that sees one of them again (it
 * is still dying) does not count it as new work. */
struct killed {
    pid_t *v;
    size_t n, cap;
};

static bool killed_has(const struct killed *k, pid_t pid)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->v[i] == pid)
            return true;
    return false;
}

static void killed_add(struct killed *k, pid_t pid)
{
    if (k->n == k->cap) {
        size_t ncap = k->cap ? k->cap * 2 : 64;
        pid_t *nv = realloc(k->v, ncap * sizeof(*nv));
        if (!nv)
            return; /* the next pass just counts it again */
        k->v = nv;
        k->cap = ncap;
    }
    k->v[k->n++] = pid;
}

/* SIGKILL every marked process but `spare`; returns how many were not
 * killed before. With `direct`, the pids whose parent is `parent_of_direct`
 * are collected (up to direct_cap): their parent must reap them. */
static int kill_marked(struct ptable *t, pid_t spare, struct killed *k, pid_t parent_of_direct, pid_t *direct,
                       size_t *ndirect, size_t direct_cap)
{
    int n = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct pentry *e = &t->v[i];
        if (!e->mark || e->pid == spare || killed_has(k, e->pid))
            continue;
        if (e->state == 'Z' || e->state == 'X')
            continue; /* already dead: its parent reaps it */
        if (kill(e->pid, SIGKILL) < 0) {
            if (errno != ESRCH)
                log_warn("kill SIGKILL %d: %s", (int)e->pid, strerror(errno));
            continue;
        }
        n++;
        killed_add(k, e->pid);
        if (direct && e->ppid == parent_of_direct && *ndirect < direct_cap)
            direct[(*ndirect)++] = e->pid;
    }
    return n;
}

/* What one pass kills: mark the processes in a fresh table, or return false
 * when there is nothing left to look for. */
typedef bool (*mark_fn)(struct ptable *t, void *ctx);

/* The passes both callers share: load /proc, mark, SIGKILL the marked ones
 * but `spare`, until a pass finds nothing new (a process may fork between
 * the read and the kill, hence several passes). Returns how many were
 * killed, or -EIO when /proc could not be read at all. */
static int kill_in_passes(mark_fn mark, void *ctx, pid_t spare, pid_t parent_of_direct, pid_t *direct,
                          size_t *ndirect, size_t direct_cap)
{
    int total = 0;
    struct killed k = {0};
    for (int pass = 0; pass < TREE_MAX_PASSES; pass++) {
        struct ptable t = {0};
        if (ptable_load(&t) < 0 && t.n == 0) {
            ptable_free(&t);
            total = -EIO;
            break;
        }
        if (!mark(&t, ctx)) {
            ptable_free(&t);
            break;
        }
        int n = kill_marked(&t, spare, &k, parent_of_direct, direct, ndirect, direct_cap);
        ptable_free(&t);
        total += n;
        if (n == 0)
            break;
    }
    free(k.v);
    return total;
}

static bool mark_tree_of(struct ptable *t, void *ctx)
{
    struct pentry *r = ptable_find(t, *(const pid_t *)ctx);
    if (!r)
        return false; /* the root is gone: what it had was re-parented, see the caller */
    r->mark = true;
    mark_descendants(t, NULL, NULL);
    return true;
}

int tree_kill_descendants(pid_t root)
{
    return kill_in_passes(mark_tree_of, &root, root, 0, NULL, NULL, 0);
}

/* A process the agent adopted belongs to the python call if it started
 * during the call and is not a job's root (nor the runner). Adopted
 * leftovers of a job that ended normally during the call look the same; in
 * that case (`ambiguous`) only those in the runner's session are taken. */
struct call_ctx {
    pid_t runner, agent;
    const struct tree_mark *since;
    const struct agent *a;
    bool ambiguous;
};

/* The children registered with the loop are the runner and the jobs' roots
 * (ev.h), so any other registered one is a job's root, until it is reaped. */
static bool is_job_root(const struct call_ctx *c, pid_t pid)
{
    return pid != c->runner && ev_child_known(c->a, pid);
}

static bool adopted_by_call(const struct pentry *e, const struct call_ctx *c)
{
    if (e->ppid != c->agent || e->pid == c->runner || is_job_root(c, e->pid))
        return false;
    if (!started_after(e, c->since))
        return false;
    return !c->ambiguous || e->sid == c->runner;
}

static bool mark_call(struct ptable *t, void *ctx)
{
    struct call_ctx *c = ctx;
    /* a job root that has exited but is not reaped yet: its leftovers
     * are already ours, indistinguishable by time */
    for (size_t i = 0; i < t->n && !c->ambiguous; i++)
        if (t->v[i].ppid == c->agent && t->v[i].state == 'Z' && is_job_root(c, t->v[i].pid))
            c->ambiguous = true;
    struct pentry *r = ptable_find(t, c->runner);
    if (r)
        r->mark = true;
    for (size_t i = 0; i < t->n; i++)
        if (adopted_by_call(&t->v[i], c))
            t->v[i].mark = true;
    mark_descendants(t, keep_new, c->since);
    return true;
}

int tree_kill_call(const struct agent *a, pid_t runner, const struct tree_mark *since, bool ambiguous, pid_t *direct,
                   size_t *ndirect, size_t direct_cap)
{
    struct call_ctx c = {.runner = runner, .agent = getpid(), .since = since, .a = a, .ambiguous = ambiguous};
    return kill_in_passes(mark_call, &c, runner, runner, direct, ndirect, direct_cap);
}
