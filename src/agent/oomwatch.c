/* oomwatch.c - which calls a guest's OOM killer hit (vm backend only).
 *
 * The jail's daemon learns of an OOM kill from the sandbox's host cgroup
 * (its oom_kill counter). A VM's guest processes are not in any host cgroup
 * of their own: the guest kernel kills them, and counts it in its
 * /proc/vmstat `oom_kill`. So in a guest the agent notes that counter when a
 * call starts and, when its RESULT goes out, adds "oom_killed": true if it
 * moved: the daemon maps that to the same OutOfMemory error as the jail's.
 * (In the jail /proc/vmstat is the host's: never read there.)
 */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static uint64_t vmstat_oom_kills(void)
{
    char buf[8192];
    if (read_file_small("/proc/vmstat", buf, sizeof(buf)) < 0)
        return 0;
    const char *p = strstr(buf, "\noom_kill ");
    return p ? strtoull(p + 10, NULL, 10) : 0;
}

void oomwatch_call_started(struct agent *a, uint32_t req_id)
{
    if (!a->guest)
        return;
    /* the oldest slot goes when all are taken: a call that long in flight
     * loses only this refinement */
    struct oom_mark *m = &a->oom_marks[a->oom_next++ % AGENT_OOM_MARKS];
    m->req_id = req_id;
    m->oom_kills = vmstat_oom_kills();
}

void oomwatch_result(struct agent *a, uint32_t req_id, json_t *result)
{
    if (!a->guest)
        return;
    for (unsigned i = 0; i < AGENT_OOM_MARKS; i++) {
        struct oom_mark *m = &a->oom_marks[i];
        if (m->req_id != req_id)
            continue;
        if (vmstat_oom_kills() > m->oom_kills)
            json_object_set_new(result, "oom_killed", json_true());
        m->req_id = 0;
        return;
    }
}
