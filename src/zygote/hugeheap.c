/* hugeheap.c - lay the zygote's warm heap out on transparent huge pages, so
 * that each fork copies a few page-middle-directory entries instead of ten
 * thousand page-table entries, and each REPL's exit frees as few.
 *
 * Why: with numpy and pandas imported, the zygote holds ~40 MB of anonymous
 * memory in ~230 mappings: the brk heap (~13 MB) and pymalloc's 1 MiB arenas,
 * each its own mmap, scattered between the libraries' mappings. A fork then
 * copies one PTE per resident 4 KiB page and one VMA per mapping, and the
 * REPL's exit tears them down again: measured ~3.4 ms per fork + exit, the
 * largest part of a pooled sandbox's cost (docs/benchmarks.md).
 *
 * How:
 *   - pymalloc's arenas come from one reserved region (hugeheap_install,
 *     before Python starts): PROT_NONE address space, MADV_HUGEPAGE, opened
 *     read-write one arena at a time. Adjacent arenas merge into one VMA
 *     whose 2 MiB-aligned extents the kernel backs with huge pages.
 *     PROT_NONE until used because RLIMIT_DATA, which each REPL gets,
 *     counts writable private mappings: a reservation opened read-write
 *     would use up the REPL's limit before it allocated anything.
 *   - After the warm-up (hugeheap_seal): the region's unused tail is marked
 *     MADV_NOHUGEPAGE, so a REPL's own new arenas cost 4 KiB pages, not
 *     2 MiB each charged to its sandbox; and the brk heap and any other
 *     anonymous mapping big enough is collapsed into huge pages with
 *     MADV_COLLAPSE.
 * A fork shares each huge page (copy_huge_pmd); the first write by a REPL
 * into one splits only that REPL's mapping of it and copies 4 KiB, as
 * without huge pages. Everything here is best effort: a kernel without
 * MADV_COLLAPSE or with THP off leaves the layout as it was, and the arena
 * allocator falls back to plain mmap when the region is full.
 */
#include "zygote.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define HUGE_SZ (2UL << 20)
#define REGION_SZ (1UL << 30) /* 1,024 arenas of 1 MiB: Python objects far beyond a REPL's memory limit */
#define MAX_FREE 1024
#define MIN_ARENA (256UL << 10) /* the smallest pymalloc arena of any CPython 3 */

/* One region per process. Global because CPython's arena hooks are: a
 * forked REPL inherits it with the rest of the memory and goes on using it. */
static struct {
    char *base, *next, *end; /* [base, next) handed out */
    char *open_end;          /* [base, open_end) read-write: whole huge pages */
    void *free[MAX_FREE];    /* returned arenas, read-write, pages dropped */
    unsigned nfree;
    size_t arena_sz; /* the first arena-sized request: pymalloc asks one size only */
    unsigned long region_allocs, mmap_allocs;
} H;

static void *mmap_arena(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void *arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    /* pymalloc's arenas are one size (1 MiB in 3.11); the same hook also
     * serves smaller blocks (the frame stack's 16 KiB chunks), which stay
     * plain mappings */
    if (!H.base || size < MIN_ARENA || (H.arena_sz && size != H.arena_sz))
        goto fallback;
    H.arena_sz = size;
    if (H.nfree)
        return H.region_allocs++, H.free[--H.nfree];
    if ((size_t)(H.end - H.next) < size)
        goto fallback;
    if ((size_t)(H.open_end - H.next) < size) {
        /* open whole 2 MiB extents: the kernel backs an extent with a huge
         * page at its first fault only if the extent is inside the mapping */
        size_t want = ((size_t)(H.next + size - H.open_end) + HUGE_SZ - 1) & ~(HUGE_SZ - 1);
        if (want > (size_t)(H.end - H.open_end) ||
            mprotect(H.open_end, want, PROT_READ | PROT_WRITE) < 0)
            goto fallback; /* RLIMIT_DATA: mmap below fails the same way */
        H.open_end += want;
    }
    void *p = H.next;
    H.next += size;
    H.region_allocs++;
    return p;
fallback:
    H.mmap_allocs++;
    return mmap_arena(size);
}

static void arena_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    char *c = ptr;
    if (H.base && c >= H.base && c < H.end) {
        /* keep it mapped (an unmap would split the VMA), drop its pages */
        (void)madvise(c, size, MADV_DONTNEED);
        if (H.nfree < MAX_FREE) {
            H.free[H.nfree++] = c;
            return;
        }
        return; /* unreachable: the region holds at most MAX_FREE arenas */
    }
    munmap(ptr, size);
}

void hugeheap_install(void)
{
    /* over-reserve by one huge page to align the start */
    char *raw = mmap(NULL, REGION_SZ + HUGE_SZ, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        log_warn("huge-page heap: reserve %lu MiB: %s; arenas are plain mappings", REGION_SZ >> 20,
                 strerror(errno));
        return;
    }
    char *base = (char *)(((uintptr_t)raw + HUGE_SZ - 1) & ~(HUGE_SZ - 1));
    if (base > raw)
        munmap(raw, (size_t)(base - raw));
    munmap(base + REGION_SZ, (size_t)(raw + HUGE_SZ - base));
    if (madvise(base, REGION_SZ, MADV_HUGEPAGE) < 0)
        log_debug("huge-page heap: MADV_HUGEPAGE: %s", strerror(errno));
    H.base = H.next = H.open_end = base;
    H.end = base + REGION_SZ;
    PyObjectArenaAllocator a = {.ctx = NULL, .alloc = arena_alloc, .free = arena_free};
    PyObject_SetArenaAllocator(&a);
}

/* MADV_COLLAPSE the 2 MiB-aligned part of [lo, hi); returns bytes collapsed */
static size_t collapse(uintptr_t lo, uintptr_t hi)
{
    uintptr_t a = (lo + HUGE_SZ - 1) & ~(HUGE_SZ - 1), b = hi & ~(HUGE_SZ - 1);
    if (b <= a)
        return 0;
    (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
    if (madvise((void *)a, b - a, MADV_COLLAPSE) < 0) {
        log_debug("huge-page heap: MADV_COLLAPSE %#lx+%lu: %s", (unsigned long)a, (unsigned long)(b - a),
                  strerror(errno));
        return 0;
    }
    return b - a;
}

void hugeheap_seal(void)
{
    size_t collapsed = 0;
    if (H.base) {
        /* the tail a REPL's new arenas come from: small pages */
        if (H.open_end < H.end && madvise(H.open_end, (size_t)(H.end - H.open_end), MADV_NOHUGEPAGE) < 0)
            log_debug("huge-page heap: MADV_NOHUGEPAGE: %s", strerror(errno));
        /* extents the kernel could not back with a huge page at their
         * first fault (no free huge page at that moment) */
        collapsed += collapse((uintptr_t)H.base, (uintptr_t)H.open_end);
    }
    /* the brk heap and the libraries' own big buffers */
    FILE *f = fopen("/proc/self/maps", "re");
    if (f) {
        char line[512];
        while (fgets(line, sizeof(line), f)) {
            unsigned long lo, hi;
            char perms[8];
            int off = 0;
            if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &off) < 3)
                continue;
            const char *path = off ? line + off : "";
            bool anon = path[0] == '\n' || path[0] == '\0' || strncmp(path, "[heap]", 6) == 0;
            if (!anon || strcmp(perms, "rw-p") != 0 || hi - lo < HUGE_SZ)
                continue;
            if (H.base && (char *)lo >= H.base && (char *)hi <= H.end)
                continue; /* done above */
            collapsed += collapse(lo, hi);
        }
        fclose(f);
    }
    log_info("huge-page heap: %lu arenas in the region (%lu outside it), %zu MiB collapsed", H.region_allocs,
             H.mmap_allocs, collapsed >> 20);
}
