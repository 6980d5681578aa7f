/* sysview.c - the sandbox's own view of its size (issue 14, item 8).
 *
 * Libraries size thread pools and caches from what the system says it has:
 * glibc's sysconf(_SC_NPROCESSORS_ONLN) (Python's os.cpu_count) reads
 * /sys/devices/system/cpu/online, nproc and os.sched_getaffinity the
 * affinity mask, free and psutil /proc/meminfo. Inside a sandbox those
 * showed the host's. Here the parent decides the sandbox's view, and the
 * child (mnt.c) and the agent (src/agent/meminfo.c) apply it:
 *
 *   CPUs    cpu_millis rounded up to whole CPUs, taken from the daemon's
 *           affinity starting at a CPU picked by the sandbox id (so 1-CPU
 *           sandboxes spread over the host instead of all sharing CPU 0).
 *           The child sets that affinity before it execs the agent, so every
 *           user process inherits it (the zygote's REPLs copy the agent's,
 *           src/zygote/spawn.c), and mounts a read-only /sys holding only
 *           devices/system/cpu/{online,possible,present} listing them. The
 *           quota (cpu.max) stays the limit: a process may widen its own
 *           affinity within the host's, it gains no CPU time by it.
 *   memory  /proc/meminfo is a file the agent rewrites from the sandbox's
 *           cgroup (these two read-only fds) and the limit, bound read-only
 *           over the kernel's (mnt.c).
 *
 * A sandbox with no CPU limit, or one at least as large as the daemon's
 * affinity, keeps the daemon's CPUs (the list still describes them).
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

void sysview_plan_cpus(struct jail_plan *p, const char *id, uint32_t cpu_millis)
{
    cpu_set_t have;
    CPU_ZERO(&have);
    p->set_affinity = false;
    if (sched_getaffinity(0, sizeof(have), &have) < 0) {
        log_warn("sched_getaffinity: %s; sandboxes see the host's CPUs", strerror(errno));
        CPU_ZERO(&p->cpus);
        p->cpu_list[0] = '\0';
        return;
    }
    p->cpus = have;
    int avail = CPU_COUNT(&have);
    int want = cpu_millis == 0 ? avail : (int)((cpu_millis + 999) / 1000);
    if (want < avail) {
        /* FNV-1a of the id: the first CPU, among the daemon's */
        uint32_t h = 2166136261u;
        for (const char *c = id; c && *c; c++)
            h = (h ^ (uint8_t)*c) * 16777619u;
        int skip = (int)(h % (uint32_t)avail), taken = 0;
        int order[CPU_SETSIZE], n = 0;
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &have))
                order[n++] = c;
        CPU_ZERO(&p->cpus);
        for (int i = 0; taken < want; i++, taken++)
            CPU_SET(order[(skip + i) % n], &p->cpus);
        p->set_affinity = true;
    }
    cpu_list_format(&p->cpus, p->cpu_list, sizeof(p->cpu_list));
}

void sysview_plan_memcg(struct jail_plan *p, const struct cgroup_ctx *cg, const char *id)
{
    int r = cgroup_open_memory_files(cg, id, &p->memcg_usage_fd, &p->memcg_stat_fd);
    if (r < 0)
        log_warn("sandbox %s: open its memory cgroup files: %s; /proc/meminfo shows the limit only", id, strerror(-r));
}
