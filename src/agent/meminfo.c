/* meminfo.c - the sandbox's /proc/meminfo, kept by the agent (issue 14, item 8).
 *
 * In a jail sandbox /proc/meminfo is a file bound read-only over the
 * kernel's (src/jail/mnt.c); the agent holds its only writable fd (5) and
 * two read-only fds of the sandbox's memory cgroup (6: usage, 7:
 * memory.stat; v1 or v2), passed by the jail (src/jail/sysview.c). It writes:
 *
 *   MemTotal      the sandbox's memory limit
 *   MemFree       limit - usage (the cgroup's charge: processes, tmpfs files, page cache)
 *   MemAvailable  MemFree + the reclaimable page cache (file - shmem) + reclaimable slab
 *   Buffers 0, Cached = file (tmpfs included, as the kernel counts Shmem in Cached),
 *   SReclaimable, Shmem, Active/Inactive (anon, file), AnonPages; no swap
 *
 * so free(1) shows total = the limit and used = what the sandbox's processes
 * hold. It is refreshed when the agent starts (before any user process),
 * at the start of every call (so `free` run as a command sees its moment),
 * and every 250 ms while a call runs. Between calls it is not refreshed: an
 * idle sandbox costs no wake-ups; what a background process would read then
 * is as of the last call. Each write is one pwrite of a fixed-width text
 * (numbers padded to 12 digits), so the length never changes and a reader
 * racing a write sees old or new numbers, never a torn line layout.
 *
 * Without the fds (the vm backend's guest, which has its own kernel and so
 * its own meminfo; tests that run the agent directly) nothing is done.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define MEMINFO_REFRESH_MS 250

static int read_u64_fd(int fd, uint64_t *v)
{
    char buf[64];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return n < 0 ? -errno : -ENODATA;
    buf[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (errno || end == buf)
        return -EBADMSG;
    *v = x;
    return 0;
}

/* The fields of memory.stat we use, v2 names first, v1's after. */
struct memstat {
    uint64_t anon, file, shmem, active_anon, inactive_anon, active_file, inactive_file, slab_reclaimable;
};

static void parse_memstat(const char *text, struct memstat *m)
{
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        {"anon", offsetof(struct memstat, anon)},           {"rss", offsetof(struct memstat, anon)},
        {"file", offsetof(struct memstat, file)},           {"cache", offsetof(struct memstat, file)},
        {"shmem", offsetof(struct memstat, shmem)},         {"active_anon", offsetof(struct memstat, active_anon)},
        {"inactive_anon", offsetof(struct memstat, inactive_anon)},
        {"active_file", offsetof(struct memstat, active_file)},
        {"inactive_file", offsetof(struct memstat, inactive_file)},
        {"slab_reclaimable", offsetof(struct memstat, slab_reclaimable)},
    };
    memset(m, 0, sizeof(*m));
    for (const char *line = text; line && *line;) {
        const char *sp = strchr(line, ' ');
        const char *nl = strchr(line, '\n');
        if (sp && (!nl || sp < nl)) {
            size_t klen = (size_t)(sp - line);
            for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                if (strlen(keys[i].key) == klen && memcmp(line, keys[i].key, klen) == 0)
                    *(uint64_t *)((char *)m + keys[i].off) = strtoull(sp + 1, NULL, 10);
        }
        line = nl ? nl + 1 : NULL;
    }
}

static uint64_t kb(uint64_t bytes) { return bytes / 1024; }
static uint64_t sub0(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

void meminfo_refresh(struct agent *a)
{
    if (a->meminfo_fd < 0 || a->memory_limit == 0)
        return;
    uint64_t usage = 0;
    struct memstat m = {0};
    if (a->memcg_usage_fd >= 0 && read_u64_fd(a->memcg_usage_fd, &usage) == 0) {
        char stat[8192];
        ssize_t n = pread(a->memcg_stat_fd, stat, sizeof(stat) - 1, 0);
        stat[n > 0 ? n : 0] = '\0';
        parse_memstat(stat, &m);
    }
    uint64_t total = a->memory_limit;
    if (usage > total)
        usage = total;
    uint64_t free_b = total - usage;
    uint64_t avail = free_b + sub0(m.file, m.shmem) + m.slab_reclaimable;
    if (avail > total)
        avail = total;
    char buf[1024];
    int len = snprintf(buf, sizeof(buf),
                       "MemTotal:       %12" PRIu64 " kB\n"
                       "MemFree:        %12" PRIu64 " kB\n"
                       "MemAvailable:   %12" PRIu64 " kB\n"
                       "Buffers:        %12" PRIu64 " kB\n"
                       "Cached:         %12" PRIu64 " kB\n"
                       "SwapCached:     %12" PRIu64 " kB\n"
                       "Active:         %12" PRIu64 " kB\n"
                       "Inactive:       %12" PRIu64 " kB\n"
                       "Active(anon):   %12" PRIu64 " kB\n"
                       "Inactive(anon): %12" PRIu64 " kB\n"
                       "Active(file):   %12" PRIu64 " kB\n"
                       "Inactive(file): %12" PRIu64 " kB\n"
                       "SwapTotal:      %12" PRIu64 " kB\n"
                       "SwapFree:       %12" PRIu64 " kB\n"
                       "AnonPages:      %12" PRIu64 " kB\n"
                       "Shmem:          %12" PRIu64 " kB\n"
                       "SReclaimable:   %12" PRIu64 " kB\n",
                       kb(total), kb(free_b), kb(avail), (uint64_t)0, kb(m.file), (uint64_t)0,
                       kb(m.active_anon + m.active_file), kb(m.inactive_anon + m.inactive_file), kb(m.active_anon),
                       kb(m.inactive_anon), kb(m.active_file), kb(m.inactive_file), (uint64_t)0, (uint64_t)0,
                       kb(m.anon), kb(m.shmem), kb(m.slab_reclaimable));
    if (len <= 0 || (size_t)len >= sizeof(buf))
        return;
    ssize_t w = pwrite(a->meminfo_fd, buf, (size_t)len, 0);
    if (w != len && !a->meminfo_warned) {
        a->meminfo_warned = true; /* once: it would repeat at every call */
        log_warn("write /proc/meminfo: %s", w < 0 ? strerror(errno) : "short write");
    }
}

static bool calls_running(const struct agent *a)
{
    if (a->jobs)
        return true;
    for (size_t i = 0; i < AGENT_MAX_CONTEXTS; i++)
        if (a->repls[i].used && a->repls[i].req_id != 0)
            return true;
    return false;
}

static void meminfo_on_timer(struct agent *a, void *ctx)
{
    (void)ctx;
    a->meminfo_timer = 0;
    meminfo_refresh(a);
    if (calls_running(a) && (a->meminfo_timer = ev_timer_add(a, now_mono_ms() + MEMINFO_REFRESH_MS, meminfo_on_timer, NULL)) < 0)
        a->meminfo_timer = 0;
}

void meminfo_call_started(struct agent *a)
{
    if (a->meminfo_fd < 0)
        return;
    meminfo_refresh(a);
    if (a->meminfo_timer == 0 &&
        (a->meminfo_timer = ev_timer_add(a, now_mono_ms() + MEMINFO_REFRESH_MS, meminfo_on_timer, NULL)) < 0)
        a->meminfo_timer = 0;
}
