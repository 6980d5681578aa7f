/* registry.c - the zygote's table of registered sandboxes, kept out of the
 * REPLs it forks.
 *
 * A fork copies the whole address space, so anything the zygote keeps about
 * the sandboxes it serves would be readable in every REPL by its user code
 * (ctypes, /proc/self/mem). What it keeps is only descriptors (main.c takes
 * the cgroup directories as O_PATH fds, never a path: no sandbox id ever
 * enters the zygote's memory), but their numbers, how many there are and
 * how many spawns were served are still other tenants' business. So the
 * table, the poll set built from it and the counters live in one mapping of
 * their own, marked MADV_WIPEONFORK: the kernel gives every child a zeroed
 * copy (it does not even copy the page tables), and the REPL unmaps it
 * (registry_forget) before it joins its sandbox. The spawning sandbox's own
 * entry travels to the child as a copy on the zygote's stack (spawn.c).
 *
 * One fixed reservation, MAP_NORESERVE: pages exist only for the entries in
 * use, nothing is ever reallocated (a realloc leaves the old copy behind in
 * freed heap memory), and a dropped entry is cleared. Small pages
 * (MADV_NOHUGEPAGE): a huge page would make the first entry cost 2 MiB.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "zygote.h"

#define REGISTRY_BYTES ((sizeof(struct zregistry) + 4095) & ~(size_t)4095)

int registry_map(struct zregistry **out)
{
    void *p = mmap(NULL, REGISTRY_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        log_error("map the sandbox registry (%zu KiB): %s", REGISTRY_BYTES >> 10, strerror(e));
        return -e;
    }
    /* not best effort: without it every REPL would get the table */
    if (madvise(p, REGISTRY_BYTES, MADV_WIPEONFORK) < 0) {
        int e = errno;
        log_error("madvise MADV_WIPEONFORK on the sandbox registry: %s; not serving", strerror(e));
        munmap(p, REGISTRY_BYTES);
        return -e;
    }
    if (madvise(p, REGISTRY_BYTES, MADV_NOHUGEPAGE) < 0)
        log_debug("madvise MADV_NOHUGEPAGE on the sandbox registry: %s", strerror(errno));
    *out = p;
    return 0;
}

void registry_forget(struct zregistry *r)
{
    /* in a child the mapping reads as zeros; unmapped, it is not even
     * address space the REPL's RLIMIT_DATA counts */
    if (r)
        (void)munmap(r, REGISTRY_BYTES);
}

int registry_add(struct zregistry *r, const struct zsandbox *sb)
{
    if (r->n >= ZYG_MAX_SANDBOXES)
        return -ENOSPC;
    r->sb[r->n++] = *sb;
    return 0;
}

void registry_drop(struct zregistry *r, size_t i)
{
    struct zsandbox *sb = &r->sb[i];
    close(sb->sock);
    close(sb->pidfd);
    for (uint32_t k = 0; k < sb->ncgroups; k++)
        close(sb->cgroup[k]);
    *sb = r->sb[--r->n];
    explicit_bzero(&r->sb[r->n], sizeof(r->sb[r->n]));
}

void registry_unmap(struct zregistry *r)
{
    while (r->n)
        registry_drop(r, r->n - 1);
    munmap(r, REGISTRY_BYTES);
}
