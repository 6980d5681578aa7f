/* zygote.h - internals of airlock-zygote.
 *
 *   main.c   arguments, its own network namespace, CPython start, warm-up,
 *            gc.freeze, the poll loop over the daemon's socket and one
 *            socket per sandbox
 *   spawn.c  one spawn: fork into the sandbox's pid namespace, join its
 *            cgroups and other namespaces, fork the REPL, drop privileges
 *            (src/agent/proc.c), run the runner's main loop
 *   hugeheap.c pymalloc's arenas in one huge-page region, the heap
 *            collapsed into huge pages: cheap forks and exits
 *   registry.c the table of registered sandboxes, in a mapping no forked
 *            REPL gets a copy of
 */
#ifndef AIRLOCK_ZYGOTE_H
#define AIRLOCK_ZYGOTE_H

#include <Python.h>
#include <stdbool.h>
#include <poll.h>
#include <stdint.h>
#include <sys/resource.h>

#include "zygote_proto.h"

/* A sandbox the daemon registered: its socket, its agent's pidfd (whose
 * namespaces a spawn joins) and its cgroup directories (O_PATH fds). Only
 * descriptors: nothing here names the sandbox. */
struct zsandbox {
    int sock;
    int pidfd;
    uint32_t ncgroups;
    int cgroup[ZYG_MAX_CGROUPS];
};

/* Far more than a daemon runs (--max-sandboxes is at most 100,000); each
 * holds at least three of our fds, so RLIMIT_NOFILE bounds it first. */
#define ZYG_MAX_SANDBOXES 131072

/* Everything the zygote knows about the sandboxes it serves, in one
 * MADV_WIPEONFORK mapping (registry.c): a forked REPL sees zeros here. */
struct zregistry {
    size_t n;
    unsigned long spawns, failures;
    struct pollfd pfds[2 + ZYG_MAX_SANDBOXES]; /* serve()'s: the daemon, SIGCHLD, each sandbox */
    struct zsandbox sb[ZYG_MAX_SANDBOXES];
};

struct zygote {
    int daemon_fd;
    int sig_fd;        /* SIGCHLD: the first-level children exit at once */
    int self_pidns_fd; /* /proc/self/ns/pid: where our own children go back to */
    PyObject *runner;  /* the airlock_runner module */
    struct zregistry *reg;
};

int registry_map(struct zregistry **out);
/* entry i's fds closed, the last entry moved into its slot, the last slot cleared */
void registry_drop(struct zregistry *r, size_t i);
/* -ENOSPC when full */
int registry_add(struct zregistry *r, const struct zsandbox *sb);
/* every entry dropped, the mapping unmapped */
void registry_unmap(struct zregistry *r);
/* In a forked child: unmap the (zeroed) copy, closing nothing. */
void registry_forget(struct zregistry *r);

/* Fork a REPL for sb (an entry of z->reg) with the 6 fds of a spawn
 * request (closed here, in every case). Returns 0 once the first child is
 * forked; failures before that are reported through the report fd
 * (fds[5]) and returned. */
int zygote_spawn_repl(struct zygote *z, const struct zsandbox *sb, const struct zyg_spawn *req,
                      int fds[ZYG_SPAWN_FDS]);

/* Our thread count (a fork copies only the calling thread), or -errno. */
int zygote_threads(void);

/* Before Python starts: pymalloc's arenas from one huge-page region. */
void hugeheap_install(void);
/* After the warm-up: small pages for what REPLs allocate later, the heap
 * and big anonymous mappings collapsed into huge pages; logs the result. */
void hugeheap_seal(void);

#endif
