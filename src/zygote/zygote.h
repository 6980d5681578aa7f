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
 */
#ifndef AIRLOCK_ZYGOTE_H
#define AIRLOCK_ZYGOTE_H

#include <Python.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>

#include "zygote_proto.h"

/* A sandbox the daemon registered: its socket, its agent's pidfd (whose
 * namespaces a spawn joins) and its cgroup directories. */
struct zsandbox {
    int sock;
    int pidfd;
    uint32_t ncgroups;
    char cgroups[ZYG_MAX_CGROUPS][256];
};

struct zygote {
    int daemon_fd;
    int sig_fd;        /* SIGCHLD: the first-level children exit at once */
    int self_pidns_fd; /* /proc/self/ns/pid: where our own children go back to */
    PyObject *runner;  /* the airlock_runner module */
    struct zsandbox *sb;
    size_t nsb, capsb;
    unsigned long spawns, failures;
};

/* Fork a REPL for sb with the 6 fds of a spawn request (closed here, in
 * every case). Returns 0 once the first child is forked; failures before
 * that are reported through the report fd (fds[5]) and returned. */
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
