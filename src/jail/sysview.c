/* sysview.c - the sandbox's own view of its size (issue 14, item 8).
 *
 * Libraries size thread pools and caches from what the system says it has:
 * glibc's sysconf(_SC_NPROCESSORS_ONLN) (Python's os.cpu_count) reads
 * /sys/devices/system/cpu/online, nproc and os.sched_getaffinity the
 * affinity mask, free and psutil /proc/meminfo. Inside a sandbox those
 * showed the host's. Here the parent decides the sandbox's view, and the
 * child (mnt.c) and the agent (src/agent/meminfo.c) apply it:
 *
 *   CPUs    cpu_millis rounded up to whole CPUs (the first of the daemon's
 *           affinity): the child mounts a read-only /sys holding only
 *           devices/system/cpu/{online,possible,present} listing them, which
 *           glibc's sysconf(_SC_NPROCESSORS_ONLN/_CONF) read, so
 *           os.cpu_count() and multiprocessing.cpu_count() say N. `nproc`
 *           reads OMP_NUM_THREADS first (1 in every sandbox,
 *           src/agent/proc.c), then the affinity mask (`nproc --all` too,
 *           when sysconf says 1 or 2: gnulib distrusts those), which is left
 *           as the daemon's: pinning a
 *           sandbox to N CPUs made a warm run_code's round trip ~3x slower on
 *           a loaded host (its agent and runner wait for one busy CPU instead
 *           of running on whichever is free; docs/benchmarks.md), and the
 *           quota (cpu.max) is what limits its CPU time either way.
 *   memory  /proc/meminfo is a file the agent rewrites from the sandbox's
 *           cgroup (these two read-only fds) and the limit, bound read-only
 *           over the kernel's (mnt.c).
 *
 * A sandbox with no CPU limit, or one at least as large as the daemon's
 * affinity, is shown the daemon's CPUs.
 */
#include "jail.h"

#include <stdio.h>
#include <string.h>

#include "jail_shared.h"
#include "log.h"

static void cpu_list_format(const cpu_set_t *set, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    for (int c = 0; c < CPU_SETSIZE && n < len; c++) {
        if (!CPU_ISSET(c, set))
            continue;
        int end = c;
        while (end + 1 < CPU_SETSIZE && CPU_ISSET(end + 1, set))
            end++;
        int w = end > c ? snprintf(out + n, len - n, "%s%d-%d", n ? "," : "", c, end)
                        : snprintf(out + n, len - n, "%s%d", n ? "," : "", c);
        if (w < 0 || (size_t)w >= len - n) {
            out[n] = '\0'; /* cannot happen for CPU_SETSIZE CPUs in 128 bytes of ranges; keep what fits */
            return;
        }
        n += (size_t)w;
        c = end;
    }
}

void sysview_plan_cpus(struct jail_plan *p, uint32_t cpu_millis)
{
    cpu_set_t have, shown;
    p->cpu_list[0] = '\0';
    if (sched_getaffinity(0, sizeof(have), &have) < 0) {
        log_warn("sched_getaffinity: %s; sandboxes get no /sys CPU list", strerror(errno));
        return;
    }
    int avail = CPU_COUNT(&have);
    int want = cpu_millis == 0 ? avail : (int)((cpu_millis + 999) / 1000);
    CPU_ZERO(&shown);
    for (int c = 0, taken = 0; c < CPU_SETSIZE && taken < want; c++)
        if (CPU_ISSET(c, &have)) {
            CPU_SET(c, &shown);
            taken++;
        }
    cpu_list_format(&shown, p->cpu_list, sizeof(p->cpu_list));
}

void sysview_plan_memcg(struct jail_plan *p, const struct cgroup_ctx *cg, const char *id)
{
    int r = cgroup_open_memory_files(cg, id, &p->memcg_usage_fd, &p->memcg_stat_fd);
    if (r < 0)
        log_warn("sandbox %s: open its memory cgroup files: %s; /proc/meminfo shows the limit only", id, strerror(-r));
}
