/* cgroup_v1.c - cgroup v1: one hierarchy per controller,
 * /sys/fs/cgroup/{memory,pids,cpu}/<parent>/<id>.
 *
 * Older hosts and some VMs (including the one this was written on) run v1
 * with an empty v2 mount at /sys/fs/cgroup/unified, which we ignore: it has
 * no controllers. v1 has no cgroup.kill (cgroupfs.c's loop instead) and
 * charges socket buffers only when told to (v1_set_memory_max).
 */
#include "cgroup_impl.h"

#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "util.h"

/* freezer last: hierarchy 0 must stay memory (oom_file, usage_file) */
static const char *const v1_controllers[] = {"memory", "pids", "cpu", "freezer"};
#define V1_FREEZER 3

static bool is_cgroup_v1_hierarchy(const char *path)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && sf.f_type == CGROUP_SUPER_MAGIC;
}

/* Each of our controllers has a hierarchy of its own. */
static int v1_available(char *err, size_t errlen)
{
    for (size_t i = 0; i < ARRAY_SIZE(v1_controllers); i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), CGROUP_ROOT "/%s", v1_controllers[i]);
        if (!is_cgroup_v1_hierarchy(path))
            return jail_err(err, errlen, -ENOTSUP, "no cgroup v2 at %s and no cgroup v1 hierarchy at %s",
                            CGROUP_ROOT, path);
    }
    return 0;
}

static int v1_parent_dir(const struct cgroup_ctx *cg, int i, char *buf, size_t len)
{
    int n = snprintf(buf, len, CGROUP_ROOT "/%s/%s", v1_controllers[i], cg->parent);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int v1_init_parents(const struct cgroup_ctx *cg, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    int r;
    for (int i = 0; i < (int)ARRAY_SIZE(v1_controllers); i++) {
        if ((r = v1_parent_dir(cg, i, dir, sizeof(dir))) < 0 || (r = cgroupfs_mkdir_exist_ok(dir, err, errlen)) < 0)
            return r;
    }
    return 0;
}

static int v1_set_memory_max(const char *dir, uint64_t bytes, char *err, size_t errlen)
{
    char v[32];
    int r;
    cgroupfs_u64_or_max(v, sizeof(v), bytes, "-1");
    /* memory first: memsw must never be below it */
    if ((r = cgroupfs_write(dir, "memory.limit_in_bytes", v, err, errlen)) < 0)
        return r;
    char path[PATH_MAX];
    /* v1 charges socket buffers to no one unless this is set (v2 charges
     * them to memory.max): a 128 MiB sandbox pinned 2.2 GiB of TCP and as
     * much UDP buffer memory over loopback, and a few such reach tcp_mem's
     * hard limit, which stalls every TCP socket on the host (the daemon's
     * API included). Despite its name the counter is the cgroup's socket
     * memory: once it is set, mem_cgroup_sk_alloc gives every new socket of
     * the cgroup its memcg, and UDP's buffers are charged to it as TCP's are
     * (measured: 32 MiB of UDP, then drops). It must be set before the
     * cgroup has sockets. */
    snprintf(path, sizeof(path), "%s/memory.kmem.tcp.limit_in_bytes", dir);
    if (bytes && access(path, F_OK) == 0) {
        uint64_t tcp = bytes / 4 > CGROUP_TCP_MIN ? bytes / 4 : CGROUP_TCP_MIN;
        cgroupfs_u64_or_max(v, sizeof(v), tcp, "-1");
        if ((r = cgroupfs_write(dir, "memory.kmem.tcp.limit_in_bytes", v, err, errlen)) < 0)
            return r;
        cgroupfs_u64_or_max(v, sizeof(v), bytes, "-1");
    }
    snprintf(path, sizeof(path), "%s/memory.memsw.limit_in_bytes", dir);
    if (access(path, F_OK) == 0)
        return cgroupfs_write(dir, "memory.memsw.limit_in_bytes", v, err, errlen);
    /* kernel without swap accounting: at least do not prefer swapping */
    return cgroupfs_write(dir, "memory.swappiness", "0", err, errlen);
}

/* cpu_millis 1000 = one full CPU = a quota of 100 ms per 100 ms period. */
static int v1_set_cpu_max(const char *dir, uint32_t millis, char *err, size_t errlen)
{
    char v[64];
    uint64_t quota = (uint64_t)millis * 100;
    int r = cgroupfs_write(dir, "cpu.cfs_period_us", "100000", err, errlen);
    if (r < 0)
        return r;
    cgroupfs_u64_or_max(v, sizeof(v), quota, "-1");
    return cgroupfs_write(dir, "cpu.cfs_quota_us", v, err, errlen);
}

/* One directory per controller: hierarchy i gets its controller's limit. */
static int v1_apply_limits(int i, const char *dir, const struct cgroup_limits *lim, char *err, size_t errlen)
{
    switch (i) {
    case 0: return v1_set_memory_max(dir, lim->memory_bytes, err, errlen);
    case 1: return cgroupfs_set_pids_max(dir, lim->pids_max, err, errlen);
    case 2: return v1_set_cpu_max(dir, lim->cpu_millis, err, errlen);
    default: return 0; /* the freezer has no limits */
    }
}

/* freezer.state: writing FROZEN starts the freeze, reading it reports
 * FREEZING until every task is in the refrigerator. */
static int v1_set_frozen(const char *dir, bool frozen, char *err, size_t errlen)
{
    const char *want = frozen ? "FROZEN" : "THAWED";
    int r = cgroupfs_write(dir, "freezer.state", want, err, errlen);
    if (r < 0)
        return r;
    r = cgroupfs_wait_for(dir, "freezer.state", want);
    if (r < 0 && frozen)
        (void)cgroupfs_write(dir, "freezer.state", "THAWED", NULL, 0);
    if (r < 0)
        return jail_err(err, errlen, r, "wait for %s/freezer.state to read %s", dir, want);
    return 0;
}

static int v1_kill_frozen(const char *dir)
{
    char path[PATH_MAX], state[32];
    int r = cgroupfs_path_join(path, sizeof(path), dir, "freezer.state");
    if (r < 0)
        return r;
    if ((r = read_file_small(path, state, sizeof(state))) < 0)
        return r == -ENOENT ? 0 : r;
    if (strncmp(state, "THAWED", 6) == 0)
        return 0;
    /* frozen tasks cannot exit or fork: the pids listed stay theirs */
    int n = cgroupfs_kill_listed_once(dir);
    r = write_file(path, "THAWED");
    return n < 0 ? n : r;
}

const struct cgroup_impl cgroup_v1_impl = {
    .count = (int)ARRAY_SIZE(v1_controllers),
    .available = v1_available,
    .parent_dir = v1_parent_dir,
    .init_parents = v1_init_parents,
    .kill_dir = cgroupfs_kill_listed_until_empty,
    .apply_limits = v1_apply_limits,
    .freezer = V1_FREEZER,
    .set_frozen = v1_set_frozen,
    .kill_frozen = v1_kill_frozen,
    /* "oom_kill N", as in v2's memory.events */
    .oom_file = "memory.oom_control",
    .usage_file = "memory.usage_in_bytes",
};
