/* cgroup_v2.c - cgroup v2: one hierarchy, /sys/fs/cgroup/<parent>/<id>,
 * with the memory, pids and cpu controllers enabled down to it.
 *
 * Real hosts run v2 (systemd). memory.oom.group stays 0: a group kill
 * would take the agent along (cgroup.c).
 */
#include "cgroup_impl.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* /sys/fs/cgroup itself is cgroup2 (cgroup.c checked): it must offer the
 * three controllers we need. */
static int v2_available(char *err, size_t errlen)
{
    char ctl[512];
    int r = read_file_small(CGROUP_ROOT "/cgroup.controllers", ctl, sizeof(ctl));
    if (r < 0)
        return jail_err(err, errlen, r, "read %s", CGROUP_ROOT "/cgroup.controllers");
    const char *need[] = {"memory", "pids", "cpu"};
    for (size_t i = 0; i < ARRAY_SIZE(need); i++)
        if (!cgroupfs_controllers_have(ctl, need[i]))
            return jail_err(err, errlen, -ENOTSUP, "cgroup v2 controller %s missing from %s", need[i],
                            CGROUP_ROOT "/cgroup.controllers");
    return 0;
}

static int v2_parent_dir(const struct cgroup_ctx *cg, int i, char *buf, size_t len)
{
    (void)i;
    int n = snprintf(buf, len, CGROUP_ROOT "/%s", cg->parent);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Write subtree_control only when something is missing: on a systemd host
 * the root already delegates them, and in a cgroup namespace whose root holds
 * processes the write would fail (EBUSY) although nothing needs changing. */
static int v2_enable_controllers(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX], cur[512];
    int r = cgroupfs_path_join(path, sizeof(path), dir, "cgroup.subtree_control");
    if (r < 0)
        return jail_err(err, errlen, r, "cgroup.subtree_control in %s", dir);
    if (read_file_small(path, cur, sizeof(cur)) >= 0 && cgroupfs_controllers_have(cur, "memory") &&
        cgroupfs_controllers_have(cur, "pids") && cgroupfs_controllers_have(cur, "cpu"))
        return 0;
    return cgroupfs_write(dir, "cgroup.subtree_control", "+memory +pids +cpu", err, errlen);
}

static int v2_init_parents(const struct cgroup_ctx *cg, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    int r;
    /* Controllers must be enabled in each ancestor's subtree_control
     * before a child cgroup gets their files. */
    if ((r = v2_enable_controllers(CGROUP_ROOT, err, errlen)) < 0)
        return r;
    if ((r = v2_parent_dir(cg, 0, dir, sizeof(dir))) < 0 || (r = cgroupfs_mkdir_exist_ok(dir, err, errlen)) < 0)
        return r;
    return v2_enable_controllers(dir, err, errlen);
}

static bool v2_populated(const char *dir)
{
    char path[PATH_MAX], buf[256];
    snprintf(path, sizeof(path), "%s/cgroup.events", dir);
    if (read_file_small(path, buf, sizeof(buf)) < 0)
        return false;
    return strstr(buf, "populated 1") != NULL;
}

/* cgroup.kill is atomic against forks. Without it (kernels before 5.14)
 * the v1 loop over cgroup.procs. */
static int v2_kill_dir(const char *dir)
{
    char path[PATH_MAX];
    uint64_t deadline = now_mono_ms() + CGROUP_EMPTY_TIMEOUT_MS;
    int r = cgroupfs_path_join(path, sizeof(path), dir, "cgroup.kill");
    if (r >= 0)
        r = write_file(path, "1");
    if (r == -ENOENT && access(dir, F_OK) < 0)
        return 0; /* no such cgroup */
    while (r >= 0 && v2_populated(dir)) {
        if (now_mono_ms() > deadline)
            return -ETIMEDOUT;
        cgroupfs_sleep_ms(1);
    }
    if (r >= 0)
        return 0;
    return cgroupfs_kill_listed_until_empty(dir);
}

static int v2_set_memory_max(const char *dir, uint64_t bytes, char *err, size_t errlen)
{
    char v[32];
    int r;
    cgroupfs_u64_or_max(v, sizeof(v), bytes, "max");
    if ((r = cgroupfs_write(dir, "memory.max", v, err, errlen)) < 0)
        return r;
    /* a host without swap has no memory.swap.max: nothing to disable */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/memory.swap.max", dir);
    if (access(path, F_OK) == 0 && (r = cgroupfs_write(dir, "memory.swap.max", "0", err, errlen)) < 0)
        return r;
    return cgroupfs_write(dir, "memory.oom.group", "0", err, errlen);
}

/* cpu_millis 1000 = one full CPU = a quota of 100 ms per 100 ms period. */
static int v2_set_cpu_max(const char *dir, uint32_t millis, char *err, size_t errlen)
{
    char v[64];
    uint64_t quota = (uint64_t)millis * 100;
    if (millis == 0)
        snprintf(v, sizeof(v), "max 100000");
    else
        snprintf(v, sizeof(v), "%llu 100000", (unsigned long long)quota);
    return cgroupfs_write(dir, "cpu.max", v, err, errlen);
}

/* One directory for all controllers. */
static int v2_apply_limits(int i, const char *dir, const struct cgroup_limits *lim, char *err, size_t errlen)
{
    (void)i;
    int r;
    if ((r = v2_set_memory_max(dir, lim->memory_bytes, err, errlen)) < 0 ||
        (r = cgroupfs_set_pids_max(dir, lim->pids_max, err, errlen)) < 0)
        return r;
    return v2_set_cpu_max(dir, lim->cpu_millis, err, errlen);
}

/* cgroup.freeze is in every cgroup (no controller needed); the freeze is
 * done when cgroup.events says "frozen 1". */
static int v2_set_frozen(const char *dir, bool frozen, char *err, size_t errlen)
{
    int r = cgroupfs_write(dir, "cgroup.freeze", frozen ? "1" : "0", err, errlen);
    if (r < 0)
        return r;
    r = cgroupfs_wait_for(dir, "cgroup.events", frozen ? "frozen 1" : "frozen 0");
    if (r < 0 && frozen)
        (void)cgroupfs_write(dir, "cgroup.freeze", "0", NULL, 0);
    if (r < 0)
        return jail_err(err, errlen, r, "wait for %s/cgroup.events to say %s", dir, frozen ? "frozen 1" : "frozen 0");
    return 0;
}

/* A frozen v2 task does act on SIGKILL (the freezer lets fatal signals
 * through), so v2_kill_dir works on a frozen cgroup; kill first all the
 * same, then thaw, so nothing runs user code in between. */
static int v2_kill_frozen(const char *dir)
{
    char path[PATH_MAX], v[8];
    int r = cgroupfs_path_join(path, sizeof(path), dir, "cgroup.freeze");
    if (r < 0)
        return r;
    if ((r = read_file_small(path, v, sizeof(v))) < 0)
        return r == -ENOENT ? 0 : r;
    if (v[0] == '0')
        return 0;
    char kill_path[PATH_MAX];
    if (cgroupfs_path_join(kill_path, sizeof(kill_path), dir, "cgroup.kill") < 0 || write_file(kill_path, "1") < 0)
        (void)cgroupfs_kill_listed_once(dir);
    return write_file(path, "0");
}

const struct cgroup_impl cgroup_v2_impl = {
    .count = 1,
    .available = v2_available,
    .parent_dir = v2_parent_dir,
    .init_parents = v2_init_parents,
    .kill_dir = v2_kill_dir,
    .apply_limits = v2_apply_limits,
    .freezer = 0,
    .set_frozen = v2_set_frozen,
    .kill_frozen = v2_kill_frozen,
    .oom_file = "memory.events",
    .usage_file = "memory.current",
};
